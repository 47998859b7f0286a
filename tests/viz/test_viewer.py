"""The viewer: rows of every pipeline as HTML, self-contained pages, paging, loading, serving."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request

import pytest
from datasets import Dataset, DatasetDict
from PIL import Image

from hfgcot import viz
from hfgcot.viz.colours import colour, hex_colour
from hfgcot.viz.viewer import load_rows, make_server, write_view

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def image(w=200, h=100):
    return Image.new("RGB", (w, h), (240, 240, 240))


def gcot_row(**over):
    return {
        "image": image(),
        "question": "Which shape is left?",
        "answer": "the circle",
        "gcot": "The red circle [10, 20, 60, 80] is left of the blue square.\nAnswer: the circle",
        "groundings": [
            {"phrase": "red circle", "bbox": [10.0, 20.0, 60.0, 80.0]},
            {"phrase": "blue square", "bbox": [120.0, 10.0, 190.0, 90.0]},
            {"phrase": "green cone", "bbox": [70.0, 60.0, 110.0, 95.0]},
        ],
        "extracted_keywords": ["red circle", "blue square"],
        "gcot_status": "ok",
        **over,
    }


def region_row(**over):
    return {
        "image": image(),
        "bbox": [[20, 10, 50, 40], [100, 50, 60, 30]],
        "normalized_bbox": [[0.1, 0.1, 0.35, 0.5], [0.5, 0.5, 0.8, 0.8]],
        "valid_bboxes_num": 2,
        "answer": "<region1>: a cat\n<region2>: a dog",
        "region_captions": ["a cat", "a dog"],
        "region_caption_status": "ok",
        **over,
    }


def dense_row():
    return {
        "image": image(),
        "init_caption": "A red circle. A dragon.",
        "sentences": ["A red circle.", "A dragon."],
        "golden_sentences": ["A red circle."],
        "sentence_scores": [1.0, 0.0],
        "q_list": ["Describe the red circle."],
        "final_details": ["It is round."],
        "final_caption": "A round red circle.",
        "dense_caption_status": "ok",
    }


def prediction_row():
    user = {"type": "text", "text": "the red circle\nLocate it."}
    return {
        "image": image(),
        "question": "the red circle",
        "messages": [
            {"role": "user", "content": [{"type": "image", "text": None}, user]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": '{"bbox_2d": [5, 10, 30, 40]}'}],
            },
        ],
        "gt_bbox": [10.0, 20.0, 60.0, 80.0],
        "sft_status": "ok",
        "pred_bbox": [12.0, 22.0, 62.0, 78.0],
        "pred_text": '{"bbox_2d": [6, 11, 31, 39]}',
        "pred_status": "ok",
    }


def rects(html):
    found = re.findall(
        r'<rect class="hfgcot-box([^"]*)" data-k="(\w+)" x="([\d.]+)" y="([\d.]+)" '
        r'width="([\d.]+)" height="([\d.]+)" style="color:(#\w+)"',
        html,
    )
    return [
        (cls.strip(), k, [float(x), float(y), float(x) + float(w), float(y) + float(h)], c)
        for cls, k, x, y, w, h, c in found
    ]


def test_gcot_row_boxes_in_pixels_phrases_in_their_colour_question_and_answer():
    html = viz.row_html(gcot_row())
    assert 'viewBox="0 0 200 100"' in html
    drawn = rects(html)
    assert [r[2] for r in drawn] == [g["bbox"] for g in gcot_row()["groundings"]]
    assert [r[1] for r in drawn] == ["p0", "p1", "p2"]
    assert [r[3] for r in drawn] == [hex_colour(colour(i)) for i in range(3)]
    assert [r[0] for r in drawn] == ["", "", "hfgcot-dashed"]  # "green cone": not in the text
    spans = re.findall(r'<span class="hfgcot-phrase" data-k="(\w+)" style="background:(#\w+)', html)
    assert ("p0", hex_colour(colour(0))) in spans and ("p1", hex_colour(colour(1))) in spans
    assert "red circle [10, 20, 60, 80]</span>" in html
    assert "Which shape is left?" in html and "reference answer" in html and "the circle" in html
    assert "boxes of phrases not in the text" in html
    assert '[data-k="p2"]:hover' in html  # hover pairs the box and its phrase


def test_region_rows_number_their_boxes_and_captions_alike():
    html = viz.row_html(region_row())
    drawn = rects(html)
    assert [r[2] for r in drawn] == [[20.0, 10.0, 70.0, 50.0], [100.0, 50.0, 160.0, 80.0]]
    items = re.findall(
        r'<li data-k="(r\d)"><span class="hfgcot-num" data-k="r\d" style="background:(#\w+);'
        r'[^"]*">(\d)</span> ([^<]*)</li>',
        html,
    )
    assert items == [
        ("r0", hex_colour(colour(0)), "1", "a cat"),
        ("r1", hex_colour(colour(1)), "2", "a dog"),
    ]
    assert re.findall(r'<g class="hfgcot-tag" data-k="(r\d)">', html) == ["r0", "r1"]
    crop = viz.row_html(region_row(answer=["a cat", "a dog"]))
    assert "model answer" not in crop and "a dog" in crop


def test_dense_rows_mark_kept_and_dropped_sentences():
    html = viz.row_html(dense_row())
    assert re.search(
        r'class="hfgcot-kept"><span class="hfgcot-mark">kept</span>'
        r'<span class="hfgcot-sentence">A red circle.</span>',
        html,
    )
    assert re.search(
        r'class="hfgcot-dropped"><span class="hfgcot-mark">dropped</span>'
        r'<span class="hfgcot-sentence">A dragon.</span>',
        html,
    )
    assert "A round red circle." in html and "Describe the red circle." in html


def test_grounding_rows_show_the_reference_and_the_prediction_with_iou():
    view = viz.row_view(prediction_row(), image_size=(200, 100))
    assert [(b.label, list(b.bbox)) for b in view.boxes] == [
        ("reference", [10.0, 20.0, 60.0, 80.0]),
        ("prediction (pred)", [12.0, 22.0, 62.0, 78.0]),
    ]
    assert [n for n, _ in view.statuses] == ["sft_status", "pred_status"]
    html = viz.row_html(prediction_row())
    assert "IoU with the reference" in html and "Locate it." in html
    assert "{&quot;bbox_2d&quot;: [5, 10, 30, 40]}" in html


def test_unknown_columns_are_listed_and_media_left_out():
    view = viz.row_view({"image": image(), "source": "web", "blob": b"\x00", "n": 3})
    (fields,) = [s for s in view.sections if s.title == "other columns"]
    assert fields.items == (("source", "web"), ("n", "3"))


def test_every_text_is_escaped_and_the_page_is_self_contained(tmp_path):
    rows = [
        gcot_row(question=XSS, answer=XSS, gcot=XSS, gcot_status=XSS),
        {**region_row(region_captions=[XSS, "ok"]), f"note{XSS}": XSS},
        dense_row(),
        prediction_row(),
    ]
    page = viz.rows_html(rows, title=XSS)
    assert "<script>window" not in page and "<img src=x" not in page
    assert page.count("<script") == 2  # the JSON data and the viewer's own script
    data_text = re.search(
        r'<script type="application/json" id="hfgcot-data">(.*?)</script>', page, re.S
    ).group(1)
    assert "<" not in data_text and ">" not in data_text
    data = json.loads(data_text)
    assert len(data) == 4
    for row in data:
        assert "<script>window" not in row["h"] and "<img src=x" not in row["h"]
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in data[0]["h"]
    # nothing is loaded from elsewhere: images inline, no links, no imports
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert all(src.startswith("data:image/") for src in re.findall(r'src="([^"]*)"', page))
    assert all(
        src.startswith("data:image/")
        for row in data
        for src in re.findall(r'src="([^"]*)"', row["h"])
    )


def test_statuses_are_filter_options_and_rows_carry_their_reason():
    rows = [gcot_row(), gcot_row(gcot_status="no_keywords"), gcot_row(gcot_status="ok: note")]
    page = viz.rows_html(rows)
    assert re.findall(r'<option value="([^"]*)">', page) == ["", "ok", "no_keywords"]
    data = json.loads(re.search(r'id="hfgcot-data">(.*?)</script>', page, re.S).group(1))
    assert [r["s"] for r in data] == ["ok", "no_keywords", "ok"]
    assert "which shape is left?" in data[0]["t"]  # searchable, lower case


def test_write_view_pages_large_datasets_into_linked_files(tmp_path):
    ds = Dataset.from_list([gcot_row(question=f"question {i}") for i in range(7)])
    paths = write_view(ds, tmp_path / "out" / "page.html", rows_per_file=3, page_size=2)
    assert [p.name for p in paths] == ["page.html", "page-2.html", "page-3.html"]
    for k, path in enumerate(paths):
        page = path.read_text(encoding="utf-8")
        data = json.loads(re.search(r'id="hfgcot-data">(.*?)</script>', page, re.S).group(1))
        titles = [re.search(r'hfgcot-title">([^<]*)<', r["h"]).group(1) for r in data]
        assert titles == [f"row {i}" for i in range(3 * k, min(7, 3 * k + 3))]
        assert 'data-page-size="2"' in page
        links = re.findall(r'<a href="([^"]*)">', page)
        assert links == [p.name for j, p in enumerate(paths) if j != k]
    with pytest.raises(ValueError, match="rows_per_file"):
        write_view(ds, tmp_path / "x.html", rows_per_file=0)


def test_load_rows_reads_saved_datasets_dicts_and_releases(tmp_path):
    from hfgcot import publish

    ds = Dataset.from_list([gcot_row(question="q1"), gcot_row(question="q2")])
    ds.save_to_disk(str(tmp_path / "saved"))
    assert load_rows(tmp_path / "saved")["question"] == ["q1", "q2"]
    DatasetDict({"train": ds, "test": ds.select([1])}).save_to_disk(str(tmp_path / "dict"))
    assert load_rows(tmp_path / "dict", split="test")["question"] == ["q2"]
    with pytest.raises(ValueError, match="no split 'valid'"):
        load_rows(tmp_path / "dict", split="valid")
    publish(ds.select([0]), tmp_path / "releases", version="1.0.0")
    publish(ds, tmp_path / "releases", version="1.2.0")
    assert len(load_rows(tmp_path / "releases")) == 2  # the newest version
    assert len(load_rows(tmp_path / "releases" / "v1.0.0")) == 1
    assert load_rows(tmp_path / "saved", limit=1)["question"] == ["q1"]


def test_the_server_serves_the_pages_only_on_localhost(tmp_path):
    paths = write_view([gcot_row()], tmp_path / "page.html")
    (tmp_path / "secret.txt").write_text("not for you")
    server = make_server(paths, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.read().decode("utf-8") == paths[0].read_text(encoding="utf-8")
        for name in ("secret.txt", "../page.html", "nope.html"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}")
            assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_cli_view_writes_the_page(tmp_path, capsys):
    from hfgcot.cli import main

    Dataset.from_list([region_row()]).save_to_disk(str(tmp_path / "regions"))
    out = tmp_path / "view" / "page.html"
    assert main(["view", str(tmp_path / "regions"), "--output", str(out), "--page-size", "5"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "a dog" in page and 'data-page-size="5"' in page
    code = main(["view", str(tmp_path / "regions"), "--output", str(out), "--rows-per-file", "0"])
    assert code == 2 and "rows_per_file" in capsys.readouterr().err


def test_cli_view_on_a_busy_port_is_a_one_line_error(tmp_path, capsys):
    from hfgcot.cli import main

    Dataset.from_list([region_row()]).save_to_disk(str(tmp_path / "regions"))
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["view", str(tmp_path / "regions"), "--output", str(tmp_path / "p.html")]
        assert main([*argv, "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot serve on 127.0.0.1:{port}" in err and "--port" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.model
def test_demo_writes_pictures_and_the_viewer_page(tmp_path, tiny_vlm_path, monkeypatch):
    import hfgcot.demo
    from hfgcot.io import demo_dataset

    monkeypatch.setattr(hfgcot.demo, "demo_dataset", lambda: demo_dataset().select(range(2)))
    result = hfgcot.demo.run_demo(tmp_path, model=tiny_vlm_path, max_new_tokens=4)
    assert result.grid is not None and Image.open(result.grid).width > 0
    page = result.index_html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hfgcot-data">(.*?)</script>', page, re.S).group(1))
    assert len(data) == 2 and "What colour is the circle?" in data[0]["h"]
    assert sorted(p.name for p in result.pictures_dir.iterdir()) == [
        "grid.png",
        "index.html",
        "row_000.png",
        "row_001.png",
    ]
