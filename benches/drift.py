"""The drift engine's benchmark. Run with `make bench` or

    .venv/bin/python -m benches.drift [--rows 1000000] [--skip-evidently]

It generates a reference and a current table of `--rows` rows each, 25 columns (20 numeric with
ties, missing values and some shifted, 5 categorical of 3 to 1,000 categories, one with a new
category), writes them once as Parquet under var/bench/drift-<rows>/, and times on that same data
Quorum's `drift()`, a single-threaded NumPy floor (each column sorted once, every statistic
derived from the sorted data; categories factorised and bincounted), the same statistics through
SciPy column by column, and Evidently's `DataDriftPreset` (its default and its KS/chi-square
variant). Each is printed with its ratio to Quorum, with Quorum's peak memory above the loaded
data, and written to var/bench/drift.txt.

Evidently 0.7 needs pandas < 3, and Quorum uses pandas 3: the benchmark makes an environment of
its own for Evidently with uv (var/bench/evidently-env, kept for later runs) and runs Evidently
there in a subprocess that reads the same Parquet files and times only the report.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench"
EVIDENTLY_ENV = OUT / "evidently-env"
EVIDENTLY = ("evidently==0.7.*", "pandas<3", "pyarrow")
NUMERIC = [f"num_{i:02}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORIES = [3, 10, 50, 200, 1000]
BINS = 10


# The data


def generate(rows: int, directory: Path) -> None:
    """Write reference.parquet and current.parquet, unless a previous run already did."""
    import numpy as np
    import pandas as pd

    if (directory / "current.parquet").exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    for side in ("reference", "current"):
        columns = {}
        for i, name in enumerate(NUMERIC):
            shift = 0.1 * (i + 1) if side == "current" and i < 4 else 0.0
            kind = i % 5
            if kind == 0:  # rounded: many ties
                values = np.round(rng.normal(shift, 1, rows), 3)
            elif kind == 1:
                values = rng.lognormal(shift, 0.5, rows)
            elif kind == 2:  # a hundred distinct values
                values = rng.integers(0, 100, rows) + np.round(shift * 10)
            elif kind == 3:
                values = rng.uniform(shift, 1 + shift, rows)
            else:
                values = rng.exponential(1 + shift, rows)
            values = values.astype(np.float64)
            if i % 2:
                values[rng.random(rows) < 0.01] = np.nan
            columns[name] = values
        for i, (name, size) in enumerate(zip(CATEGORICAL, CATEGORIES, strict=True)):
            labels = np.array([f"{name}_{k}" for k in range(size)], dtype=object)
            weights = rng.dirichlet(np.ones(size))
            if side == "current" and i == 0:
                weights = np.roll(weights, 1)
            codes = rng.choice(size, rows, p=weights)
            values = labels[codes]
            if side == "current" and i == 1:
                values[rng.random(rows) < 0.02] = f"{name}_new"
            columns[name] = values
        pd.DataFrame(columns).to_parquet(directory / f"{side}.parquet", index=False)


def load(directory: Path) -> tuple:
    import pandas as pd

    return (
        pd.read_parquet(directory / "reference.parquet"),
        pd.read_parquet(directory / "current.parquet"),
    )


# Memory


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> float:
    """Forget the peak resident size (Linux), and return the resident size now, in MB."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS:")


def peak_mb() -> float:
    return _status("VmHWM:")


# What is measured


def quorum(ref: object, cur: object, workers: int | None = None) -> object:
    from governance.monitoring.stats import drift

    return drift(ref, cur, categorical=CATEGORICAL, bins=BINS, workers=workers)


def numpy_floor(ref: object, cur: object) -> dict[str, tuple]:
    """The same statistics with nothing but the work they need, on one core."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    q = np.linspace(0, 1, BINS + 1)[1:-1]
    out = {}
    for name in NUMERIC:
        a = np.sort(ref[name].to_numpy())
        b = np.sort(cur[name].to_numpy())
        a, b = a[: np.searchsorted(a, np.nan)], b[: np.searchsorted(b, np.nan)]
        n1, n2 = a.size, b.size
        merged = np.concatenate((a, b))
        order = np.argsort(merged, kind="stable")
        merged = merged[order]
        count_b = np.cumsum(order >= n1)
        gap = np.abs((np.arange(1, n1 + n2 + 1) - count_b) / n1 - count_b / n2)
        ends = np.append(merged[1:] != merged[:-1], True)
        d = gap[ends].max()
        w = np.sum(gap[:-1] * np.diff(merged))
        p = stats.kstwo.sf(d, np.round(n1 * n2 / (n1 + n2)))
        edges = np.unique(np.quantile(a, q))
        r = np.diff(np.searchsorted(a, edges), prepend=0, append=n1) / n1
        c = np.diff(np.searchsorted(b, edges), prepend=0, append=n2) / n2
        psi = _psi(r, c)
        m = (r + c) / 2
        js = np.sqrt((_kl(r, m) + _kl(c, m)) / 2 / np.log(2))
        out[name] = (d, p, w, psi, js)
    for name in CATEGORICAL:
        codes, uniques = pd.factorize(pd.concat((ref[name], cur[name]), ignore_index=True))
        n = len(ref)
        table = np.vstack(
            (
                np.bincount(codes[:n] + 1, minlength=len(uniques) + 1)[1:],
                np.bincount(codes[n:] + 1, minlength=len(uniques) + 1)[1:],
            )
        )
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        chi2 = ((table - expected) ** 2 / expected).sum()
        p = stats.chi2.sf(chi2, table.shape[1] - 1)
        r, c = table[0] / table[0].sum(), table[1] / table[1].sum()
        m = (r + c) / 2
        out[name] = (chi2, p, _psi(r, c), np.sqrt((_kl(r, m) + _kl(c, m)) / 2 / np.log(2)))
    return out


def _psi(r: object, c: object) -> float:
    import numpy as np

    r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
    return float(np.sum((c - r) * np.log(c / r)))


def _kl(p: object, m: object) -> float:
    import numpy as np
    from scipy.special import rel_entr

    return float(np.sum(rel_entr(p, m)))


def per_column_scipy(ref: object, cur: object) -> dict[str, tuple]:
    """The obvious way: each statistic through its SciPy function, column after column."""
    import numpy as np
    import pandas as pd
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    q = np.linspace(0, 1, BINS + 1)[1:-1]
    out = {}
    for name in NUMERIC:
        a, b = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        ks = stats.ks_2samp(a, b)
        w = stats.wasserstein_distance(a, b)
        low, high = min(a.min(), b.min()), max(a.max(), b.max())
        edges = np.concatenate(([low], np.unique(np.quantile(a, q)), [high]))
        r, _ = np.histogram(a, edges)
        c, _ = np.histogram(b, edges)
        out[name] = (ks.statistic, ks.pvalue, w, _psi(r / r.sum(), c / c.sum()))
        out[name] += (jensenshannon(r, c, base=2),)
    for name in CATEGORICAL:
        table = pd.concat((ref[name].value_counts(), cur[name].value_counts()), axis=1)
        table = table.fillna(0).to_numpy().T
        chi2 = stats.chi2_contingency(table, correction=False)
        out[name] = (
            chi2.statistic,
            chi2.pvalue,
            _psi(table[0] / table[0].sum(), table[1] / table[1].sum()),
        )
        out[name] += (jensenshannon(table[0], table[1], base=2),)
    return out


def where_the_time_goes(ref: object, cur: object, rows: int) -> list[tuple[str, float]]:
    """One numeric column and one categorical, step by step."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    from governance.monitoring.stats import bin_counts, ks_and_wasserstein, quantile_edges

    steps = []

    def step(label: str, work: object) -> object:
        started = time.perf_counter()
        result = work()
        steps.append((label, time.perf_counter() - started))
        return result

    # An unshifted column with no missing values: what most columns look like.
    raw_a, raw_b = ref["num_04"].to_numpy(), cur["num_04"].to_numpy()
    a, b = step("sort both sides", lambda: (np.sort(raw_a), np.sort(raw_b)))
    d, _ = step("KS statistic and Wasserstein from the merge", lambda: ks_and_wasserstein(a, b))
    en = np.round(a.size * b.size / (a.size + b.size))
    step("KS p-value, asymptotic (kstwo.sf)", lambda: stats.kstwo.sf(d, en))
    edges = step("quantile edges", lambda: quantile_edges(a, BINS))
    step("bin counts, both sides", lambda: (bin_counts(a, edges), bin_counts(b, edges)))
    # Sizes whose exact distribution SciPy computes rather than refuses (the reduced ratio of
    # the two sizes is small); its cost grows with the statistic, so drifted columns cost more.
    x, y = raw_a[: int(rows * 0.99)], raw_b[: int(rows * 0.995)]
    step(
        f"KS p-value, SciPy's exact distribution ({x.size:,} vs {y.size:,} values)",
        lambda: _quietly(lambda: stats.ks_2samp(x, y, method="exact")),
    )
    step(
        "categorical: factorise both sides (1,000 categories)",
        lambda: (pd.factorize(ref["cat_4"]), pd.factorize(cur["cat_4"])),
    )
    return steps


# Evidently, in its own environment


def ensure_evidently() -> Path:
    python = EVIDENTLY_ENV / "bin" / "python"
    if python.exists():
        return python
    uv = Path(sys.executable).with_name("uv")
    print(f"making {EVIDENTLY_ENV} for Evidently (once)", flush=True)
    subprocess.run(  # noqa: S603 (our own uv and arguments)
        [str(uv), "venv", "-q", str(EVIDENTLY_ENV), "--python", sys.executable], check=True
    )
    subprocess.run(  # noqa: S603
        [str(uv), "pip", "install", "-q", "--python", str(python), *EVIDENTLY], check=True
    )
    return python


def run_evidently(python: Path, directory: Path, preset: str) -> dict:
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [str(python), str(Path(__file__)), "--evidently", preset, "--data", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def evidently_child(preset: str, directory: Path) -> dict:
    """Runs in Evidently's environment: load, then time the report alone."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(directory / "reference.parquet")
    cur = pd.read_parquet(directory / "current.parquet")
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    ref_data = Dataset.from_pandas(ref, data_definition=definition)
    cur_data = Dataset.from_pandas(cur, data_definition=definition)
    if preset == "default":
        report = Report([DataDriftPreset()])
    else:
        report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])
    started = time.perf_counter()
    snapshot = report.run(cur_data, ref_data)
    seconds = time.perf_counter() - started
    metrics = snapshot.dict()["metrics"]
    values = {m["config"].get("column"): m["value"] for m in metrics if "column" in m["config"]}
    return {"seconds": seconds, "drifted": metrics[0]["value"]["count"], "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.evidently:
        print(json.dumps(evidently_child(options.evidently, Path(options.data))))
        return

    sys.path.insert(0, str(ROOT))
    import numpy as np

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    directory = OUT / f"drift-{options.rows}"
    began = time.perf_counter()
    generate(options.rows, directory)
    ref, cur = load(directory)
    data_mb = (ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20
    say(
        f"Quorum drift benchmark, {os.cpu_count()} cores: {options.rows:,} reference and "
        f"{options.rows:,} current rows, {len(NUMERIC)} numeric and {len(CATEGORICAL)} "
        f"categorical columns, {data_mb:,.0f} MB loaded"
    )

    quorum(ref.head(1000), cur.head(1000))  # imports and first calls, outside the measure
    before = reset_peak()
    timings = []
    for _ in range(options.rounds):
        started = time.perf_counter()
        result = quorum(ref, cur)
        timings.append(time.perf_counter() - started)
    ours = min(timings)
    growth = peak_mb() - before
    one_core = min(_timed(lambda: quorum(ref, cur, workers=1)) for _ in range(options.rounds))
    floor = min(_timed(lambda: numpy_floor(ref, cur)) for _ in range(options.rounds))
    started = time.perf_counter()
    scipy_values = per_column_scipy(ref, cur)
    scipy_seconds = time.perf_counter() - started

    say(
        f"Quorum drift():           {ours:7.2f} s (best of {options.rounds}; "
        f"{', '.join(f'{t:.2f}' for t in timings)})"
    )
    say(f"  on one core:            {one_core:7.2f} s")
    say(
        f"NumPy floor, one core:    {floor:7.2f} s; Quorum/floor {ours / floor:.2f}x "
        f"(goal <= 1.5x), on one core {one_core / floor:.2f}x"
    )
    say(
        f"per-column SciPy:         {scipy_seconds:7.2f} s; Quorum is "
        f"{scipy_seconds / ours:.1f}x faster (goal >= 5x)"
    )
    say(
        f"peak memory above the loaded data: {growth:,.0f} MB, "
        f"{growth / data_mb:.2f}x the data's {data_mb:,.0f} MB (goal <= 1x)"
    )
    worst = max(
        abs(getattr(result.features[name], field) - scipy_values[name][i])
        / max(1.0, abs(scipy_values[name][i]))
        for name in NUMERIC
        for i, field in enumerate(("ks_statistic", "ks_p_value", "wasserstein"))
    )
    worst_chi2 = max(
        abs(result.features[name].chi2_statistic - scipy_values[name][0]) / scipy_values[name][0]
        for name in CATEGORICAL
    )
    say(
        f"  largest relative difference from SciPy: KS, p-value, Wasserstein {worst:.1e}; "
        f"chi-square {worst_chi2:.1e}"
    )

    if not options.skip_evidently:
        python = ensure_evidently()
        for preset, label in (("default", "default preset"), ("ks", "KS/chi-square preset")):
            gc.collect()
            found = run_evidently(python, directory, preset)
            say(
                f"Evidently {label + ':':22}{found['seconds']:7.2f} s; Quorum is "
                f"{found['seconds'] / ours:.1f}x faster"
                + (" (goal >= 30x)" if preset == "default" else "")
                + f"; {found['drifted']:.0f} columns drifted by its tests"
            )
            if preset == "ks":
                p_values = [
                    abs(found["values"][name] - result.features[name].ks_p_value)
                    for name in NUMERIC
                ]
                say(f"  its KS p-values against Quorum's: largest difference {max(p_values):.1e}")

    say("where the time goes, one column of each kind:")
    for label, seconds in where_the_time_goes(ref, cur, options.rows):
        say(f"  {label:66} {seconds * 1000:8.1f} ms")
    drifted = sum(np.array([d.drifted for d in _decide(result).features.values()]))
    say(f"Quorum's decide(): {drifted} of {len(result.features)} features drifted")
    say(f"whole benchmark: {time.perf_counter() - began:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "drift.txt").write_text("\n".join(lines) + "\n")


def _quietly(work: object) -> object:
    """SciPy warns when it cannot compute the exact distribution for the sizes and falls back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return work()


def _timed(work: object) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _decide(result: object) -> object:
    from governance.monitoring.stats import decide

    return decide(result)


if __name__ == "__main__":
    main()
