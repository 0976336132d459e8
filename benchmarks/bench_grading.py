"""What the grader's sandbox costs, and whether `-n 2` grading of a class scales.

    .venv/bin/python benchmarks/bench_grading.py                 # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_grading.py --n 20 --no-record

1. Start-up: a bare sandbox running `python -c pass`, and a sandboxed kernel until it answers, against a
   plain kernel (the same cell, no sandbox).
2. One lab graded with and without `--unsafe` (lab 00 by default): the sandbox's overhead per submission.
3. A class of `--n` submissions of a small lab (half correct, half the untouched lab), graded once one by
   one and once with `-n 2`: no cross-talk (every score as expected) and the batch's wall time against
   the sum of the submissions' own grading times divided by the workers (target: within 1.3x).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from results import record  # benchmarks/ is on sys.path when a script here runs

from mlops_course.classroom.gradebook import grade_folder, solution_checks
from mlops_course.classroom.grading import Options, _Session, _Space, grade_notebook
from mlops_course.classroom.labs import lab_json
from mlops_course.classroom.sandbox import Limits, bwrap_command, kernel_env, sandbox_support

ROOT = Path(__file__).resolve().parents[1]
C = nbformat.v4.new_code_cell
SMALL = nbformat.v4.new_notebook(cells=[
    C("import pandas as pd\nfrom mlops_course.data import HousingMarket"),
    C("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
    C("# CHECK double_works points=2 uses=got\ngot = [double(4), double(-1)]\n# CLEAN\nassert got == [8, -2]"),
    C("### BEGIN SOLUTION\ndf = HousingMarket(seed=3).sample(2_000)\n### END SOLUTION"),
    C("# CHECK table points=3 uses=df\nfrom mlops_course.data import HousingMarket\nassert df.equals(HousingMarket(seed=3).sample(2_000))"),
], metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})


def best(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def bare_sandbox() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*bwrap_command({}, {}, 65534, Limits(), Path("/")), sys.executable, "-c", "pass"],
                       check=True, cwd=tmp)


def kernel_ready(unsafe: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)
        sp = _Space(Path(tmp), unsafe)
        env = kernel_env(sp.where(sp.learner, "home"), sp.where(sp.learner, "workspace"))
        with _Session(sp.learner, sp.learner_command(Limits()), env, 60) as s:
            s.client.timeout = 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lab", default="lab00_orientation", help="the solution graded with and without --unsafe")
    ap.add_argument("--n", type=int, default=20, help="submissions in the class")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    if why := sandbox_support():
        sys.exit(f"no sandbox on this machine: {why}")
    load = os.getloadavg()[0]
    rows = [(f"bare sandbox: `python -c pass` (best of {a.repeat})", best(bare_sandbox, a.repeat)),
            ("kernel until it answers, sandboxed", best(lambda: kernel_ready(False), a.repeat)),
            ("kernel until it answers, no sandbox", best(lambda: kernel_ready(True), a.repeat))]
    sol = ROOT / "solutions" / f"{a.lab}.ipynb"
    checks = solution_checks(sol)
    lab_rows = []
    for unsafe in (False, True):
        t = time.perf_counter()
        g = grade_notebook(sol, checks, options=Options(unsafe=unsafe))
        lab_rows.append((unsafe, time.perf_counter() - t, f"{g.total}/{g.max_points}"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nbformat.write(SMALL, tmp / "lab90_small.ipynb")
        subs, expected = tmp / "subs", {}
        subs.mkdir()
        for i in range(a.n):
            name = f"learner{i:02d}"
            if i % 2:
                (subs / f"{name}.ipynb").write_text(lab_json(SMALL))
                expected[name] = 0
            else:
                nbformat.write(SMALL, subs / f"{name}.ipynb")
                expected[name] = 5
        t = time.perf_counter()
        one = grade_folder(tmp / "lab90_small.ipynb", subs, tmp / "out1" / "grades.csv", workers=1)
        serial = time.perf_counter() - t
        t = time.perf_counter()
        two = grade_folder(tmp / "lab90_small.ipynb", subs, tmp / "out2" / "grades.csv", workers=2)
        parallel = time.perf_counter() - t
    own = sum(g["seconds"] for g in two)
    wrong = [g["learner"] for g in one + two if g["total"] != expected[g["learner"]]]
    ratio = parallel / (own / 2)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## bench_grading — {now}", "",
             f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} "
             f"{platform.machine()}, load average {load:.1f} at start (a shared machine: upper bounds).", "",
             "| start-up | seconds |", "|---|---:|", *[f"| {n} | {s:.2f} |" for n, s in rows],
             f"| sandbox overhead per kernel | {rows[1][1] - rows[2][1]:+.2f} |", "",
             f"`{a.lab}` graded once (its solution):", "", "| mode | seconds | score |", "|---|---:|---:|",
             *[f"| {'--unsafe (no sandbox)' if u else 'sandboxed'} | {s:.1f} | {sc} |" for u, s, sc in lab_rows],
             f"| sandbox overhead | {lab_rows[0][1] - lab_rows[1][1]:+.1f} |", "",
             f"A class of {a.n} submissions of a two-check lab (half correct, half untouched):", "",
             "| run | seconds |", "|---|---:|", f"| one by one (`-n 1`) | {serial:.1f} |",
             f"| `-n 2` | {parallel:.1f} |", f"| sum of the submissions' own grading times under `-n 2` | {own:.1f} |",
             f"| `-n 2` batch / (own times / 2) | {ratio:.2f} (target <= 1.3) |", "",
             f"Scores as expected in both runs: {'yes' if not wrong else 'NO: ' + ', '.join(wrong)}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_record:
        record(text)


if __name__ == "__main__":
    main()
