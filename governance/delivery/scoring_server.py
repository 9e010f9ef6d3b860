"""The scoring server shipped inside every package Quorum builds, as `server.py`.

It needs only the standard library and what the model needs (onnxruntime for an ONNX model,
MLflow for a native one): no web framework. It answers

- `GET /health`: `{"status": "ok"}` once the model is loaded;
- `GET /metadata`: model name, version, flavor, signature, and whether it serves ONNX or native;
- `POST /predict`: `{"rows": [{column: value}, ...]}` or `{"columns": {column: [values]}}`,
  answered with `{"predictions": [...]}` (and `"probabilities"` for an ONNX classifier).

Run: `python server.py --root <context folder> --port 8080 [--host 0.0.0.0]`. The root holds
`metadata.json` and `model.onnx`, or the MLflow model folder MLflow's generated context copies
(`model_dir/artifacts`, or `--model-dir`).
"""

import argparse
import json
import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("scoring")
MAX_BODY = 32 * 1024 * 1024


class BadInput(ValueError):
    """A request the model cannot answer; the client gets a 400 with the reason."""


class OnnxModel:
    def __init__(self, path: Path, columns: list[str]):
        import onnxruntime

        self.columns = columns
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def predict(self, columns: dict[str, list]) -> dict:
        import numpy as np

        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise BadInput(f"missing columns: {', '.join(missing)}")
        try:
            table = np.column_stack(
                [np.asarray(columns[c], dtype=np.float32) for c in self.columns]
            )
        except (TypeError, ValueError) as error:
            raise BadInput(f"the columns must be numbers: {error}") from error
        outputs = self.session.run(None, {self.input: table})
        answer = {"predictions": np.asarray(outputs[0]).ravel().tolist()}
        if len(outputs) > 1:
            answer["probabilities"] = np.asarray(outputs[1]).tolist()
        return answer


class NativeModel:
    def __init__(self, path: Path):
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(path))

    def predict(self, columns: dict[str, list]) -> dict:
        import numpy as np
        import pandas as pd

        try:
            frame = pd.DataFrame(columns)
            predicted = self.model.predict(frame)
        except Exception as error:  # the model's own checks: the client sent what it refuses
            raise BadInput(f"{type(error).__name__}: {error}") from error
        return {"predictions": np.asarray(predicted).tolist()}


def load(root: Path, model_dir: Path | None = None) -> tuple[dict, object]:
    metadata = json.loads((root / "metadata.json").read_text())
    columns = [c["name"] for c in metadata.get("signature", {}).get("inputs", [])]
    if metadata.get("serves") == "onnx":
        return metadata, OnnxModel(root / "model.onnx", columns)
    return metadata, NativeModel(model_dir or root / "model_dir" / "artifacts")


def as_columns(body: object) -> dict[str, list]:
    if isinstance(body, dict) and isinstance(body.get("columns"), dict):
        columns = body["columns"]
        if not all(isinstance(v, list) for v in columns.values()):
            raise BadInput("each column is a list of values")
        return columns
    if isinstance(body, dict) and isinstance(body.get("rows"), list):
        rows = body["rows"]
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise BadInput("rows is a non-empty list of objects")
        names = list(dict.fromkeys(name for row in rows for name in row))
        return {name: [row.get(name) for row in rows] for name in names}
    raise BadInput('send {"rows": [{...}]} or {"columns": {...}}')


def handler_for(metadata: dict, model: object) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self.answer(200, {"status": "ok"})
            elif self.path == "/metadata":
                self.answer(200, metadata)
            else:
                self.answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self.answer(404, {"error": "not found"})
                return
            size = int(self.headers.get("Content-Length") or 0)
            if size <= 0 or size > MAX_BODY:
                self.answer(400, {"error": f"a JSON body of 1 to {MAX_BODY} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(size))
                self.answer(200, model.predict(as_columns(body)))
            except (json.JSONDecodeError, BadInput) as error:
                self.answer(400, {"error": str(error)})

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container's server
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model-dir", default=None, help="the MLflow model, when native")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    log.info("loading the model from %s", options.root)
    metadata, model = load(
        Path(options.root), Path(options.model_dir) if options.model_dir else None
    )
    server = ThreadingHTTPServer((options.host, options.port), handler_for(metadata, model))
    log.info("serving %s on %s:%s", metadata.get("serves"), options.host, options.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
