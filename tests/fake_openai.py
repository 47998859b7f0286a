"""Small OpenAI-compatible servers on loopback for the endpoint tests (no ``transformers serve``).

- :class:`FakeServer`: ``GET /v1/models`` and ``POST /v1/chat/completions`` answered by a
  responder ``(body, headers) -> (status, payload, extra headers)``; counts requests in flight.
- :class:`ToyVLLM`: a responder answering like vLLM with the shipped toy model, including vLLM's
  ``prompt_logprobs``, ``continue_final_message`` and ``return_token_ids`` extension fields. Its
  log-probs come from one forward pass over the chat template rendered with
  ``continue_final_message`` (transformers' own implementation, as vLLM renders it), not from the
  client's code, so a client that locates the scored tokens wrongly gets other numbers.
- :func:`echo_responder`, :func:`failing_responder` and :func:`gate_responder`: no model.
"""

from __future__ import annotations

import base64
import copy
import http.server
import io
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

Responder = Callable[[dict, Any], tuple[int, dict, dict]]


class FakeServer(http.server.ThreadingHTTPServer):
    """A responder on ``127.0.0.1:<free port>``; a context manager that serves in a thread."""

    daemon_threads = True

    def __init__(self, responder: Responder, model: str = "toy") -> None:
        self.responder, self.model = responder, model
        self.in_flight = self.max_in_flight = self.requests = 0
        self.bodies: list[dict] = []
        self._count = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, body: dict, headers: Any) -> tuple[int, dict, dict]:
        with self._count:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.bodies.append(body)
        try:
            return self.responder(body, headers)
        finally:
            with self._count:
                self.in_flight -= 1


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        model = {"id": self.server.model, "object": "model", "created": 0, "owned_by": "test"}
        self._send(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self._send(*self.server.answer(body, self.headers))


def completion(body: dict, text: str, finish: str, prompt_tokens: int, new_tokens: int) -> dict:
    """An OpenAI chat completion answer."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": new_tokens,
            "total_tokens": prompt_tokens + new_tokens,
        },
    }


def user_text(body: dict) -> str:
    """The text of the last user message of a chat request."""
    (user,) = [m for m in body["messages"] if m["role"] == "user"][-1:]
    return " ".join(part["text"] for part in user["content"] if part["type"] == "text")


def echo_responder(max_delay: float = 0.03, seed: int = 0) -> Responder:
    """Answers each request with its own user text after a random delay."""
    rng, lock = random.Random(seed), threading.Lock()

    def respond(body: dict, headers: Any) -> tuple[int, dict, dict]:
        with lock:
            delay = rng.uniform(0, max_delay)
        time.sleep(delay)
        return 200, completion(body, user_text(body), "stop", 1, 1), {}

    return respond


def failing_responder(status: int) -> Responder:
    """Fails every chat request with ``status``, echoing the Authorization header in the error
    body and in a response header (as a careless server or proxy might)."""

    def respond(body: dict, headers: Any) -> tuple[int, dict, dict]:
        auth = headers.get("Authorization", "")
        error = {"message": f"cannot serve the request of {auth}", "type": "BadRequest"}
        return status, {"error": error}, {"X-Echo-Authorization": auth}

    return respond


def gate_responder(
    server: FakeServer, together: int, inner: Responder, wait: float = 10.0
) -> Responder:
    """Holds every request until ``together`` requests are in flight at once (or ``wait``
    seconds passed), then answers all with ``inner``: ``server.max_in_flight`` then tells
    whether the client ever sent ``together`` requests at once, whatever the timing."""
    opened = threading.Event()

    def respond(body: dict, headers: Any) -> tuple[int, dict, dict]:
        if server.in_flight >= together:
            opened.set()
        opened.wait(wait)
        opened.set()  # after one wait, the rest need not wait again
        return inner(body, headers)

    return respond


class ToyVLLM:
    """Answers chat completions like vLLM with a real model (float32, CPU).

    ``token_ids``: answer ``prompt_token_ids`` when asked (newer vLLM); ``extension``: honour
    vLLM's extension fields (``False``: ignore them, like a server without the extension).
    """

    def __init__(self, model_path: str, *, token_ids: bool = True, extension: bool = True) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype="float32")
        self.model.eval()
        self.token_ids, self.extension = token_ids, extension
        self._lock = threading.Lock()

    def variant(self, **options: bool) -> ToyVLLM:
        """The same loaded model with other options (``token_ids``, ``extension``)."""
        other = copy.copy(self)
        other.__dict__.update(options)
        return other

    def _chat(self, body: dict) -> tuple[list[dict], list[Any]]:
        from PIL import Image

        messages, images = [], []
        for m in body["messages"]:
            if isinstance(m["content"], str):
                content: Any = m["content"]
                if m["role"] == "system":
                    content = [{"type": "text", "text": content}]
            else:
                content = []
                for part in m["content"]:
                    if part["type"] == "image_url":
                        data = part["image_url"]["url"].split(",", 1)[1]
                        images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                        content.append({"type": "image"})
                    else:
                        content.append({"type": "text", "text": part["text"]})
            messages.append({"role": m["role"], "content": content})
        return messages, images

    def __call__(self, body: dict, headers: Any) -> tuple[int, dict, dict]:
        import torch

        messages, images = self._chat(body)
        cont = self.extension and bool(body.get("continue_final_message"))
        text = self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not cont, continue_final_message=cont
        )
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        limit = int(body.get("max_tokens") or 16)
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=limit, do_sample=False)
            logits = self.model(**inputs).logits[0].float()
        new = out[0, len(ids) :].tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        finish = "stop" if new and new[-1] in eos or len(new) < limit else "length"
        answer = self.processor.tokenizer.decode(new, skip_special_tokens=True)
        payload = completion(body, answer, finish, len(ids), len(new))
        k = body.get("prompt_logprobs") if self.extension else None
        if k is not None:
            payload["prompt_logprobs"] = self._prompt_logprobs(ids, logits, int(k))
            if self.token_ids and body.get("return_token_ids"):
                payload["prompt_token_ids"] = ids
        return 200, payload, {}

    def _prompt_logprobs(self, ids: list[int], logits: Any, k: int) -> list[dict | None]:
        logp = logits.log_softmax(-1)
        decode = self.processor.tokenizer.decode
        out: list[dict | None] = [None]
        for t in range(1, len(ids)):
            row = logp[t - 1]
            entry = {
                str(i): {"logprob": float(row[i]), "rank": r + 1, "decoded_token": decode([i])}
                for r, i in enumerate(row.topk(k).indices.tolist())
            }
            own = ids[t]
            if str(own) not in entry:
                rank = int((row > row[own]).sum()) + 1
                entry[str(own)] = {"logprob": float(row[own]), "rank": rank, "decoded_token": ""}
            out.append(entry)
        return out
