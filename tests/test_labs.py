"""Grading invariants for every lab in solutions/.

For each solution: its lab is exactly the stripped solution; the solution scores full marks; the
untouched lab scores zero; a partial submission (the last answer block stubbed) scores strictly between.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_course.classroom.gradebook import solution_checks
from mlops_course.classroom.grading import grade_notebook
from mlops_course.classroom.labs import lab_text, partial_submission
from mlops_course.classroom.sandbox import sandbox_support

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("lab*.ipynb"))
TIMEOUT = float(os.environ.get("MLOPS_COURSE_GRADE_TIMEOUT", 300))  # seconds per cell and per check
BUDGET = float(os.environ.get("MLOPS_COURSE_GRADE_BUDGET", 1800))   # seconds per submission (a busy machine is slow)
UNSAFE = bool(sandbox_support())  # CI grades in the sandbox; a machine without one still checks the invariants

pytestmark = pytest.mark.grading

by_lab = pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])


def _explain(g) -> str:
    lines = [f"  {c.name}: {c.points}/{c.max_points} {c.reason}" for c in g.checks]
    return "\n".join(lines + [f"  note: {n}" for n in g.notes])


@by_lab
def test_lab_is_the_stripped_solution(solution):
    lab = ROOT / "labs" / solution.name
    assert lab.exists(), f"labs/{solution.name} is missing: run `mlops-course labs build` (make labs)"
    assert lab.read_text(encoding="utf-8") == lab_text(solution), \
        f"labs/{solution.name} differs from its solution: run `mlops-course labs build` (make labs); never edit labs by hand"


@by_lab
def test_lab_has_at_least_10_points(solution):
    checks = solution_checks(solution)
    assert sum(c.points for c in checks) >= 10, f"{solution.name}: only {sum(c.points for c in checks)} points of checks"


@by_lab
def test_checks_read_only_declared_values(solution):
    "A check's clean part must not call what only the learner's kernel has: their values come through `uses=`."
    import ast
    for c in solution_checks(solution):
        tree = ast.parse(c.clean)
        defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        defined |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names}
        defined |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
        defined |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        import builtins
        missing = used - defined - set(c.uses) - set(dir(builtins)) - {"get_ipython"}
        assert not missing, f"{solution.name}, check {c.name}: the clean part reads {sorted(missing)}, not in uses= nor imported"


@pytest.mark.slow
@by_lab
def test_solution_scores_full_marks(solution):
    g = grade_notebook(solution, solution_checks(solution), timeout=TIMEOUT, budget=BUDGET, unsafe=UNSAFE)
    assert g.total == g.max_points, f"{solution.name} scores {g.total}/{g.max_points}:\n{_explain(g)}"


@pytest.mark.slow
@by_lab
def test_untouched_lab_scores_zero(solution, tmp_path):
    lab = tmp_path / solution.name
    lab.write_text(lab_text(solution), encoding="utf-8")
    g = grade_notebook(lab, solution_checks(solution), timeout=TIMEOUT, budget=BUDGET, unsafe=UNSAFE)
    passing = [c.name for c in g.checks if c.points]
    assert g.total == 0, f"checks that pass on the untouched lab {solution.name}: {passing}\n{_explain(g)}"


@pytest.mark.slow
@by_lab
def test_partial_submission_scores_between(solution, tmp_path):
    nb = json.loads(solution.read_text(encoding="utf-8"))
    sub = tmp_path / solution.name
    sub.write_text(json.dumps(partial_submission(nb, solution.name)), encoding="utf-8")
    g = grade_notebook(sub, solution_checks(solution), timeout=TIMEOUT, budget=BUDGET, unsafe=UNSAFE)
    assert 0 < g.total < g.max_points, \
        f"{solution.name} with its last answer stubbed scores {g.total}/{g.max_points}:\n{_explain(g)}"
