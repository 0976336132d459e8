"""Start and stop times of the MLflow servers of weeks 5 and 6, through the course's service handle.

    .venv/bin/python benchmarks/bench_mlflow_servers.py              # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_mlflow_servers.py --no-record

Steps, in a fresh workspace: the tracking server's first start (creates the sqlite tables), its stop, a second
start on the same stores, one logged run with a model, registering it, the scoring server's start on
models:/bench@champion, one /invocations round trip, and stopping both. These are the waits a learner sits through.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from results import record as append_section  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def timed(results: list, label: str, fn):
    t = time.perf_counter()
    out = fn()
    results.append((label, time.perf_counter() - t))
    print(f"{label:<32} {results[-1][1]:6.1f} s", flush=True)
    return out


def run() -> list[tuple[str, float]]:
    os.environ["MLOPS_COURSE_WORKSPACE"] = tempfile.mkdtemp(prefix="bench-mlflow-")
    from mlops_course.config import get_settings

    get_settings.cache_clear()
    from mlops_course.data import TARGET, HousingMarket
    from mlops_course.features import split_data
    from mlops_course.registry import predict_http, register_run_model, serve_model, set_alias
    from mlops_course.tracking import connect, start_tracking_server, train_and_log

    r: list[tuple[str, float]] = []
    server = timed(r, "tracking server, first start", start_tracking_server)
    timed(r, "tracking server, stop", server.stop)
    server = timed(r, "tracking server, second start", start_tracking_server)
    train, val, _ = split_data(HousingMarket(seed=42).sample(n=2_000), seed=42)
    connect(experiment="bench")
    run_id = timed(r, "one run with its model", lambda: train_and_log(train, val, "tree", {"max_depth": 6}))
    version = timed(r, "register the model", lambda: register_run_model(run_id, "bench").version)
    set_alias("champion", version, "bench")
    scoring = timed(r, "scoring server start", lambda: serve_model("models:/bench@champion"))
    rows = val.drop(columns=TARGET).head(10)
    timed(r, "one /invocations (10 rows)", lambda: predict_http(scoring.url, rows))
    timed(r, "stop both servers", lambda: (scoring.stop(), server.stop()))
    return r


def record(results: list[tuple[str, float]]) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## bench_mlflow_servers — {now}\n",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} at the end. Fresh workspace.\n",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {label} | {s:.1f} |" for label, s in results],
        f"| total | {sum(s for _, s in results):.1f} |",
    ]
    append_section("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = p.parse_args()
    results = run()
    if not args.no_record:
        record(results)
    sys.exit(0)
