"""Image URLs (hfgcot.urls through load_image): schemes, addresses, redirects, size cap, deadline."""

from __future__ import annotations

import io
import logging
import socket

import pytest
from datasets import Image as Image_
from image_server import ImageServer, endless, redirect, trickle
from PIL import Image

from hfgcot import urls
from hfgcot.images import ImagePolicy, image_size, load_image

LOCAL = ImagePolicy(allow_private_urls=True, url_timeout=5.0)


def _png(width: int = 32, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (9, 8, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server():
    with ImageServer({"/img.png": _png()}) as running:
        yield running


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def public_loopback(monkeypatch):
    """Judge 127.0.0.1 (the test server) as a public address; every other address as usual."""
    real = urls.address_problem
    monkeypatch.setattr(urls, "address_problem", lambda a: None if a == "127.0.0.1" else real(a))


def test_fetch_with_private_urls_allowed(server):
    img, status = load_image(server.url("/img.png?sig=abc"), LOCAL)
    assert status == "ok" and img.size == (32, 30) and img.getpixel((0, 0)) == (9, 8, 7)
    assert image_size(server.url("/img.png"), LOCAL) == (32, 30)
    assert load_image(server.url("/missing.png"), LOCAL) == (None, "url_fetch_failed: http 404")


def test_private_addresses_are_refused_by_default(server):
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        image, status = load_image(server.url("/img.png", host=host))
        assert image is None and status == "url_not_allowed: loopback address", host
    assert image_size(server.url("/img.png")) is None
    assert server.hits["/img.png"] == 0  # nothing was ever sent


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("10.1.2.3", "private address"),
        ("172.16.0.1", "private address"),
        ("192.168.1.1", "private address"),
        ("fc00::1", "private address"),
        ("169.254.169.254", "link-local address"),  # cloud metadata services
        ("fe80::1", "link-local address"),
        ("0.0.0.0", "unspecified address"),
        ("224.0.0.1", "multicast address"),
        ("100.64.0.1", "non-global address"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_problem(address, problem):
    assert urls.address_problem(address) == problem


def test_every_resolved_address_is_checked(monkeypatch):
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 80)) for a in ("8.8.8.8", "10.0.0.7")
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    assert load_image("http://mixed.test/a.png") == (None, "url_not_allowed: private address")


def test_dns_rebinding_connects_to_the_checked_address(server, public_loopback, monkeypatch):
    """The host resolves to the checked address once; a second answer would be a metadata
    service. The connection goes to the address that was checked."""
    real = socket.getaddrinfo
    calls = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        calls.append(host)
        address = "127.0.0.1" if len(calls) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    image, status = load_image(server.url("/img.png", host="rebind.test"), ImagePolicy())
    assert status == "ok" and image.size == (32, 30)
    assert server.hits["/img.png"] == 1


def test_redirects(server, public_loopback):
    server.routes["/to-img"] = redirect("/img.png")
    server.routes["/to-file"] = redirect("file:///etc/passwd")
    server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    server.routes["/to-private"] = redirect(f"http://10.0.0.1:{server.port}/img.png")
    server.routes["/loop"] = redirect("/loop")
    policy = ImagePolicy(url_timeout=5.0)
    assert load_image(server.url("/to-img"), policy)[1] == "ok"
    assert load_image(server.url("/to-file"), policy) == (
        None,
        "url_not_allowed: redirect to file url",
    )
    assert load_image(server.url("/to-metadata"), policy) == (
        None,
        "url_not_allowed: link-local address",
    )
    assert load_image(server.url("/to-private"), policy) == (
        None,
        "url_not_allowed: private address",
    )
    assert load_image(server.url("/loop"), policy) == (
        None,
        f"url_fetch_failed: more than {urls.MAX_REDIRECTS} redirects",
    )


def test_body_over_the_size_cap_stops_reading(server):
    server.routes["/endless"] = endless(server, "/endless")
    server.routes["/claims-huge"] = lambda h: (
        h.send_response(200),
        h.send_header("Content-Length", str(10**12)),
        h.end_headers(),
    )
    policy = ImagePolicy(allow_private_urls=True, max_image_bytes=200_000, url_timeout=20.0)
    image, status = load_image(server.url("/endless"), policy)
    assert image is None
    assert status == "image_too_large: more than max_image_bytes (200000)"
    # the server could write its socket buffers' worth, not the 256 MiB it offered
    assert server.sent["/endless"] < 32 * 2**20
    assert load_image(server.url("/claims-huge"), policy) == (
        None,
        "image_too_large: 1000000000000 bytes, more than max_image_bytes",
    )
    assert ImagePolicy().max_image_bytes == 64 * 2**20
    with pytest.raises(ValueError, match="max_image_bytes"):
        ImagePolicy(max_image_bytes=0)


def test_a_trickling_server_meets_the_whole_transfer_deadline(server):
    """Each byte comes well within any per-read timeout; the whole body would take 40 x 0.1 s."""
    server.routes["/slow.png"] = trickle(_png()[:40], every=0.1)
    policy = ImagePolicy(allow_private_urls=True, url_timeout=1.0)
    assert load_image(server.url("/slow.png"), policy) == (
        None,
        "url_fetch_failed: timeout after 1s",
    )


def test_closed_port_and_no_secrets_in_logs(caplog):
    url = f"http://127.0.0.1:{_closed_port()}/x.png?token=SECRET"
    with caplog.at_level(logging.DEBUG, logger="hfgcot"):
        image, status = load_image(url, LOCAL)
    assert image is None and status == "url_fetch_failed: cannot connect"
    assert "SECRET" not in caplog.text and "x.png" in caplog.text
    assert image_size(url, LOCAL) is None


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("https://example.invalid/a.png", "url_not_allowed: urls disabled"),
        ("HTTP://example.invalid/a.png", "url_not_allowed: urls disabled"),
    ],
)
def test_urls_disabled(value, status):
    assert load_image(value, ImagePolicy(allow_urls=False)) == (None, status)


def test_other_schemes_are_not_fetched():
    assert load_image("ftp://example.com/a.png") == (None, "unsupported_value: ftp url")
    assert load_image("gopher://127.0.0.1:70/") == (None, "unsupported_value: gopher url")
    assert urls.safe_url("https://u:p@h.org/a?q=1#f") == "https://h.org/a"


# --------------------------------------------------------------------------------------------
# pipelines: each URL read once per run, its bytes kept in the dataset
# --------------------------------------------------------------------------------------------


def _gcot_script(request, text):
    if text.startswith("Question:"):
        return "Step 1: a red ball.\nAnswer: red\nKeywords: red ball"
    return '{"bbox_2d": [2, 2, 20, 20]}'


@pytest.mark.model
def test_gcot_reads_each_url_once_and_keeps_its_bytes(tiny_vlm, tmp_path):
    from datasets import Dataset

    from hfgcot import add_gcot
    from hfgcot.testing.tiny import ScriptedVLM

    first, second = _png(64, 48), _png(80, 60)
    with ImageServer({"/a.png": first, "/b.png": second}) as server:
        server.routes["/to-file"] = redirect("file:///etc/passwd")
        paths = ["/a.png?sig=SECRET", "/b.png", "/missing.png", "/to-file"]
        ds = Dataset.from_dict(
            {
                "image": [server.url(p) for p in paths],
                "question": ["What colour is the ball?"] * 4,
                "answer": ["red"] * 4,
            }
        )
        fake = ScriptedVLM(tiny_vlm, _gcot_script)
        out = add_gcot(ds, fake, allow_private_urls=True, batch_size=2)
        refused = add_gcot(ds, ScriptedVLM(tiny_vlm, _gcot_script), batch_size=2)
    assert out["gcot_status"][:2] == ["ok", "ok"]
    assert out["gcot_status"][2:] == [
        "url_fetch_failed: http 404",
        "url_not_allowed: redirect to file url",
    ]
    # two stages read every image (reasoning, grounding): one request per URL in all
    assert server.hits == {"/a.png": 1, "/b.png": 1, "/missing.png": 1, "/to-file": 1}
    assert len([c for c in fake.calls if c.startswith("Locate")]) == 2
    # the output keeps what was read: an Image() column with the bytes, no query string
    stored = out.cast_column("image", Image_(decode=False))["image"]
    assert [s["bytes"] for s in stored[:2]] == [first, second]
    assert stored[0]["path"] == server.url("/a.png")
    assert stored[2:] == [None, None]  # no image: the status says why
    assert out[1]["image"].size == (80, 60)
    out.save_to_disk(tmp_path / "out")  # every cell can be saved (and shown)
    assert out["image_size"][:2] == [[64, 48], [80, 60]]
    # by default a URL on the loopback address is refused, and never requested
    assert set(refused["gcot_status"]) == {"url_not_allowed: loopback address"}
