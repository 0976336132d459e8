"""Wall time of each step of the week 03 DVC flow and of the week 04 Dockerfile linter.

    .venv/bin/python benchmarks/bench_versioning.py             # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_versioning.py --n 4000 --no-record

Runs in a temporary workspace: init (git + dvc + remote), dvc add, a full `dvc repro` (three stages, each a fresh
Python process), a no-op repro, a params-only repro, reading dvc.lock and predicting what a change re-runs, time
travel (git + dvc checkout), push, and a pull after the cache is deleted; then `lint_dockerfile` on both
Dockerfiles of deploy/docker. Target: the week 03 lesson stays within 90 s in FAST mode on 2 cores, so the sum of
these steps should stay well under a minute.
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

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def timed(steps: list, name: str, fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    steps.append((name, time.perf_counter() - t))
    return out


def run(n: int) -> list[tuple[str, float]]:
    steps: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dvc-") as tmp:
        os.environ["MLOPS_COURSE_WORKSPACE"] = tmp
        from mlops_course import dockerfile as D
        from mlops_course import versioning as V
        from mlops_course.config import get_settings
        get_settings.cache_clear()
        p = timed(steps, "init_project (git init, dvc init, remote)", V.init_project)
        V.write_data_version(p, month=0, n=n)
        timed(steps, "dvc add + git commit", V.track, p, V.DATA_FILE, "month 0")
        V.write_params(p)
        V.write_pipeline(p, V.pipeline_stages())
        timed(steps, "dvc repro: 3 stages run", V.repro, p)
        timed(steps, "dvc repro: nothing changed", V.repro, p)
        timed(steps, "stages_rerun from dvc.lock", V.stages_rerun, p, ["train.params.max_iter"])
        files = ["dvc.yaml", "dvc.lock", "params.yaml", "metrics.json", "plots/predictions.csv", "data/.gitignore",
                 "models/.gitignore"]
        V.commit(p, "v1", *files, tag="v1")
        V.write_params(p, {**V.PARAMS, "train": {"model": "hgb", "params": {"max_iter": 200}}})
        timed(steps, "dvc repro: params changed (2 stages)", V.repro, p)
        V.commit(p, "v2", *files, tag="v2")
        timed(steps, "dvc metrics diff", V.metrics_diff, p, "v1", "v2")
        timed(steps, "checkout v1 (git + dvc + status)", V.checkout, p, "v1")
        V.checkout(p, "main")
        timed(steps, "dvc push --all-tags", V.dvc, p, "push", "--all-tags")
        V.clear_cache(p)
        timed(steps, "dvc pull after deleting the cache", V.dvc, p, "pull")
        for name in ("serve", "train"):
            timed(steps, f"lint_dockerfile Dockerfile.{name}", D.lint_dockerfile,
                  ROOT / "deploy" / "docker" / f"Dockerfile.{name}")
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500, help="rows of the monthly table (the lesson's FAST size)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    a = ap.parse_args()
    load = os.getloadavg()[0]
    steps = run(a.n)
    dvc_total = sum(s for name, s in steps if not name.startswith("lint"))
    lines = [f"## bench_versioning — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} "
             f"{platform.machine()}, load average {load:.1f} at start. Monthly table: {a.n} rows.", "",
             f"DVC flow total: **{dvc_total:.1f} s**.", "", "| step | wall (s) |", "|---|---:|"]
    lines += [f"| {name} | {s:.2f} |" for name, s in steps]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_record:
        record(text)


if __name__ == "__main__":
    sys.exit(main())
