"""A local HTTP server on 127.0.0.1 for image-URL tests: fixed routes, counted requests.

    with ImageServer({"/a.png": png}) as server:
        load_image(server.url("/a.png"), ImagePolicy(allow_private_urls=True))
        assert server.hits["/a.png"] == 1

A route is the body to send (200, with ``Content-Length``) or a function of the request handler
that answers itself (redirects, trickles, endless bodies). Unknown paths get 404.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = bytes | Callable[[BaseHTTPRequestHandler], None]


class ImageServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()  # body bytes written per path
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path.split("?", 1)[0]
                server.hits[path] += 1
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)
                    server.sent[path] += len(route)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))
        self._thread.daemon = True

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def redirect(location: str) -> Route:
    """A route answering ``302 Found`` to ``location``."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def endless(
    server: ImageServer, path: str, chunk: int = 64 * 1024, limit: int = 256 * 2**20
) -> Route:
    """A route sending a body without ``Content-Length`` until the client hangs up (or
    ``limit`` bytes); ``server.sent[path]`` counts what it managed to write."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        block = b"\x89PNG" + b"\0" * (chunk - 4)
        try:
            while server.sent[path] < limit:
                handler.wfile.write(block)
                server.sent[path] += len(block)
        except OSError:
            pass

    return answer


def trickle(body: bytes, every: float) -> Route:
    """A route sending ``body`` one byte every ``every`` seconds (with its ``Content-Length``)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for i in range(len(body)):
                handler.wfile.write(body[i : i + 1])
                handler.wfile.flush()
                time.sleep(every)
        except OSError:
            pass

    return answer
