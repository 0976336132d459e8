"""Cost of the week-07 Airflow setup: import, `airflow db migrate` (fresh and repeated), DagBag, `dag.test()`.

    .venv/bin/python benchmarks/bench_airflow.py              # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_airflow.py --no-record

Runs in a fresh interpreter with a private temporary workspace (Airflow reads its configuration once per
process, so the measurement must not share a process with anything else). Target: the week-07 lesson
and lab each run in FAST mode in about a minute and a half; the numbers here say where that time goes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys, time
t0 = time.perf_counter()
from mlops_course import airflow_local as af
from mlops_course.config import get_settings

out = {}
home = get_settings().workspace / "airflow" / "bench"
env = af.airflow_env(home, af.default_dags_folder())
out["db_migrate_fresh_s"] = af.migrate_db(env)
(home / ".db_migrated").unlink()
out["db_migrate_again_s"] = af.migrate_db(env)
t = time.perf_counter(); af.setup_airflow("bench"); out["setup_airflow_s"] = time.perf_counter() - t
t = time.perf_counter(); dag = af.get_dag("housing_pipeline"); out["dagbag_s"] = time.perf_counter() - t
for i, month in enumerate(["2024-01", "2024-02"]):
    t = time.perf_counter(); r = af.run_dag(dag, month, conf={"n_rows": 1000})
    out[f"dag_test_{'first' if i == 0 else 'second'}_s"] = time.perf_counter() - t
    assert r.state == "success", r
out["total_s"] = time.perf_counter() - t0
print("RESULT" + json.dumps(out))
"""


def measure() -> dict:
    "Run the probe in a fresh interpreter with an empty workspace."
    with tempfile.TemporaryDirectory() as ws:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["MLOPS_COURSE_WORKSPACE"] = ws
        r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=ROOT, timeout=900)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode or not line:
        raise SystemExit(f"benchmark failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT"):])


def section(res: dict) -> str:
    "The RESULTS.md section for `res`."
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    rows = "\n".join(f"| {k.removesuffix('_s').replace('_', ' ')} | {v:.1f} |" for k, v in res.items())
    return (f"\n## bench_airflow — {now} UTC\n\nMachine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, load average {load:.1f} at the end. Fresh interpreter, "
            f"empty workspace, 1,000-row batches.\n\n| step | seconds |\n|---|---:|\n{rows}\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()
    res = measure()
    text = section(res)
    print(text)
    if not args.no_record:
        record(text)
