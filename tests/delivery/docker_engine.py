"""A stand-in for a Docker engine and its registry on 127.0.0.1: the few calls of the Engine API
that the Docker SDK makes to build, tag and push an image, answered the way an engine answers,
with what it was sent kept for the test to read. It builds nothing; it checks that the build
context is a tar with a Dockerfile."""

import base64
import io
import json
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

IMAGE_ID = "sha256:" + "5e" * 32
DIGEST = "sha256:" + "d1" * 32


class Engine:
    def __init__(self, fail_build: str = "", fail_push: str = ""):
        self.fail_build, self.fail_push = fail_build, fail_push
        self.builds: list[dict] = []
        self.tags: list[dict] = []
        self.pushes: list[dict] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = _unversioned(self.path)
                if path == "/_ping":
                    self._send(200, b"OK", "text/plain")
                elif path == "/version":
                    self._json(200, {"ApiVersion": "1.45", "Version": "27.0.0"})
                elif re.fullmatch(r"/images/.+/json", path):
                    self._json(200, {"Id": IMAGE_ID, "RepoTags": [t["name"] for t in engine.tags]})
                else:
                    self._json(404, {"message": f"no such route {path}"})

            def do_HEAD(self) -> None:
                self._send(200, b"", "text/plain")

            def do_POST(self) -> None:
                url = urlparse(self.path)
                path, query = _unversioned(url.path), parse_qs(url.query)
                body = self._body()
                if path == "/build":
                    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                        names = tar.getnames()
                    engine.builds.append({"tag": query.get("t", [""])[0], "files": names})
                    if engine.fail_build or "Dockerfile" not in names:
                        why = engine.fail_build or "no Dockerfile in the context"
                        self._stream([{"stream": "Step 1/9 : FROM python\n"},
                                      {"errorDetail": {"message": why}, "error": why}])  # fmt: skip
                        return
                    self._stream([
                        {"stream": "Step 1/9 : FROM python\n"},
                        {"aux": {"ID": IMAGE_ID}},
                        {"stream": f"Successfully built {IMAGE_ID[7:19]}\n"},
                    ])  # fmt: skip
                elif path.startswith("/images/") and path.endswith("/tag"):
                    name = f"{query['repo'][0]}:{query.get('tag', ['latest'])[0]}"
                    engine.tags.append({"image": path[8:-4], "name": name})
                    self._send(201, b"", "text/plain")
                elif path.startswith("/images/") and path.endswith("/push"):
                    header = self.headers.get("X-Registry-Auth", "")
                    auth = json.loads(base64.urlsafe_b64decode(header + "==")) if header else {}
                    tag = query.get("tag", ["latest"])[0]
                    engine.pushes.append({"repository": path[8:-5], "tag": tag, "auth": auth})
                    if engine.fail_push:
                        self._stream([{"status": "Preparing"},
                                      {"errorDetail": {"message": engine.fail_push},
                                       "error": engine.fail_push}])  # fmt: skip
                        return
                    self._stream([
                        {"status": "Preparing", "id": "layer"},
                        {"status": "Pushed", "id": "layer"},
                        {"status": f"{tag}: digest: {DIGEST} size: 1234"},
                        {"aux": {"Tag": tag, "Digest": DIGEST, "Size": 1234}},
                    ])  # fmt: skip
                else:
                    self._json(404, {"message": f"no such route {path}"})

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _stream(self, events: list[dict]) -> None:
                """As an engine streams progress: one JSON object a chunk."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    data = json.dumps(event).encode() + b"\r\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.write(b"0\r\n\r\n")

            def _json(self, status: int, body: dict) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Engine":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _unversioned(path: str) -> str:
    return re.sub(r"^/v[0-9.]+", "", urlparse(path).path)
