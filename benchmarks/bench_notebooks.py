"""Execution time of every lesson in FAST mode, one at a time, through the course's own runner.

    .venv/bin/python benchmarks/bench_notebooks.py              # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_notebooks.py --no-record notebooks/week03_data_versioning.ipynb
    .venv/bin/python benchmarks/bench_notebooks.py solutions/lab0*.ipynb   # solutions, as committed (no FAST)

Targets: every lesson ≤ 60 s in FAST mode on 2 cores (≤ 90 s for the weeks that start servers: 03-08).
Notebooks run one after the other (`-n 1`) so that one does not slow another; each gets an empty workspace.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
SERVER_WEEKS = ("week03", "week04", "week05", "week06", "week07", "week08",
                "lab03", "lab04", "lab05", "lab06", "lab07", "lab08")


def target(name: str) -> float:
    "The FAST-mode budget of a lesson, in seconds."
    return 90.0 if name.startswith(SERVER_WEEKS) else 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="notebooks (default: every lesson)")
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlops_course.classroom.runner import collect_notebooks, run_notebook

    nbs = collect_notebooks([Path(p) for p in args.paths] or [ROOT / "notebooks"])
    load = os.getloadavg()[0]
    results = []
    for nb in nbs:
        with tempfile.TemporaryDirectory() as ws:
            fast = {"FAST": True} if nb.name.startswith("week") else {}  # solutions have no parameters
            r = run_notebook(nb, parameters=fast, output_dir=Path(ws) / "executed", timeout=900,
                             workspace=Path(ws))
        print(f"{Path(r.notebook).name}: {r.status} in {r.duration:.1f} s {r.error}", flush=True)
        results.append(r)
    rows = []
    for r in results:
        name = Path(r.notebook).stem
        verdict = ("meets" if r.duration <= target(name) else "MISSES") + f" ≤ {target(name):.0f} s"
        rows.append(f"| `{name}` | {r.status} | {r.duration:.1f} | {verdict} |")
    total = sum(r.duration for r in results)
    section = "\n".join([
        f"## bench_notebooks — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"load average {load:.1f} at start. Lessons in FAST mode (solutions as committed), one at a time, "
        "each in an empty workspace.", "",
        "| notebook | status | seconds | target |", "|---|---|---:|---|", *rows, "",
        f"Total: **{total:.0f} s** for {len(results)} notebooks.", ""])
    print(section)
    if not args.no_record:
        record(section)


if __name__ == "__main__":
    main()
