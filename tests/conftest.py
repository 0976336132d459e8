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


@pytest.fixture(scope="module")
def client(api):
    "An HTTP client of the module's `api` service (proxies ignored: the API listens on loopback)."
    import httpx

    with httpx.Client(base_url=api.url, timeout=30, trust_env=False) as c:
        yield c


MLFLOW_GLOBALS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # mlflow.set_*_uri write these for subprocesses


@pytest.fixture(scope="module", autouse=True)
def _mlflow_uris_restored():
    """MLflow's tracking and registry URIs as they were before the module: `mlflow.set_tracking_uri` and
    `set_registry_uri` also write MLFLOW_* variables (which `set_registry_uri(None)` leaves behind), and every
    process started later in this worker (a lesson's kernel, a server) would inherit them."""
    import os
    import sys

    before = {k: os.environ.get(k) for k in MLFLOW_GLOBALS}
    yield
    if "mlflow" in sys.modules:
        import mlflow
        mlflow.set_tracking_uri(before["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(before["MLFLOW_REGISTRY_URI"])
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests that share a module-scoped fixture (a server, a graded batch, a trained model) run on one xdist worker,
    so the fixture is built once per module and not once per worker: under `--dist loadgroup` each connected set of
    such tests is one group; tests without one (or already grouped) are balanced freely."""
    if not config.pluginmanager.hasplugin("xdist"):
        return  # `-p no:xdist`: one process, nothing to group
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    uses: dict[int, list[str]] = {}
    for i, item in enumerate(items):
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        mod = item.nodeid.split("::")[0]
        names = [f"{mod}::{n}" for n, defs in info.name2fixturedefs.items()
                 if defs and defs[-1].scope == "module" and not n.startswith("_")]  # `_`: autouse hygiene, no state
        if names:
            uses[i] = names
            for n in names[1:]:
                parent[find(n)] = find(names[0])
    for i, names in uses.items():
        items[i].add_marker(pytest.mark.xdist_group(find(names[0])))
