"""The course's images built and run on a real Docker engine: the training image trains and exports a
model as its unprivileged user, the serving images (`mlflow models serve`, week 04; the course's API, week 09)
answer predictions over HTTP as non-root and turn healthy, the
course image (Binder, Codespaces) serves JupyterLab as uid 1000, also below a Binder base URL.

Where no engine answers, the course's own one is started (deploy/docker/engine.sh, needs root and
dockerd); where neither exists every test here skips and says why. The images are built once per
test session (deploy/docker/images.py: a build already started in the background is waited for, an
image whose context is unchanged is reused) and removed at the end unless MLOPS_COURSE_DOCKER_KEEP=1."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops_course import containers as C

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.xdist_group("docker")]


def _images_module(root: Path):
    spec = importlib.util.spec_from_file_location("mlops_course_ci_images", root / "deploy/docker/images.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def docker_engine(repo_root):
    "An engine that answers: the one configured here, else the course's own (started and stopped here), else skip."
    status = C.docker_available()
    if status:
        yield status.reason
        return
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        pytest.skip(f"no Docker engine ({status.reason}), and no dockerd to start one as root "
                    "(Debian: apt-get install docker.io): the images are not built here")
    engine = repo_root / "deploy/docker/engine.sh"
    r = subprocess.run([engine, "start"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"deploy/docker/engine.sh start failed:\n{r.stderr}"
    os.environ["DOCKER_HOST"] = r.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        yield C.docker_available().reason
    finally:
        subprocess.run([engine, "stop"], capture_output=True, timeout=120)
        os.environ.pop("DOCKER_HOST", None)


@pytest.fixture(scope="session")
def images(docker_engine, repo_root):
    "deploy/docker/images.py; `images.built(name)` builds an image once per session. Removed afterwards."
    mod = _images_module(repo_root)
    records: dict[str, dict] = {}
    def built(name: str) -> dict:
        if name not in mod.selected():
            pytest.skip(f"the {name} image is not built in this run: MLOPS_COURSE_DOCKER_IMAGES="
                        f"{','.join(mod.selected())} (add {name} to build it)")
        return records.get(name) or records.setdefault(name, mod.ensure(name))
    mod.built = built
    yield mod
    if os.environ.get("MLOPS_COURSE_DOCKER_KEEP") != "1": mod.clean()


def _inspect(ref: str, fmt: str) -> str:
    return subprocess.run(["docker", "inspect", "--format", fmt, ref], capture_output=True, text=True,
                          check=True).stdout.strip()


def _wait_healthy(cid: str, timeout: float) -> str:
    "The container's health status once it is `healthy` (or the last one seen after `timeout` seconds)."
    # a server slower to start than the start period is `unhealthy` first, then `healthy` on the next success
    deadline, status = time.monotonic() + timeout, "starting"
    while time.monotonic() < deadline:
        status = _inspect(cid, "{{.State.Health.Status}}")
        if status == "healthy": break
        time.sleep(1)
    return status


def _get(url: str, timeout: float = 60) -> dict:
    "GET `url` as JSON, retrying while the server starts."
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r: return json.load(r)
        except OSError:
            if time.monotonic() > deadline: raise
            time.sleep(1)


@pytest.mark.parametrize("name", ["train", "serve", "api", "course"])
def test_image_builds_and_holds_no_build_certificates(images, name):
    rec, tag = images.built(name), images.IMAGES[name][1]
    assert rec["size_mb"] > 50, rec
    # the builder's trusted bundle stays in the builder: no runtime layer has it
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", tag, "-c",
                          "import os; print(os.path.exists('/tmp/ca-certificates.crt'))"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", f"{tag}: {out.stdout}{out.stderr}"


def test_training_container_exports_a_model_as_its_own_user(images, tmp_path):
    images.built("train")
    out = tmp_path / "ws"
    metrics = images.train_model(out, n=2000)
    model = out / "models" / "housing"
    assert (model / "MLmodel").is_file() and metrics["r2"] > 0.5, metrics
    assert _inspect(images.IMAGES["train"][1], "{{.Config.User}}") == "10001:10001"
    assert (model / "MLmodel").stat().st_uid == 10001, "the model was not written by the image's own user"


def test_serving_container_predicts_over_http_as_non_root_and_turns_healthy(images):
    import mlflow.pyfunc
    import pandas as pd

    tag = images.built("serve")["tag"]
    model_dir = images.CACHE / "model-workspace" / "models" / "housing"
    example = json.loads((model_dir / "serving_input_example.json").read_text())
    expected = mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame(**example["dataframe_split"]))
    with C.serving_container(tag, timeout=180) as url:
        req = urllib.request.Request(f"{url}/invocations", data=json.dumps(example).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            got = json.load(r)["predictions"]
        cid = subprocess.run(["docker", "ps", "-q", "--filter", f"ancestor={tag}"], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        uid = subprocess.run(["docker", "exec", cid, "id", "-u"], capture_output=True, text=True).stdout.strip()
        health = _wait_healthy(cid, timeout=120)  # the first probe runs 30 s (the image's interval) after start
    assert len(got) == len(expected) and all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got, expected, strict=True)), \
        (got, list(expected))
    assert uid == "10001", f"the server runs as uid {uid}"
    assert health == "healthy", f"HEALTHCHECK status {health}: {_inspect(cid, '{{json .State.Health}}')}"


def test_api_container_serves_the_course_api_as_non_root_and_turns_healthy(images):
    "Week 09's API in its image: the same predictions as the model loaded here, strict validation, /ready healthy."
    import pandas as pd

    from mlops_course.model_store import load_sklearn
    from mlops_course.serve_runtime import frame

    tag = images.built("api")["tag"]
    model_dir = images.CACHE / "model-workspace" / "models" / "housing"
    example = json.loads((model_dir / "serving_input_example.json").read_text())["dataframe_split"]
    rows = pd.DataFrame(example["data"], columns=example["columns"]).to_dict(orient="records")
    expected = load_sklearn(str(model_dir))[0].predict(frame(rows))

    def post(url, body):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r: return r.status, json.load(r)
        except urllib.error.HTTPError as e: return e.code, json.load(e)

    with C.serving_container(tag, container_port=8000, ready_path="/ready", timeout=180) as url:
        status, got = post(f"{url}/predict/batch", {"rows": rows})
        bad, detail = post(f"{url}/predict", {**rows[0], "housing_median_age": "12"})
        card = _get(f"{url}/model")
        cid = subprocess.run(["docker", "ps", "-q", "--filter", f"ancestor={tag}"], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        uid = subprocess.run(["docker", "exec", cid, "id", "-u"], capture_output=True, text=True).stdout.strip()
        health = _wait_healthy(cid, timeout=90)
    assert status == 200 and got["predictions"] == list(expected), (status, got, list(expected))
    assert bad == 422 and "housing_median_age" in json.dumps(detail), detail
    assert card["fast_path"] is True and card["runtime"] == "sklearn", card
    assert uid == "10001", f"the API runs as uid {uid}"
    assert health == "healthy", f"HEALTHCHECK status {health}: {_inspect(cid, '{{json .State.Health}}')}"


@pytest.mark.parametrize("prefix", ["/", "/user/learner/"], ids=["local", "binder-base-url"])
def test_course_image_serves_jupyterlab_as_uid_1000(images, prefix):
    tag, token = images.built("course")["tag"], "course-test-token"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = ["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8888", "-e", f"JUPYTER_TOKEN={token}",
           "--health-interval", "2s", tag]  # the image's own probe, run more often than its 30 s
    if prefix != "/":  # what Binder does: its own command, below a base URL it also sets in the environment
        run[-1:] = ["-e", f"JUPYTERHUB_SERVICE_PREFIX={prefix}", tag, "jupyter", "notebook", "--ip=0.0.0.0",
                    "--port=8888", "--no-browser", f"--ServerApp.base_url={prefix}"]
    cid = subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()
    base = f"http://127.0.0.1:{port}{prefix.rstrip('/')}"
    try:
        version = _get(f"{base}/api", timeout=120)
        uid = subprocess.run(["docker", "exec", cid, "id", "-u"], capture_output=True, text=True).stdout.strip()
        kernels = _get(f"{base}/api/kernelspecs?token={token}")
        settings = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}") \
            if prefix == "/" else None  # Binder starts Notebook 7, which has no Lab settings API
        health = _wait_healthy(cid, timeout=60)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    assert "version" in version and uid == "1000", (version, uid)
    if settings is not None:  # overrides.json becomes the schema's default, as every user sees it
        news = settings["schema"]["properties"]["fetchNews"]["default"]
        assert news == "false", f"JupyterLab would ask about its news feed: fetchNews = {news!r}"
    assert kernels["default"] == "python3" and set(kernels["kernelspecs"]) == {"python3"}, kernels
    assert health == "healthy", f"HEALTHCHECK under base URL {prefix}: {health}"  # the image's own probe
