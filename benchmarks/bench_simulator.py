"""Speed of the housing-market simulator: a real-sized table, a million rows, a monthly batch.

    .venv/bin/python benchmarks/bench_simulator.py              # best of 3, appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_simulator.py --repeat 1 --no-record

Targets: 20,640 rows (the size of the real table) in < 1 s and 1,000,000 rows in < 10 s, each timed from a
fresh `HousingMarket` (reading the packaged calibration included) in a fresh interpreter.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # (label, expression timed, target in seconds or None)
    ("sample(20_640)", "HousingMarket(seed=42).sample(20_640)", 1.0),
    ("sample(1_000_000)", "HousingMarket(seed=42).sample(1_000_000)", 10.0),
    ("batch(6, 'none', n=2_000)", "HousingMarket(seed=42).batch(6, 'none', n=2_000)", None),
    ("batch(6, 'income_shift', n=2_000)", "HousingMarket(seed=42).batch(6, 'income_shift', n=2_000)", None),
]
PROBE = """
import json, time
from mlops_course import simulator
simulator._PACKAGED.clear()
from mlops_course.simulator import HousingMarket
t = time.perf_counter()
df = {expr}
print(json.dumps({{"s": time.perf_counter() - t, "rows": len(df)}}))
"""


def time_case(expr: str, repeat: int) -> tuple[float, int]:
    "Best wall time of `expr` over `repeat` fresh interpreters, and the rows it produced."
    best, rows = float("inf"), 0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", PROBE.format(expr=expr)], capture_output=True, text=True,
                             cwd=ROOT, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        best, rows = min(best, r["s"]), r["rows"]
    return best, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh interpreters per case (best is kept)")
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    rows, ok = [], True
    for label, expr, target in CASES:
        s, n = time_case(expr, args.repeat)
        verdict = "—" if target is None else ("meets" if s < target else "MISSES") + f" < {target:g} s"
        ok &= target is None or s < target
        rows.append(f"| `{label}` | {n:,} | {s:.3f} | {n / s:,.0f} | {verdict} |")
        print(f"{label:38s} {s:8.3f} s  {verdict}")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        f"## bench_simulator — {now}", "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"load average {load:.1f} at start. Best of {args.repeat} fresh interpreters; the time includes reading the "
        "packaged calibration.", "",
        "| call | rows | seconds | rows/s | target |", "|---|---:|---:|---:|---|", *rows, ""])
    if not args.no_record:
        record(section)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
