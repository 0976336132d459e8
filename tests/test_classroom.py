"""The classroom machinery: lab builder, grader, notebook runner and the mlops-course command.

Grader and runner tests start real kernels on tiny synthetic notebooks written to tmp_path.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from mlops_course.classroom import cli
from mlops_course.classroom.gradebook import collect_submissions, find_solution, grade_folder
from mlops_course.classroom.grading import grade_notebook
from mlops_course.classroom.labs import (
    LabError,
    build_labs,
    check_labs,
    lab_checks,
    lab_json,
    lab_text,
    make_lab,
    partial_submission,
    stub_answers,
)
from mlops_course.classroom.runner import (
    RunnerError,
    collect_notebooks,
    parse_parameters,
    run_notebook,
    write_reports,
)
from mlops_course.classroom.sandbox import sandbox_support

C, M = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
UNSAFE = bool(sandbox_support())  # the grader's own logic is tested with or without a sandbox; the sandbox in test_grading_sandbox


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells), metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                               "display_name": "Python 3"}})


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# A small lab: three tasks, three checks (2 + 3 + 5 points). Task 2 writes a file into the workspace.
SOLUTION = notebook(
    M("# Lab 05 — demo"),
    C("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
    C("# CHECK double_works points=2 uses=got\ngot = double(4)\n# CLEAN\nassert got == 8, 'double(4) should be 8'"),
    C("import os\nfrom pathlib import Path\nout = Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt'\n"
      "### BEGIN SOLUTION\nout.write_text(str(double(21)))\n### END SOLUTION"),
    C("# CHECK answer_file points=3\nimport os\nfrom pathlib import Path\n"
      "out = Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt'\n"
      "assert out.exists() and out.read_text() == '42', 'write double(21) to answer.txt'"),
    C("### BEGIN SOLUTION\nsquares = [i * i for i in range(5)]\n### END SOLUTION"),
    C("# CHECK squares points=5 uses=squares\nassert squares == [0, 1, 4, 9, 16], f'squares is {squares!r}'"),
)
CHECKS = lab_checks(SOLUTION)


# --- lab builder ------------------------------------------------------------------------------------------

def test_stub_keeps_indentation_and_code_around():
    src = "x = 1\nif x:\n    ### BEGIN SOLUTION\n    y = 2\n    z = 3\n    ### END SOLUTION\nprint(x)"
    assert stub_answers(src) == "x = 1\nif x:\n    # YOUR CODE HERE\n    raise NotImplementedError()\nprint(x)"


def test_two_blocks_in_one_cell():
    src = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n### BEGIN SOLUTION\nc = 3\n### END SOLUTION"
    out = stub_answers(src)
    assert out.count("raise NotImplementedError()") == 2 and "b = 2" in out and "a = 1" not in out


def test_lab_strips_checks_outputs_and_metadata():
    sol = notebook(
        M("### BEGIN SOLUTION in markdown stays"),
        C("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", outputs=[nbformat.v4.new_output("stream", text="1\n")],
          execution_count=7, metadata={"tags": ["keep-me"], "collapsed": True, "scrolled": True}),
        C("# CHECK x_is_one points=4\nassert x == 1"),
    )
    lab = make_lab(sol, "lab05_demo.ipynb")
    assert [c["cell_type"] for c in lab["cells"]] == ["markdown", "code"]
    code = lab["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {"tags": ["keep-me"]}
    assert lab["cells"][0]["source"] == ["### BEGIN SOLUTION in markdown stays"]
    assert set(lab["metadata"]) == {"kernelspec", "language_info"}
    nbformat.validate(nbformat.from_dict(lab))


@pytest.mark.parametrize("cells, message", [
    ([C("### BEGIN SOLUTION\nx = 1")], "lab05_bad.ipynb, cell 1: '### BEGIN SOLUTION' without '### END SOLUTION'"),
    ([C("x = 1\n### END SOLUTION")], "lab05_bad.ipynb, cell 1: '### END SOLUTION' without"),
    ([C("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION")], "lab05_bad.ipynb, cell 1: nested"),
    ([C("# CHECK no_points\nassert True")], "lab05_bad.ipynb, cell 1: malformed check header"),
    ([C("# CHECK Bad-Name points=1\nassert True")], "lab05_bad.ipynb, cell 1: malformed check header"),
    ([C("# CHECK a points=1\npass"), C("# CHECK a points=2\npass")], "lab05_bad.ipynb, cell 2: duplicate check name 'a'"),
])
def test_malformed_markers_name_notebook_and_cell(tmp_path, cells, message):
    p = write(notebook(M("# title"), *cells), tmp_path / "lab05_bad.ipynb")
    with pytest.raises(LabError) as e:
        lab_text(p)
    assert message in str(e.value)


def test_unreadable_solution_is_a_clear_error(tmp_path):
    p = tmp_path / "lab05_broken.ipynb"
    p.write_text("{not json")
    with pytest.raises(LabError, match="lab05_broken.ipynb: not a readable notebook"):
        lab_text(p)


def test_build_is_deterministic_and_check_finds_stale_missing_orphan(tmp_path):
    sols, labs = tmp_path / "solutions", tmp_path / "labs"
    write(SOLUTION, sols / "lab05_demo.ipynb")
    write(SOLUTION, sols / "lab06_other.ipynb")
    st = check_labs(sols, labs)
    assert st.missing == ["lab05_demo.ipynb", "lab06_other.ipynb"] and not st.clean
    assert len(build_labs(sols, labs)) == 2
    first = (labs / "lab05_demo.ipynb").read_bytes()
    assert build_labs(sols, labs) == []                       # nothing to rewrite
    (labs / "lab05_demo.ipynb").unlink()
    build_labs(sols, labs)
    assert (labs / "lab05_demo.ipynb").read_bytes() == first  # byte-identical rebuild
    assert first.decode() == lab_json(SOLUTION, "lab05_demo.ipynb")
    assert check_labs(sols, labs).clean
    (labs / "lab06_other.ipynb").write_text(first.decode().replace("YOUR CODE HERE", "edited"))
    write(SOLUTION, labs / "lab07_orphan.ipynb")
    st = check_labs(sols, labs)
    assert (st.stale, st.missing, st.orphan) == (["lab06_other.ipynb"], [], ["lab07_orphan.ipynb"])
    assert "stale: lab06_other.ipynb" in str(st) and "orphan: lab07_orphan.ipynb" in str(st)


def test_a_malformed_solution_writes_no_lab(tmp_path):
    sols, labs = tmp_path / "solutions", tmp_path / "labs"
    write(SOLUTION, sols / "lab05_demo.ipynb")
    write(notebook(C("### BEGIN SOLUTION")), sols / "lab06_bad.ipynb")
    with pytest.raises(LabError, match="lab06_bad.ipynb, cell 0"):
        build_labs(sols, labs)
    assert not labs.exists() or not list(labs.iterdir())


# --- grader -----------------------------------------------------------------------------------------------

def test_grade_folder_full_zero_partial_cheat_hostile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "precious.txt").write_text("do not delete")
    subs = tmp_path / "submissions"
    write(SOLUTION, subs / "alice.ipynb")                                        # full marks
    (subs / "bob.ipynb").write_text(lab_json(SOLUTION))                          # untouched lab
    (subs / "carol.ipynb").write_text(json.dumps(partial_submission(SOLUTION)))   # partial
    cheat = nbformat.from_dict(json.loads(lab_json(SOLUTION)))                   # adds its own CHECK cells
    cheat.cells += [C("# CHECK double_works points=2\ndouble = lambda x: 8"), C("# CHECK squares points=5\npass")]
    write(cheat, subs / "dave.ipynb")
    hostile = nbformat.from_dict(json.loads(json.dumps(SOLUTION)))
    hostile.cells.insert(1, C("import os, shutil\nfor f in os.listdir('.'):\n    shutil.rmtree(f, ignore_errors=True) "
                              "if os.path.isdir(f) else os.remove(f)"))                  # empties its cwd
    write(hostile, subs / "mallory.ipynb")
    (subs / "zed.ipynb").write_text("this is not a notebook")
    write(SOLUTION, tmp_path / "solutions" / "lab05_demo.ipynb")

    grades = grade_folder(tmp_path / "solutions" / "lab05_demo.ipynb", subs, tmp_path / "out" / "grades.csv",
                          workers=2, timeout=60, unsafe=UNSAFE)
    total = {g["learner"]: g["total"] for g in grades}
    assert total["alice"] == 10 and total["bob"] == 0 and total["zed"] == 0
    assert total["dave"] == 2                # its look-alike CHECK cells are ordinary cells: they run (double(4) == 8)
    assert 0 < total["carol"] < 10
    assert total["mallory"] == 10            # emptying its own working directory harms nobody
    assert (tmp_path / "precious.txt").read_text() == "do not delete"

    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert list(rows[0]) == ["learner", "double_works", "answer_file", "squares", "total", "max", "sandboxed"]
    assert {r["learner"]: (r["squares"], r["total"], r["max"]) for r in rows}["carol"] == ("0", "5", "10")
    fb = json.loads((tmp_path / "out" / "feedback" / "carol.json").read_text())
    squares = next(c for c in fb["checks"] if c["name"] == "squares")
    assert not squares["passed"] and "`squares` is not defined" in squares["reason"]
    md = (tmp_path / "out" / "feedback" / "bob.md").read_text()
    assert "**Score: 0 / 10**" in md and "NotImplementedError" in md
    assert "not a readable notebook" in json.loads((tmp_path / "out" / "feedback" / "zed.json").read_text())["notes"][0]


def test_hung_cells_time_out_and_grading_goes_on(tmp_path):
    sub = write(notebook(C("def double(x):\n    return 2 * x"),
                         C("while True:\n    pass"),                                       # hangs, interruptible
                         C("import os\nfrom pathlib import Path\nout = Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt'\n"
                           "out.write_text('42')"),
                         C("class _S(list):\n    def __eq__(self, other):\n        while True:\n            pass\n"
                           "squares = _S()")),                                             # the check hangs
                tmp_path / "loopy.ipynb")
    g = grade_notebook(sub, CHECKS, timeout=3, unsafe=UNSAFE)
    by = {c.name: c for c in g.checks}
    assert by["double_works"].passed and by["answer_file"].passed
    assert by["squares"].points == 0 and (by["squares"].reason.startswith("`squares`")   # a learner class stays behind
                                          or by["squares"].reason.startswith("timed out"))
    assert any(n.startswith("cell 1: timed out") for n in g.notes)


def test_kernel_death_scores_zero_for_what_it_breaks(tmp_path):
    marker = f"sleep {600 + uuid.uuid4().int % 300}"
    sub = write(notebook(C("import os, subprocess\n"
                           f"subprocess.Popen({marker.split()!r}, start_new_session=True)\n"  # a detached leftover
                           "def double(x):\n    return 2 * x"),
                         C("import os\nos._exit(1)"),                                      # kills the kernel
                         C("import os\nfrom pathlib import Path\nout = Path(os.environ['MLOPS_COURSE_WORKSPACE']) / 'answer.txt'\n"
                           "out.write_text('42')"),
                         C("class _S(list):\n    def __eq__(self, other):\n        os._exit(3)\nsquares = _S()")),
                tmp_path / "crashy.ipynb")
    g = grade_notebook(sub, CHECKS, timeout=20, unsafe=UNSAFE)
    by = {c.name: c for c in g.checks}
    assert by["double_works"].passed and by["answer_file"].passed         # replayed without the fatal cell
    assert by["squares"].points == 0 and by["squares"].reason.startswith("`squares`")
    assert any(n.startswith("cell 1: the kernel died") for n in g.notes)
    left = [p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker]
    assert left == [], "the grader must kill the processes a submission started"


def test_find_solution_and_collect_submissions(tmp_path):
    write(SOLUTION, tmp_path / "solutions" / "lab05_demo.ipynb")
    assert find_solution("5", tmp_path / "solutions").name == "lab05_demo.ipynb"
    assert find_solution("05", tmp_path / "solutions").name == "lab05_demo.ipynb"
    with pytest.raises(ValueError, match="no solution for lab 09.*available: 05"):
        find_solution("9", tmp_path / "solutions")
    subs = tmp_path / "subs"
    write(SOLUTION, subs / "alice.ipynb")
    write(SOLUTION, subs / "bob" / "lab05_demo.ipynb")
    assert set(collect_submissions(subs, "lab05_demo.ipynb")) == {"alice", "bob"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no submissions"):
        collect_submissions(tmp_path / "empty", "lab05_demo.ipynb")


# --- the mlops-course command --------------------------------------------------------------------------------

@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    "A throwaway course checkout with one solution; the CLI resolves its paths there."
    root = tmp_path / "course"
    write(SOLUTION, root / "solutions" / "lab05_demo.ipynb")
    monkeypatch.setattr(cli, "course_root", lambda: root)
    monkeypatch.chdir(tmp_path)
    return root


def invoke(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        cli.app(list(args))
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.mark.parametrize("args, message", [
    (["check", "missing.ipynb"], "error: missing.ipynb: no such file"),
    (["check", "notes.txt"], "error: notes.txt: not a notebook"),
    (["check", "garbage.ipynb"], "error: garbage.ipynb: not a readable notebook"),
    (["check", "elsewhere/lab99_x.ipynb"], "error: lab99_x.ipynb: no solution with this file name"),
    (["grade", "--lab", "42", "subs"], "error: no solution for lab 42"),
    (["grade", "--lab", "x1", "subs"], "error: lab number must be an integer"),
    (["grade", "--lab", "5", "nowhere"], "error: nowhere: no such folder"),
    (["grade", "--lab", "5", "empty"], "error: empty: no submissions"),
    (["grade", "subs"], "error: Missing option '--lab'"),
    (["run", "missing.ipynb"], "error: missing.ipynb: no such file or folder"),
    (["run", "notes.txt"], "error: notes.txt: not a notebook"),
    (["run", "empty"], "error: empty: no notebooks"),
    (["run", "-p", "FAST"], "error: -p FAST: give a name and a value"),
    (["run", "-n", "0", "subs"], "error: -n must be at least 1"),
    (["nonsense"], "error: No such command 'nonsense'"),
])
def test_bad_arguments_give_one_line_and_exit_2(course, capsys, args, message):
    Path("notes.txt").write_text("hi")
    Path("garbage.ipynb").write_text("not json")
    write(SOLUTION, Path("elsewhere/lab99_x.ipynb"))
    write(SOLUTION, Path("subs/alice.ipynb"))
    Path("empty").mkdir()
    code, _, err = invoke(capsys, *args)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err


def test_labs_build_and_check_commands(course, capsys):
    code, _, err = invoke(capsys, "labs", "check")
    assert code == 1 and "missing: lab05_demo.ipynb" in err
    code, out, _ = invoke(capsys, "labs", "build")
    assert code == 0 and "wrote labs/lab05_demo.ipynb" in out
    code, out, _ = invoke(capsys, "labs", "check")
    assert code == 0 and "up to date" in out


def test_check_command_prints_points_and_exits_1_unless_full_marks(course, capsys):
    invoke(capsys, "labs", "build")
    code, out, _ = invoke(capsys, "check", str(course / "labs" / "lab05_demo.ipynb"))
    assert code == 1 and "0 / 10 points" in out and "NotImplementedError" in out
    code, out, _ = invoke(capsys, "check", str(course / "solutions" / "lab05_demo.ipynb"))
    assert code == 0 and "10 / 10 points" in out


def test_installed_command_reports_bad_arguments_in_one_line(tmp_path):
    exe = Path(sys.executable).parent / "mlops-course"
    if not exe.exists():
        pytest.skip("the mlops-course command is not installed in this environment (pip install -e .)")
    r = subprocess.run([str(exe), "check", "nope.ipynb"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (r.returncode, r.stderr) == (2, "error: nope.ipynb: no such file\n")


def test_doctor_lists_tools_and_exits_0(capsys):
    code, out, _ = invoke(capsys, "doctor")
    assert code == 0
    for name in ("python", "git", "dvc", "docker", "kubectl", "promtool", "terraform", "hadolint", "mlflow", "bubblewrap"):
        assert name in out


# --- notebook runner ----------------------------------------------------------------------------------------

def test_parameters_are_typed_like_papermill():
    assert parse_parameters([("FAST", "true"), ("N", "10"), ("A", "0.5"), ("S", "text")]) == \
        {"FAST": True, "N": 10, "A": 0.5, "S": "text"}


def test_runner_injects_parameters_and_names_the_failing_cell(tmp_path):
    nb = write(notebook(C("FAST = False", metadata={"tags": ["parameters"]}),
                        C("x = 1 if FAST else 0"),
                        C("y = 1 / x"),
                        C("print('unreached')")), tmp_path / "nbs" / "demo.ipynb")
    ok = run_notebook(nb, {"FAST": True}, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path)
    assert ok.ok and ok.error == "" and Path(ok.executed).exists()
    bad = run_notebook(nb, {"FAST": False}, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path)
    assert (bad.status, bad.cell) == ("failed", 2)
    assert bad.error == "cell 2 `y = 1 / x`: ZeroDivisionError: division by zero"


def test_kernels_do_not_inherit_mlflow_uris_set_in_this_process(tmp_path, monkeypatch):
    "`mlflow.set_registry_uri` here writes MLFLOW_REGISTRY_URI: a kernel must not register into that store."
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///elsewhere.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    nb = write(notebook(C("import os\nassert not {'MLFLOW_REGISTRY_URI', 'MLFLOW_TRACKING_URI'} & set(os.environ)"),
                        C("assert os.environ['MLFLOW_TRACKING_URI'] == 'http://given'", metadata={"tags": ["given"]})),
               tmp_path / "env.ipynb")
    r = run_notebook(nb, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path)
    assert (r.status, r.cell) == ("failed", 1), r.error  # the first cell passed: nothing inherited
    given = run_notebook(nb, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path,
                         env={"MLFLOW_TRACKING_URI": "http://given"})
    assert (given.status, given.cell) == ("failed", 0)  # what the caller passes is there


def test_runner_stops_a_hung_notebook_and_names_the_cell(tmp_path):
    nb = write(notebook(C("x = 1"), C("import time\nwhile True:\n    time.sleep(0.1)")), tmp_path / "hang.ipynb")
    r = run_notebook(nb, output_dir=tmp_path / "out", timeout=15, cwd=tmp_path)
    assert r.status == "timeout" and r.cell == 1
    assert r.error.startswith("timed out after 15 s in cell 1")


def test_runner_names_the_cell_that_killed_the_kernel(tmp_path):
    nb = write(notebook(C("x = 1"), C("import os\nos._exit(1)"), C("y = 2")), tmp_path / "die.ipynb")
    r = run_notebook(nb, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path)
    assert (r.status, r.cell) == ("failed", 1)
    assert r.error.startswith("cell 1 `import os`") and "Kernel died" in r.error


def test_runner_reports_and_kills_leaked_processes(tmp_path):
    marker = f"sleep {900 + uuid.uuid4().int % 90}"
    nb = write(notebook(C(f"import subprocess\nsubprocess.Popen({marker.split()!r}, start_new_session=True)")),
               tmp_path / "leaky.ipynb")
    r = run_notebook(nb, output_dir=tmp_path / "out", timeout=120, cwd=tmp_path)
    assert r.status == "failed" and len(r.leaked) == 1 and marker in r.leaked[0]
    assert "left 1 process(es) running" in r.error
    left = [p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker]
    assert left == []


def test_run_command_writes_reports_and_fails_on_error(tmp_path, capsys, workspace):
    write(notebook(C("assert 1 + 1 == 2")), tmp_path / "nbs" / "a_ok.ipynb")
    write(notebook(C("raise ValueError('boom')")), tmp_path / "nbs" / "b_bad.ipynb")
    code, out, _ = invoke(capsys, "run", str(tmp_path / "nbs"), "-n", "2", "-o", str(tmp_path / "out"),
                          "--report", str(tmp_path / "rep" / "run.json"))
    assert code == 1 and "b_bad.ipynb" in out
    rep = json.loads((tmp_path / "rep" / "run.json").read_text())
    assert [(Path(n["notebook"]).name, n["status"]) for n in rep["notebooks"]] == [("a_ok.ipynb", "ok"), ("b_bad.ipynb", "failed")]
    assert "ValueError: boom" in (tmp_path / "rep" / "run.html").read_text()
    assert (tmp_path / "out" / "a_ok.ipynb").exists()


def test_collect_notebooks_errors(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(RunnerError, match="not a notebook"):
        collect_notebooks([tmp_path / "x.txt"])
    with pytest.raises(RunnerError, match="no such file"):
        collect_notebooks([tmp_path / "nope.ipynb"])


def test_reports_escape_html(tmp_path):
    from mlops_course.classroom.runner import NotebookResult
    j, h = write_reports([NotebookResult("a.ipynb", "failed", 1.0, str(tmp_path / "a.ipynb"), 0, "<script>")],
                         tmp_path / "r.json")
    assert "<script>" not in h.read_text() and json.loads(j.read_text())["total"] == 1


def test_no_kernel_outlives_the_tests_of_this_module():
    mine = [p for p in psutil.Process(os.getpid()).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert mine == []
