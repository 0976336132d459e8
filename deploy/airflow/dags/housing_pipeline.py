"""
### Housing pipeline (monthly)

`ingest → validate → train → evaluate → register`, one run per calendar month.

The tasks are built by `mlops_course.dags.housing_dag`: each is a thin wrapper around one plain,
idempotent function of `mlops_course.pipeline` that reads and writes `<workspace>/pipeline/<YYYY-MM>/`
and returns a small dict (paths, metrics) that travels to the next task through XCom.

* **Schedule**: a data-interval timetable. The run about a month has that month's first day as its
  logical date and starts when the month is over (the run about January starts on 1 February).
* **Month processed**: the month of the logical date (or the `month` param of a manual run).
* **Bad data**: `validate` fails for good (no retries); nothing downstream runs; the champion stays.
* **Promotion**: `register` promotes the new model only if it beats the champion on the same rows.
"""
from airflow.sdk import CronDataIntervalTimetable

from mlops_course.dags import housing_dag

dag = housing_dag(
    "housing_pipeline",
    root="pipeline",  # artifacts folder, relative to the course workspace (MLOPS_COURSE_WORKSPACE)
    schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
    tags=("week07",),
    doc_md=__doc__,
)
