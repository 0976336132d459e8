"""What makes a lesson a chapter, measured on its source: concepts over plumbing, prose over code, the parts of
a chapter (time and prerequisites, objectives, quiz, exercises, further reading) and nothing of how the course is
built or tested. Module notebooks (notebooks/library) and the start page are not lessons."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.code

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("week[0-9][0-9]_*.ipynb"))
by_lesson = pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])


def lesson_metrics(path: Path) -> dict:
    "Non-empty lines of code (nbdev directive lines excluded), of exported code, and of markdown prose."
    nb = nbformat.read(path, as_version=4)
    code = exported = prose = 0
    for cell in nb.cells:
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        if cell.cell_type == "markdown":
            prose += len(lines)
        elif cell.cell_type == "code":
            body = [ln for ln in lines if not ln.startswith("#|")]
            code += len(body)
            if lines and re.match(r"#\|\s*exports?\b", lines[0]):
                exported += len(body)
    return {"code": code, "exported": exported, "prose": prose}


def markdown(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


@by_lesson
def test_lesson_teaches_concepts_not_plumbing(lesson):
    m = lesson_metrics(lesson)
    assert m["exported"] <= 0.40 * m["code"], (
        f"{lesson.name}: {m['exported']} of {m['code']} code lines are exported library code (> 40 %): "
        "move plumbing into a module notebook under notebooks/library/")


@by_lesson
def test_lesson_has_more_prose_than_code(lesson):
    m = lesson_metrics(lesson)
    assert m["prose"] >= m["code"], f"{lesson.name}: {m['prose']} lines of prose for {m['code']} lines of code"


CHAPTER_PARTS = {
    "time needed": r"(?i)\btime( needed)?\b.*\b(hours?|minutes?|h)\b",
    "prerequisites": r"(?i)\bprerequisites?\b",
    "objectives": r"(?i)\bobjectives?\b|you will (learn|be able)",
    "a quiz with hidden answers": r"(?is)\bquiz\b.*<details>",
    "exercises": r"(?im)^#+ .*\bexercises?\b",
    "further reading": r"(?i)further reading",
}


@by_lesson
@pytest.mark.parametrize("part", CHAPTER_PARTS)
def test_lesson_has_every_part_of_a_chapter(lesson, part):
    assert re.search(CHAPTER_PARTS[part], markdown(lesson)), f"{lesson.name} has no {part}"


@by_lesson
def test_lesson_has_two_or_three_exercises(lesson):
    text = markdown(lesson)
    section = re.split(r"(?im)^#+ .*\bexercises?\b", text, maxsplit=1)
    assert len(section) == 2, f"{lesson.name} has no Exercises section"
    body = re.split(r"(?m)^#{1,3} ", section[1], maxsplit=1)[0]
    n = len(re.findall(r"(?m)^(\d+\.|#### |\*\*Exercise)", body))
    assert 2 <= n <= 5, f"{lesson.name}: {n} exercises found in its Exercises section (numbered items), want 2-3"


NOT_THE_LEARNERS_BUSINESS = re.compile(r"(?i)2-core|two-core|shared machine|\bCI machine|build machine")


@by_lesson
def test_lesson_says_nothing_about_how_the_course_is_built(lesson):
    hits = NOT_THE_LEARNERS_BUSINESS.findall(markdown(lesson))
    assert not hits, f"{lesson.name} talks about the course's own machines: {hits}"


# --- facts: a number the prose states is asserted, in the cell right below it, against the computed value ------

FACT_CELL = re.compile(r"^# FACT\b")


def _literals(node: ast.AST):
    "Numeric literals of one side of a comparison: a number, a negated number, or those inside a tuple/list/set/dict."
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) in (int, float):
        yield -node.operand.value
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for e in node.elts:
            yield from _literals(e)
    elif isinstance(node, ast.Dict):
        for v in node.values:
            yield from _literals(v)


def compared_numbers(source: str) -> list[float]:
    "Every numeric literal that an `assert` of `source` compares something with (arguments of calls excluded)."
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                for side in (cmp.left, *cmp.comparators):
                    out += list(_literals(side))
    return out


def spellings(v: float) -> set[str]:
    "How prose may write the number `v`: 500001, 500,001, 500 001; 0.00033; 52.0 also as 52."
    if isinstance(v, float) and v.is_integer():
        return {repr(v)} | spellings(int(v))
    forms = {repr(v), f"{v:,}"}
    return forms | {f.replace(",", " ") for f in forms} | ({f"{v:,}".replace(",", "_")} if isinstance(v, int) else set())


def stated_in(text: str, v: float) -> bool:
    "`v` appears in `text` as a number of its own (not as part of a longer number)."
    return any(re.search(rf"(?<![\w.,]){re.escape(s)}(?![\w]|[.,]\d)", text) for s in spellings(v))


def fact_cells(path: Path) -> list[tuple[int, str, str | None]]:
    "(index, source, markdown cell just before it or None) of every `# FACT` cell of a notebook."
    cells = nbformat.read(path, as_version=4).cells
    return [(i, c.source, cells[i - 1].source if i and cells[i - 1].cell_type == "markdown" else None)
            for i, c in enumerate(cells) if c.cell_type == "code" and FACT_CELL.match(c.source)]


@by_lesson
def test_every_fact_cell_asserts_the_numbers_of_the_prose_above_it(lesson):
    for i, source, prose in fact_cells(lesson):
        assert prose is not None, f"{lesson.name} cell {i}: a `# FACT` cell must directly follow the markdown it checks"
        numbers = compared_numbers(source)
        assert numbers, f"{lesson.name} cell {i}: a `# FACT` cell asserts stated numbers (`assert x == 3`); found none"
        missing = [v for v in numbers if not stated_in(prose, v)]
        assert not missing, (f"{lesson.name} cell {i} asserts {missing}, which the markdown above it does not state: "
                             "prose and assertion have drifted apart")


def test_the_fact_check_reads_numbers_as_prose_writes_them():
    src = "# FACT\nassert first == {'a': 3} and round(p, 5) == 0.00033\nassert n == 20_640 and -2 < x <= 52.0"
    assert sorted(compared_numbers(src)) == [-2, 0.00033, 3, 52.0, 20640]
    text = "month 3 (p = 0.00033) of 20,640 rows; between -2 and 52"
    assert all(stated_in(text, v) for v in compared_numbers(src))
    assert not stated_in("0.00033", 3) and not stated_in("month 31", 3) and not stated_in("1.5", 5)
