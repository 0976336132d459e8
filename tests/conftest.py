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
        pytest.skip(f"reference table not found at {SHARED_CSV} (put the real California housing CSV there to run the tests against the real table; the CI workflow fetches it with the course's loader)")
    return SHARED_CSV


def _isolated(ws: Path, mp: pytest.MonkeyPatch):
    "Point MLOPS_COURSE_WORKSPACE at `ws` (created), with no tracking server configured; settings re-read."
    from mlops_course.config import get_settings

    ws.mkdir(parents=True, exist_ok=True)
    mp.setenv("MLOPS_COURSE_WORKSPACE", str(ws))
    mp.delenv("MLOPS_COURSE_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield ws
    get_settings.cache_clear()


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    "An empty workspace for this test: MLOPS_COURSE_WORKSPACE points to it, settings are re-read."
    yield from _isolated(tmp_path / "workspace", monkeypatch)


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory) -> Path:
    "One empty workspace for a whole test module (for services that take seconds to start)."
    with pytest.MonkeyPatch.context() as mp:
        yield from _isolated(tmp_path_factory.mktemp("module") / "workspace", mp)
