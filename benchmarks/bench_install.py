"""Time to install the locked course environment into a fresh virtual environment with uv.

    .venv/bin/python benchmarks/bench_install.py            # warm uv cache; appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_install.py --cold     # also with --no-cache: every wheel downloaded
    .venv/bin/python benchmarks/bench_install.py --no-record

What `make install` does, step by step, in a temporary folder (deleted afterwards): `uv venv`,
`uv pip install --compile-bytecode -r requirements/lock.txt`, then the package itself with
`uv pip install --no-deps -e .`. "Warm" reuses uv's cache (a learner's second install, CI with the
setup-uv cache); "cold" downloads everything (a fresh machine). Needs the package index for a cold
run, or for a warm one whose cache misses wheels.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
TARGET_INSTALL_S = 60  # a fresh install of the whole lock on an idle 2-core machine: what a learner waits for
TARGET_TEST_S = 25 * 60  # make test on a fresh machine


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        sys.exit("uv is not installed: `python -m pip install uv` (the Makefile pins its version)")
    return found


def base_python() -> str:
    "The interpreter this venv was made from (uv must not download one)."
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return shutil.which(name, path=str(Path(sys.base_prefix) / "bin")) or sys.executable


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install(cold: bool) -> dict:
    "Time venv creation, the lock and the package in a fresh temporary venv."
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    cache = ["--no-cache"] if cold else []
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        venv = Path(tmp) / ".venv"
        py = str(venv / "bin" / "python")
        row = {"mode": "cold (--no-cache)" if cold else "warm cache"}
        row["venv_s"] = timed([uv(), "venv", "--quiet", "--python", base_python(), str(venv)], env)
        row["lock_s"] = timed([uv(), "pip", "install", "--quiet", *cache, "--python", py, "--compile-bytecode",
                               "-r", str(LOCK)], env)
        row["package_s"] = timed([uv(), "pip", "install", "--quiet", *cache, "--python", py, "--compile-bytecode",
                                  "--no-deps", "-e", str(ROOT)], env)
        row["size_mb"] = du(venv) / 1e6
        row["total_s"] = row["venv_s"] + row["lock_s"] + row["package_s"]
    return row


def pinned_count() -> int:
    return sum(1 for line in LOCK.read_text().splitlines() if "==" in line and not line.lstrip().startswith("#"))


def uv_version() -> str:
    return subprocess.run([uv(), "--version"], capture_output=True, text=True).stdout.strip()


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, load average {load:.1f} at start")


def report(rows: list[dict]) -> str:
    lines = [f"## bench_install — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {machine()}. {uv_version()}; {pinned_count()} pinned packages in requirements/lock.txt.",
             "", "| uv cache | uv venv (s) | lock, --compile-bytecode (s) | package -e (s) | total (s) | venv size (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['venv_s']:.1f} | {r['lock_s']:.1f} | {r['package_s']:.1f} | "
                     f"{r['total_s']:.1f} | {r['size_mb']:.0f} |")
    met = ", ".join(f"{r['mode']} {'meets' if r['total_s'] <= TARGET_INSTALL_S else 'MISSES'} it" for r in rows)
    lines += ["", f"Bar: a fresh install ≤ {TARGET_INSTALL_S} s on an idle 2-core machine ({met}; a load average "
              f"above 1 at the start makes every number an upper bound). Budget of `make test`: ≤ {TARGET_TEST_S // 60} min."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="also install with --no-cache (downloads every wheel)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)
    rows = []
    for cold in (False, True) if args.cold else (False,):
        rows.append(install(cold))
        r = rows[-1]
        print(f"{r['mode']:18s} venv {r['venv_s']:.1f} s, lock {r['lock_s']:.1f} s, package {r['package_s']:.1f} s, "
              f"{r['size_mb']:.0f} MB", flush=True)
    text = report(rows)
    print("\n" + text)
    if not args.no_record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
