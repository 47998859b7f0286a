"""Pictures: outlines at the box edges, labels that stay readable, fonts for any script, grids."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hfgcot import viz
from hfgcot.viz import fonts
from hfgcot.viz.colours import colour, hex_colour, label_colour
from hfgcot.viz.labels import plan_labels
from hfgcot.viz.layout import rects_overlap

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
CHINESE = "红色圆形"


def row(**over):
    base = {
        "image": Image.new("RGB", (200, 150), WHITE),
        "gcot": TEXT,
        "groundings": GROUNDINGS,
        "gcot_status": "ok",
    }
    return {**base, **over}


def near(colours, target, tol=40):
    return any(all(abs(a - b) <= tol for a, b in zip(c, target, strict=True)) for c in colours)


def colours_in(img, box):
    return {c for _, c in img.crop(box).getcolors(1 << 20)}


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
    assert label_colour((210, 245, 60)) == (0, 0, 0) and label_colour((0, 0, 0)) == WHITE


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
    assert viz.mentioned_phrases(TEXT, ["blue box", "green cone"]) == {"blue box"}


def test_a_box_whose_phrase_is_not_in_the_text_is_dashed_and_marked():
    image = Image.new("RGB", (200, 150), WHITE)
    groundings = [*GROUNDINGS, {"phrase": "green cone", "bbox": [30, 130, 190, 148]}]
    drawn = viz.draw_groundings(image, groundings, text=TEXT)
    c = colour(2)
    edge = [drawn.getpixel((x, 147)) for x in range(40, 180)]  # bottom edge of the cone box
    assert c in edge and WHITE in edge  # dashed: gaps along the edge
    solid = [drawn.getpixel((x, RED_BALL[3] - 1)) for x in range(30, 90)]
    assert set(solid) == {colour(0)}  # mentioned phrases stay solid
    plan = plan_labels(
        image.size,
        [g["bbox"] for g in groundings],
        ["green cone (not in text)"],
        [c],
        font_size=10,
    )
    assert plan.tags[0].text.endswith(f"({viz.NOT_IN_TEXT})")
    assert viz.draw_groundings(image, groundings) == viz.draw_boxes(
        image,
        [(g["bbox"], g["phrase"]) for g in groundings],
        colours=[*[colour(0), colour(1)], colour(0), c],
    )  # without the text nothing is marked


def test_labels_of_overlapping_boxes_do_not_cover_each_other_and_stay_inside():
    boxes = [[10, 40, 150, 140], [10, 40, 120, 100], [12, 42, 90, 90], [150, 5, 199, 60]]
    labels = ["first label", "second label", "third", "a long label at the right edge"]
    plan = plan_labels((200, 150), boxes, labels, [colour(i) for i in range(4)], font_size=12)
    rects = [t.rect for t in plan.tags]
    assert len(rects) == 4
    for i, r in enumerate(rects):
        assert 0 <= r[0] and 0 <= r[1] and r[2] <= 200 and r[3] <= 150, r
        assert not any(rects_overlap(r, o) for o in rects[i + 1 :])
    # the long label is moved left to stay whole, not cut at the edge
    assert plan.tags[3].text == labels[3] and rects[3][2] <= 200


def test_a_label_too_long_for_the_image_is_numbered_with_a_legend():
    image = Image.new("RGB", (80, 60), WHITE)
    long = "a very long phrase that cannot fit in such a small picture"
    out = viz.draw_boxes(image, [([10, 20, 50, 50], long), ([55, 20, 75, 50], "ok")])
    assert out.width == 80 and out.height > 60  # the legend is under the picture
    plan = plan_labels(
        image.size,
        [[10, 20, 50, 50], [55, 20, 75, 50]],
        [long, "ok"],
        [colour(0), colour(1)],
        font_size=12,
    )
    assert [t.text for t in plan.tags] == ["1", "ok"]
    assert plan.legend == [("1", long, colour(0))]
    assert colour(0) in colours_in(out, (0, 60, 80, out.height))  # its number's colour


def test_region_numbers_on_a_small_image_do_not_hide_the_shapes():
    from hfgcot.testing.shapes import make_scenes

    scenes = [s for s in make_scenes(60, seed=5) if max(s.width, s.height) <= 160]
    assert scenes
    for scene in scenes[:8]:
        image = scene.image()
        boxes = [list(o.bbox) for o in scene.objects]
        drawn = viz.draw_regions(image, boxes)
        w = max(2, round(min(image.size) / 150))
        for obj in scene.objects:
            x1, y1, x2, y2 = (round(v) for v in obj.bbox)
            inner = (x1 + w + 1, y1 + w + 1, x2 - w - 1, y2 - w - 1)
            if inner[2] - inner[0] < 2 or inner[3] - inner[1] < 2:
                continue
            others = [b for b in boxes if b != list(obj.bbox)]
            if any(rects_overlap(inner, tuple(b)) for b in others):
                continue  # another box's outline may cross it
            before, after = image.crop(inner), drawn.crop(inner)
            changed = sum(a != b for a, b in zip(before.getdata(), after.getdata(), strict=True))
            assert changed <= 0.1 * before.width * before.height, (scene.width, scene.height)


def test_region_tags_sit_above_their_boxes_when_there_is_room():
    img = Image.new("RGB", (300, 200), (128, 128, 128))
    boxes = [[30, 60, 120, 150], [150, 60, 280, 150]]
    out = viz.draw_regions(img, boxes)
    for i, (x1, y1, _, _) in enumerate(boxes):
        tag = colours_in(out, (x1, y1 - 18, x1 + 12, y1))
        assert colour(i) in tag and near(tag, label_colour(colour(i)))


# -- fonts -------------------------------------------------------------------------------------


def test_ascii_uses_the_builtin_font_and_other_scripts_need_another():
    font, covered = fonts.text_font("red circle", 12)
    assert covered and font.getname()[0] == "Aileron"  # Pillow's own: pictures unchanged
    default = fonts.text_font("abc", 12)[0]
    assert not fonts.font_covers(default, CHINESE)
    assert fonts.font_covers(default, "a b\tc\n")  # spaces need no glyph


def test_a_cjk_label_is_drawn_with_a_font_that_covers_it():
    path = fonts.find_font(CHINESE)
    if path is None:
        pytest.skip("no installed font covers Chinese (e.g. Debian's fonts-noto-cjk): glyph check")
    font, covered = fonts.text_font(CHINESE, 14)
    assert covered and fonts.font_covers(font, CHINESE)
    plan = plan_labels((200, 100), [[20, 40, 120, 90]], [CHINESE], [colour(0)], font_size=14)
    assert plan.tags[0].text == CHINESE and plan.legend == []
    drawn = viz.draw_boxes(Image.new("RGB", (200, 100), WHITE), [([20, 40, 120, 90], CHINESE)])
    tofu = viz.draw_boxes(
        Image.new("RGB", (200, 100), WHITE), [([20, 40, 120, 90], "\U0010ffff" * 4)]
    )
    assert drawn != tofu


def test_without_a_font_for_the_script_labels_are_numbered_and_the_log_says_so_once(
    monkeypatch, caplog
):
    monkeypatch.setattr(fonts, "find_font", lambda text, dirs=fonts.FONT_DIRS: None)
    monkeypatch.setattr(fonts, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="hfgcot.viz.fonts"):
        assert fonts.text_font(CHINESE, 12)[1] is False
        plan = plan_labels((200, 100), [[20, 40, 120, 90]], [CHINESE], [colour(0)], font_size=14)
        viz.draw_boxes(Image.new("RGB", (200, 100)), [([20, 40, 120, 90], CHINESE)])
    assert [t.text for t in plan.tags] == ["1"] and plan.legend == []  # no empty squares
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTML" in warnings[0].getMessage()
    html = viz.row_html(
        {
            "image": Image.new("RGB", (64, 64)),
            "gcot": f"{CHINESE}在左边",
            "groundings": [{"phrase": CHINESE, "bbox": [1, 1, 30, 30]}],
        }
    )
    assert CHINESE in html  # the HTML shows the text; the browser draws any script


def test_fonts_are_found_in_font_folders_without_fontconfig(monkeypatch, tmp_path):
    import shutil as shutil_module

    found = fonts.find_font("é")
    if found is None:
        pytest.skip("no installed font covers 'é'")
    monkeypatch.setattr(shutil_module, "which", lambda name: None)  # no fc-list
    fonts.find_font.cache_clear()
    try:
        (tmp_path / "fonts").mkdir()
        shutil_module.copy(found, tmp_path / "fonts" / ("Some Sans" + found[-4:]))
        path = fonts.find_font("é", dirs=(str(tmp_path / "fonts"),))
        assert path == str(tmp_path / "fonts" / ("Some Sans" + found[-4:]))
        assert fonts.find_font("é", dirs=(str(tmp_path / "empty"),)) is None
    finally:
        fonts.find_font.cache_clear()


def test_font_path_chooses_the_font(tmp_path):
    found = fonts.find_font("é")
    if found is None:
        pytest.skip("no installed font covers 'é'")
    font, covered = fonts.text_font("café", 12, font_path=found)
    assert covered and font.path == found
    with pytest.raises(ValueError, match="cannot read the font"):
        fonts.text_font("café", 12, font_path=tmp_path / "missing.ttf")
    # ASCII is drawn in Pillow's built-in font unless font_path says otherwise: the pixels differ
    a = viz.draw_boxes(Image.new("RGB", (120, 80)), [([10, 30, 60, 70], "ball")])
    b = viz.draw_boxes(Image.new("RGB", (120, 80)), [([10, 30, 60, 70], "ball")], font_path=found)
    assert a.size == b.size and a.tobytes() != b.tobytes()


# -- rows as pictures, grids ------------------------------------------------------------------


def test_render_row_draws_boxes_question_answer_and_coloured_text(tmp_path):
    img = viz.render_row(row(question="Where?", answer="left"), width=200)
    assert img.width == 200 and img.height > 150  # image on top, text below
    assert img.getpixel((RED_BALL[0], 80)) == colour(0)
    text_area = img.crop((0, 150, 200, img.height))
    colours = set(text_area.getdata())
    assert colour(0) in colours and colour(1) in colours  # phrase highlights
    assert img.height > viz.render_row(row(), width=200).height  # Q and A lines
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


@st.composite
def texts_and_phrases(draw):
    words = st.sampled_from(["red", "ball", "Red", "box", "红色", "圆形", "a", "[1, 2, 3, 4]", "-"])
    seps = st.sampled_from([" ", "  ", "\n", "", ", "])
    parts = draw(st.lists(st.tuples(words, seps), max_size=12))
    text = "".join(w + s for w, s in parts)
    phrases = draw(
        st.lists(st.sampled_from(["red ball", "ball", "红色圆形", "box", "圆形"]), max_size=4)
    )
    return text, phrases


@settings(max_examples=300, deadline=None)
@given(texts_and_phrases())
def test_phrase_spans_cover_the_text_and_start_with_their_phrase(case):
    text, phrases = case
    spans = viz.phrase_spans(text, phrases)
    assert "".join(p for p, _ in spans) == text
    for piece, phrase in spans:
        if phrase is not None:
            assert phrase in phrases
            head = " ".join(piece.split())
            assert head.lower().startswith(phrase.lower()), (piece, phrase)
    assert viz.mentioned_phrases(text, phrases) == {p for _, p in spans if p}


def test_phrases_next_to_chinese_characters_are_mentions():
    spans = viz.phrase_spans("这个red  ball在左边, 红色圆形很大", ["red ball", "红色圆形"])
    assert [p for p, k in spans if k] == ["red  ball", "红色圆形"]
    assert viz.mentioned_phrases("football and redball", ["ball", "red ball"]) == set()
