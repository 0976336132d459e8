"""Tests of the week-07 pipeline: months (mlops_course.months), idempotent steps (pipeline), the local Airflow
(airflow_local), the DAG factory (dags) and the DAG files of deploy/airflow, run for real with dag.test()."""
import ast
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime

import pytest

from mlops_course import airflow_local, pipeline
from mlops_course.errors import CourseError


@pytest.fixture(scope="module")
def dags_folder(repo_root):
    return repo_root / "deploy" / "airflow" / "dags"


# --- months and paths ----------------------------------------------------------------------------
@pytest.mark.parametrize("value, key", [("2024-03", "2024-03"), ("2024-03-01", "2024-03"),
                                        ("2024-03-01T00:00:00+00:00", "2024-03"), (date(2024, 3, 9), "2024-03"),
                                        (datetime(2025, 12, 1, tzinfo=UTC), "2025-12")])
def test_month_key(value, key):
    assert pipeline.month_key(value) == key


@pytest.mark.parametrize("bad", ["March", "2024-13", "24-03", "", None])
def test_month_key_rejects_garbage(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        pipeline.month_key(bad)


def test_month_index():
    assert [pipeline.month_index(m) for m in ("2024-01", "2024-07", "2025-01")] == [0, 6, 12]
    with pytest.raises(ValueError, match="before 2024-01"):
        pipeline.month_index("2023-12")


def test_roots(workspace):
    assert pipeline.pipeline_root() == workspace / "pipeline"
    assert pipeline.pipeline_root("other") == workspace / "other"
    assert pipeline.pipeline_root(workspace / "abs") == workspace / "abs"
    assert pipeline.month_dir("2024-02").is_dir()


# --- the steps --------------------------------------------------------------------------------------
def test_steps_need_their_inputs(workspace):
    with pytest.raises(FileNotFoundError, match="run the `ingest` step"):
        pipeline.validate("2024-01")
    with pytest.raises(FileNotFoundError, match="run the `validate` step"):
        pipeline.train("2024-01")
    with pytest.raises(FileNotFoundError, match="run the `evaluate` step"):
        pipeline.register_if_better("2024-01")
    with pytest.raises(CourseError, match="run the `train` step"):
        pipeline.evaluate_month("2024-01")


def test_run_pipeline_is_idempotent_and_json(workspace):
    first = pipeline.run_pipeline("2024-01", n_rows=600)
    files = {p.name: p.read_bytes() for p in pipeline.month_dir("2024-01").iterdir() if p.suffix == ".json"}
    second = pipeline.run_pipeline("2024-01", n_rows=600)
    assert list(first) == list(pipeline.STEPS)
    for step in pipeline.STEPS:
        assert json.loads(json.dumps(first[step])) == first[step], f"{step} result is not JSON-serialisable"
    assert first["evaluate"] == second["evaluate"]
    assert first["register"]["promoted"] and second["register"]["promoted"]
    assert {p.name: p.read_bytes() for p in pipeline.month_dir("2024-01").iterdir() if p.suffix == ".json"} == files
    names = {p.name for p in pipeline.month_dir("2024-01").iterdir()}
    assert {"raw.parquet", "validated.parquet", "test.parquet", "model.skops", "metrics.json", "decision.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")], "temporary files left behind"
    assert first["evaluate"]["rows_test"] == 120 and 0 < first["evaluate"]["r2"] < 1


def test_champion_gate(workspace):
    pipeline.run_pipeline("2024-01", n_rows=600)
    champ = json.loads((pipeline.pipeline_root() / "champion.json").read_text())
    assert champ["month"] == "2024-01"
    feb = pipeline.run_pipeline("2024-02", n_rows=600)["register"]
    assert feb["champion_rmse"] is not None and "vs champion (2024-01)" in feb["reason"]
    after = json.loads((pipeline.pipeline_root() / "champion.json").read_text())
    assert after["month"] == ("2024-02" if feb["candidate_rmse"] < feb["champion_rmse"] else "2024-01")
    # an impossible bar keeps the champion whatever the candidate does
    pipeline.run_pipeline("2024-03", n_rows=600)
    before = (pipeline.pipeline_root() / "champion.json").read_text()
    pipeline.ingest("2024-04", n_rows=600)
    pipeline.validate("2024-04"), pipeline.train("2024-04"), pipeline.evaluate_month("2024-04")
    d = pipeline.register_if_better("2024-04", min_improvement=0.99)
    assert not d["promoted"]
    assert (pipeline.pipeline_root() / "champion.json").read_text() == before


def test_validate_rejects_a_broken_batch(workspace):
    from mlops_course.validate import DataValidationError
    pipeline.ingest("2024-07", n_rows=600, scenario="unit_bug")
    with pytest.raises(DataValidationError, match="median_income"):
        pipeline.validate("2024-07")
    assert not (pipeline.month_dir("2024-07") / "validated.parquet").exists()


@pytest.mark.parametrize("module", ["months", "pipeline", "airflow_local", "dags", "dags_tracking", "pipeline_tracking"])
def test_import_does_not_import_airflow(module):
    "Airflow reads its configuration when first imported: importing the library must not do it before setup_airflow."
    code = f"import sys, mlops_course.{module}; sys.exit('airflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_course_errors_share_the_root():
    from mlops_course.months import MonthError
    for err in (MonthError, pipeline.MissingArtifactError, airflow_local.AirflowSetupError, airflow_local.DagImportError):
        assert issubclass(err, CourseError), err
    with pytest.raises(CourseError, match="YYYY-MM"):
        pipeline.month_key("March")


def test_run_month():
    from mlops_course.dags import run_month
    assert run_month({}, datetime(2024, 2, 1, tzinfo=UTC)) == "2024-02"
    assert run_month({"month": None}, None, datetime(2024, 1, 3, tzinfo=UTC)) == "2023-12"
    assert run_month({"month": "2024-05"}, datetime(2024, 2, 1, tzinfo=UTC)) == "2024-05"


def test_dag_files_share_one_factory_and_never_import_each_other(dags_folder):
    files = sorted(dags_folder.glob("*.py"))
    assert {f.name for f in files} == {"housing_pipeline.py", "housing_pipeline_tracked.py", "housing_retraining.py"}
    factories = {"mlops_course.dags", "mlops_course.retrain_flow"}  # the monthly pipeline's, week 12's retraining
    for f in files:
        imported = {n.module for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.ImportFrom)}
        assert imported & factories, f"{f.name} does not build its DAG with a factory of {sorted(factories)}"
        assert not any(m and m.split(".")[-1] in {g.stem for g in files} for m in imported), f"{f.name} imports a DAG file"
        assert len(f.read_text().splitlines()) < 45, f"{f.name} should only declare its DAG"


# --- import errors ----------------------------------------------------------------------------------
def test_format_import_errors():
    tb = textwrap.dedent('''\
        Traceback (most recent call last):
          File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
          File "/x/dags/bad.py", line 11, in <module>
            undefined_name
        NameError: name 'undefined_name' is not defined
        ''')
    assert airflow_local.format_import_errors({"/x/dags/bad.py": tb}) == \
        "bad.py, line 11: NameError: name 'undefined_name' is not defined"


def test_exceptions_are_extracted_from_a_log():
    log = textwrap.dedent('''\
        2026-01-01T00:00:00Z [error    ] Task failed with exception     [task]
        Traceback (most recent call last):
          File "/x/dags/housing_pipeline.py", line 45, in validate
            raise AirflowFailException(str(e)) from None
        airflow.sdk.exceptions.AirflowFailException: batch 2024-07 breaks the housing schema (1 problem(s)):
        - column 'median_income', rule less_than_or_equal_to(15.0001): 390 failing rows
        2026-01-01T00:00:01Z [info     ] next
        ''')
    (msg,) = airflow_local._exceptions(log)
    assert msg.startswith("AirflowFailException: batch 2024-07") and "390 failing rows" in msg and "next" not in msg


def test_setup_airflow_needs_a_fresh_process(monkeypatch, workspace):
    monkeypatch.setitem(sys.modules, "airflow", object())
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")
    with pytest.raises(airflow_local.AirflowSetupError, match="Restart the kernel"):
        airflow_local.setup_airflow("t", dags_folder=workspace / "dags")


# --- the DAG, for real (own process: Airflow reads its configuration once) -----------------------------
DAG_SCRIPT = '''
import json, sys
from mlops_course.airflow_local import get_dag, run_dag, setup_airflow, timetable_runs
af = setup_airflow("test", dags_folder=sys.argv[1])
dag = get_dag("housing_pipeline")
tracked = get_dag("housing_pipeline_tracked")
first = timetable_runs(dag.timetable, dag.start_date, n=1)[0]
out = {"tasks": [t.task_id for t in dag.topological_sort()], "catchup": dag.catchup, "tags": sorted(dag.tags),
       "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
       "retries": {t.task_id: t.retries for t in dag.tasks}, "doc": bool(dag.doc_md),
       "timetable": type(dag.timetable).__name__, "fileloc": dag.fileloc,
       "first_run": {k: v.isoformat() for k, v in first.items()},
       "tracked_tasks": [t.task_id for t in tracked.topological_sort()],
       "same_schedule": type(tracked.timetable).__name__, "tracked_fileloc": tracked.fileloc}
if len(sys.argv) > 2:
    ok = run_dag(dag, first["logical_date"], conf={"n_rows": 600})
    bad = run_dag(dag, "2024-07", conf={"n_rows": 600, "scenario": "unit_bug"})
    out.update(ok_state=ok.state, ok_tasks=ok.tasks, promoted=ok.results["register"]["promoted"],
               ingested=ok.results["ingest"]["month"],
               bad_state=bad.state, bad_tasks=bad.tasks, bad_error=bad.errors.get("validate", ""))
print("RESULT" + json.dumps(out))
'''


def _run_dag_script(workspace, dags_folder, *extra, timeout=900):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["MLOPS_COURSE_WORKSPACE"] = str(workspace)
    r = subprocess.run([sys.executable, "-c", DAG_SCRIPT, str(dags_folder), *extra], env=env, capture_output=True,
                       text=True, timeout=timeout)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    assert r.returncode == 0 and line, f"DAG script failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(line[-1][len("RESULT"):])


@pytest.mark.slow
def test_dag_file_loads_and_runs_with_dag_test(workspace, dags_folder):
    out = _run_dag_script(workspace, dags_folder, "run")
    assert out["tasks"] == list(pipeline.STEPS)
    assert out["upstream"] == {"ingest": [], "validate": ["ingest"], "train": ["validate"], "evaluate": ["train"],
                               "register": ["evaluate"]}
    assert out["catchup"] is False and "housing" in out["tags"] and out["doc"]
    # the run about January starts when January is over, and ingests January
    assert out["timetable"] == out["same_schedule"] == "CronDataIntervalTimetable"
    assert out["first_run"] == {"starts at": "2024-02-01T00:00:00+00:00", "logical_date": "2024-01-01T00:00:00+00:00",
                                "data_interval_start": "2024-01-01T00:00:00+00:00",
                                "data_interval_end": "2024-02-01T00:00:00+00:00"}
    assert out["ingested"] == "2024-01"
    assert out["fileloc"] == str(dags_folder / "housing_pipeline.py")
    assert out["tracked_fileloc"] == str(dags_folder / "housing_pipeline_tracked.py")
    assert out["tracked_tasks"] == [*out["tasks"][:-1], "log_run", "register"]
    assert out["retries"]["validate"] == 0 and out["retries"]["train"] >= 1
    assert out["ok_state"] == "success" and set(out["ok_tasks"].values()) == {"success"}
    assert out["promoted"] is True
    assert out["bad_state"] == "failed"
    assert out["bad_tasks"]["validate"] == "failed" and out["bad_tasks"]["register"] == "upstream_failed"
    assert "median_income" in out["bad_error"]
    assert (workspace / "pipeline" / "2024-01" / "metrics.json").exists()
    assert (workspace / "airflow" / "test" / "airflow.db").exists()
