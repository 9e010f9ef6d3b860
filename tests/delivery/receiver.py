"""A tiny HTTP server on 127.0.0.1 standing in for what cannot run here: a team's CD system
(it records the signed requests it gets) or a deployed model's /health."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, status: int = 202, body: dict | None = None):
        self.status, self.requests, self.body = status, [], body
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append({"method": "GET", "path": self.path, "headers": {}})
                self._answer(owner.status if self.path != "/health" else owner.health)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                self._answer(owner.status)

            def do_PATCH(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append(
                    {"method": "PATCH", "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                self._answer(200)

            def _answer(self, status: int) -> None:
                data = json.dumps(
                    owner.body or {"status": "ok" if status < 400 else "bad"}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.health = 200
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
