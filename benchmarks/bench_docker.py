"""Build time and size of the course's images (training, serving with MLflow, the week-09 API, course/Binder) from a cold cache.

    .venv/bin/python benchmarks/bench_docker.py              # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_docker.py --no-record
    .venv/bin/python benchmarks/bench_docker.py --keep       # leave the images for `docker run`

What the image tests do (deploy/docker/images.py): remove the images and their build cache, then build
the training image, train a model with it, build the two serving images of that model (and the course
image with MLOPS_COURSE_DOCKER_IMAGES=train,serve,api,course), one after the other. The base images stay (the offline base is made once and cached). Also
reports the engine's disk use while the images exist. Needs a Docker engine (deploy/docker/engine.sh).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from results import record  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def images_module():
    spec = importlib.util.spec_from_file_location("mlops_course_ci_images", ROOT / "deploy/docker/images.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def engine_disk() -> str:
    "`docker system df` as one line: images and build cache."
    out = subprocess.run(["docker", "system", "df", "--format", "{{.Type}} {{.Size}}"], capture_output=True,
                         text=True).stdout.split("\n")
    return ", ".join(line for line in out if line.startswith(("Images", "Build")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep the images afterwards")
    args = ap.parse_args()
    images = images_module()
    from mlops_course.containers import docker_available
    status = docker_available()
    if not status:
        print(f"bench_docker: skipped, no Docker engine: {status.reason} (as root: deploy/docker/engine.sh start)")
        return 0
    images.clean()
    t0 = time.perf_counter()
    bases = images.build_args()
    base_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = images.build_all()
    total = time.perf_counter() - t0
    disk = engine_disk()
    if not args.keep: images.clean()
    rows = "\n".join(f"| `{r['tag']}` | {r['build_s']:.0f} | {r['size_mb']:,.0f} |" for r in records)
    load = os.getloadavg()[0]
    section = f"""## bench_docker — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC

Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}, \
load average {load:.1f} at start; {status.reason}, classic builder, base `{bases['BASE_IMAGE']}` \
(ready in {base_s:.0f} s). Cold build (no image, no build cache), one image after the other; the \
serving images hold a model trained by the training image ({total:.0f} s for all, training included).

| image | build s | size MB |
|---|---:|---:|
{rows}

Engine disk while the images exist: {disk}.
"""
    print(section)
    if not args.no_record: record(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
