"""Experiment tracking against a real `mlflow server`: runs, models, sweeps, fail-fast errors, and a crash mid-sweep."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from mlops_course import tracking
from mlops_course.config import get_settings
from mlops_course.data import FEATURES, HousingMarket
from mlops_course.errors import CourseError
from mlops_course.features import split_data
from mlops_course.loopback import free_port, http_ok
from mlops_course.sweep import best_run, run_sweep, sweep_runs
from mlops_course.tracking import (
    ENV_VAR,
    TrackingServerDown,
    UntrustedModelError,
    connect,
    mlflow_command,
    model_requirements,
    plot_sweep,
    server_up,
    start_tracking_server,
    tracking_server_command,
    tracking_uri,
    train_and_log,
    trusted_types,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]
SEED = 42


@pytest.fixture(scope="module")
def ws(module_workspace):
    "One workspace for the module (a tracking server takes seconds to start: it is shared by the tests)."
    return module_workspace


@pytest.fixture(scope="module")
def server(ws):
    "The running tracking server, in a dict so that the crash test can replace it after a restart."
    holder = {"svc": start_tracking_server()}
    yield holder
    holder["svc"].stop()
    assert not holder["svc"].running


@pytest.fixture(scope="module")
def splits():
    return split_data(HousingMarket(seed=SEED).sample(n=1_500), seed=SEED)


# --- finding the server ---------------------------------------------------------------------------------------------


def test_no_server_no_uri(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(tracking, "_CURRENT", {})
    with pytest.raises(
        TrackingServerDown, match=f"start one with start_tracking_server\\(\\) or set {ENV_VAR}"
    ):
        tracking_uri()


def test_environment_variable_wins(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "http://tracking.example:5000")
    get_settings.cache_clear()  # settings are read once per process
    try:
        assert tracking_uri() == "http://tracking.example:5000"
    finally:
        monkeypatch.delenv(ENV_VAR)
        get_settings.cache_clear()


def test_one_mlflow_command_for_every_server(tmp_path):
    cmd = tracking_server_command(tmp_path)
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert cmd[-6:] == mlflow_command()[-6:] == ["--host", "{host}", "--port", "{port}", "--workers", "1"]
    assert f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}" in cmd


def test_server_up_and_errors_are_course_errors():
    assert server_up("sqlite:///x.db") and not server_up(f"http://127.0.0.1:{free_port()}")
    assert issubclass(TrackingServerDown, CourseError) and issubclass(TrackingServerDown, ConnectionError)
    assert issubclass(UntrustedModelError, CourseError) and issubclass(UntrustedModelError, ValueError)


def test_requirements_are_exact_pins():
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in model_requirements()]
    assert {r.name for r in reqs} == {"mlflow", "scikit-learn", "skops", "pandas", "numpy"}
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in reqs)


def test_untrusted_types_are_refused():
    class Foreign:
        pass

    with pytest.raises(UntrustedModelError, match="review them before trusting them"):
        trusted_types({"x": Foreign()})


def test_server_down_is_one_clear_message():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingServerDown) as e:
        connect(uri)
    assert str(e.value) == (
        f"no tracking server at {uri}: start one with start_tracking_server() or set {ENV_VAR}"
    )


def test_client_fails_fast_by_default(monkeypatch):
    for k in tracking.CLIENT_ENV:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(TrackingServerDown):
        connect(f"http://127.0.0.1:{free_port()}")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_user_settings_are_kept(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    with pytest.raises(TrackingServerDown):
        connect(f"http://127.0.0.1:{free_port()}")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"


def test_connect_points_the_registry_at_the_same_store(tmp_path, monkeypatch):
    "An MLFLOW_REGISTRY_URI left in the environment (set_registry_uri writes it) must not take the registrations."
    import mlflow

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        assert connect(store) == store
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (store, store)
        connect(store, experiment="beside")  # its artifacts go beside the database, not to ./mlruns
        assert mlflow.get_experiment_by_name("beside").artifact_location == (tmp_path / "artifacts").as_uri()
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


# --- the server -----------------------------------------------------------------------------------------------------


def test_server_uses_the_workspace(server, ws):
    svc = server["svc"]
    assert svc.running and http_ok(svc.url + "/health")
    assert tracking_uri() == svc.url and svc.host == "127.0.0.1"
    assert (ws / "mlflow" / "mlflow.db").is_file()
    assert svc.log_path == ws / "logs" / "mlflow-tracking.log"
    assert connect() == svc.url


# --- runs -----------------------------------------------------------------------------------------------------------


def test_train_and_log_records_everything(server, splits):
    import mlflow
    import numpy as np

    from mlops_course.train import X_y, train_model

    connect(experiment="test-runs")
    run_id = train_and_log(splits.train, splits.val, "tree", {"max_depth": 5})
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model_kind"] == "tree" and run.data.params["max_depth"] == "5"
    assert run.data.params["train_rows"] == str(len(splits.train))
    for m in ("val_rmse", "val_mae", "val_r2", "val_mape", "train_rmse"):
        assert m in run.data.metrics
    client = mlflow.MlflowClient()
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/residuals.png"]
    model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    X_val, _ = X_y(splits.val)
    expected = train_model(splits.train, "tree", max_depth=5).predict(X_val)
    np.testing.assert_allclose(model.predict(X_val), expected)
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert [c.name for c in info.signature.inputs] == FEATURES
    assert info.flavors["sklearn"]["serialization_format"] == "skops"


def test_sweep_and_best_run(server, splits):
    grid = [{"max_depth": d} for d in (2, 4, 8)]
    seen = []
    sweep_id = run_sweep(
        splits.train,
        splits.val,
        grid,
        kind="tree",
        experiment="test-sweep",
        on_run=lambda i, rid: seen.append(rid),
    )
    runs = sweep_runs(sweep_id, experiment="test-sweep")
    assert len(runs) == 3 and set(runs["run_id"]) == set(seen)
    assert (runs["tags.mlflow.parentRunId"] == sweep_id).all()
    assert list(runs["metrics.val_rmse"]) == sorted(runs["metrics.val_rmse"])
    best = best_run(sweep_id, experiment="test-sweep")
    assert best["metrics.val_rmse"] == runs["metrics.val_rmse"].min()
    fig = plot_sweep(runs, x="max_depth", hue=None)
    assert fig.axes[0].get_title() == "Sweep: RMSE against max_depth"
    assert fig.axes[0].get_ylabel() == "RMSE (k$)"


def test_unknown_experiment(server):
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        sweep_runs(experiment="nope")


def test_crash_mid_sweep_keeps_finished_runs(server, splits):
    "SIGKILL the server during the third run: one clear error; after a restart every finished run is intact."
    import mlflow

    grid = [{"max_depth": d} for d in (2, 3, 4, 5, 6, 7)]
    finished = []

    def on_run(i, run_id):
        finished.append(run_id)
        if i == 1:
            threading.Timer(0.2, server["svc"].kill).start()

    with pytest.raises(TrackingServerDown) as e:
        run_sweep(splits.train, splits.val, grid, kind="tree", experiment="test-crash", on_run=on_run)
    assert len(finished) >= 2
    msg = str(e.value)
    assert f"stopped answering during run {len(finished) + 1} of 6" in msg
    assert f"the {len(finished)} runs finished before are safe" in msg
    assert not server["svc"].running

    server["svc"] = start_tracking_server()  # same workspace, same backend store
    connect()
    client = mlflow.MlflowClient()
    for run_id in finished:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.metrics["val_rmse"] > 0
        assert mlflow.models.get_model_info(f"runs:/{run_id}/model").signature is not None
    assert set(finished) <= set(sweep_runs(experiment="test-crash")["run_id"])
