"""Pictures: box outlines at the box edges, phrases in their box colour (HTML and PIL), grids."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from hfgcot import viz
from hfgcot.viz.draw import colour, hex_colour

WHITE = (255, 255, 255)
RED_BALL, BLUE_BOX = [20, 40, 100, 120], [150, 30, 190, 90]
GROUNDINGS = [
    {"phrase": "red ball", "bbox": RED_BALL},
    {"phrase": "blue box", "bbox": BLUE_BOX},
    {"phrase": "red ball", "bbox": [110, 100, 130, 130]},
]
TEXT = (
    "Step 1: The red ball [20, 40, 100, 120] is left of the blue box [150, 30, 190, 90].\n"
    "Step 2: The Red Ball is not a ball-like box; a football is no red balls.\n"
    "Answer: <left> & done"
)


def row(**over):
    base = {
        "image": Image.new("RGB", (200, 150), WHITE),
        "gcot": TEXT,
        "groundings": GROUNDINGS,
        "gcot_status": "ok",
    }
    return {**base, **over}


def test_outline_colour_at_box_edges():
    img = viz.draw_groundings(Image.new("RGB", (200, 150), WHITE), GROUNDINGS)
    c0, c1 = colour(0), colour(1)
    x1, y1, x2, y2 = RED_BALL
    mid_y, mid_x = (y1 + y2) // 2, (x1 + x2) // 2
    assert img.getpixel((x1, mid_y)) == c0 and img.getpixel((x2 - 1, mid_y)) == c0
    assert img.getpixel((mid_x, y2 - 1)) == c0
    assert img.getpixel((x1 - 1, mid_y)) == WHITE and img.getpixel((x2, mid_y)) == WHITE
    assert img.getpixel((mid_x, mid_y)) == WHITE  # outline only
    bx1, by1, bx2, by2 = BLUE_BOX
    assert img.getpixel((bx2 - 1, (by1 + by2) // 2)) == c1
    assert img.getpixel((129, 115)) == c0  # the phrase's second box keeps the phrase colour


def test_phrase_colours_match_the_drawing():
    assert viz.phrase_colours(GROUNDINGS) == {"red ball": colour(0), "blue box": colour(1)}
    assert viz.phrase_colours(None) == {}
    assert hex_colour((230, 25, 75)) == "#e6194b"


def test_text_segments_whole_words_case_insensitive_with_boxes():
    colours = {"ball": colour(2), **viz.phrase_colours(GROUNDINGS)}
    segments = viz.text_segments(TEXT, colours)
    assert "".join(p for p, _ in segments) == TEXT
    coloured = [(p, c) for p, c in segments if c is not None]
    assert coloured[0] == ("red ball [20, 40, 100, 120]", colour(0))  # longest phrase first
    assert coloured[1] == ("blue box [150, 30, 190, 90]", colour(1))
    assert ("Red Ball", colour(0)) in coloured
    assert ("ball", colour(2)) in coloured  # "ball-like": a whole word before the hyphen
    assert not any("football" in p or p.startswith("red balls") for p, _ in coloured)
    multi = viz.text_segments("a cat [[1, 2, 3, 4], [5, 6, 7, 8]] sat", {"cat": colour(0)})
    assert multi[1] == ("cat [[1, 2, 3, 4], [5, 6, 7, 8]]", colour(0))
    assert viz.text_segments("", {"x": colour(0)}) == []


def test_row_html_phrases_in_their_box_colour_and_inline_image():
    html = viz.row_html(row())
    for phrase, c in viz.phrase_colours(GROUNDINGS).items():
        spans = re.findall(r'<span class="hfgcot-phrase" style="([^"]*)">([^<]*)</span>', html)
        assert any(
            f"background:{hex_colour(c)}" in style and phrase in text for style, text in spans
        )
    assert "&lt;left&gt; &amp; done" in html and "<left>" not in html  # escaped
    assert "status: ok" in html
    b64 = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
    assert img.size == (200, 150)
    assert img.getpixel((RED_BALL[0], 80)) == colour(0)  # boxes drawn on the inline image
    assert html._repr_html_() == str(html)  # Jupyter displays it


def test_row_html_other_columns_and_missing_image():
    region_row = {"marked": Image.new("RGB", (30, 30)), "answer": "<region1>: a cat"}
    html = viz.row_html(
        region_row, image_column="marked", text_column="answer", groundings_column=None
    )
    assert "&lt;region1&gt;: a cat" in html and "data:image/png;base64," in html
    assert "(no image)" in viz.row_html({"gcot": "x"})


def test_rows_html_is_a_page(tmp_path):
    page = viz.rows_html([row(), row(gcot="second row")], title="My <rows>")
    assert page.startswith("<!DOCTYPE html>") and "My &lt;rows&gt;" in page
    assert page.count('class="hfgcot-row"') == 2 and "second row" in page
    page.save(tmp_path / "index.html")
    assert (tmp_path / "index.html").read_text(encoding="utf-8") == page


def test_render_row_draws_boxes_and_coloured_text(tmp_path):
    img = viz.render_row(row(), width=200)
    assert img.width == 200 and img.height > 150  # image on top, text below
    assert img.getpixel((RED_BALL[0], 80)) == colour(0)
    text_area = img.crop((0, 150, 200, img.height))
    colours = set(text_area.getdata())
    assert colour(0) in colours and colour(1) in colours  # phrase highlights
    img.save(tmp_path / "row.png")
    assert Image.open(tmp_path / "row.png").size == img.size
    wide = viz.render_row(row(), width=400)
    assert wide.width == 400 and wide.getpixel((RED_BALL[0] * 2, 160)) == colour(0)
    assert viz.render_row({"gcot": "text only"}, width=100).width == 100


def test_grid_layout():
    a = Image.new("RGB", (10, 10), (255, 0, 0))
    b = Image.new("RGB", (20, 10), (0, 255, 0))  # scaled to the cell width: 10x5
    c = Image.new("RGB", (10, 30), (0, 0, 255))
    g = viz.grid([a, b, c], cols=2, cell_width=10, pad=2)
    assert g.size == (2 + 2 * 12, 2 + 12 + 32)
    assert g.getpixel((2, 2)) == (255, 0, 0) and g.getpixel((14, 3)) == (0, 255, 0)
    assert g.getpixel((14, 9)) == WHITE  # below the shorter image of the row
    assert g.getpixel((2, 14)) == (0, 0, 255)
    assert viz.grid([a], cols=3).size == (10 + 16, 10 + 16)
    with pytest.raises(ValueError):
        viz.grid([a], cols=0)


@pytest.mark.model
def test_demo_writes_grid_and_index(tmp_path, tiny_vlm_path, tiny_vlm, monkeypatch):
    import hfgcot.demo
    from hfgcot.io import demo_dataset

    monkeypatch.setattr(hfgcot.demo, "demo_dataset", lambda: demo_dataset().select(range(2)))
    result = hfgcot.demo.run_demo(tmp_path, model=tiny_vlm_path, max_new_tokens=4)
    assert result.grid is not None and Image.open(result.grid).width > 0
    html = result.index_html.read_text(encoding="utf-8")
    assert html.count('class="hfgcot-row"') == 2
    assert sorted(p.name for p in result.pictures_dir.iterdir()) == [
        "grid.png",
        "index.html",
        "row_000.png",
        "row_001.png",
    ]
