"""The demo's MLflow work: real scikit-learn models trained on data generated here.

Three experiments (about thirty runs with metric histories and data sets), two registered
models with several versions and aliases, all tagged to the demo projects. The credit data
set carries a sensitive column (`sex`) that the model does not use, for bias reports.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_TAG = "quorum.project"
SCORING = "credit-risk/scoring"


@dataclass(frozen=True)
class Split:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    target: str


def credit_applicants(seed: int = 7, rows: int = 3000) -> Split:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=rows)
    age = rng.integers(19, 76, size=rows)
    # A pay gap in the data: the model never sees `sex`, yet can still treat groups apart.
    income = rng.lognormal(10.4, 0.45, size=rows) * np.where(sex == "female", 0.88, 1.0)
    debt_ratio = np.clip(rng.normal(0.35, 0.15, size=rows), 0.01, 1.2)
    employment_years = np.clip(rng.gamma(2.0, 3.5, size=rows), 0, 45).round(1)
    late_payments = rng.poisson(0.6, size=rows)
    open_accounts = rng.integers(1, 15, size=rows)
    risk = (
        -1.2
        + 2.4 * debt_ratio
        + 0.55 * late_payments
        - 0.6 * np.log(income / 30000)
        - 0.04 * employment_years
        + 0.015 * (45 - age).clip(0)
        + rng.normal(0, 0.6, size=rows)
    )
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(3),
            "employment_years": employment_years,
            "late_payments": late_payments,
            "open_accounts": open_accounts,
            "sex": sex,
            "default": (risk > 0.4).astype(int),
        }
    )
    features = ["age", "income", "debt_ratio", "employment_years", "late_payments"]
    features.append("open_accounts")
    return _split("credit-applicants", frame, features, "default", rng)


def subscribers(seed: int = 11, rows: int = 2500) -> Split:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, size=rows)
    monthly = rng.normal(62, 18, size=rows).clip(15, 130).round(2)
    calls = rng.poisson(1.2, size=rows)
    yearly = rng.random(rows) < 0.4
    usage = rng.gamma(3, 12, size=rows).round(1)
    risk = (
        0.8
        - 0.05 * tenure
        + 0.02 * (monthly - 60)
        + 0.45 * calls
        - 1.3 * yearly
        - 0.01 * usage
        + rng.normal(0, 0.7, size=rows)
    )
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "support_calls": calls,
            "yearly_contract": yearly.astype(int),
            "usage_gb": usage,
            "churned": (risk > 0).astype(int),
        }
    )
    features = ["tenure_months", "monthly_charges", "support_calls", "yearly_contract"]
    features.append("usage_gb")
    return _split("subscribers", frame, features, "churned", rng)


def _split(name: str, frame: pd.DataFrame, features: list[str], target: str, rng) -> Split:
    test = rng.random(len(frame)) < 0.25
    return Split(
        name,
        frame[~test].reset_index(drop=True),
        frame[test].reset_index(drop=True),
        features,
        target,
    )


def _commit(script: str) -> str:
    """A stable code version for each training script of the demo."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


def load(tracking_uri: str, artifact_root: str) -> bool:
    """Train and log the demo unless it is there already. Returns whether it trained."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(SCORING) is not None:
        return False
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        credit, churn = credit_applicants(), subscribers()
        _scoring(client, credit, artifact_root)
        _feature_selection(client, credit, artifact_root)
        _churn(client, churn, artifact_root)
    finally:
        mlflow.set_tracking_uri(previous)
    return True


def _experiment(client: object, name: str, project: str, artifact_root: str) -> str:
    return client.create_experiment(
        name,
        artifact_location=str(Path(artifact_root) / name.replace("/", "-")),
        tags={PROJECT_TAG: project, "team": project},
    )


def train_run(
    experiment_id: str,
    data: Split,
    model: object,
    params: dict,
    *,
    user: str,
    script: str,
    history: bool = False,
    log_model: bool = False,
    features: list[str] | None = None,
) -> tuple[str, str | None]:
    """One run: fit, evaluate, log everything a reviewer needs. Returns the run id and, when
    the model was logged, its URI."""
    import mlflow
    import sklearn
    from sklearn import metrics

    features = features or data.features
    # Floats throughout: a signature of integer columns cannot take missing values later.
    x_train, y_train = data.train[features].astype("float64"), data.train[data.target]
    x_test, y_test = data.test[features].astype("float64"), data.test[data.target]
    tags = {"mlflow.user": user}  # at the start: MLflow takes the run's user from it
    name = params.pop("run_name")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.set_tags(
            {
                "mlflow.source.name": script,
                "mlflow.source.type": "LOCAL",
                "mlflow.source.git.commit": _commit(script),
            }
        )
        mlflow.log_params(params)
        training = mlflow.data.from_pandas(data.train, name=data.name, targets=data.target)
        evaluation = mlflow.data.from_pandas(
            data.test, name=f"{data.name}-holdout", targets=data.target
        )
        mlflow.log_input(training, context="training")
        mlflow.log_input(evaluation, context="evaluation")
        model.fit(x_train, y_train)
        scores = model.predict_proba(x_test)[:, 1]
        predicted = (scores >= 0.5).astype(int)
        mlflow.log_metrics(
            {
                "accuracy": metrics.accuracy_score(y_test, predicted),
                "roc_auc": metrics.roc_auc_score(y_test, scores),
                "f1": metrics.f1_score(y_test, predicted, zero_division=0),
                "precision": metrics.precision_score(y_test, predicted, zero_division=0),
                "recall": metrics.recall_score(y_test, predicted, zero_division=0),
                "log_loss": metrics.log_loss(y_test, scores),
            }
        )
        if history and hasattr(model, "staged_predict_proba"):
            for step, staged in enumerate(model.staged_predict_proba(x_test), start=1):
                if step % 5 == 0:
                    mlflow.log_metric(
                        "holdout_auc", metrics.roc_auc_score(y_test, staged[:, 1]), step=step
                    )
            for step, loss in enumerate(model.train_score_, start=1):
                if step % 5 == 0:
                    mlflow.log_metric("train_loss", float(loss), step=step)
        uri = None
        if log_model:
            from mlflow.models import infer_signature

            signature = infer_signature(x_test, scores)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=x_test.head(3),
                # Trees are ours: trained a moment ago in this process.
                skops_trusted_types=["sklearn.tree._tree.Tree"],
                # Named, not inferred: inference imports the model in a subprocess (seconds).
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
            uri = info.model_uri
        return run.info.run_id, uri


def _scoring(client: object, data: Split, artifact_root: str) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    experiment = _experiment(client, SCORING, "credit-risk", artifact_root)
    chosen: dict[str, str] = {}
    for c in (0.01, 0.1, 1.0, 10.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        _, uri = train_run(
            experiment,
            data,
            model,
            {"run_name": f"logreg-C{c}", "model": "logistic", "C": c},
            user="sam",
            script="train_logreg.py",
            log_model=c == 1.0,
        )
        if uri:
            chosen["logistic"] = uri
    for estimators in (60, 120):
        for depth in (2, 3):
            model = GradientBoostingClassifier(
                n_estimators=estimators, max_depth=depth, learning_rate=0.1, random_state=1
            )
            params = {
                "run_name": f"gbm-{estimators}-d{depth}",
                "model": "gradient_boosting",
                "n_estimators": estimators,
                "max_depth": depth,
                "learning_rate": 0.1,
            }
            _, uri = train_run(
                experiment,
                data,
                model,
                params,
                user="sam",
                script="train_gbm.py",
                history=True,
                log_model=(estimators, depth) == (120, 3),
            )
            if uri:
                chosen["gbm"] = uri
    for trees in (100, 200):
        for depth in (6, None):
            model = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=1)
            params = {
                "run_name": f"forest-{trees}-d{depth}",
                "model": "random_forest",
                "n_estimators": trees,
                "max_depth": depth,
            }
            _, uri = train_run(
                experiment,
                data,
                model,
                params,
                user="mei",
                script="train_forest.py",
                log_model=(trees, depth) == (200, 6),
            )
            if uri:
                chosen["forest"] = uri
    _register(
        client,
        "credit-scoring",
        "credit-risk",
        [chosen["logistic"], chosen["gbm"], chosen["forest"]],
        {"champion": 2, "challenger": 3},
    )


def _feature_selection(client: object, data: Split, artifact_root: str) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    experiment = _experiment(client, "credit-risk/feature-selection", "credit-risk", artifact_root)
    for size in range(2, len(data.features) + 1):
        for offset in (0, 1, 2):
            features = (data.features[offset:] + data.features[:offset])[:size]
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
            params = {
                "run_name": f"features-{size}-{offset}",
                "features": ",".join(features),
                "n_features": size,
            }
            train_run(
                experiment,
                data,
                model,
                params,
                user="sam",
                script="select_features.py",
                features=features,
            )


def _churn(client: object, data: Split, artifact_root: str) -> None:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    experiment = _experiment(client, "churn/prediction", "churn", artifact_root)
    uris = []
    for c in (0.1, 1.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        _, uri = train_run(
            experiment,
            data,
            model,
            {"run_name": f"logreg-C{c}", "model": "logistic", "C": c},
            user="mei",
            script="churn_logreg.py",
            log_model=c == 1.0,
        )
        if uri:
            uris.append(uri)
    for estimators, rate in ((80, 0.1), (150, 0.05), (150, 0.1)):
        model = GradientBoostingClassifier(
            n_estimators=estimators, learning_rate=rate, max_depth=3, random_state=3
        )
        params = {
            "run_name": f"gbm-{estimators}-lr{rate}",
            "model": "gradient_boosting",
            "n_estimators": estimators,
            "learning_rate": rate,
        }
        _, uri = train_run(
            experiment,
            data,
            model,
            params,
            user="mei",
            script="churn_gbm.py",
            history=True,
            log_model=(estimators, rate) == (150, 0.05),
        )
        if uri:
            uris.append(uri)
    _register(client, "churn-predictor", "churn", uris, {"production": 1, "staging": 2})


def _register(
    client: object, name: str, project: str, uris: list[str], aliases: dict[str, int]
) -> None:
    import mlflow

    client.create_registered_model(
        name, tags={PROJECT_TAG: project}, description=f"The demo's {name} model."
    )
    for uri in uris:
        mlflow.register_model(uri, name)
    for alias, version in aliases.items():
        client.set_registered_model_alias(name, alias, str(version))


def drifting_batches(seed: int = 21) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Three days of applications after release, each with the outcomes learnt later: two
    like the training data, then one where incomes fell and late payments rose (what a downturn
    looks like to the model)."""
    credit = credit_applicants()
    days = [credit_applicants(seed=seed + n, rows=4000).test for n in range(3)]
    downturn = days[2].copy()
    downturn["income"] = (downturn["income"] * 0.7).round(2)
    downturn["late_payments"] = downturn["late_payments"] + 1
    days[2] = downturn
    return [(day[credit.features], day[[credit.target]]) for day in days]
