"""Every relative link in the README and the start page points to a file of the course.

Module notebooks move (to notebooks/library/) while lessons are rewritten: a link that pointed to a moved
notebook must fail here, not on a learner's first click. Absolute links (https, mailto) are not fetched;
anchors are checked on the built website by tests/test_site.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.code

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?\s*\)|\bhref=[\"']([^\"']+)[\"']")


def relative_links(markdown: str) -> list[str]:
    "Relative link targets of a markdown text, without their #anchor (absolute URLs and pure anchors left out)."
    targets = [a or b for a, b in LINK.findall(markdown)]
    return [t.split("#", 1)[0] for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", t)]


def _markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "markdown")
    return path.read_text()


def test_relative_links_are_found():
    assert relative_links("[a](x.ipynb#t) [b](https://x.org) [c](#top) <a href='../y.md'>y</a> [d](<z.md>)") == \
        ["x.ipynb", "../y.md", "z.md"]


@pytest.mark.parametrize("doc", ["README.md", "notebooks/index.ipynb"])
def test_every_relative_link_resolves(doc):
    path = ROOT / doc
    links = relative_links(_markdown_of(path))
    assert len(links) >= 10, f"{doc}: only {len(links)} relative links found"
    broken = [t for t in links if not (path.parent / t).resolve().exists()]
    assert not broken, f"{doc}: links to files that do not exist: {broken}"


def test_every_lesson_and_module_notebook_is_linked():
    "A learner finds every lesson and every module notebook from the README and from the start page."
    for doc in ("README.md", "notebooks/index.ipynb"):
        path = ROOT / doc
        linked = {(path.parent / t).resolve() for t in relative_links(_markdown_of(path))}
        nbs = [*(ROOT / "notebooks").glob("week*.ipynb"), *(ROOT / "notebooks" / "library").glob("*.ipynb")]
        missing = sorted(str(p.relative_to(ROOT)) for p in nbs if p.resolve() not in linked)
        assert not missing, f"{doc} does not link to {missing}"
