"""Measures one runtime of a model in a process of its own, so that the memory and CPU it
reports are the model's, not those of the worker that asked: the profile job runs it once per
runtime, as `python probe.py <spec.json>`, and reads one JSON object from its output.

The spec names the runtime (`onnx`: an ONNX file run by onnxruntime on one thread; `native`:
the MLflow model folder loaded with `mlflow.pyfunc`), the input rows in the model's columns (a
NumPy float32 file for ONNX, Parquet natively), the batch sizes, and how many calls (and
seconds) each size may take.
Standard library, NumPy, pandas and the runtime only: no Django.
"""

import json
import math
import resource
import sys
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def memory() -> dict[str, int]:
    """This process's resident set now and at its highest, in bytes (Linux: the kernel's own
    figures; elsewhere the peak only)."""
    found = {}
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = found.get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss": found.get("VmRSS", peak), "peak": peak}


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    rank = max(1, min(len(ordered), math.ceil(round(share * len(ordered), 9))))
    return ordered[rank - 1]


def read(runtime: str, path: str, largest: int) -> object:
    """The input rows, repeated up to `largest` when there are fewer: for ONNX a float32
    matrix (NumPy only, as the packaged server holds them), natively a DataFrame."""
    if runtime == "onnx":
        import numpy as np

        rows = np.load(path)
        return np.concatenate([rows] * -(-largest // len(rows))) if len(rows) < largest else rows
    import pandas as pd

    rows = pd.read_parquet(path)
    if len(rows) < largest:
        rows = pd.concat([rows] * -(-largest // len(rows)), ignore_index=True)
    return rows


def loader(runtime: str, model: str) -> object:
    """A function of a batch of rows that predicts with the model."""
    if runtime == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: per-core figures, and no spinning pool making CPU time look larger.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        return lambda rows: session.run(None, {name: rows})
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model).predict


def measure(spec: dict) -> dict:
    started = memory()
    data = read(spec["runtime"], spec["data"], max(spec["batch_sizes"]))
    before_load = memory()
    cpu, wall = time.process_time(), time.perf_counter()
    predict = loader(spec["runtime"], spec["model"])
    load = {"wall_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}
    after_load = memory()
    sizes, scoring_cpu = {}, 0.0
    for size in spec["batch_sizes"]:
        starts = range(0, len(data) - size + 1, size) or [0]
        batches = [data[start : start + size] for start in starts]
        for warm in range(spec["warmup"]):
            predict(batches[warm % len(batches)])
        latencies: list[float] = []
        cpu = time.process_time()
        deadline = time.perf_counter() + spec["seconds"]
        while len(latencies) < spec["max_calls"] and (
            len(latencies) < spec["min_calls"] or time.perf_counter() < deadline
        ):
            batch = batches[len(latencies) % len(batches)]
            began = time.perf_counter()
            predict(batch)
            latencies.append(time.perf_counter() - began)
        used = time.process_time() - cpu
        scoring_cpu += used
        ordered = sorted(latencies)
        rows = size * len(latencies)
        sizes[str(size)] = {
            "calls": len(latencies),
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p95_ms": percentile(ordered, 0.95) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "rows_per_second": rows / sum(latencies),
            "cpu_seconds": used,
            "rows_per_cpu_second": rows / used if used > 0 else None,
        }
    end = memory()
    return {
        "runtime": spec["runtime"],
        "rows": len(data),
        "load": load,
        "batches": sizes,
        "scoring_cpu_seconds": scoring_cpu,
        "memory": {
            "at_start_bytes": started["rss"],
            "before_load_bytes": before_load["rss"],
            "after_load_bytes": after_load["rss"],
            "at_end_bytes": end["rss"],
            "peak_bytes": end["peak"],
            "model_bytes": max(0, end["peak"] - before_load["rss"]),
        },
    }


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[1]).read_text())
    print(json.dumps(measure(spec)))


if __name__ == "__main__":
    main(sys.argv)
