"""What makes a lesson a chapter, measured on its source: concepts over plumbing, prose over code, the parts of
a chapter (time and prerequisites, objectives, quiz, exercises, further reading) and nothing of how the course is
built or tested. Module notebooks (notebooks/library) and the start page are not lessons."""
from __future__ import annotations

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
