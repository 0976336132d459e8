"""Build, run and clean the course's three images against a real Docker engine, also offline.

    python deploy/docker/images.py build     # train image -> a model -> serving image; the course image
    python deploy/docker/images.py clean     # remove what `build` made (the bases stay for the next run)

The images: deploy/docker/Dockerfile.train, deploy/docker/Dockerfile.serve (serving the model the
training image has just written) and the root Dockerfile (JupyterLab, Binder, Codespaces).

Built the way `docker build` builds them, with three differences that only matter on machines that
reach a package index but no image registry and no BuildKit:
- the base image is a build argument (BASE_IMAGE): the pinned public one when the engine has it,
  otherwise an image made from Debian packages by offline-base.sh;
- CA_IMAGE: the certificates pip and uv trust while installing come from an image holding this
  machine's trust bundle (a TLS-inspecting proxy's CA included). Only builder stages read it, so it is
  in no layer of the images built;
- the classic builder (`DOCKER_BUILDKIT=0`) reads only the root .dockerignore, so the build context
  is sent as a tar made from the Dockerfile's own `<Dockerfile>.dockerignore`, as BuildKit would.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "docker"
CACHE = Path(os.environ.get("MLOPS_COURSE_DOCKER_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-course" / "docker")
PUBLIC_BASE = "python:3.11.14-slim-trixie"              # the Dockerfiles' default BASE_IMAGE
OFFLINE_BASE = "mlops-course/python:3.11-bookworm-offline"
CA_IMAGE = "mlops-course/build-ca:local"
TRUST_BUNDLE = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
IMAGES = {  # name: (Dockerfile relative to the checkout, tag)
    "train": ("deploy/docker/Dockerfile.train", "mlops-course/housing-train:ci"),
    "serve": ("deploy/docker/Dockerfile.serve", "mlops-course/housing-serve:ci"),
    "course": ("Dockerfile", "mlops-course/course:ci"),
}
MODEL_IN_CONTEXT = "workspace/models/housing"  # Dockerfile.serve's MODEL_DIR
# Docker's predefined proxy arguments: passed through when set, and never recorded in the image history
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy")


class BuildFailed(RuntimeError):
    "A docker command failed (the message shows the command and Docker's last lines)."


def docker(*args, stdin=None, timeout: float = 1800) -> str:
    "Run `docker <args>` with the classic builder; a failure raises `BuildFailed` with Docker's last lines."
    cmd = ["docker", *map(str, args)]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    r = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode:
        tail = "\n".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-12:])
        raise BuildFailed(f"`{' '.join(cmd[:6])} ...` failed (exit {r.returncode}):\n{tail}")
    return r.stdout.strip()


def has_image(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def label(tag: str, key: str) -> str | None:
    "The value of label `key` on image `tag` (None without the image or the label)."
    r = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
                       capture_output=True, text=True)
    return None if r.returncode else (json.loads(r.stdout) or {}).get(key)


@contextmanager
def build_lock(name: str):
    "One build of image `name` at a time per machine: a build started in the background and the tests share it."
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"build-{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(fh, fcntl.LOCK_UN)


def base_image() -> str:
    "MLOPS_COURSE_DOCKER_BASE, else the pinned public base when the engine has it, else the offline one."
    chosen = os.environ.get("MLOPS_COURSE_DOCKER_BASE")
    if chosen: return chosen
    if has_image(PUBLIC_BASE): return PUBLIC_BASE
    subprocess.run([HERE / "offline-base.sh", OFFLINE_BASE], check=True, stdout=subprocess.DEVNULL)
    return OFFLINE_BASE


def ca_image(bundle: Path = TRUST_BUNDLE) -> str:
    "An image holding only `bundle` at /etc/ssl/certs/ca-certificates.crt (re-imported when the bundle changes)."
    data = bundle.read_bytes()
    key = hashlib.sha256(data).hexdigest()[:12]
    if label(CA_IMAGE, "mlops-course.bundle") == key: return CA_IMAGE
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/ssl/certs/ca-certificates.crt")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    with tempfile.TemporaryFile() as fh:
        fh.write(buf.getvalue()); fh.seek(0)
        docker("import", "--change", f"LABEL mlops-course.bundle={key}", "-", CA_IMAGE, stdin=fh)
    return CA_IMAGE


def build_args() -> dict[str, str]:
    "BASE_IMAGE and CA_IMAGE for this machine, plus the proxy variables set in the environment."
    return {"BASE_IMAGE": base_image(), "CA_IMAGE": ca_image(),
            **{k: os.environ[k] for k in PROXY_ARGS if os.environ.get(k)}}


def context_tar(dockerfile: str, out, extra: dict[str, Path] | None = None) -> str:
    "Write the build context of `dockerfile` (its own ignore file first) as a tar to `out`; returns its sha256."
    from mlops_course.containers import context_files, read_dockerignore
    own = ROOT / f"{dockerfile}.dockerignore"
    patterns = read_dockerignore(own if own.is_file() else ROOT / ".dockerignore")
    files = {f: ROOT / f for f in context_files(ROOT, patterns)} | {dockerfile: ROOT / dockerfile}
    for dest, src in (extra or {}).items():
        files = {f: p for f, p in files.items() if not f.startswith(dest + "/")}
        files |= {f"{dest}/{p.relative_to(src).as_posix()}": p for p in sorted(Path(src).rglob("*")) if p.is_file()}
    digest = hashlib.sha256()
    # GNU format: Docker recognises a tar on stdin by its first 512-byte header, which a PAX record would spoil
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in sorted(files):
            info = tar.gettarinfo(files[rel], arcname=rel)
            info.uid = info.gid = 0; info.uname = info.gname = ""; info.mtime = int(info.mtime)
            with open(files[rel], "rb") as fh:
                tar.addfile(info, fh)
            digest.update(rel.encode() + b"\0" + files[rel].read_bytes())
    return digest.hexdigest()


def build(name: str, extra: dict[str, Path] | None = None, args: dict[str, str] | None = None) -> dict:
    "Build image `name` of IMAGES unless an image with the same context and arguments exists; time and size."
    dockerfile, tag = IMAGES[name]
    args = build_args() if args is None else args
    with build_lock(name), tempfile.TemporaryFile() as fh:
        key = hashlib.sha256((context_tar(dockerfile, fh, extra) + json.dumps(args, sort_keys=True)).encode())
        key = key.hexdigest()[:16]
        cached = label(tag, "mlops-course.context") == key
        t0 = time.perf_counter()
        if not cached:
            fh.seek(0)
            flags = [a for k, v in args.items() for a in ("--build-arg", f"{k}={v}")]
            docker("build", "--network", "host", "--label", f"mlops-course.context={key}", "-f", dockerfile,
                   "-t", tag, *flags, "-", stdin=fh, timeout=3600)
        seconds = time.perf_counter() - t0
    size = int(docker("image", "inspect", "--format", "{{.Size}}", tag))
    return {"image": name, "tag": tag, "base": args.get("BASE_IMAGE", PUBLIC_BASE), "cached": cached,
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
    "Image `name` built (or reused); the serving image of a model the training image has trained."
    args = build_args() if args is None else args
    if name != "serve": return build(name, args=args)
    ensure("train", args)
    workdir = CACHE / "model-workspace"
    with build_lock("model"):
        if not (workdir / "models" / "housing" / "MLmodel").is_file(): train_model(workdir)
    return build("serve", extra={MODEL_IN_CONTEXT: workdir / "models" / "housing"}, args=args)


def build_all() -> list[dict]:
    "Train image, a model trained by it, the serving image of that model, the course image."
    args = build_args()
    return [ensure(name, args) for name in IMAGES]


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
