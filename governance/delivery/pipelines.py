"""The contract between Quorum and a team's training pipeline.

A team declares its pipeline in its own code as a `Pipeline` of four functions, one per step
(prepare data, build features, train, evaluate), and names it by an entry point string,
`"package.module:attribute"`. Quorum adds the fifth step, register: it logs the trained model to
the MLflow run and registers it as a new version.

Each step is called with a `StepContext` and may return anything; what it returns is kept in
`context.artifacts[<step name>]` for the steps after it. `train` returns the fitted model,
`evaluate` a dict of metrics (numbers). A step may set `context.input_example` (a few rows of the
model's input), and `context.output_example` when the model's answer is not its predict():
register infers the model's signature from them.

Also here, pure and without the database: loading an entry point, and the facts that make a run
reproducible (the digests of its data, its code version, a hash of its environment).
"""

import hashlib
import importlib
import inspect
import json
import platform
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from governance.delivery.errors import InvalidPipeline

STEPS = ("prepare_data", "build_features", "train", "evaluate")
LABELS = {
    "prepare_data": "preparing the data",
    "build_features": "building the features",
    "train": "training",
    "evaluate": "evaluating",
    "register": "registering the new version",
}

Step = Callable[["StepContext"], Any]


@dataclass(frozen=True)
class Pipeline:
    """A team's training pipeline: its steps, in the order Quorum runs them."""

    prepare_data: Step
    build_features: Step
    train: Step
    evaluate: Step
    name: str = ""
    # The requirements written with the logged model; blank: scikit-learn at this version.
    pip_requirements: tuple[str, ...] = ()
    # More keywords for mlflow.sklearn.log_model, such as skops_trusted_types.
    log_options: dict = field(default_factory=dict)

    def steps(self) -> list[tuple[str, Step]]:
        return [(name, getattr(self, name)) for name in STEPS]


@dataclass(frozen=True)
class DataInput:
    """A table Quorum keeps (Parquet named by its SHA-256) that a run trains on, with the
    table of its true labels when they arrived."""

    name: str
    sha256: str
    path: Path
    labels_sha256: str = ""
    labels_path: Path | None = None

    def frame(self) -> Any:
        import pandas as pd
        import pyarrow.parquet as pq

        table: pd.DataFrame = pq.read_table(self.path).to_pandas()
        return table

    def labels(self) -> Any:
        """The labels in the batch's order, or None when none arrived."""
        if self.labels_path is None:
            return None
        import pyarrow.parquet as pq

        return pq.read_table(self.labels_path).to_pandas()


@dataclass
class StepContext:
    """What each step is handed."""

    params: dict
    seed: int
    inputs: list[DataInput]
    log: Callable[[str], None]
    secret: Callable[[str], str]
    artifacts: dict[str, Any] = field(default_factory=dict)
    input_example: Any = None
    # What the model answers for input_example, when not its predict() (probabilities, say).
    output_example: Any = None


def load(entry_point: str) -> Pipeline:
    """The pipeline an entry point names. Raises InvalidPipeline naming `entry_point`."""
    text = (entry_point or "").strip()
    module_name, colon, attribute = text.partition(":")
    if not colon or not module_name or not attribute:
        raise InvalidPipeline(fields={"entry_point": ["Write it as package.module:attribute."]})
    if not all(part.isidentifier() for part in [*module_name.split("."), *attribute.split(".")]):
        raise InvalidPipeline(
            fields={"entry_point": [f"{text!r} is not a dotted Python name and an attribute."]}
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure to import is the team's to fix, said plainly
        raise InvalidPipeline(
            fields={
                "entry_point": [
                    f"Module {module_name!r} cannot be imported: {type(error).__name__}: {error}"
                ]
            }
        ) from None
    found: object = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise InvalidPipeline(
                fields={"entry_point": [f"Module {module_name!r} has no {attribute!r}."]}
            )
        found = getattr(found, part)
    if not isinstance(found, Pipeline):
        raise InvalidPipeline(
            fields={
                "entry_point": [
                    f"{text} is a {type(found).__name__}, not a "
                    "governance.delivery.pipelines.Pipeline."
                ]
            }
        )
    for name, step in found.steps():
        if not callable(step):
            raise InvalidPipeline(fields={"entry_point": [f"Its step {name!r} is not callable."]})
    return found


def seed_everything(seed: int) -> None:
    """The same seed for Python's and NumPy's global generators, before every run."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)  # team code may use the global generator


def sha256_of(path: Path) -> str:
    """Raises FileNotFoundError when the file is gone."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def code_version(entry_point: str) -> str:
    """The git commit of the repository holding the entry point's module (with `+dirty` when
    it has uncommitted changes), else `sha256:` and the digest of the module's source file."""
    module = importlib.import_module(entry_point.partition(":")[0])
    source = Path(inspect.getsourcefile(module) or module.__file__ or "")
    try:
        commit = _git(source.parent, "rev-parse", "HEAD")
        dirty = _git(source.parent, "status", "--porcelain", "--", str(source))
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        return f"{commit}+dirty" if dirty else commit
    return f"sha256:{sha256_of(source)}"


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["git", "-C", str(folder), *args],  # noqa: S607 - git from PATH, as a developer's
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def environment() -> dict:
    """What the run's environment is: Python's version and the installed distributions."""
    installed = sorted(
        {
            f"{(d.metadata['Name'] or '').lower()}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"]
        }
    )
    return {"python": platform.python_version(), "distributions": installed}


def environment_hash(described: dict | None = None) -> str:
    described = described or environment()
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
