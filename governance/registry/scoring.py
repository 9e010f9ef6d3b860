"""A registered version's MLflow model, loaded in a worker to predict on a table: what bias
reports and model-quality checks do when the data carries no predictions of its own.

The model's files are fetched through Quorum's MLflow client (`Mlflow.download_model`), and
its input signature says which columns it reads and as what types.
"""

import tempfile

import numpy as np
import pandas as pd

from governance.errors import InvalidInput
from governance.registry.errors import MlflowNotFound, MlflowRefused
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import ModelVersion


class Unusable(InvalidInput):
    """The model could not be loaded, or cannot predict on this data."""

    code = "model_unusable"
    default_message = "The version's model could not be loaded from MLflow to predict."


class MissingInputs(Unusable):
    """The data lacks columns of the model's signature; `missing` names them."""

    code = "model_inputs_missing"

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"The model needs columns the data lacks: {', '.join(missing)}.")


class Scorer:
    """One model version, loaded once, predicting on DataFrames by its signature."""

    def __init__(self, version: ModelVersion, model: object):
        self.version, self.model = version, model

    @classmethod
    def load(cls, version: ModelVersion) -> "Scorer":
        """Raises Unusable, or MlflowUnavailable when MLflow cannot be reached (worth a retry)."""
        import mlflow.pyfunc

        with tempfile.TemporaryDirectory(prefix="quorum-model-") as folder:
            try:
                path = Mlflow().download_model(version.model.name, version.version, folder)
            except (MlflowNotFound, MlflowRefused) as error:
                raise Unusable(
                    f"The model of {version} could not be loaded from MLflow: {error.message}"
                ) from error
            try:
                return cls(version, mlflow.pyfunc.load_model(path))
            except Exception as error:  # a flavour's loader may raise anything
                raise Unusable(
                    f"The model of {version} could not be loaded: {type(error).__name__}: {error}"
                ) from error

    def inputs(self, frame: pd.DataFrame, *, exclude: set[str] | None = None) -> pd.DataFrame:
        """The columns the model reads, cast to its signature's types. Without a signature
        naming columns, every column but `exclude` (or, when `exclude` is None, an error).
        Raises MissingInputs, Unusable."""
        schema = self.model.metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            if exclude is None:
                raise Unusable(
                    f"The model of {self.version} has no input signature naming its columns: "
                    "name a prediction column instead."
                )
            return frame[[c for c in frame.columns if c not in exclude]]
        missing = [s.name for s in schema.inputs if s.required and s.name not in frame.columns]
        if missing:
            raise MissingInputs(missing)
        specs = [s for s in schema.inputs if s.name in frame.columns]
        chosen = frame[[s.name for s in specs]].copy()
        for spec in specs:
            if hasattr(spec.type, "to_pandas"):
                try:
                    chosen[spec.name] = chosen[spec.name].astype(spec.type.to_pandas())
                except (TypeError, ValueError) as error:
                    raise Unusable(
                        f"Column {spec.name!r} does not fit the model's {spec.type}: {error}"
                    ) from error
        return chosen

    def predict(self, inputs: pd.DataFrame) -> np.ndarray:
        """One prediction a row. Raises Unusable."""
        try:
            predicted = np.asarray(self.model.predict(inputs))
        except Exception as error:  # the model's own code
            raise Unusable(
                f"The model of {self.version} failed to predict: {type(error).__name__}: {error}"
            ) from error
        if predicted.ndim == 2 and predicted.shape[1] == 1:
            predicted = predicted.ravel()
        if predicted.ndim != 1:
            raise Unusable(
                f"The model of {self.version} gives {predicted.shape[1:]} values a row, not one."
            )
        return predicted
