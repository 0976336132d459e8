"""Retraining against real services: the in-memory gate decides as week 06's registry gate does, and the API
follows the champion alias (reload on alias change) without failing a request during a promotion."""
from __future__ import annotations

import math
import threading
import time

import httpx
import pytest

from mlops_course.schema import FEATURES
from mlops_course.simulator import HousingMarket

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]
SEED = 12


@pytest.fixture(scope="module")
def registry(module_workspace):
    "A tracking server with two versions of `housing`: v1 a ridge (the champion), v2 a better gradient boosting."
    from mlops_course.features import split_data
    from mlops_course.registry import register_run_model, set_alias
    from mlops_course.tracking import connect, start_tracking_server, train_and_log

    with start_tracking_server() as server:
        train, val, _ = split_data(HousingMarket(seed=SEED).sample(n=1_200), seed=SEED)
        connect(experiment="test-retrain")
        v1 = register_run_model(train_and_log(train, val, "ridge")).version
        v2 = register_run_model(train_and_log(train, val, "hgb", {"max_iter": 60})).version
        set_alias("champion", v1)
        yield server, str(v1), str(v2)


def test_in_memory_gate_decides_as_the_registry_gate(registry):
    from mlops_course.promotion import promotion_gate
    from mlops_course.registry import load_model, set_alias
    from mlops_course.retrain import gate

    _, v1, v2 = registry
    batch = HousingMarket(seed=SEED).batch(month=2, n=600)
    set_alias("challenger", v2)
    for bar in (0.02, 0.9):
        ours = gate(load_model("champion"), load_model("challenger"), batch, bar, versions=(v1, v2))
        theirs = promotion_gate(batch, bar)
        assert (ours.promote, ours.challenger_version, ours.champion_version) == \
               (theirs.promote, theirs.challenger_version, theirs.champion_version)
        assert math.isclose(ours.challenger_rmse, theirs.challenger_rmse, rel_tol=1e-9)
        assert math.isclose(ours.champion_rmse, theirs.champion_rmse, rel_tol=1e-9)
    assert promotion_gate(batch, 0.02).promote and not promotion_gate(batch, 0.9).promote


def test_api_follows_the_champion_alias_without_failing_a_request(registry):
    from mlops_course.promotion import promote, promotion_gate
    from mlops_course.registry import aliases, model_uri, set_alias
    from mlops_course.serve import start_api

    _, v1, v2 = registry
    set_alias("champion", v1)
    df = HousingMarket(seed=SEED).batch(month=1, n=50)
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in df[FEATURES].iloc[0].items()}
    seen, stop = [], threading.Event()
    with start_api(model_uri("champion"), extensions=["mlops_course.retrain:follow_alias"], timeout=300,
                   env={"MLOPS_COURSE_FOLLOW_POLL_SECONDS": "0.5"}) as api, \
            httpx.Client(base_url=api.url, timeout=30, trust_env=False) as client:
        assert client.get("/model").json()["version"] == v1

        def load():  # one client, back to back: its answers are in the order the server gave them
            while not stop.is_set():
                try:
                    r = client.post("/predict", json=row)
                    seen.append((r.status_code, r.json().get("model_version")))
                except httpx.HTTPError as e:
                    seen.append((type(e).__name__, None))

        traffic = threading.Thread(target=load)
        traffic.start()
        time.sleep(1.0)
        set_alias("challenger", v2)
        assert promote(promotion_gate(HousingMarket(seed=SEED).batch(month=2, n=600), 0.02)), "v2 must win"
        assert aliases()["champion"] == v2
        deadline = time.monotonic() + 60
        while client.get("/model").json()["version"] != v2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        traffic.join(30)
        card = client.get("/model").json()
        log = api.log_path.read_text()
    assert card["version"] == v2 and card["alias"] == "champion", card
    failed = [s for s in seen if s[0] != 200]
    assert not failed, f"{len(failed)} of {len(seen)} requests failed during the promotion: {failed[:5]}"
    versions = [v for _, v in seen]
    assert versions[0] == v1 and versions[-1] == v2
    switch = versions.index(v2)
    assert set(versions[:switch]) == {v1} and set(versions[switch:]) == {v2}, "the model never switches back"
    assert len(seen) > 20, f"only {len(seen)} requests: the traffic did not run"
    assert f"reloaded v{v1} -> v{v2}" in log, log[-2000:]


DAG_SCRIPT = '''
import json, os, sys
import mlflow
from mlops_course.airflow_local import get_dag, run_dag, setup_airflow
from mlops_course.pipeline_tracking import runs_of_dag_run
from mlops_course.registry import aliases
from mlops_course.retrain_flow import EXPERIMENT, champion_state
from mlops_course.tracking import ENV_VAR, start_tracking_server
with start_tracking_server() as server:
    os.environ[ENV_VAR] = server.url
    setup_airflow("test", dags_folder=sys.argv[1])
    dag = get_dag("housing_retraining")
    conf = {"n_rows": 600, "scenario": "unit_bug", "strategy_args": {"tolerance": 0.15}}
    runs = {m: run_dag(dag, m, conf=conf) for m in ("2024-03", "2024-05", "2024-09")}
    logged = {m: runs_of_dag_run(r.run_id, EXPERIMENT) for m, r in runs.items()}
    out = {"tasks": [t.task_id for t in dag.topological_sort()],
           "states": {m: r.state for m, r in runs.items()}, "tasks_by_month": {m: r.tasks for m, r in runs.items()},
           "promoted": {m: (r.results.get("promote") or {}).get("promoted") for m, r in runs.items()},
           "why": {m: (l["tags.check"].iloc[0] if len(l) else None) for m, l in logged.items()},
           "retrain_metric": {m: (float(l["metrics.retrain"].iloc[0]) if len(l) else None) for m, l in logged.items()},
           "aliases": aliases(), "champion": champion_state()}
print("RESULT" + json.dumps(out))
'''


def test_retraining_dag_runs_with_dag_test_and_logs_to_mlflow(workspace, repo_root):
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["MLOPS_COURSE_WORKSPACE"] = str(workspace)
    r = subprocess.run([sys.executable, "-c", DAG_SCRIPT, str(repo_root / "deploy" / "airflow" / "dags")], env=env,
                       capture_output=True, text=True, timeout=900)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    assert r.returncode == 0 and line, f"DAG script failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = json.loads(line[-1][len("RESULT"):])
    assert out["tasks"] == ["check", "retrain", "gate", "promote"]
    assert set(out["states"].values()) == {"success"}, out["states"]
    assert out["why"]["2024-03"] == "no champion yet" and out["promoted"]["2024-03"] is True
    quiet = out["tasks_by_month"]["2024-05"]
    assert quiet == {"check": "success", "retrain": "skipped", "gate": "skipped", "promote": "skipped"}, quiet
    assert out["retrain_metric"] == {"2024-03": 1.0, "2024-05": 0.0, "2024-09": 1.0}
    assert out["why"]["2024-09"].startswith("RMSE ") and out["promoted"]["2024-09"] is True
    assert out["aliases"]["champion"] == out["champion"]["version"] == "2" and "previous" in out["aliases"]
    assert out["champion"]["train_months"] == [4, 5, 6] and out["champion"]["gate_month"] == 7
