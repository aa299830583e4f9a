"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, for tests.

It answers ``POST /v1/chat/completions`` with whatever ``answer(messages, body)`` returns
(the tiny Llama of ``tests/tiny_llama.py``, or a scripted reply), counts the requests it
answered, can fail the first ``fail_first`` requests with HTTP 503, and can stop itself after
answering ``stop_after`` requests, as a server that dies in the middle of a run does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[list[dict[str, str]], dict[str, Any]], str]


class OpenAIServer:
    """``with OpenAIServer(answer) as server: ... server.url``: a server for the duration."""

    def __init__(self, answer: Answer, *, port: int = 0, fail_first: int = 0, stop_after: int | None = None) -> None:
        self.answer = answer
        self.fail_first = fail_first
        self.stop_after = stop_after
        self.answered = 0
        self.failed = 0
        self.dead = False
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.dead:
                    # a dead server answers nothing: the client sees the connection drop
                    self.close_connection = True
                    return
                with server._lock:
                    if server.failed < server.fail_first:
                        server.failed += 1
                        fail = True
                    else:
                        fail = False
                if fail:
                    self._send(503, {"error": {"message": "overloaded, try again"}})
                    return
                text = server.answer(body["messages"], body)
                with server._lock:
                    server.answered += 1
                    server.bodies.append(body)
                    done = server.stop_after is not None and server.answered >= server.stop_after
                    server.dead = server.dead or done
                self._send(200, {
                    "id": f"chatcmpl-{server.answered}", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                })
                if done:
                    threading.Thread(target=server.stop, daemon=True).start()

        return Handler

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        if self._thread.is_alive():
            self.stop()
