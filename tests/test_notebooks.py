"""Every lesson and every module notebook runs top to bottom in FAST mode, through the course's notebook runner.

One test per notebooks/week*.ipynb (lessons) and per notebooks/library/*.ipynb (module notebooks: a module's
source, documentation and tests): papermill injects FAST=True, the kernel gets an empty workspace and a
temporary working directory (no magic paths, no state from an earlier run), the executed copy goes to
workspace/executed/ (library/ for module notebooks; a CI artifact and the source of the course website),
and a notebook that fails names the cell; one that leaves a process running fails too.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_course.classroom.runner import run_notebook

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("week*.ipynb"))
MODULES = sorted((ROOT / "notebooks" / "library").glob("*.ipynb"))
EXECUTED = Path(os.environ.get("MLOPS_COURSE_EXECUTED_DIR", ROOT / "workspace" / "executed"))
TIMEOUT = float(os.environ.get("MLOPS_COURSE_FAST_TIMEOUT", 600))  # seconds per notebook

by_lesson = pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
by_notebook = pytest.mark.parametrize("notebook", LESSONS + MODULES,
                                      ids=[p.stem for p in LESSONS] + [f"library/{p.stem}" for p in MODULES])


@by_lesson
def test_lesson_has_a_fast_parameter(lesson):
    import nbformat
    nb = nbformat.read(lesson, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params, f"{lesson.name}: no cell tagged `parameters` (papermill injects FAST=True after it)"
    assert "FAST" in params[0].source, f"{lesson.name}: the `parameters` cell does not define FAST"


@pytest.mark.slow
@pytest.mark.notebooks
@by_notebook
def test_notebook_runs_in_fast_mode(notebook, tmp_path):
    out = EXECUTED / ("library" if notebook.parent.name == "library" else "")
    r = run_notebook(notebook, {"FAST": True}, output_dir=out, timeout=TIMEOUT,
                     cwd=tmp_path, workspace=tmp_path / "workspace")
    assert r.ok, f"{notebook.name} {r.status}: {r.error}\n(executed copy: {r.executed})"
    assert not r.leaked
