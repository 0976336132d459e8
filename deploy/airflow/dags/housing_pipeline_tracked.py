"""
### Housing pipeline, tracked (monthly)

`ingest → validate → train → evaluate → log_run → register`, one run per calendar month.

The week-07 DAG (same factory, same schedule, same first four tasks), ending with tracking instead of a
local champion file (`mlops_course.dags_tracking.track_and_register`):

* **log_run**: one MLflow run per DAG run and month in experiment `housing-pipeline`, tagged with
  `dag_id`, `dag_run_id`, `logical_date` and `month`; parameters, test metrics and the model.
* **register**: registers the run's model, points `@challenger` at it and applies the champion/challenger
  gate on the month's held-out rows. A rejected model is a normal outcome: the task succeeds and logs
  `not promoted: <numbers>`; the champion stays.

The tracking server is found through `MLOPS_COURSE_TRACKING_URI` (set it in the workers' environment).
"""
from airflow.sdk import CronDataIntervalTimetable

from mlops_course.dags import housing_dag
from mlops_course.dags_tracking import track_and_register

ROOT = "pipeline_tracked"  # artifacts folder, relative to the course workspace (MLOPS_COURSE_WORKSPACE)

dag = housing_dag(
    "housing_pipeline_tracked",
    root=ROOT,
    schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
    finish=track_and_register(ROOT),
    params={"min_improvement": 0.02},
    tags=("week08", "mlflow"),
    doc_md=__doc__,
)
