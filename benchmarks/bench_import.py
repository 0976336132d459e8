"""Import time of `mlops_course` and of each of its modules, each in a fresh interpreter.

    .venv/bin/python benchmarks/bench_import.py            # best of 5, appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_import.py --repeat 3 --no-record

Target: `import mlops_course` < 1 s. A module may take longer when it imports what it teaches
(mlflow, airflow ...): the table says which heavy libraries each import pulls in, so a regression in
the package's own import (a heavy import at module level) shows up as a name in that column.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mlops_course"
HEAVY = ("sklearn", "mlflow", "airflow", "matplotlib", "pandera", "dvc", "torch", "pandas", "scipy")
TARGET_S = 1.0
PROBE = """
import json, sys, time
t = time.perf_counter()
import {mod}
t = time.perf_counter() - t
print(json.dumps({{"s": t, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))}}))
"""


def modules(root: Path = ROOT / PACKAGE) -> list[str]:
    "The package and every public module under it, found on disk (importing them here would skew the timings)."
    out = [PACKAGE]
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or parts == [PACKAGE]:
            continue
        out.append(".".join(parts))
    return out


def time_import(mod: str, repeat: int) -> dict:
    "Best of `repeat` fresh interpreters: the import alone and the whole `python -c` (interpreter start included)."
    best, wall, heavy, error = float("inf"), float("inf"), [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", PROBE.format(mod=mod, heavy=HEAVY)], capture_output=True,
                             text=True, cwd=ROOT, timeout=300)
        elapsed = time.perf_counter() - t0
        if res.returncode != 0:
            error = (res.stderr.strip().splitlines() or ["?"])[-1]
            break
        row = json.loads(res.stdout.strip().splitlines()[-1])
        best, wall, heavy = min(best, row["s"]), min(wall, elapsed), row["heavy"]
    return {"module": mod, "import_s": best, "wall_s": wall, "heavy": heavy, "error": error}


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, load average {load:.1f} at start")


def report(rows: list[dict], repeat: int) -> str:
    pkg = rows[0]
    verdict = "meets" if not pkg["error"] and pkg["import_s"] < TARGET_S else "MISSES"
    lines = [f"## bench_import — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {machine()}. Best of {repeat} fresh interpreters per module.", "",
             f"`import {PACKAGE}`: **{pkg['import_s']:.3f} s** — {verdict} the < {TARGET_S:.0f} s target.", "",
             "| module | import (s) | python -c total (s) | heavy libraries loaded |", "|---|---:|---:|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| `{r['module']}` | error | | {r['error'][:80]} |")
        else:
            lines.append(f"| `{r['module']}` | {r['import_s']:.3f} | {r['wall_s']:.3f} | {', '.join(r['heavy']) or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh interpreters per module (best is kept)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)
    rows = []
    for mod in modules():
        rows.append(time_import(mod, args.repeat))
        r = rows[-1]
        print(f"{mod:40s} " + (f"error: {r['error']}" if r["error"] else f"{r['import_s']:.3f} s"), flush=True)
    text = report(rows, args.repeat)
    print("\n" + text)
    if not args.no_record:
        record(text)
    return 0 if not rows[0]["error"] and rows[0]["import_s"] < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
