"""nbval on the solutions: each notebook runs in an empty workspace of its own.

A solution's committed outputs are those of a first run on a fresh machine. Sharing the repository's
workspace would let one solution see another's tracking runs, registered versions or DVC state (and two
xdist workers would start servers on the same files), so every notebook gets a fresh folder before its
kernel starts; the kernel inherits it through `MLOPS_COURSE_WORKSPACE`.
"""

import os
import shutil
import tempfile

import pytest

_current: dict[str, str] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    path = getattr(item, "path", None)
    if path is None or path.suffix != ".ipynb" or _current.get("notebook") == str(path): return
    if "workspace" in _current: shutil.rmtree(_current["workspace"], ignore_errors=True)
    _current.update(notebook=str(path), workspace=tempfile.mkdtemp(prefix=f"nbval-{path.stem}-"))
    os.environ["MLOPS_COURSE_WORKSPACE"] = _current["workspace"]
