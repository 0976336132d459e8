"""
### Housing pipeline (monthly)

`ingest → validate → train → evaluate → register`, once a month.

Every task is a thin wrapper around one plain, idempotent function of `mlops_course.pipeline`:
it reads and writes `<workspace>/pipeline/<YYYY-MM>/` and returns a small dict (paths, metrics)
that travels to the next task through XCom.

* **Month processed**: the run's logical date (or the `month` param of a manual run).
* **Bad data**: `validate` fails for good (no retries); nothing downstream runs; the champion stays.
* **Promotion**: `register` promotes the new model only if it beats the champion on the same rows.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from mlops_course import pipeline

ROOT = "pipeline"  # artifacts folder, relative to the course workspace (MLOPS_COURSE_WORKSPACE)


@dag(
    dag_id="housing_pipeline",
    schedule="@monthly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),  # fixed: never datetime.now()
    catchup=False,  # past months are filled on purpose, with `airflow backfill create`
    max_active_runs=1,  # one month at a time: each run may replace the champion
    default_args={"owner": "mlops-course", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={"month": None, "n_rows": 2_000, "scenario": "none", "kind": "ridge", "min_improvement": 0.0},
    tags=["housing", "week07"],
    doc_md=__doc__,
)
def housing_pipeline():
    @task
    def ingest(params=None, logical_date=None, dag_run=None) -> dict:
        month = params["month"] or logical_date or dag_run.run_after
        return pipeline.ingest(month, ROOT, n_rows=int(params["n_rows"]), scenario=params["scenario"])

    @task(retries=0)  # bad data is not transient: retrying cannot fix it
    def validate(raw: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_course.validate import DataValidationError
        try:
            return pipeline.validate(raw["month"], ROOT)
        except DataValidationError as e:
            raise AirflowFailException(str(e)) from None

    @task
    def train(checked: dict, params=None) -> dict:
        return pipeline.train(checked["month"], ROOT, kind=params["kind"])

    @task
    def evaluate(trained: dict) -> dict:
        return pipeline.evaluate(trained["month"], ROOT)

    @task
    def register(metrics: dict, params=None) -> dict:
        return pipeline.register_if_better(metrics["month"], ROOT, min_improvement=float(params["min_improvement"]))

    register(evaluate(train(validate(ingest()))))


housing_pipeline()
