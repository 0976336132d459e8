"""Build, run and clean the course's four images against a real Docker engine, also offline.

    python deploy/docker/images.py build     # train image -> a model -> serving image (and the course image)
    python deploy/docker/images.py clean     # remove what `build` made (the bases stay for the next run)

The images: deploy/docker/Dockerfile.train, deploy/docker/Dockerfile.serve (week 04: `mlflow models serve` on
the model the training image has just written), deploy/docker/Dockerfile.api (week 09: the course's FastAPI
app on the same model) and the root Dockerfile (JupyterLab, Binder, Codespaces). `build` makes the images
named in MLOPS_COURSE_DOCKER_IMAGES (default `train,serve,api`; the course image, a 2 GB environment, takes
several times longer to build: `MLOPS_COURSE_DOCKER_IMAGES=train,serve,api,course`).

Built with `mlops_course.docker_engine.build_image`, the function week 04's lesson builds with: the context
its Dockerfile's own ignore file selects, this machine's base image and build certificates
(`mlops_course.docker_build`: the pinned public base where a registry answers, else one made from Debian
packages; the trust bundle of a TLS-inspecting proxy in builder stages only). This script adds what a test
run needs: one build per image at a time, an image reused when its context and arguments are unchanged, a
model trained by the training image baked into the serving images.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_course.docker_build import CACHE, build_args, build_lock, context_tar, image_label
from mlops_course.docker_engine import build_image

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "docker"
IMAGES = {  # name: (Dockerfile relative to the checkout, tag)
    "train": ("deploy/docker/Dockerfile.train", "mlops-course/housing-train:ci"),
    "serve": ("deploy/docker/Dockerfile.serve", "mlops-course/housing-serve:ci"),
    "api": ("deploy/docker/Dockerfile.api", "mlops-course/housing-api:ci"),
    "course": ("Dockerfile", "mlops-course/course:ci"),
}
MODEL_IN_CONTEXT = "workspace/models/housing"  # MODEL_DIR of Dockerfile.serve and Dockerfile.api
WITH_MODEL = ("serve", "api")  # the images that bake in the model the training image trains


def build(name: str, extra: dict[str, Path] | None = None, args: dict[str, str] | None = None) -> dict:
    "Build image `name` of IMAGES unless an image with the same context and arguments exists; time and size."
    dockerfile, tag = IMAGES[name]
    args = build_args() if args is None else args
    with tempfile.TemporaryFile() as fh:  # the context's hash: build_image sends the same files
        digest = context_tar(ROOT, dockerfile, fh, extra)
    key = hashlib.sha256((digest + json.dumps(args, sort_keys=True)).encode()).hexdigest()[:16]
    cached = image_label(tag, "mlops-course.context") == key
    t0 = time.perf_counter()
    build_image(ROOT / dockerfile, tag, context=ROOT, build_args=args, network="host", extra=extra, timeout=3600,
                labels={"mlops-course.context": key}, reuse=("mlops-course.context", key))
    seconds = time.perf_counter() - t0
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True,
                              text=True, check=True).stdout)
    return {"image": name, "tag": tag, "base": args.get("BASE_IMAGE"), "cached": cached,
            "build_s": round(seconds, 1), "size_mb": round(size / 1e6, 1)}


def train_model(out: Path, n: int = 3000) -> dict:
    "Run the training image as its own unprivileged user; the MLflow model lands in `out`/models/housing."
    from mlops_course.containers import run_container
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)  # the container's user (uid 10001) writes into the mounted folder
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS",) if os.environ.get(k)}  # as the tests run
    line = run_container(IMAGES["train"][1], ["train", "--out", "/workspace/models/housing", "--n", str(n)],
                         volumes={out: "/workspace"}, env=threads).splitlines()[-1]
    return json.loads(line)


def ensure(name: str, args: dict[str, str] | None = None) -> dict:
    "Image `name` built (or reused); a serving image holds a model the training image has trained."
    args = build_args() if args is None else args
    if name not in WITH_MODEL: return build(name, args=args)
    ensure("train", args)
    workdir = CACHE / "model-workspace"
    with build_lock("model"):
        if not (workdir / "models" / "housing" / "MLmodel").is_file(): train_model(workdir)
    return build(name, extra={MODEL_IN_CONTEXT: workdir / "models" / "housing"}, args=args)


def selected() -> list[str]:
    "The images to build: MLOPS_COURSE_DOCKER_IMAGES (comma-separated names), default train and serve."
    names = [n.strip() for n in os.environ.get("MLOPS_COURSE_DOCKER_IMAGES", "train,serve,api").split(",") if n.strip()]
    unknown = sorted(set(names) - set(IMAGES))
    if unknown: raise SystemExit(f"MLOPS_COURSE_DOCKER_IMAGES names unknown images {unknown}: choose from {sorted(IMAGES)}")
    return names


def build_all() -> list[dict]:
    "The selected images (`selected`): train image, a model trained by it, its serving images, the course image."
    args = build_args()
    return [ensure(name, args) for name in selected()]


def clean() -> None:
    "Remove the images `build` made and the build cache they leave; keep the bases."
    for _, tag in IMAGES.values():
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
    shutil.rmtree(CACHE / "model-workspace", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    cmd = (argv or sys.argv[1:] or ["build"])[0]
    if cmd == "build":
        for r in build_all(): print(json.dumps(r), flush=True)
    elif cmd == "clean": clean()
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr); return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
