"""Tests of mlops_course.pipeline_tracking: run tags, one MLflow run per DAG run, the registry gate, the tracked DAG."""
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from mlops_course import pipeline
from mlops_course.pipeline_tracking import run_tags


def test_run_tags():
    t = run_tags("housing_pipeline_tracked", "scheduled__2024-03-01T00:00:00+00:00",
                 datetime(2024, 3, 1, tzinfo=UTC), "2024-03-01")
    assert t == {"dag_id": "housing_pipeline_tracked", "dag_run_id": "scheduled__2024-03-01T00:00:00+00:00",
                 "logical_date": "2024-03-01T00:00:00+00:00", "month": "2024-03"}
    assert run_tags("d", "r", None, "2024-03")["logical_date"] == ""
    assert all(isinstance(v, str) for v in t.values()), "MLflow tags are strings"
    with pytest.raises(ValueError, match="YYYY-MM"):
        run_tags("d", "r", None, "March")


@pytest.mark.slow
def test_log_and_gate_are_idempotent(workspace):
    import mlflow

    from mlops_course.pipeline_tracking import log_month, promote_month, runs_of_dag_run
    from mlops_course.registry import MODEL_NAME, aliases
    from mlops_course.tracking import start_tracking_server
    for m in ("2024-01", "2024-02"):
        pipeline.ingest(m, n_rows=600)
        pipeline.validate(m), pipeline.train(m), pipeline.evaluate_month(m)
    with start_tracking_server(workspace=workspace):
        jan_tags = run_tags("dag", "manual__jan", None, "2024-01")
        jan = log_month("2024-01", jan_tags)
        assert not jan["reused"]
        assert log_month("2024-01", jan_tags) == {**jan, "reused": True}, "a retry must reuse the MLflow run"
        d1 = promote_month(jan)
        assert d1["promoted"] and aliases()["champion"] == d1["version"]
        assert promote_month(jan)["version"] == d1["version"], "a retry must reuse the registry version"
        feb = log_month("2024-02", run_tags("dag", "manual__feb", None, "2024-02"))
        d2 = promote_month(feb, min_improvement=0.5)
        assert d2["promoted"] is False and d2["champion_rmse"] > 0 and d2["challenger_rmse"] > 0
        assert aliases() == {"challenger": d2["version"], "champion": d1["version"]}, "the champion must stay"
        runs = runs_of_dag_run("manual__jan")
        assert len(runs) == 1 and runs.loc[0, "tags.month"] == "2024-01"
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'")
        assert len(versions) == 2


DAG_SCRIPT = '''
import json, os, sys
from mlops_course.airflow_local import get_dag, run_dag, setup_airflow
from mlops_course.pipeline_tracking import runs_of_dag_run
from mlops_course.registry import aliases
from mlops_course.tracking import ENV_VAR, start_tracking_server
with start_tracking_server() as server:
    os.environ[ENV_VAR] = server.url
    setup_airflow("test", dags_folder=sys.argv[1])
    dag = get_dag("housing_pipeline_tracked")
    jan = run_dag(dag, "2024-01", conf={"n_rows": 600})
    feb = run_dag(dag, "2024-02", conf={"n_rows": 600, "min_improvement": 0.5})
    runs = runs_of_dag_run(jan.run_id)
    out = {"tasks": [t.task_id for t in dag.topological_sort()], "jan": jan.state, "feb": feb.state,
           "jan_promoted": jan.results["register"]["promoted"], "feb_promoted": feb.results["register"]["promoted"],
           "n_runs": len(runs), "month": runs.loc[0, "tags.month"], "aliases": aliases(),
           "versions": [jan.results["register"]["version"], feb.results["register"]["version"]],
           "logged": "not promoted" in feb.log.read_text()}
print("RESULT" + json.dumps(out))
'''


@pytest.mark.slow
def test_tracked_dag_runs_and_links(workspace, repo_root):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["MLOPS_COURSE_WORKSPACE"] = str(workspace)
    r = subprocess.run([sys.executable, "-c", DAG_SCRIPT, str(repo_root / "deploy" / "airflow" / "dags")], env=env, capture_output=True, text=True,
                       timeout=600)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    assert r.returncode == 0 and line, f"DAG script failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = json.loads(line[-1][len("RESULT"):])
    assert out["tasks"] == ["ingest", "validate", "train", "evaluate", "log_run", "register"]
    assert out["jan"] == out["feb"] == "success", "a rejected model must not fail the DAG run"
    assert out["jan_promoted"] is True and out["feb_promoted"] is False and out["logged"]
    assert out["n_runs"] == 1 and out["month"] == "2024-01"
    assert out["aliases"] == {"challenger": out["versions"][1], "champion": out["versions"][0]}
    assert (workspace / "pipeline_tracked" / "2024-02" / "metrics.json").exists()
