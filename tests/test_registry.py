"""Model registry and serving against real MLflow servers: versions, aliases, the promotion gate, mlflow models serve."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_course.data import TARGET, HousingMarket
from mlops_course.errors import CourseError
from mlops_course.features import split_data
from mlops_course.promotion import GateDecision, promote, promotion_gate
from mlops_course.registry import (
    RegistryError,
    ServingError,
    aliases,
    invoke,
    load_model,
    model_uri,
    predict_http,
    register_run_model,
    serve_model,
    set_alias,
)
from mlops_course.services import ServiceError
from mlops_course.tracking import connect, start_tracking_server, train_and_log
from mlops_course.train import evaluate

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]
SEED = 42
NAME = "test-housing"


@pytest.fixture(scope="module")
def server(module_workspace):
    svc = start_tracking_server()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def runs(server):
    "Three logged candidates: a decent tree, a better forest, a poor stump."
    train, val, _ = split_data(HousingMarket(seed=SEED).sample(n=1_500), seed=SEED)
    connect(experiment="test-registry")
    forest = {"n_estimators": 20, "min_samples_leaf": 3, "max_features": 0.5}
    return {
        "tree": train_and_log(train, val, "tree", {"max_depth": 6}),
        "forest": train_and_log(train, val, "forest", forest),
        "stump": train_and_log(train, val, "tree", {"max_depth": 2}),
    }


@pytest.fixture(scope="module")
def month1():
    return HousingMarket(seed=SEED).batch(month=1, n=1_000)


@pytest.fixture(scope="module")
def versions(runs):
    return {k: register_run_model(r, NAME).version for k, r in runs.items()}


def test_register_run_model(runs, versions):
    import mlflow

    mv = mlflow.MlflowClient().get_model_version(NAME, versions["tree"])
    assert mv.status == "READY" and mv.run_id == runs["tree"]
    assert mv.tags["model_kind"] == "tree" and mv.tags["run_id"] == runs["tree"]
    assert float(mv.tags["val_rmse"]) == pytest.approx(
        mlflow.get_run(runs["tree"]).data.metrics["val_rmse"], abs=1
    )
    assert [int(v) for v in versions.values()] == sorted(int(v) for v in versions.values())


def test_aliases_and_loading(versions, month1):
    set_alias("champion", versions["tree"], NAME)
    assert aliases(NAME)["champion"] == versions["tree"]
    assert model_uri("champion", NAME) == f"models:/{NAME}@champion"
    model = load_model("champion", NAME)
    assert model.predict(month1.drop(columns=TARGET)).shape == (len(month1),)


def test_gate_needs_a_challenger(versions, month1):
    assert "challenger" not in aliases(NAME)
    with pytest.raises(RegistryError, match="has no @challenger: set one with set_alias") as e:
        promotion_gate(month1, name=NAME)
    assert isinstance(e.value, CourseError) and isinstance(e.value, ValueError)


def test_gate_promotes_a_better_challenger(versions, month1):
    import mlflow

    set_alias("champion", versions["tree"], NAME)
    set_alias("challenger", versions["forest"], NAME)
    d = promotion_gate(month1, min_improvement=0.02, name=NAME, data="month 1")
    tree_rmse = evaluate(mlflow.sklearn.load_model(f"models:/{NAME}/{versions['tree']}"), month1)["rmse"]
    forest_rmse = evaluate(mlflow.sklearn.load_model(f"models:/{NAME}/{versions['forest']}"), month1)["rmse"]
    assert (d.champion_version, d.challenger_version) == (versions["tree"], versions["forest"])
    assert d.champion_rmse == pytest.approx(tree_rmse) and d.challenger_rmse == pytest.approx(forest_rmse)
    assert d.improvement == pytest.approx(1 - forest_rmse / tree_rmse)
    assert d.promote and str(d).startswith("PROMOTE — on month 1")
    strict = promotion_gate(month1, min_improvement=d.improvement + 0.001, name=NAME)
    assert not strict.promote  # the margin is enforced
    assert promote(d, NAME) is True
    found = aliases(NAME)
    assert found["champion"] == versions["forest"] and found["previous"] == versions["tree"]
    assert "challenger" not in found
    tag = mlflow.MlflowClient().get_model_version(NAME, versions["forest"]).tags["gate"]
    assert "PROMOTE" in tag


def test_gate_refuses_a_worse_challenger(versions, month1, caplog, capsys):
    set_alias("champion", versions["forest"], NAME)
    set_alias("challenger", versions["stump"], NAME)
    d = promotion_gate(month1, name=NAME)
    assert not d.promote and d.improvement < 0
    with caplog.at_level("INFO", logger="mlops_course.promotion"):
        assert promote(d, NAME) is False
    assert f"champion unchanged (v{versions['forest']})" in caplog.text and "REJECT" in caplog.text
    assert capsys.readouterr().out == ""  # a library function reports through logging, not print
    assert aliases(NAME)["champion"] == versions["forest"]


def test_first_model_is_promoted_without_a_champion(runs, month1):
    name = "test-first"
    v = register_run_model(runs["tree"], name).version
    set_alias("challenger", v, name)
    d = promotion_gate(month1, name=name)
    assert d.promote and d.champion_version is None and d.improvement is None
    assert str(d).startswith("no champion yet")
    promote(d, name)
    assert aliases(name) == {"champion": v}


def test_decision_text():
    d = GateDecision(False, "3", 84_000.0, "2", 62_000.0, 0.02, "month 1")
    assert str(d) == (
        "REJECT: the champion stays — on month 1: challenger v3 RMSE 84,000 $, champion v2 RMSE "
        "62,000 $, improvement -35.5% (required ≥ 2.0%)"
    )


def test_serving_the_champion(versions, month1):
    set_alias("champion", versions["forest"], NAME)
    rows = month1.drop(columns=TARGET).head(7)
    with serve_model(model_uri("champion", NAME)) as scoring:
        served = predict_http(scoring.url, rows)
        np.testing.assert_allclose(served, load_model("champion", NAME).predict(rows), rtol=1e-9)
        status, body = invoke(
            scoring.url, {"dataframe_split": {"columns": ["median_income"], "data": [[3.5]]}}
        )
        assert status == 400 and "longitude" in body["message"]
        status, body = invoke(scoring.url, "{not json")
        assert status == 400
        with pytest.raises(ServingError, match="answered 400") as e:
            predict_http(scoring.url, rows.drop(columns=["median_income"]))
        assert e.value.status == 400 and "median_income" in str(e.value)
    assert not scoring.running


def test_serving_errors_are_course_errors():
    assert issubclass(ServingError, CourseError) and ServingError(400, "bad").status == 400


def test_serving_an_unknown_alias_fails_with_the_log(versions):
    with pytest.raises(ServiceError, match="exited with code") as e:
        serve_model(model_uri("no-such-alias", NAME), timeout=240)
    assert "no-such-alias" in str(e.value)


def test_the_api_loads_registered_models_without_mlflow(server, runs, versions, month1):
    "models:/ and runs:/ URIs resolve over the tracking server's REST API; the serving process never imports MLflow."
    import json
    import os
    import subprocess
    import sys

    from mlops_course.serve_runtime import ModelLoadError, frame, load_runtime

    set_alias("serving", versions["tree"], NAME)
    code = ("import json, sys; from mlops_course.serve_runtime import load_runtime; "
            f"rt = load_runtime('models:/{NAME}@serving'); print(json.dumps({{'mlflow': 'mlflow' in sys.modules, "
            "'version': rt.info.version, 'alias': rt.info.alias, 'metrics': sorted(rt.info.metrics)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLOPS_COURSE_TRACKING_URI": server.url})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"mlflow": False, "version": str(versions["tree"]), "alias": "serving",
                   "metrics": sorted(got["metrics"])} and "val_rmse" in got["metrics"]

    rows = json.loads(month1.drop(columns=TARGET).head(50).to_json(orient="records"))
    expected = load_model("serving", NAME).predict(frame(rows))
    for uri in (f"models:/{NAME}@serving", f"models:/{NAME}/{versions['tree']}", f"runs:/{runs['tree']}/model"):
        rt = load_runtime(uri)
        assert np.array_equal(rt.predict(rows), expected), uri
    assert rt.info.run_id == runs["tree"] and rt.info.metrics["val_rmse"] > 0
    with pytest.raises(ModelLoadError, match=f"cannot load the model models:/{NAME}@nope: .*alias nope not found") as e:
        load_runtime(f"models:/{NAME}@nope")
    assert "\n" not in str(e.value)
