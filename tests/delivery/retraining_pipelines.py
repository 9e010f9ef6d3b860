"""Pipelines the retraining tests name by entry point, as a team's code would declare them."""

import numpy as np
import pandas as pd

from governance.delivery.pipelines import Pipeline, StepContext


def prepare(context: StepContext) -> pd.DataFrame:
    """Generated rows, from the seed, plus every input batch (labelled by its age)."""
    rng = np.random.default_rng(context.seed)
    rows = int(context.params.get("rows", 200))
    parts = [pd.DataFrame({"age": rng.normal(40, 10, rows), "income": rng.normal(50, 8, rows)})]
    parts.extend(given.frame()[["age", "income"]].astype("float64") for given in context.inputs)
    data = pd.concat(parts, ignore_index=True)
    # The global generator, seeded by Quorum, as team code often uses it.
    noise = np.random.normal(0, 5, len(data))
    data["label"] = ((data["age"] + noise) > 40).astype(int)
    context.log(f"{len(data)} rows from {len(context.inputs)} inputs")
    return data


def features(context: StepContext) -> dict:
    data = context.artifacts["prepare_data"]
    x = data[["age", "income"]].astype("float64")
    context.input_example = x.head(3)
    return {"x": x, "y": data["label"]}


def train(context: StepContext) -> object:
    from sklearn.linear_model import LogisticRegression

    built = context.artifacts["build_features"]
    return LogisticRegression(C=float(context.params.get("C", 1.0))).fit(built["x"], built["y"])


def evaluate(context: StepContext) -> dict:
    built, model = context.artifacts["build_features"], context.artifacts["train"]
    return {"accuracy": float(model.score(built["x"], built["y"])), "rows": len(built["x"])}


def broken_train(context: StepContext) -> object:
    raise ValueError("the training data has no positive labels")


SMALL = Pipeline(
    name="small", prepare_data=prepare, build_features=features, train=train, evaluate=evaluate
)
BROKEN = Pipeline(
    name="broken",
    prepare_data=prepare,
    build_features=features,
    train=broken_train,
    evaluate=evaluate,
)
NOT_A_PIPELINE = {"steps": ["train"]}
