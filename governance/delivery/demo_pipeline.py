"""The demo's training pipeline for `credit-scoring`, as a team would write its own.

It retrains the champion (gradient boosting, 120 trees of depth 3) on the demo's applicants
(governance/registry/demo.py) plus the monitored batches whose outcomes arrived, and evaluates it
on the demo's held-out applicants, so that versions compare on the same rows. The model takes the
same six float columns and answers the probability of default, as the demo's versions do.

Entry point: `governance.delivery.demo_pipeline:CREDIT_SCORING`.
"""

import pandas as pd

from governance.delivery.pipelines import Pipeline, StepContext
from governance.registry import demo

DEFAULTS = {"n_estimators": 120, "max_depth": 3, "learning_rate": 0.1}


def prepare_data(context: StepContext) -> dict:
    credit = demo.credit_applicants()
    columns = [*credit.features, credit.target]
    parts, used = [credit.train[columns]], 0
    for given in context.inputs:
        rows, labels = given.frame(), given.labels()
        if labels is None or credit.target not in labels or len(labels) != len(rows):
            context.log(f"{given.name}: no outcomes yet, left out")
            continue
        missing = [name for name in credit.features if name not in rows]
        if missing:
            context.log(f"{given.name}: lacks {', '.join(missing)}, left out")
            continue
        batch = rows[credit.features].assign(**{credit.target: labels[credit.target].to_numpy()})
        parts.append(batch)
        used += len(batch)
    train = pd.concat(parts, ignore_index=True)
    context.log(f"{len(train)} training rows, {used} of them from monitored batches")
    return {"train": train, "test": credit.test[columns], "split": credit}


def build_features(context: StepContext) -> dict:
    data = context.artifacts["prepare_data"]
    credit = data["split"]
    # Floats throughout, as the demo's models were logged: integer columns refuse missing values.
    features = {
        "x_train": data["train"][credit.features].astype("float64"),
        "y_train": data["train"][credit.target].astype(int),
        "x_test": data["test"][credit.features].astype("float64"),
        "y_test": data["test"][credit.target].astype(int),
    }
    context.input_example = features["x_test"].head(3)
    return features


def train(context: StepContext) -> object:
    from sklearn.ensemble import GradientBoostingClassifier

    features = context.artifacts["build_features"]
    settings = {**DEFAULTS, **context.params}
    model = GradientBoostingClassifier(
        n_estimators=int(settings["n_estimators"]),
        max_depth=int(settings["max_depth"]),
        learning_rate=float(settings["learning_rate"]),
        random_state=context.seed,
    )
    return model.fit(features["x_train"], features["y_train"])


def evaluate(context: StepContext) -> dict:
    from sklearn import metrics

    features, model = context.artifacts["build_features"], context.artifacts["train"]
    y_test = features["y_test"]
    scores = model.predict_proba(features["x_test"])[:, 1]
    predicted = (scores >= 0.5).astype(int)
    context.output_example = model.predict_proba(context.input_example)[:, 1]
    return {
        "accuracy": metrics.accuracy_score(y_test, predicted),
        "roc_auc": metrics.roc_auc_score(y_test, scores),
        "f1": metrics.f1_score(y_test, predicted, zero_division=0),
        "precision": metrics.precision_score(y_test, predicted, zero_division=0),
        "recall": metrics.recall_score(y_test, predicted, zero_division=0),
        "log_loss": metrics.log_loss(y_test, scores),
    }


CREDIT_SCORING = Pipeline(
    name="credit-scoring",
    prepare_data=prepare_data,
    build_features=build_features,
    train=train,
    evaluate=evaluate,
    # Trees are ours: trained a moment ago in this process.
    log_options={"skops_trusted_types": ["sklearn.tree._tree.Tree"]},
)
