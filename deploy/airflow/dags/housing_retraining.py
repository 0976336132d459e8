"""
### Housing retraining (monthly)

`check → retrain → gate → promote`, one run per calendar month, for the strategy chosen in week 12:
**performance-triggered** retraining (`mlops_course.retrain.PerformanceTrigger`).

Built by `mlops_course.retrain_flow.retraining_dag` (the week-07 schedule and month resolution), each task a
thin wrapper around one step of `mlops_course.retrain_flow`:

* **check** (short-circuit): once the labels of month `t − label_delay` have arrived, scores the champion
  on them; retrain only if its RMSE exceeds the RMSE it had at promotion by more than `tolerance`. When
  the answer is no, the other tasks are skipped and the run succeeds. The answer and its reason are
  logged as an MLflow run (experiment `housing-retraining`) tagged with the DAG run.
* **retrain**: a challenger trained on the `window` labelled months before the newest one, logged in
  the same MLflow run, registered as a new version of `housing` and aliased `@challenger`.
* **gate**: week 06's `promotion_gate` on the newest labelled month.
* **promote**: week 06's `promote`: `@champion` moves only if the challenger won. An API started with
  the extension `mlops_course.retrain:follow_alias` then serves the new champion within seconds.

The tracking server is found through `MLOPS_COURSE_TRACKING_URI` (set it in the workers' environment).
"""
from airflow.sdk import CronDataIntervalTimetable

from mlops_course.retrain_flow import retraining_dag

dag = retraining_dag(
    "housing_retraining",
    schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
    params={"strategy": "performance", "strategy_args": {"tolerance": 0.08}, "label_delay": 1},
    tags=("week12", "mlflow"),
    doc_md=__doc__,
)
