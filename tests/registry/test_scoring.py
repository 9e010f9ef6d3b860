"""A registered version's model, loaded from a real local MLflow store, predicts on tables by
its signature; what it cannot use is named."""

import pandas as pd
import pytest

from governance.registry import services as registry
from governance.registry.models import ModelVersion
from governance.registry.scoring import MissingInputs, Scorer, Unusable


@pytest.fixture
def version(project, tracking):
    tracking.sklearn_version("credit-scoring", project="credit-risk")
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.select_related("model").get()


def test_a_version_predicts_on_the_columns_of_its_signature(version):
    scorer = Scorer.load(version)
    rows = pd.DataFrame({"income": [40, 60], "age": [20, 70], "note": ["a", "b"]})
    inputs = scorer.inputs(rows)
    assert list(inputs.columns) == ["age", "income"], "the signature's columns, in its order"
    assert str(inputs["age"].dtype) == "float64", "whole numbers cast to the signature's type"
    assert list(scorer.predict(inputs)) == [0, 1]


def test_columns_the_model_needs_are_named_when_missing(version):
    with pytest.raises(MissingInputs) as refused:
        Scorer.load(version).inputs(pd.DataFrame({"age": [30.0]}))
    assert refused.value.missing == ["income"]
    assert "income" in refused.value.message


def test_text_where_the_model_wants_numbers_is_refused_naming_the_column(version):
    with pytest.raises(Unusable, match="'age'"):
        Scorer.load(version).inputs(pd.DataFrame({"age": ["old"], "income": [1.0]}))


def test_a_version_with_no_model_files_cannot_be_loaded(project, tracking):
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", tracking.run(experiment))
    registry.sync_mlflow(trigger="test")
    with pytest.raises(Unusable, match="could not be loaded"):
        Scorer.load(ModelVersion.objects.select_related("model").get())
