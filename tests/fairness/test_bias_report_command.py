"""`manage.py bias_report`: per-group figures of a file's predictions, with exit codes."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command


@pytest.fixture
def predictions(tmp_path):
    def write(biased: bool) -> str:
        rng = np.random.default_rng(8)
        sex = rng.choice(["female", "male"], 4000)
        rate = np.where((sex == "female") & biased, 0.3, 0.6)
        data = pd.DataFrame(
            {
                "sex": sex,
                "label": rng.integers(0, 2, 4000),
                "predicted": (rng.random(4000) < rate).astype(int),
            }
        )
        path = tmp_path / f"predictions-{biased}.csv"
        data.to_csv(path, index=False)
        return str(path)

    return write


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("bias_report", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


COLUMNS = ("--y-true", "label", "--y-pred", "predicted", "--sensitive", "sex")


def test_fair_predictions_pass_and_exit_0(predictions):
    code, output = run("--data", predictions(False), *COLUMNS)
    assert code == 0
    assert "PASSED" in output


def test_biased_predictions_fail_the_four_fifths_rule_and_exit_1(predictions):
    code, output = run("--data", predictions(True), *COLUMNS, "--format", "json")
    assert code == 1
    body = json.loads(output[: output.rindex("}") + 1])
    assert body["passed"] is False
    assert {g["label"] for g in body["groups"]} == {"female", "male"}
    assert body["disparities"]["demographic_parity_ratio"]["value"] < 0.8


def test_a_lenient_policy_passes_the_same_predictions(predictions):
    policy = json.dumps({"demographic_parity_ratio_min": 0.4})
    code, _ = run("--data", predictions(True), *COLUMNS, "--policy", policy)
    assert code == 0


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--sensitive", "age"), "no column 'age'"),
        (("--pos-label", "yes"), "not one"),
        (("--policy", "{"), "not JSON"),
        (("--policy", '{"ratio": 2}'), "ratio"),
    ],
)
def test_input_it_cannot_assess_exits_2_saying_why(predictions, extra, words):
    args = ["--data", predictions(False), *COLUMNS]
    flag, value = extra
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    code, output = run(*args)
    assert code == 2
    assert words in output
