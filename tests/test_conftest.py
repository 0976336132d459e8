"""The test plan's own machinery: under `-n 2 --dist loadgroup` a module-scoped fixture (a server, a graded batch)
is built once, not once per worker (tests/conftest.py groups the tests that share one; pyproject.toml says why
pytest is pinned below 9.2)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.code

MODULE = '''
import os
import pytest

@pytest.fixture(scope="module")
def server():
    with open(os.environ["BUILDS"], "a") as f:
        f.write(f"{{__name__}} {{os.environ.get('PYTEST_XDIST_WORKER')}}\\n")
    return 1

{tests}
def test_free_a():
    pass

def test_free_b():
    pass
'''


def test_a_module_fixture_is_built_once_under_xdist(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    tests = "".join(f"def test_{i}(server):\n    pass\n\n" for i in range(6))
    for name in ("test_one.py", "test_two.py"):
        (tmp_path / name).write_text(MODULE.format(tests=tests))
    builds = tmp_path / "builds.txt"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--dist", "loadgroup",
                        str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "BUILDS": str(builds), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0, r.stdout[-2000:]
    built = sorted(line.split()[0] for line in builds.read_text().splitlines())
    assert built == ["test_one", "test_two"], (
        f"module fixtures built {built}: each module's should be built once (is --dist loadgroup grouping? "
        "see the pytest pin in pyproject.toml)")
