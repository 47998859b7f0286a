"""A real OpenAI-compatible server on loopback for tests and benchmarks: ``transformers serve``.

    >>> with LocalServer(tiny_shapes_path()) as server:                       # doctest: +SKIP
    ...     out = add_gcot(ds, EndpointSpec(server.base_url, server.model))

The server (``pip install 'transformers[serving]'``) binds 127.0.0.1 only, on a free port, and
serves one model folder (it answers to the folder's path as its model name). :meth:`stop` and
:meth:`start` let a test take it down mid-run and bring it back on the same port.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_command() -> list[str]:
    exe = Path(sys.executable).parent / "transformers"
    if exe.exists():
        return [str(exe), "serve"]
    found = shutil.which("transformers")
    if found is None:
        raise RuntimeError("no `transformers` command: pip install 'transformers[serving]'")
    return [found, "serve"]


class LocalServer:
    """``transformers serve <model> --host 127.0.0.1 --port <free> --device cpu`` as a child process.

    Args:
        model: a model folder (the toy model: :func:`hfgcot.testing.toy.tiny_shapes_path`).
        device: the server's device (``"cpu"``; ``"cuda:0"`` on a GPU machine).
        startup_timeout: seconds to wait for ``/health``.
        extra_args: more ``transformers serve`` flags (e.g. ``["--continuous-batching"]``).
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        port: int | None = None,
        startup_timeout: float = 180.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.device = device
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="hfgcot-serve-", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def healthy(self) -> bool:
        """Whether the server answers ``/health`` now."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self) -> LocalServer:
        """Start the server and wait until it answers (RuntimeError with its log otherwise)."""
        if self.process is not None and self.process.poll() is None:
            return self
        argv = [*_serve_command(), self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--device", self.device, *self.extra_args]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.healthy():
                logger.info("transformers serve up at %s", self.base_url)
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve did not start: {self.log()[-3000:]}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and wait for its port to close."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        """What the server wrote so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


__all__ = ["LocalServer", "free_port"]
