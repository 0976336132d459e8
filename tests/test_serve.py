"""The housing API's HTTP contract: routes, strict validation, hostile payloads, readiness, the fast path, faults."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlops_course.schema import FEATURES, OCEAN_CATEGORIES

pytestmark = [pytest.mark.api, pytest.mark.slow]

MAX_ROWS = 50  # the batch limit of the server under test


@pytest.fixture(scope="module")
def housing(module_workspace):
    "A small simulated table (with missing bedrooms) and a small HistGradientBoosting pipeline fitted on it."
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=7).sample(1_500)
    return df, train_model(df, "hgb", max_iter=20)


@pytest.fixture(scope="module")
def model_dir(housing, tmp_path_factory):
    "The pipeline saved as an MLflow model folder (what mlflow.sklearn.save_model writes)."
    from mlops_course.serve_runtime import save_model

    df, pipeline = housing
    return save_model(pipeline, tmp_path_factory.mktemp("models") / "housing", df[FEATURES])


@pytest.fixture(scope="module")
def api(model_dir):
    "One real uvicorn server for the module, serving the saved model."
    from mlops_course.serve import start_api

    with start_api(str(model_dir), max_batch_rows=MAX_ROWS, timeout=300) as svc:
        yield svc


def rows_of(df, n: int) -> list[dict]:
    "The first `n` rows as JSON objects (a missing bedroom count becomes null)."
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in df[FEATURES].head(n).to_dict("records")]


@pytest.fixture(scope="module")
def district(housing) -> dict:
    return rows_of(housing[0], 1)[0]


# --- routes and contract -----------------------------------------------------------------------------
def test_health_ready_model(client, model_dir):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    card = client.get("/model").json()
    assert card["uri"] == str(model_dir.resolve()) and card["runtime"] == "sklearn" and card["fast_path"] is True
    assert [f["name"] for f in card["features"]] == FEATURES
    assert card["features"][-1]["categories"] == OCEAN_CATEGORIES


def test_predict_matches_the_pipeline(client, housing, district):
    df, pipeline = housing
    got = client.post("/predict", json=district)
    assert got.status_code == 200, got.text
    assert got.json()["median_house_value"] == pipeline.predict(df[FEATURES].head(1))[0]


def test_batch_matches_the_pipeline_with_missing_bedrooms(client, housing):
    df, pipeline = housing
    rows = rows_of(df[df.total_bedrooms.isna()].head(5), 5) + rows_of(df, MAX_ROWS - 5)
    got = client.post("/predict/batch", json={"rows": rows})
    assert got.status_code == 200, got.text
    from mlops_course.serve_runtime import frame
    assert got.json()["predictions"] == pipeline.predict(frame(rows)).tolist()


def test_openapi_contract(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/health", "/ready", "/model", "/predict", "/predict/batch"}
    district = spec["components"]["schemas"]["District"]
    assert district["additionalProperties"] is False and district["required"] == FEATURES
    assert district["properties"]["ocean_proximity"]["enum"] == OCEAN_CATEGORIES
    age = district["properties"]["housing_median_age"]
    assert (age["minimum"], age["maximum"], age["multipleOf"]) == (1, 52, 1)
    assert {"type": "null"} in district["properties"]["total_bedrooms"]["anyOf"]
    assert "413" in spec["paths"]["/predict/batch"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


# --- hostile payloads: always a 4xx with a clear message, never a 500 ----------------------------------
@pytest.mark.parametrize("change, status, words", [
    ({"housing_median_age": False}, 422, "valid number"),
    ({"housing_median_age": "12"}, 422, "valid number"),
    ({"housing_median_age": 12.5}, 422, "multiple of 1"),
    ({"housing_median_age": 60}, 422, "less than or equal to 52"),
    ({"median_income": 0}, 422, "greater than 0"),
    ({"longitude": None}, 422, "valid number"),
    ({"ocean_proximity": "NEAR LAKE"}, 422, "'<1H OCEAN', 'INLAND', 'NEAR OCEAN', 'NEAR BAY' or 'ISLAND'"),
    ({"colour": "blue"}, 422, "Extra inputs are not permitted"),
])
def test_bad_values_are_422(client, district, change, status, words):
    got = client.post("/predict", json={**district, **change})
    assert got.status_code == status and words in got.text, got.text


def test_missing_field_and_null_bedrooms(client, district):
    body = {k: v for k, v in district.items() if k != "latitude"}
    got = client.post("/predict", json=body)
    assert got.status_code == 422 and "latitude" in got.text and "Field required" in got.text
    assert client.post("/predict", json={**district, "total_bedrooms": None}).status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(client, district, literal):
    body = json.dumps({**district, "median_income": 7.25}).replace("7.25", literal)
    got = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert got.status_code == 422 and ("finite number" in got.text or "JSON decode error" in got.text), got.text


def test_malformed_json_wrong_type_and_content_type(client, district):
    got = client.post("/predict", content=b'{"longitude": -120,', headers={"content-type": "application/json"})
    assert got.status_code == 422 and "JSON decode error" in got.text
    got = client.post("/predict", content=json.dumps(district), headers={"content-type": "text/plain"})
    assert got.status_code == 415 and "application/json" in got.json()["detail"]
    assert client.post("/predict", json=[district]).status_code == 422
    assert client.get("/predict").status_code == 405


def test_batch_limits(client, district):
    got = client.post("/predict/batch", json={"rows": [district] * (MAX_ROWS + 1)})
    assert got.status_code == 413 and f"at most {MAX_ROWS} rows" in got.json()["detail"]
    assert client.post("/predict/batch", json={"rows": []}).status_code == 422
    bad = client.post("/predict/batch", json={"rows": [district, {**district, "population": -3}]})
    assert bad.status_code == 422 and '"rows",1,"population"' in bad.text.replace(" ", "")


def test_ten_megabyte_body_is_413(client):
    big = b'{"rows": [' + b" " * 10_000_000 + b"]}"
    got = client.post("/predict/batch", content=big, headers={"content-type": "application/json"})
    assert got.status_code == 413 and "request body larger than" in got.json()["detail"]


def test_internal_error_is_500_with_request_id_and_no_traceback(model_dir, district):
    from fastapi.testclient import TestClient

    from mlops_course.serve import ServeSettings, create_app, get_runtime

    class Broken:
        name, info = "broken", None

        def predict(self, rows):
            raise RuntimeError("secret internals")

    app = create_app(ServeSettings(model=str(model_dir)))
    app.dependency_overrides[get_runtime] = lambda: Broken()
    with TestClient(app, raise_server_exceptions=False) as tc:
        app.state.model.loaded.wait(120)
        got = tc.post("/predict", json=district, headers={"x-request-id": "abc123"})
    assert got.status_code == 500 and got.json()["request_id"] == "abc123"
    assert "secret" not in got.text and "Traceback" not in got.text


def test_settings_come_from_a_dependency(model_dir, district):
    from fastapi.testclient import TestClient

    from mlops_course.serve import ServeSettings, create_app, get_serve_settings

    app = create_app(ServeSettings(model=str(model_dir)))
    app.dependency_overrides[get_serve_settings] = lambda: ServeSettings(model=str(model_dir), max_batch_rows=2)
    with TestClient(app) as tc:
        assert tc.get("/ready").status_code in (200, 503)  # loading happens in the background
        app.state.model.loaded.wait(120)
        assert tc.post("/predict/batch", json={"rows": [district] * 3}).status_code == 413
        assert tc.post("/predict/batch", json={"rows": [district] * 2}).status_code == 200


def test_a_loaded_model_leaves_the_garbage_collector_only_new_objects(model_dir):
    "Start-up's objects are frozen once the model is in: full collections no longer walk them (batch tail latency)."
    import gc

    from fastapi.testclient import TestClient

    from mlops_course.serve import ServeSettings, create_app

    gc.unfreeze()
    app = create_app(ServeSettings(model=str(model_dir)))
    with TestClient(app):
        assert app.state.model.loaded.wait(120) and app.state.model.runtime is not None
        assert gc.get_freeze_count() > 10_000
    gc.unfreeze()


# --- the array fast path is bit-identical to pipeline.predict ------------------------------------------
def test_fast_path_is_bit_identical(housing):
    from mlops_course.serve_runtime import fast_path, frame, probe_rows

    df, pipeline = housing
    rows = rows_of(df, len(df)) + probe_rows(300, seed=3)
    assert any(r["total_bedrooms"] is None for r in rows)
    path = fast_path(pipeline)
    assert path is not None
    expected = pipeline.predict(frame(rows))
    assert np.max(np.abs(path.predict(rows) - expected)) == 0
    assert all(path.predict([r])[0] == e for r, e in zip(rows[:200], expected[:200], strict=True))


def test_no_fast_path_for_a_model_it_cannot_reproduce(housing):
    from mlops_course.serve_runtime import fast_path, frame, probe_rows
    from mlops_course.train import train_model

    ridge, rows = train_model(housing[0], "ridge"), probe_rows(100, seed=5)
    path = fast_path(ridge)  # a dot product may round differently row by row: then no fast path
    assert path is None or np.array_equal(path.predict(rows), ridge.predict(frame(rows)))
    assert fast_path(object()) is None


# --- faults at start-up -------------------------------------------------------------------------------
def test_missing_model_refuses_to_start(tmp_path):
    from mlops_course.serve import start_api
    from mlops_course.serve_runtime import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"cannot load the model .*no MLmodel file") as e:
        start_api(str(tmp_path / "nowhere"), timeout=300)
    assert "\n" not in str(e.value)


def test_corrupt_model_refuses_to_start(model_dir, tmp_path):
    import shutil

    from mlops_course.serve import start_api
    from mlops_course.serve_runtime import ModelLoadError

    broken = shutil.copytree(model_dir, tmp_path / "broken")
    for f in broken.glob("model.*"):
        f.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load the model") as e:
        start_api(str(broken), timeout=300)
    assert "\n" not in str(e.value)


def test_unknown_runtime(model_dir):
    from mlops_course.serve_runtime import ModelLoadError, load_runtime

    with pytest.raises(ModelLoadError, match=r"unknown runtime 'tensorrt'; choose one of \['sklearn'\]"):
        load_runtime(str(model_dir), "tensorrt")


# --- schemathesis: generated requests from /openapi.json -------------------------------------------------
def test_schemathesis_finds_no_server_error_and_no_schema_violation(api):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate()

        check()


def test_a_missing_model_file_refuses_to_start(model_dir, tmp_path):
    import shutil

    from mlops_course.serve import start_api
    from mlops_course.serve_runtime import ModelLoadError

    gone = shutil.copytree(model_dir, tmp_path / "gone")
    (gone / "model.skops").unlink()
    with pytest.raises(ModelLoadError, match=r"cannot load the model .*: FileNotFoundError: the model file .*model.skops "
                                             r"is missing") as e:
        start_api(str(gone), timeout=300)
    assert "\n" not in str(e.value)


def test_serving_a_folder_never_imports_mlflow(model_dir):
    "MLflow costs seconds and tens of MB at start-up; the API reads the MLmodel file itself."
    import subprocess
    import sys

    code = ("import sys; from mlops_course.serve import create_app; from mlops_course.serve_runtime import load_runtime; "
            f"rt = load_runtime({str(model_dir)!r}); assert rt.fast is not None; print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]


def test_a_registry_in_a_sqlite_file_serves_models_and_runs_uris(housing, tmp_path, monkeypatch):
    "No tracking server: `models:/` and `runs:/` resolve through MLflow reading the sqlite file (week 09's lesson)."
    import mlflow

    from mlops_course.config import get_settings
    from mlops_course.serve_runtime import load_sklearn
    from mlops_course.tracking import trusted_types

    df, pipeline = housing
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLOPS_COURSE_TRACKING_URI", store)
    get_settings.cache_clear()
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    exp = client.create_experiment("serve-sqlite", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "val_rmse", 123.0)
    client.set_terminated(run.info.run_id)
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)  # also sets MLFLOW_REGISTRY_URI, which set_registry_uri(None) leaves behind
    try:
        mlflow.set_experiment(experiment_id=exp)  # an experiment another test of this process made active: not ours
        with mlflow.start_run(run_id=run.info.run_id):
            mlflow.sklearn.log_model(pipeline, name="model", serialization_format="skops",
                                     skops_trusted_types=trusted_types(pipeline))
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "housing").version
        client.set_registered_model_alias("housing", "champion", version)
        for uri in ("models:/housing@champion", f"models:/housing/{version}", f"runs:/{run.info.run_id}/model"):
            model, info = load_sklearn(uri)
            assert (model.predict(df[FEATURES].head(50)) == pipeline.predict(df[FEATURES].head(50))).all(), uri
            assert info.run_id == run.info.run_id and info.metrics == {"val_rmse": 123.0}, (uri, info)
        _, champion = load_sklearn("models:/housing@champion")
        assert (champion.name, champion.version, champion.alias) == ("housing", str(version), "champion")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        get_settings.cache_clear()
