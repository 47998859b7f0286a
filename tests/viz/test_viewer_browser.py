"""The viewer page in a real browser: headless Chromium driven by Playwright.

CI installs Debian's ``chromium`` (``.ci/run``); without it (or without the ``playwright``
package) these tests skip and say why. No browser is downloaded: Playwright drives the system's
``/usr/bin/chromium``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
from datasets import Dataset
from PIL import Image

from hfgcot.viz.viewer import write_view

CHINESE = "红色圆形"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def _chromium() -> str | None:
    for path in (os.environ.get("HFGCOT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if path and os.path.exists(path):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    # .ci/run sets HFGCOT_REQUIRE_BROWSER=1 once Chromium is installed: then a skip would hide a
    # broken browser test, so a missing piece fails instead.
    missing = pytest.fail if os.environ.get("HFGCOT_REQUIRE_BROWSER") == "1" else pytest.skip
    if path is None:
        missing("no Chromium installed (CI installs Debian's chromium: apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing("pip install playwright (dev extra)")
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        # root in CI containers: Chromium's sandbox needs user namespaces that may be missing
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path, width=1200):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: errors.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
    )
    page.goto(path.as_uri())
    page.wait_for_selector(".hfgcot-row")
    return page, errors


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``hfgcot demo`` with the shipped toy model: the dataset and its viewer page."""
    from datasets import load_from_disk

    from hfgcot.demo import run_demo

    result = run_demo(tmp_path_factory.mktemp("demo"))
    return load_from_disk(str(result.dataset_dir)), result.index_html


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    """Region captions of shape scenes by the toy model (one row with a box off the image)."""
    from hfgcot import add_region_captions
    from hfgcot.testing.shapes import make_scenes
    from hfgcot.testing.tiny import get_tiny_vlm_path
    from hfgcot.testing.toy import tiny_shapes_path

    scenes = make_scenes(4, seed=3)
    boxes = [[list(o.bbox) for o in s.objects] for s in scenes]
    boxes[1] = [*boxes[1], [5000.0, 5000.0, 5100.0, 5100.0]]
    boxes[2] = [[1.0, 1.0, 1.0, 9.0]]  # no area: no valid box
    ds = Dataset.from_dict({"image": [s.image() for s in scenes], "bbox": boxes})
    model = tiny_shapes_path() or get_tiny_vlm_path()
    out = add_region_captions(ds, model, bbox_format="xyxy", max_new_tokens=40)
    page = write_view(out, tmp_path_factory.mktemp("regions") / "regions.html")[0]
    return out, page


def _drawn_boxes(page):
    """Per row on screen: the figure's box, the image's size and each overlay box, in CSS px."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.hfgcot-row')].map(row => {
            const fig = row.querySelector('.hfgcot-figure');
            if (!fig) return null;
            const f = fig.getBoundingClientRect();
            return {fig: [f.x, f.y, f.width, f.height],
                    size: [+fig.dataset.width, +fig.dataset.height],
                    boxes: [...row.querySelectorAll('rect.hfgcot-box')].map(r => {
                        const b = r.getBoundingClientRect();
                        return [b.x, b.y, b.x + b.width, b.y + b.height];
                    })};
        })"""
    )


def _check_boxes(drawn, expected):
    assert len(drawn) == len(expected)
    checked = 0
    for row, boxes in zip(drawn, expected, strict=True):
        if row is None:
            assert not boxes
            continue
        (fx, fy, fw, fh), (w, h) = row["fig"], row["size"]
        assert fw > 0 and fh / fw == pytest.approx(h / w, rel=0.02)
        assert len(row["boxes"]) == len(boxes)
        for got, (x1, y1, x2, y2) in zip(row["boxes"], boxes, strict=True):
            want = [fx + x1 * fw / w, fy + y1 * fh / h, fx + x2 * fw / w, fy + y2 * fh / h]
            assert got == pytest.approx(want, abs=1.0), (got, want)
            checked += 1
    return checked


def test_demo_boxes_sit_where_the_data_says_at_any_width(browser, demo):
    ds, path = demo
    expected = [[g["bbox"] for g in row["groundings"]] for row in ds]
    for width in (1200, 420):  # the overlay scales with the image
        page, errors = open_page(browser, path, width)
        assert _check_boxes(_drawn_boxes(page), expected) == sum(map(len, expected)) > 0
        assert errors == []  # no script errors, nothing fetched from the network
        page.close()


def test_region_boxes_and_numbers_sit_where_the_data_says(browser, regions, tmp_path):
    ds, path = regions
    expected = []
    for row in ds:
        w, h = row["image"].size
        expected.append(
            [[x1 * w, y1 * h, x2 * w, y2 * h] for x1, y1, x2, y2 in row["normalized_bbox"]]
        )
    page, errors = open_page(browser, path)
    assert _check_boxes(_drawn_boxes(page), expected) > 0 and errors == []
    numbers = page.eval_on_selector_all(
        ".hfgcot-row:first-child .hfgcot-regions li", "els => els.map(e => e.innerText)"
    )
    assert [n.split()[0] for n in numbers] == [str(k + 1) for k in range(len(expected[0]))]
    page.screenshot(path=str(tmp_path / "regions.png"), full_page=True)


def test_filter_by_status_and_search_change_the_rows_shown(browser, regions):
    ds, path = regions
    page, _ = open_page(browser, path)
    statuses = [s.split(":", 1)[0] for s in ds["region_caption_status"]]
    assert len(set(statuses)) >= 2
    count = lambda: page.locator(".hfgcot-row").count()  # noqa: E731
    assert count() == len(ds)
    for status in sorted(set(statuses)):
        page.select_option("#hfgcot-status", status)
        assert count() == statuses.count(status) < len(ds)
        shown = page.eval_on_selector_all(".hfgcot-row", "els => els.map(e => e.dataset.status)")
        assert set(shown) == {status}
    page.select_option("#hfgcot-status", "")
    assert count() == len(ds)
    page.fill("#hfgcot-search", "no_valid_boxes")
    assert count() == statuses.count("no_valid_boxes") == 1
    page.fill("#hfgcot-search", "no such words anywhere")
    assert count() == 0 and page.inner_text("#hfgcot-count") == f"0 of {len(ds)} rows"


@pytest.fixture
def mixed(tmp_path):
    rows = [
        {
            "image": Image.new("RGB", (300, 200), "white"),
            "question": f"question {i}" if i != 1 else XSS,
            "answer": "圆形",
            "gcot": f"Step 1: The {CHINESE} [20, 30, 120, 130] is on the left.\nAnswer: 圆形",
            "groundings": [{"phrase": CHINESE, "bbox": [20.0, 30.0, 120.0, 130.0]}],
            "gcot_status": "ok",
        }
        for i in range(5)
    ]
    return write_view(Dataset.from_list(rows), tmp_path / "mixed.html", page_size=2)[0]


def test_a_chinese_phrase_renders_as_text_and_hover_pairs_it_with_its_box(browser, mixed):
    page, errors = open_page(browser, mixed)
    span = page.locator(".hfgcot-row").first.locator('.hfgcot-phrase[data-k="p0"]')
    assert span.inner_text() == f"{CHINESE} [20, 30, 120, 130]"
    box = span.bounding_box()
    assert box["width"] > 0 and box["height"] > 0
    rect = page.locator(".hfgcot-row").first.locator('rect.hfgcot-box[data-k="p0"]')
    width = lambda: rect.evaluate("r => getComputedStyle(r).strokeWidth")  # noqa: E731
    before = width()
    span.hover()
    assert width() != before  # the phrase's box is highlighted
    assert errors == []


def test_a_question_with_a_script_renders_as_text(browser, mixed):
    page, _ = open_page(browser, mixed)
    assert page.evaluate("() => window.__xss") is None
    assert XSS in page.locator(".hfgcot-row").nth(1).inner_text()


def test_only_one_screen_of_rows_is_in_the_page_and_images_load(browser, mixed):
    page, _ = open_page(browser, mixed)
    titles = lambda: page.eval_on_selector_all(".hfgcot-title", "els => els.map(e => e.innerText)")  # noqa: E731
    assert titles() == ["row 0", "row 1"]
    page.click("#hfgcot-next")
    assert titles() == ["row 2", "row 3"]
    page.click("#hfgcot-next")
    assert titles() == ["row 4"] and page.is_disabled("#hfgcot-next")
    img = page.locator(".hfgcot-figure img").first
    img.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.querySelector('.hfgcot-figure img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    data = json.loads(page.inner_text("#hfgcot-data"))
    assert len(data) == 5
