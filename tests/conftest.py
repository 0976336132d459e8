"""Fixtures shared by the test modules: the checkout, the reference table, an isolated workspace."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = ROOT.parent / "shared" / "data" / "california_housing.csv"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    "The course checkout."
    return ROOT


@pytest.fixture(scope="session")
def shared_csv() -> Path:
    "The real California housing table next to the checkout (tests and calibration only), or skip."
    if not SHARED_CSV.is_file():
        pytest.skip(f"reference table not found at {SHARED_CSV} (only present on the course's build machines)")
    return SHARED_CSV


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    "An empty workspace for this test: MLOPS_COURSE_WORKSPACE points to it, settings are re-read."
    from mlops_course.config import get_settings

    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("MLOPS_COURSE_WORKSPACE", str(ws))
    get_settings.cache_clear()
    yield ws
    get_settings.cache_clear()
