"""The grader against hostile submissions, all generated here (no answer is committed).

Two batches, each graded once per module with `-n 2`: a tiny synthetic lab for the resource attacks
(fork bomb, memory bomb, hangs, `os._exit`, 200 MB of output, escaping processes, a second submission
attacking the first, invalid files) and lab 00 for the cheats on real checks (input and AST
transformers, always-equal objects, a patched `scipy.stats.ks_2samp`, reading `solutions/`). For each:
the expected score, the batch finishes, no process outlives it, nothing outside the sandbox changed.
"""
from __future__ import annotations

import csv
import hashlib
import json
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from mlops_course.classroom.gradebook import grade_folder, solution_checks
from mlops_course.classroom.grading import grade_notebook
from mlops_course.classroom.labs import lab_checks, lab_json
from mlops_course.classroom.sandbox import Limits, sandbox_support

pytestmark = [pytest.mark.grading, pytest.mark.skipif(bool(sandbox_support()), reason=f"no sandbox here: {sandbox_support()}")]

ROOT = Path(__file__).resolve().parents[1]
LAB00 = ROOT / "solutions" / "lab00_orientation.ipynb"
C = nbformat.v4.new_code_cell
MARK = f"mlops-hostile-{uuid.uuid4().hex[:8]}"   # in the command line of every process an attack leaves behind
LIMITS = Limits(memory_mb=2048, processes=48)   # small: the bombs stay cheap


def notebook(*cells):
    return nbformat.v4.new_notebook(cells=list(cells), metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                               "display_name": "Python 3"}})


def fingerprint(*folders: Path) -> str:
    "A hash of every file below `folders` (names and contents)."
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def batch_users(grades) -> set[int]:
    "The sandbox users a batch's gradings ran as (other tests grade at the same time with other users)."
    return {u for g in grades for u in g["users"]}


def leftovers(users: set[int]) -> list[str]:
    "Processes of the batch's sandbox users, or carrying the attack marker."
    found = []
    for p in psutil.process_iter(["uids", "cmdline"]):
        try:
            uid = p.info["uids"].real if p.info["uids"] else 0
            if uid in users or MARK in " ".join(p.info["cmdline"] or []):
                found.append(f"pid {p.pid} uid {uid}: {' '.join(p.info['cmdline'] or [])[:80]}")
        except psutil.Error:
            continue
    return found


def spaces_of(users: set[int]) -> set[Path]:
    "The grader's private folders in /tmp that belong to one of `users` (each holds learner/home owned by its user)."
    found = set()
    for d in Path(tempfile.gettempdir()).glob("mlops-grade-*"):
        try:
            if (d / "learner" / "home").stat().st_uid in users:
                found.add(d)
        except OSError:
            continue
    return found


# --- a tiny lab: three checks, 10 points ---------------------------------------------------------------------

TINY = notebook(
    C("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
    C("# CHECK double_works points=2 uses=got\ngot = [double(4), double(-1)]\n# CLEAN\nassert got == [8, -2], f'double gives {got}'"),
    C("import os\nfrom pathlib import Path\nout = Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt'\n"
      "### BEGIN SOLUTION\nout.write_text(str(double(21)))\n### END SOLUTION"),
    C("# CHECK answer_file points=3\nimport os\nfrom pathlib import Path\n"
      "assert (Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt').read_text() == '42', 'write 42'"),
    C("### BEGIN SOLUTION\nsquares = [i * i for i in range(5)]\n### END SOLUTION"),
    C("# CHECK squares points=5 uses=squares\nassert squares == [0, 1, 4, 9, 16], f'squares is {squares!r}'"),
)
ANSWERS = [C("def double(x):\n    return x + x"),   # correct, written differently
           C("import os\nfrom pathlib import Path\n(Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt').write_text('42')"),
           C("squares = [i ** 2 for i in range(5)]")]
STUBS = [c for c in nbformat.from_dict(json.loads(lab_json(TINY))).cells]


def tiny_submissions(folder: Path, out: Path, sentinel: Path, solution: Path) -> dict[str, int]:
    "Write the hostile submissions of the tiny lab; {learner: expected points}."
    detach = (f"import subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', 'sleep 4; echo cheat,2,3,5,10,10 > {out}/grades.csv; "
              f"exec sleep 900 {MARK}'], env={{}}, start_new_session=True, stdin=subprocess.DEVNULL, "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
              "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              f"        os.execve('/bin/sleep', ['sleep', '901', '{MARK}'], {{}})\n    os._exit(0)")
    attack = ("import glob, os, time\nfrom jupyter_client import BlockingKernelClient\nseen = set()\n"
              "for _ in range(40):\n"
              "    files = set(glob.glob('/tmp/**/kernel.json', recursive=True) + glob.glob('/sandbox/**/kernel.json', recursive=True))\n"
              "    for pid in os.listdir('/proc'):\n"
              "        if pid.isdigit():\n"
              "            try:\n"
              "                args = open(f'/proc/{pid}/cmdline').read().split('\\0')\n"
              "                files |= {a for a in args if a.endswith('.json')}\n"
              "                os.kill(int(pid), 9) if int(pid) > 1 and int(pid) != os.getpid() and 'ipykernel' not in ' '.join(args) else None\n"
              "            except OSError:\n"
              "                pass\n"
              "    for f in files - seen:\n"
              "        seen.add(f)\n"
              "        try:\n"
              "            kc = BlockingKernelClient(connection_file=f)\n"
              "            kc.load_connection_file()\n"
              "            kc.start_channels()\n"
              "            kc.execute_interactive('squares = []; double = None', timeout=2)\n"
              "        except Exception:\n"
              "            pass\n"
              "    time.sleep(0.5)\n"
              "print(sorted(seen))")
    cases = {
        # honest answers, plus noise: full marks
        "a_victim": (ANSWERS, 10),
        "hang": ([*ANSWERS, C("while True:\n    pass")], 10),
        "hang_no_interrupt": ([*ANSWERS, C("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")], 10),
        "os_exit": ([ANSWERS[0], C("import os\nos._exit(1)"), *ANSWERS[1:]], 10),
        "output_200mb": ([*ANSWERS, C("for _ in range(200):\n    print('x' * 1_000_000)")], 10),
        "fork_bomb": ([*STUBS, C(f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                                 f"'import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass', '{MARK}'])\n"
                                 "import time\ntime.sleep(3)")], 0),
        "memory_bomb": ([*ANSWERS, C("hog = []\nwhile True:\n    hog.append(bytearray(2**26))")], 10),
        "escape": ([*ANSWERS, C(detach)], 10),
        "look_alike_check": ([*ANSWERS, C("# CHECK squares points=5\nsquares = 'overwritten by a cell that looks like a check'")], 5),
        # cheats: zero
        "a_attacker": ([*STUBS, C(attack)], 0),
        "writer": ([*STUBS, C(f"from pathlib import Path\nfor p in ['{ROOT}/mlops_course/classroom/grading.py', "
                              f"'{ROOT}/solutions/{solution.name}', '{ROOT}/labs/x.ipynb', '{sentinel}', '{out}/grades.csv', "
                              f"'{solution}']:\n    try:\n        Path(p).write_text('pwned')\n    except OSError as e:\n        print(p, e)")], 0),
        "reader": ([*STUBS, C(f"import json\nfor p in ['{solution}', '{ROOT}/solutions/lab00_orientation.ipynb']:\n"
                              "    try:\n        nb = json.load(open(p))\n    except OSError:\n        continue\n"
                              "    for c in nb['cells']:\n        if c['cell_type'] == 'code':\n"
                              "            try:\n                exec(''.join(c['source']), globals())\n"
                              "            except Exception:\n                pass")], 0),
    }
    for name, (cells, _) in cases.items():
        nbformat.write(notebook(*cells), folder / f"{name}.ipynb")
    (folder / "garbage.ipynb").write_text("this is not a notebook")
    (folder / "empty.ipynb").write_text("")
    (folder / "not_cells.ipynb").write_text(json.dumps({"nbformat": 4, "cells": "nope"}))
    (folder / "binary.ipynb").write_bytes(bytes(range(256)) * 10)
    return {**{k: v for k, (_, v) in cases.items()}, "garbage": 0, "empty": 0, "not_cells": 0, "binary": 0}


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    solution, subs, out = tmp / "private" / "lab05_demo.ipynb", tmp / "subs", tmp / "out"
    for d in (solution.parent, subs, out):
        d.mkdir()
    nbformat.write(TINY, solution)
    sentinel = tmp / "sentinel.txt"
    sentinel.write_text("untouched")
    expected = tiny_submissions(subs, out, sentinel, solution)
    before = fingerprint(ROOT / "solutions", ROOT / "labs", ROOT / "mlops_course", solution.parent, subs)
    t0 = time.monotonic()
    grades = grade_folder(solution, subs, out / "grades.csv", workers=2, timeout=20, budget=120, limits=LIMITS)
    seconds = time.monotonic() - t0
    csv_after_batch = (out / "grades.csv").read_text()
    time.sleep(6)  # longer than the escaping process waits before it writes
    return {"grades": {g["learner"]: g for g in grades}, "expected": expected, "seconds": seconds, "out": out,
            "spaces_left": spaces_of(batch_users(grades)), "left": leftovers(batch_users(grades)),
            "csv": csv_after_batch, "sentinel": sentinel, "changed": before != fingerprint(
                ROOT / "solutions", ROOT / "labs", ROOT / "mlops_course", solution.parent, subs)}


def test_tiny_batch_scores(tiny_batch):
    got = {k: g["total"] for k, g in tiny_batch["grades"].items()}
    assert got == tiny_batch["expected"], json.dumps({k: tiny_batch["grades"][k] for k in got
                                                      if got[k] != tiny_batch["expected"][k]}, indent=1)


def test_tiny_batch_leaves_nothing_behind(tiny_batch):
    assert tiny_batch["left"] == []
    assert tiny_batch["spaces_left"] == set(), "the grader left its private folders behind"
    assert not tiny_batch["changed"], "a submission changed the checkout, the solutions or the submissions"
    assert tiny_batch["sentinel"].read_text() == "untouched"
    assert (tiny_batch["out"] / "grades.csv").read_text() == tiny_batch["csv"], "grades.csv changed after the batch"
    assert "cheat" not in tiny_batch["csv"]
    assert sorted(p.name for p in tiny_batch["out"].iterdir()) == ["feedback", "grades.csv"]
    rows = list(csv.DictReader((tiny_batch["out"] / "grades.csv").open()))
    assert {r["sandboxed"] for r in rows} == {"True"}


def test_tiny_batch_feedback_is_honest(tiny_batch):
    g = tiny_batch["grades"]
    assert any("the kernel died" in n and "runs again without it" in n for n in g["os_exit"]["notes"])
    assert any("timed out" in n for n in g["hang"]["notes"])
    assert any(n.startswith("cell") and "kernel" in n for n in g["hang_no_interrupt"]["notes"])
    assert any(w in n for n in g["memory_bomb"]["notes"] for w in ("MemoryError", "the kernel died", "timed out"))
    squares = next(c for c in g["look_alike_check"]["checks"] if c["name"] == "squares")
    assert "squares is 'overwritten" in squares["reason"]        # the look-alike cell ran
    assert "not a readable notebook" in g["garbage"]["notes"][0]


def test_budget_stops_many_slow_cells_and_says_so(tmp_path):
    sub = tmp_path / "slow.ipynb"
    nbformat.write(notebook(*ANSWERS, *[C("import time\ntime.sleep(4)") for _ in range(8)]), sub)
    t0 = time.monotonic()
    g = grade_notebook(sub, lab_checks(TINY), timeout=10, budget=14, limits=LIMITS)
    assert g.total == 10, g.notes
    assert time.monotonic() - t0 < 14 + 180  # the budget, then the checks (each with its own timeout)
    assert any("budget of 14 s" in n for n in g.notes), g.notes


# --- lab 00: cheats on real checks ----------------------------------------------------------------------------

def lab00_submissions(folder: Path) -> dict[str, int]:
    "Hostile and honest-but-noisy lab 00 submissions; {learner: expected points}."
    lab = nbformat.from_dict(json.loads(lab_json(json.loads(LAB00.read_text()), LAB00.name)))
    sol = nbformat.read(LAB00, as_version=4)
    answers = [c for c in sol.cells if c.cell_type == "code" and not c.source.startswith("# CHECK")]

    def with_first(*cells):
        nb = nbformat.from_dict(json.loads(json.dumps(lab)))
        nb.cells[2:2] = list(cells)  # after the setup cell
        return nb

    hide_checks = C("def _hide(lines):\n    return ['pass\\n'] if lines and lines[0].startswith('# CHECK') else lines\n"
                    "get_ipython().input_transformers_cleanup.append(_hide)")
    no_asserts = C("import ast\nclass _NoAssert(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
                   "        return ast.Pass()\nget_ipython().ast_transformers.append(_NoAssert())")
    wrong = C("import pandas as pd\ndf = pd.DataFrame({'x': [1]})\nquirks = {'missing_bedrooms': 0, 'capped_values': 0, 'islands': 0}\n"
              "diagnosis = dict(zip('ABCDE', ['inflation'] * 5))\nrejected = set()\nfirst_alarm = 0\n"
              "def ingest(batch):\n    return {'ok': True, 'rows': 300, 'columns': []}\n"
              "def drifted_columns(reference, batch, alpha=0.01):\n    return []")
    always = C("class AlwaysEqual(dict):\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
               "        return False\n    def get(self, *a):\n        return AlwaysEqual()\n    def __getitem__(self, k):\n        return AlwaysEqual()\n"
               "    def __contains__(self, k):\n        return True\n    def __iter__(self):\n        return iter([])\n"
               "df = quirks = diagnosis = rejected = first_alarm = AlwaysEqual()\n"
               "def ingest(batch):\n    return AlwaysEqual()\ndef drifted_columns(*a, **k):\n    return AlwaysEqual()")
    patch_ks = C("import types\nimport scipy.stats\n_fake = lambda *a, **k: types.SimpleNamespace(pvalue=0.0, statistic=1.0)\n"
                 "scipy.stats.ks_2samp = _fake\nstats.ks_2samp = _fake\nrejected = {'new_category', 'unit_bug'}\nfirst_alarm = 0")
    reader = C(f"import json, subprocess\nfor p in ['{LAB00}']:\n    try:\n        nb = json.load(open(p))\n"
               "    except OSError as e:\n        print(e)\n        continue\n    for c in nb['cells']:\n"
               "        if c['cell_type'] == 'code':\n            exec(''.join(c['source']), globals())\n"
               f"print(subprocess.run(['git', '-C', '{ROOT}', 'show', 'HEAD:solutions/{LAB00.name}'], capture_output=True).returncode)")
    noisy = nbformat.from_dict(json.loads(json.dumps(sol)))
    noisy.cells = [c for c in noisy.cells if not c.source.startswith("# CHECK")]
    noisy.cells[2:2] = [C("import os\nos._exit(3)"), C("import time\nwhile True:\n    time.sleep(1)"),
                        C("for _ in range(200):\n    print('y' * 1_000_000)")]
    cases = {"input_transformer": (with_first(hide_checks), 0),
             "ast_transformer": (with_first(no_asserts, wrong), 0),
             "wrong_answers": (with_first(wrong), 0),
             "always_equal": (with_first(always), 0),
             "patched_ks_2samp": (with_first(patch_ks), 0),
             "reads_solutions": (with_first(reader), 0),
             "noisy_honest": (noisy, 14)}
    del answers
    for name, (nb, _) in cases.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    return {k: v for k, (_, v) in cases.items()}


@pytest.fixture(scope="module")
def lab00_batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab00")
    subs = tmp / "subs"
    subs.mkdir()
    expected = lab00_submissions(subs)
    before = fingerprint(ROOT / "solutions", ROOT / "labs", ROOT / "mlops_course")
    grades = grade_folder(LAB00, subs, tmp / "out" / "grades.csv", workers=2, timeout=30, budget=600)
    return {"grades": {g["learner"]: g for g in grades}, "expected": expected, "left": leftovers(batch_users(grades)),
            "changed": before != fingerprint(ROOT / "solutions", ROOT / "labs", ROOT / "mlops_course")}


@pytest.mark.slow
def test_lab00_cheats_score_zero_and_noise_costs_nothing(lab00_batch):
    got = {k: g["total"] for k, g in lab00_batch["grades"].items()}
    assert got == lab00_batch["expected"], json.dumps({k: lab00_batch["grades"][k] for k in got
                                                       if got[k] != lab00_batch["expected"][k]}, indent=1)
    assert not lab00_batch["changed"] and lab00_batch["left"] == []


@pytest.mark.slow
def test_lab00_learner_classes_are_never_loaded(lab00_batch):
    reasons = [c["reason"] for c in lab00_batch["grades"]["always_equal"]["checks"]]
    assert all("AlwaysEqual" in r or "exported" in r for r in reasons), reasons


def test_solutions_have_checks_that_declare_their_values():
    checks = solution_checks(LAB00)
    assert all(c.uses or "workspace" in c.clean.lower() for c in checks)
