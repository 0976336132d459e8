"""
### Housing pipeline, tracked (monthly)

`ingest → validate → train → evaluate → log_run → register`, once a month.

The week-07 steps, plus:

* **log_run**: one MLflow run per DAG run and month in experiment `housing-pipeline`, tagged with
  `dag_id`, `dag_run_id`, `logical_date` and `month`; parameters, test metrics and the model.
* **register**: registers the run's model, points `@challenger` at it and applies the champion/challenger
  gate on the month's held-out rows. A rejected model is a normal outcome: the task succeeds and logs
  `not promoted: <numbers>`; the champion stays.

The tracking server is found through `MLOPS_COURSE_TRACKING_URI` (set it in the workers' environment).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from mlops_course import pipeline

ROOT = "pipeline_tracked"  # artifacts folder, relative to the course workspace (MLOPS_COURSE_WORKSPACE)


@dag(
    dag_id="housing_pipeline_tracked",
    schedule="@monthly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "mlops-course", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={"month": None, "n_rows": 2_000, "scenario": "none", "kind": "ridge", "min_improvement": 0.02},
    tags=["housing", "week08", "mlflow"],
    doc_md=__doc__,
)
def housing_pipeline_tracked():
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
    def log_run(metrics: dict, dag_run=None, logical_date=None) -> dict:
        from mlops_course import pipeline_tracking as pt
        tags = pt.run_tags(dag_run.dag_id, dag_run.run_id, logical_date, metrics["month"])
        return pt.log_month(metrics["month"], tags, root=ROOT)

    @task
    def register(logged: dict, params=None) -> dict:
        from mlops_course import pipeline_tracking as pt
        return pt.promote_month(logged, root=ROOT, min_improvement=float(params["min_improvement"]))

    register(log_run(evaluate(train(validate(ingest())))))


housing_pipeline_tracked()
