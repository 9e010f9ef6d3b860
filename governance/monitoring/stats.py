"""Drift statistics: how far current data has moved from its reference, column by column.

Pure and vectorised, with no Django: pandas DataFrames, Arrow tables or mappings of arrays in,
plain dataclasses out, whose `as_dict()` is JSON that `DriftResult.from_dict` reads back.

Numeric columns are sorted once per side. The Kolmogorov-Smirnov statistic and the Wasserstein-1
distance come from one stable merge of the two sorted arrays (a linear pass: both are sorted
runs), the reference's quantile edges are read off its sorted values, and the bin counts for PSI
and Jensen-Shannon are binary searches of those edges. Categorical columns are factorised once
per side and counted with bincount; the chi-square test, Cramér's V and Jensen-Shannon run on the
small table of counts. Columns are spread over threads, since sorting and counting release the GIL.

P-values come from SciPy. The KS p-value follows `ks_2samp(method="auto")`: SciPy's exact
distribution while both samples have at most 10,000 values (through `ks_2samp` itself), else
Smirnov's asymptotic `kstwo.sf(D, round(n*m/(n+m)))`, exactly as `ks_2samp` computes it. The exact
distribution costs more than the statistic, and at a million rows it is no more exact in any way
that matters. The chi-square test is `chi2_contingency(table, correction=False)`.

Definitions, where there is a choice:
- The kind of a column comes from the reference: numbers are numeric, text and booleans are
  categorical, and `categorical=[...]` names the categorical columns outright (all others are then
  numeric). Integers are compared as float64.
- Missing values (None, NaN, NA) are left out of every statistic and reported as a missing rate
  over all rows. In a numeric column, values that are not finite numbers (text, or infinities)
  are type errors: counted, a few shown, and left out like missing ones.
- PSI = sum((c - r) * ln(c / r)) over bins, with r and c the shares of the reference's and the
  current values in each bin, and an empty bin's share taken as `psi_epsilon` (1e-4) so that it
  stays finite. Numeric bins lie between the reference's quantiles at 1/bins, 2/bins, ...
  (np.quantile's linear method), open at both ends, each bin [lower, upper); repeated quantiles
  merge, so a column with few distinct values has fewer bins. Categorical bins are the categories.
- Jensen-Shannon is SciPy's distance with base 2 (between 0 and 1), on the same bins.
- Wasserstein-1 is in the column's own units, as SciPy's `wasserstein_distance`.
- A constant column is no error: against a current column of the same constant, KS is 0 with
  p-value 1, PSI, Jensen-Shannon and Wasserstein are 0; its bins are the two either side of the
  constant. A column with a single category gives a chi-square statistic of 0 with 0 degrees of
  freedom and p-value 1 (as SciPy), and Cramér's V of 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon
from scipy.stats.contingency import association

from governance.monitoring.errors import (
    ColumnsDiffer,
    EmptyData,
    InvalidParameter,
    InvalidThresholds,
    NoValues,
    TypeMismatch,
    UnsupportedType,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# As ks_2samp(method="auto"): exact up to this many values in the larger sample.
KS_EXACT_MAX_N = 10_000
# Below this many rows on both sides together, threads cost more than they save.
PARALLEL_MIN_ROWS = 50_000
EXAMPLES = 5


@dataclass(frozen=True)
class FeatureDrift:
    """One column's drift. Fields that do not apply to the column's kind are None."""

    name: str
    kind: str
    reference_values: int
    current_values: int
    missing_rate_reference: float
    missing_rate_current: float
    type_errors_reference: int
    type_errors_current: int
    type_error_examples: list[str]
    psi: float
    js_distance: float
    # numeric
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    ks_method: str | None = None
    wasserstein: float | None = None
    bin_edges: list[float] | None = None
    reference_bins: list[int] | None = None
    current_bins: list[int] | None = None
    # categorical
    chi2_statistic: float | None = None
    chi2_p_value: float | None = None
    chi2_dof: int | None = None
    cramers_v: float | None = None
    categories: int | None = None
    new_categories: list[Any] | None = None
    new_category_count: int | None = None
    new_category_share: float | None = None
    vanished_categories: list[Any] | None = None
    vanished_category_count: int | None = None
    vanished_category_share: float | None = None
    # the most frequent categories of both sides together, with each side's count, for charts
    top_categories: list[Any] | None = None
    reference_top_counts: list[int] | None = None
    current_top_counts: list[int] | None = None

    @property
    def missing_rate_change(self) -> float:
        return self.missing_rate_current - self.missing_rate_reference

    @property
    def p_value(self) -> float:
        return self.ks_p_value if self.kind == NUMERIC else self.chi2_p_value

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing_rate_change": self.missing_rate_change}


@dataclass(frozen=True)
class DriftResult:
    reference_rows: int
    current_rows: int
    bins: int
    psi_epsilon: float
    features: dict[str, FeatureDrift]

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "bins": self.bins,
            "psi_epsilon": self.psi_epsilon,
            "features": {name: feature.as_dict() for name, feature in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        """Read back what `as_dict` wrote, for instance to decide again with other thresholds."""
        names = {f.name for f in fields(FeatureDrift)}
        features = {
            name: FeatureDrift(**{k: v for k, v in feature.items() if k in names})
            for name, feature in data["features"].items()
        }
        return cls(
            reference_rows=data["reference_rows"],
            current_rows=data["current_rows"],
            bins=data["bins"],
            psi_epsilon=data["psi_epsilon"],
            features=features,
        )


def drift(
    reference: Any,
    current: Any,
    *,
    categorical: list[str] | None = None,
    bins: int = 10,
    psi_epsilon: float = 1e-4,
    max_listed: int = 20,
    workers: int | None = None,
) -> DriftResult:
    """Compare every column of `current` with the same column of `reference`.

    Both are pandas DataFrames, Arrow tables or mappings of column name to array, with the same
    columns. `categorical` names the categorical columns (None: text and booleans are).
    `max_listed` caps the new, vanished and most frequent categories listed (their counts are
    always whole).
    `workers` threads share the columns (None: every core, when the data is large enough).

    Raises ColumnsDiffer, EmptyData, UnsupportedType, TypeMismatch, NoValues or
    InvalidParameter, each naming the columns at fault in `fields`.
    """
    _check_parameters(bins=bins, psi_epsilon=psi_epsilon, max_listed=max_listed, workers=workers)
    ref = _Side(reference, "reference")
    cur = _Side(current, "current")
    _check_columns(ref, cur, categorical)
    kinds = _kinds(ref, cur, categorical)

    def one(name: str) -> FeatureDrift | str:
        compare = _numeric if kinds[name] == NUMERIC else _categorical
        return compare(name, ref, cur, bins=bins, psi_epsilon=psi_epsilon, max_listed=max_listed)

    names = list(kinds)
    if workers is None:
        rows = ref.rows + cur.rows
        workers = min(os.cpu_count() or 1, len(names)) if rows >= PARALLEL_MIN_ROWS else 1
    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = dict(zip(names, pool.map(one, names), strict=True))
    else:
        outcomes = {name: one(name) for name in names}

    problems = {name: [o] for name, o in outcomes.items() if isinstance(o, str)}
    if problems:
        raise NoValues(
            f"No values to compare in {_listed(problems)}.",
            fields=problems,
        )
    return DriftResult(
        reference_rows=ref.rows,
        current_rows=cur.rows,
        bins=bins,
        psi_epsilon=psi_epsilon,
        features=outcomes,  # no problems, so every outcome is a result
    )


# The two sides


class _Side:
    """One side's columns, read one at a time so that a thread converts only its own column."""

    def __init__(self, data: Any, label: str):
        self.label = label
        if isinstance(data, pd.DataFrame):
            original = {str(c): c for c in data.columns}
            self.columns = [str(c) for c in data.columns]
            self.rows = len(data)
            self._get: Callable[[str], pd.Series] = lambda name: data[original[name]]
            self._family: Callable[[str], str] = lambda name: _pandas_family(self._get(name))
        elif _is_arrow(data):
            self.columns = list(data.column_names)
            self.rows = data.num_rows
            self._get = lambda name: data.column(name).to_pandas()
            self._family = lambda name: _arrow_family(data.schema.field(name).type)
        elif isinstance(data, Mapping):
            columns = {str(k): pd.Series(v) for k, v in data.items()}
            lengths = {name: len(values) for name, values in columns.items()}
            self.columns = list(columns)
            self.rows = max(lengths.values(), default=0)
            ragged = {n: [f"has {k} values; others have {self.rows}"] for n, k in lengths.items()}
            ragged = {n: message for n, message in ragged.items() if lengths[n] != self.rows}
            if ragged:
                raise InvalidParameter(
                    f"The columns of the {label} data differ in length.", fields=ragged
                )
            self._get = columns.__getitem__
            self._family = lambda name: _pandas_family(columns[name])
        else:
            raise InvalidParameter(
                f"The {label} data must be a pandas DataFrame, an Arrow table or a mapping of "
                f"columns, not {type(data).__name__}.",
                fields={label: ["expected a DataFrame, an Arrow table or a mapping of columns"]},
            )
        if len(set(self.columns)) != len(self.columns):
            repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise ColumnsDiffer(
                f"The {label} data has repeated column names: {', '.join(repeated)}.",
                fields={c: [f"appears more than once in the {label} data"] for c in repeated},
            )

    def series(self, name: str) -> pd.Series:
        return self._get(name)

    def family(self, name: str) -> str:
        return self._family(name)


def _is_arrow(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("pyarrow") and hasattr(data, "column_names")


_INFERRED_FAMILY = {
    "string": "text",
    "mixed": "text",
    "mixed-integer": "text",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "boolean": "bool",
    "empty": "empty",
}


def _pandas_family(series: pd.Series) -> str:
    """number, text, bool, empty (no values at all, so no type), or other (unsupported)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if series.isna().all():
            return "empty"
        return _pandas_family(pd.Series(dtype.categories))
    if isinstance(dtype, pd.StringDtype):
        return "text" if series.notna().any() else "empty"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "number"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return _INFERRED_FAMILY.get(pd.api.types.infer_dtype(series, skipna=True), "other")
    return "other"


def _arrow_family(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return _arrow_family(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    ):
        return "number"
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return "text"
    if pa.types.is_null(arrow_type):
        return "empty"
    return "other"


# Checks


def _check_parameters(
    *, bins: int, psi_epsilon: float, max_listed: int, workers: int | None
) -> None:
    problems: dict[str, list[str]] = {}
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        problems["bins"] = ["must be a whole number of at least 2"]
    if not isinstance(psi_epsilon, float | int) or not 0 < psi_epsilon < 1:
        problems["psi_epsilon"] = ["must be a number between 0 and 1"]
    if isinstance(max_listed, bool) or not isinstance(max_listed, int) or max_listed < 0:
        problems["max_listed"] = ["must be a whole number, 0 or more"]
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        problems["workers"] = ["must be a whole number of at least 1"]
    if problems:
        raise InvalidParameter(f"Invalid {_listed(problems)}.", fields=problems)


def _check_columns(ref: _Side, cur: _Side, categorical: list[str] | None) -> None:
    missing = [c for c in ref.columns if c not in set(cur.columns)]
    extra = [c for c in cur.columns if c not in set(ref.columns)]
    if missing or extra:
        problems = {c: ["is in the reference data but not in the current data"] for c in missing}
        problems |= {c: ["is in the current data but not in the reference data"] for c in extra}
        raise ColumnsDiffer(
            f"The reference and current data do not have the same columns: {_listed(problems)}.",
            fields=problems,
        )
    if not ref.columns:
        raise EmptyData("The data has no columns.", fields={"columns": ["there are none"]})
    if categorical is not None:
        unknown = [c for c in categorical if c not in set(ref.columns)]
        if unknown:
            raise InvalidParameter(
                f"Categorical columns that are not in the data: {', '.join(unknown)}.",
                fields={
                    c: ["is named categorical but is not a column of the data"] for c in unknown
                },
            )
    empty = [side for side in (ref, cur) if side.rows == 0]
    if empty:
        sides = " and ".join(side.label for side in empty)
        raise EmptyData(
            f"The {sides} data has no rows.",
            fields={c: [f"the {sides} data has no rows"] for c in ref.columns},
        )


def _kinds(ref: _Side, cur: _Side, categorical: list[str] | None) -> dict[str, str]:
    kinds: dict[str, str] = {}
    unsupported: dict[str, list[str]] = {}
    mismatched: dict[str, list[str]] = {}
    for name in ref.columns:
        ref_family, cur_family = ref.family(name), cur.family(name)
        for side, family in (("reference", ref_family), ("current", cur_family)):
            if family == "other":
                dtype = (ref if side == "reference" else cur).series(name).dtype
                unsupported.setdefault(name, []).append(
                    f"holds {dtype} values in the {side} data; drift covers numbers, text and "
                    "booleans"
                )
        if categorical is not None:
            kind = CATEGORICAL if name in categorical else NUMERIC
        else:
            family = ref_family if ref_family != "empty" else cur_family
            kind = NUMERIC if family == "number" else CATEGORICAL
        kinds[name] = kind
        if name in unsupported or "empty" in (ref_family, cur_family):
            continue  # an all-missing side is reported as such, once its values are read
        if kind == NUMERIC:
            # Text in a numeric column is read as numbers where it can be: the rest are type
            # errors, counted and reported rather than refused.
            wrong = [
                f"holds bool values in the {side} data but is numeric"
                for side, family in (("reference", ref_family), ("current", cur_family))
                if family == "bool"
            ]
            if wrong:
                mismatched[name] = [*wrong, "name it in `categorical` to compare it by category"]
        elif ref_family != cur_family:
            mismatched[name] = [
                f"holds {ref_family} values in the reference data but {cur_family} values in "
                "the current data"
            ]
    if unsupported:
        raise UnsupportedType(
            f"Unsupported column types: {_listed(unsupported)}.", fields=unsupported
        )
    if mismatched:
        raise TypeMismatch(
            f"Columns whose type differs from the reference: {_listed(mismatched)}.",
            fields=mismatched,
        )
    return kinds


def _listed(problems: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(messages)}" for name, messages in problems.items())


# Numeric columns


@dataclass
class _Numbers:
    sorted: np.ndarray  # finite values, ascending
    missing: int
    type_errors: int
    examples: list[str] = field(default_factory=list)


def _numbers(series: pd.Series) -> _Numbers:
    """A column's finite values, sorted; what was missing, and what was not a finite number."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing, type_errors, examples = None, 0, []
    else:
        present = series.notna().to_numpy()
        parsed = pd.to_numeric(series, errors="coerce")
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = present & np.isnan(values)
        missing, type_errors = int((~present).sum()), int(bad.sum())
        examples = [str(v) for v in pd.unique(series[bad])[:EXAMPLES]]
    ordered = np.sort(values)  # NaN last
    nan_from = int(np.searchsorted(ordered, np.nan, side="left"))
    low = int(np.searchsorted(ordered[:nan_from], -np.inf, side="right"))
    high = int(np.searchsorted(ordered[:nan_from], np.inf, side="left"))
    infinite = low + (nan_from - high)
    if infinite:
        examples += [s for s, n in (("-inf", low), ("inf", nan_from - high)) if n][
            : max(0, EXAMPLES - len(examples))
        ]
    return _Numbers(
        sorted=ordered[low:high],
        missing=len(values) - nan_from if missing is None else missing,
        type_errors=type_errors + infinite,
        examples=examples,
    )


def _numeric(
    name: str, ref: _Side, cur: _Side, *, bins: int, psi_epsilon: float, max_listed: int
) -> FeatureDrift | str:
    a, b = _numbers(ref.series(name)), _numbers(cur.series(name))
    empty = [side for side, n in (("reference", a), ("current", b)) if n.sorted.size == 0]
    if empty:
        return _no_values(empty, (a.missing, b.missing), (a.type_errors, b.type_errors))
    statistic, wasserstein = ks_and_wasserstein(a.sorted, b.sorted)
    p_value, method = ks_p_value(statistic, a.sorted, b.sorted)
    edges = quantile_edges(a.sorted, bins)
    ref_bins, cur_bins = bin_counts(a.sorted, edges), bin_counts(b.sorted, edges)
    return FeatureDrift(
        name=name,
        kind=NUMERIC,
        reference_values=a.sorted.size,
        current_values=b.sorted.size,
        missing_rate_reference=a.missing / ref.rows,
        missing_rate_current=b.missing / cur.rows,
        type_errors_reference=a.type_errors,
        type_errors_current=b.type_errors,
        type_error_examples=(b.examples + a.examples)[:EXAMPLES],
        psi=psi(ref_bins, cur_bins, psi_epsilon),
        js_distance=js_distance(ref_bins, cur_bins),
        ks_statistic=statistic,
        ks_p_value=p_value,
        ks_method=method,
        wasserstein=wasserstein,
        bin_edges=edges.tolist(),
        reference_bins=ref_bins.tolist(),
        current_bins=cur_bins.tolist(),
    )


def ks_and_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The two-sample KS statistic and the Wasserstein-1 distance of two sorted, finite arrays.

    Both come from the gap between the two empirical CDFs along the merged values: KS is its
    largest size at the end of each run of equal values (where both CDFs count the whole run, as
    `searchsorted(side="right")` does in SciPy), Wasserstein its integral. The same divisions
    as SciPy's, so the same floats.
    """
    n1, n2 = a.size, b.size
    merged = np.concatenate((a, b))
    order = np.argsort(merged, kind="stable")  # two sorted runs: one linear merge
    merged = merged[order]
    from_b = order >= n1
    del order
    count_b = np.cumsum(from_b)
    del from_b
    count_a = np.arange(1, n1 + n2 + 1) - count_b
    gap = count_a / n1
    gap -= count_b / n2
    del count_a, count_b
    np.abs(gap, out=gap)
    run_ends = np.empty(merged.size, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=run_ends[:-1])
    run_ends[-1] = True
    statistic = float(gap[run_ends].max())
    # Inside a run the step is 0, so the partial counts there do not matter.
    wasserstein = float(np.sum(gap[:-1] * np.diff(merged)))
    return statistic, wasserstein


def ks_p_value(statistic: float, a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """The two-sided p-value as `ks_2samp(method="auto")`, and which method gave it."""
    m, n = sorted([float(a.size), float(b.size)], reverse=True)
    en = m * n / (m + n)
    with np.errstate(all="ignore"):  # tiny samples: kstwo with n=0, never the answer
        asymptotic = float(np.clip(sps.kstwo.sf(statistic, np.round(en)), 0, 1))
    if m > KS_EXACT_MAX_N:
        return asymptotic, "asymp"
    # SciPy falls back to the asymptotic value (with a RuntimeWarning) where its exact
    # computation does not converge; the method reported says which one it gave.
    exact = float(sps.ks_2samp(a, b, method="auto").pvalue)
    return exact, "asymp" if exact == asymptotic else "exact"


def quantile_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """The inner edges of `bins` quantile bins of sorted values, repeated edges merged.

    The same floats as `np.quantile(ordered, np.linspace(0, 1, bins + 1)[1:-1])` (its linear
    method, interpolating as NumPy's `_lerp` does), but read off the already sorted values.
    """
    q = np.linspace(0, 1, bins + 1)[1:-1]
    n = ordered.size
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    above = virtual >= n - 1
    previous[above] = n - 1
    following = np.minimum(previous + 1, n - 1)
    gamma = virtual - previous
    low = ordered[previous.astype(np.intp)]
    high = ordered[following.astype(np.intp)]
    step = high - low
    edges = low + step * gamma
    np.subtract(high, step * (1 - gamma), out=edges, where=gamma >= 0.5)
    return np.unique(edges)


def bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many sorted values fall in (-inf, e0), [e0, e1), ..., [e_last, inf)."""
    below = np.searchsorted(ordered, edges, side="left")
    return np.diff(below, prepend=0, append=ordered.size)


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index of two histograms over the same bins (counts or shares)."""
    r = reference / reference.sum()
    c = current / current.sum()
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (SciPy's, base 2) of two histograms over the same bins."""
    return float(jensenshannon(reference, current, base=2))


def _no_values(empty: list[str], missing: tuple[int, int], type_errors: tuple[int, int]) -> str:
    parts = []
    for side in empty:
        i = 0 if side == "reference" else 1
        why = f"{missing[i]} missing"
        if type_errors[i]:
            why += f", {type_errors[i]} not numbers"
        parts.append(f"no values in the {side} data ({why})")
    return "; ".join(parts)


# Categorical columns


def _categorical(
    name: str, ref: _Side, cur: _Side, *, bins: int, psi_epsilon: float, max_listed: int
) -> FeatureDrift | str:
    ref_codes, ref_uniques = pd.factorize(ref.series(name))
    cur_codes, cur_uniques = pd.factorize(cur.series(name))
    ref_counts = np.bincount(ref_codes + 1, minlength=len(ref_uniques) + 1)
    cur_counts = np.bincount(cur_codes + 1, minlength=len(cur_uniques) + 1)
    ref_missing, ref_counts = int(ref_counts[0]), ref_counts[1:]
    cur_missing, cur_counts = int(cur_counts[0]), cur_counts[1:]
    empty = [
        side for side, c in (("reference", ref_counts), ("current", cur_counts)) if not c.sum()
    ]
    if empty:
        return _no_values(empty, (ref_missing, cur_missing), (0, 0))

    ref_index, cur_index = pd.Index(ref_uniques), pd.Index(cur_uniques)
    position = ref_index.get_indexer(cur_index)
    new = position < 0
    known = len(ref_index)
    reference = np.concatenate((ref_counts, np.zeros(int(new.sum()), dtype=ref_counts.dtype)))
    current = np.zeros_like(reference)
    current[position[~new]] = cur_counts[~new]
    current[known:] = cur_counts[new]
    table = np.vstack((reference, current))
    chi2 = sps.chi2_contingency(table, correction=False)
    cramers_v = (
        float(association(table, method="cramer", correction=False)) if table.shape[1] > 1 else 0.0
    )
    vanished = current[:known] == 0
    labels = ref_index.append(cur_index[new])
    shown = np.argsort(-(reference + current), kind="stable")[:max_listed]

    def top(values: pd.Index, counts: np.ndarray) -> list[Any]:
        order = np.argsort(-counts, kind="stable")[:max_listed]
        return values[order].tolist()

    return FeatureDrift(
        name=name,
        kind=CATEGORICAL,
        reference_values=int(ref_counts.sum()),
        current_values=int(cur_counts.sum()),
        missing_rate_reference=ref_missing / ref.rows,
        missing_rate_current=cur_missing / cur.rows,
        type_errors_reference=0,
        type_errors_current=0,
        type_error_examples=[],
        psi=psi(reference, current, psi_epsilon),
        js_distance=js_distance(reference, current),
        chi2_statistic=float(chi2.statistic),
        chi2_p_value=float(chi2.pvalue),
        chi2_dof=int(chi2.dof),
        cramers_v=cramers_v,
        categories=int(reference.size),
        new_categories=top(cur_index[new], cur_counts[new]),
        new_category_count=int(new.sum()),
        new_category_share=float(cur_counts[new].sum() / cur_counts.sum()),
        vanished_categories=top(ref_index[vanished], ref_counts[vanished]),
        vanished_category_count=int(vanished.sum()),
        vanished_category_share=float(ref_counts[vanished].sum() / ref_counts.sum()),
        top_categories=labels[shown].tolist(),
        reference_top_counts=reference[shown].tolist(),
        current_top_counts=current[shown].tolist(),
    )


# Deciding


@dataclass(frozen=True)
class Thresholds:
    """When a feature counts as drifted, and when the data set does.

    A feature drifts when any of these holds: PSI above `psi`; the test's p-value below `p_value`
    *and* an effect at least as large as `min_ks_statistic` (numeric) or `min_cramers_v`
    (categorical), so that a million rows do not alarm on noise; the missing rate rising by more
    than `missing_rate_increase`; more than `type_error_rate` of the current rows not numbers.
    The data set drifts when at least `drifted_share` of its features do.
    """

    psi: float = 0.2
    p_value: float = 0.01
    min_ks_statistic: float = 0.1
    min_cramers_v: float = 0.1
    missing_rate_increase: float = 0.05
    type_error_rate: float = 0.01
    drifted_share: float = 0.5

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Thresholds:
        """Thresholds from JSON-like data; absent keys keep their defaults. The `quality` key
        is the data-quality engine's (governance/monitoring/quality.py) and is left to it."""
        data = {k: v for k, v in data.items() if k != "quality"}
        known = {f.name for f in fields(cls)}
        problems: dict[str, list[str]] = {
            key: [f"is not a threshold; known: {', '.join(sorted(known))}"]
            for key in data
            if key not in known
        }
        for key, value in data.items():
            if key not in known:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                problems[key] = ["must be a number"]
            elif key == "psi" and value < 0:
                problems[key] = ["must be 0 or more"]
            elif key in {"p_value", "drifted_share"} and not 0 < value <= 1:
                problems[key] = ["must be above 0 and at most 1"]
            elif not 0 <= value <= 1:
                problems[key] = ["must be between 0 and 1"]
        if problems:
            raise InvalidThresholds(
                f"Invalid drift thresholds: {_listed(problems)}.", fields=problems
            )
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class FeatureDecision:
    drifted: bool
    reasons: list[str]


@dataclass(frozen=True)
class DriftDecision:
    drifted: bool
    drifted_count: int
    drifted_share: float
    reasons: list[str]
    features: dict[str, FeatureDecision]
    thresholds: Thresholds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    result: DriftResult, thresholds: Thresholds | Mapping[str, Any] | None = None
) -> DriftDecision:
    """Which features drifted and why, and whether the data set did. Raises InvalidThresholds."""
    if thresholds is None:
        thresholds = Thresholds()
    elif not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_mapping(thresholds)
    t = thresholds
    decisions = {}
    for name, f in result.features.items():
        reasons = []
        if f.psi > t.psi:
            reasons.append(f"PSI {f.psi:.3g} > {t.psi:g}")
        if f.kind == NUMERIC:
            test, effect, effect_name, minimum = (
                "KS",
                f.ks_statistic,
                "statistic",
                t.min_ks_statistic,
            )
        else:
            test, effect, effect_name, minimum = (
                "chi-square",
                f.cramers_v,
                "Cramér's V",
                t.min_cramers_v,
            )
        if f.p_value < t.p_value and effect >= minimum:
            reasons.append(
                f"{test} p-value {f.p_value:.3g} < {t.p_value:g} with {effect_name} "
                f"{effect:.3g} >= {minimum:g}"
            )
        if f.missing_rate_change > t.missing_rate_increase:
            reasons.append(
                f"missing rate rose from {f.missing_rate_reference:.1%} to "
                f"{f.missing_rate_current:.1%}"
            )
        type_error_rate = f.type_errors_current / result.current_rows
        if type_error_rate > t.type_error_rate:
            shown = ", ".join(repr(e) for e in f.type_error_examples)
            reasons.append(f"{type_error_rate:.1%} of current values are not numbers ({shown})")
        decisions[name] = FeatureDecision(drifted=bool(reasons), reasons=reasons)
    count = sum(d.drifted for d in decisions.values())
    share = count / len(decisions)
    drifted = share >= t.drifted_share
    relation = "at least" if drifted else "below"
    names = [name for name, d in decisions.items() if d.drifted]
    reasons = [
        f"{count} of {len(decisions)} features drifted ({share:.0%}), {relation} the "
        f"{t.drifted_share:.0%} share" + (f": {', '.join(names)}" if names else "")
    ]
    return DriftDecision(
        drifted=drifted,
        drifted_count=count,
        drifted_share=share,
        reasons=reasons,
        features=decisions,
        thresholds=t,
    )
