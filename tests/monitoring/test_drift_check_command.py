"""`manage.py drift_check`: the engine for pipelines, on two files, with exit codes."""

import json

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)

    def write(name: str, shift: float) -> str:
        data = pd.DataFrame(
            {
                "age": rng.normal(40 + 10 * shift, 10, 3000),
                "region": rng.choice(["north", "south"], 3000),
            }
        )
        path = tmp_path / name
        if name.endswith(".parquet"):
            data.to_parquet(path)
        else:
            data.to_csv(path, index=False)
        return str(path)

    return write


def run(*args: str) -> tuple[int, str]:
    import io

    out = io.StringIO()
    try:
        call_command("drift_check", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_the_same_data_does_not_drift_and_exits_0(files):
    code, output = run("--reference", files("r.csv", 0), "--current", files("c.parquet", 0))
    assert code == 0
    assert "no drift: 0 of 2 features" in output


def test_drifted_data_exits_1_with_json_per_feature(files):
    code, output = run(
        "--reference", files("r.csv", 0), "--current", files("c.csv", 2), "--format", "json"
    )
    assert code == 1
    body = json.loads(output[: output.rindex("}") + 1])
    assert body["drifted"] is True
    assert body["features"]["age"]["drifted"] is True
    assert 0 <= body["features"]["age"]["ks_p_value"] <= 1
    assert body["features"]["region"]["kind"] == "categorical"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("--current", "/no/such.csv"), "no such file"),
        (("--thresholds", "{psi"), "not JSON"),
        (("--thresholds", '{"psi": "high"}'), "psi"),
        (("--categorical", "shoe"), "shoe"),
    ],
)
def test_input_it_cannot_compare_exits_2_saying_why(files, change, words):
    args = ["--reference", files("r.csv", 0), "--current", files("c.csv", 0)]
    flag, value = change
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    code, output = run(*args)
    assert code == 2
    assert words in output


def test_different_columns_exit_2_naming_them(files, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("age,shoe\n1,2\n")
    code, output = run("--reference", files("r.csv", 0), "--current", str(other))
    assert code == 2
    assert "shoe" in output
