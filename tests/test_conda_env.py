"""environment.yml: conda installs the pins of requirements/lock.txt, with markers, on every platform.

The universal lock is compiled from pyproject.toml with requirements/lock.txt as constraints
(`make lock-universal`), so both hold the same versions; only environment markers (uvloop not on Windows,
pywin32 only there) and a platform's extra packages differ.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.code

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, tuple[str, str]]:
    "name -> (version, marker) of every `name==version[ ; marker]` line."
    out = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*(.+))?$", line):
            out[m.group(1).lower()] = (m.group(2), m.group(3) or "")
    return out


def test_environment_yml_installs_the_universal_lock_and_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-r requirements/lock-universal.txt", "-e ."], pip
    assert "python=3.11" in env["dependencies"]


def test_universal_lock_has_the_same_pins_as_the_lock():
    linux, universal = pins(ROOT / "requirements/lock.txt"), pins(ROOT / "requirements/lock-universal.txt")
    missing = sorted(set(linux) - set(universal))
    differ = sorted(f"{n}: {linux[n][0]} vs {universal[n][0]}" for n in set(linux) & set(universal)
                    if linux[n][0] != universal[n][0])
    assert not missing and not differ, f"run `make lock-universal`: missing {missing}, different versions {differ}"


def test_linux_only_wheels_carry_a_marker():
    universal = pins(ROOT / "requirements/lock-universal.txt")
    assert "win32" in universal["uvloop"][1], universal["uvloop"]
