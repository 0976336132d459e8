"""Where every benchmark in this folder writes: one section appended to `benchmarks/RESULTS.md`."""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(section: str,  # a Markdown section: `## bench_<name> — <date>`, the machine, the numbers
           path: Path = RESULTS) -> None:
    "Append `section` to the results file, separated from the previous one by a blank line."
    with path.open("a", encoding="utf-8") as f:
        f.write("\n" + section.rstrip("\n") + "\n")
