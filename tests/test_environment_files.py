"""The course's environment files: the Docker image, Codespaces, conda, CI and the import budget.

Everything here runs offline: hadolint and check-jsonschema come from the lock, the devcontainer
schema is committed under tests/schemas/ (see its README for the source and commit).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = "requirements/lock.txt"
HEAVY = ("sklearn", "mlflow", "airflow", "matplotlib", "pandera", "dvc", "torch")


def tool(name: str) -> str:
    "Path of a command-line tool installed from the lock (next to this Python, else on PATH)."
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: it is in {LOCK}; run `make install`")
    return found


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


# --- a small Dockerfile reader: instructions with continuations joined, ARG/ENV substituted -------

def instructions(path: Path) -> list[tuple[str, str, int]]:
    "(KEYWORD, arguments, first line number) of every instruction; comments and continuations handled."
    out, buf, start = [], "", None
    for no, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if (not s or s.startswith("#")) and (buf or start is None):
            continue  # blank or comment lines, also inside a continued instruction
        start = start or no
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        kw, _, rest = (buf + s).partition(" ")
        out.append((kw.upper(), rest.strip(), start))
        buf, start = "", None
    return out


def variables(instrs) -> dict[str, str]:
    "ARG defaults and ENV values, in order, each expanded with the ones before it."
    env: dict[str, str] = {}
    for kw, rest, _ in instrs:
        if kw not in ("ARG", "ENV"):
            continue
        pairs = [tok.split("=", 1) for tok in shlex.split(rest)]
        if kw == "ENV" and len(pairs) == 2 and len(pairs[0]) == 1:  # legacy `ENV KEY value`
            pairs = [[pairs[0][0], pairs[1][0]]]
        for pair in pairs:
            if len(pair) == 2:
                env[pair[0]] = expand(pair[1], env)
    return env


def expand(s: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m[1] or m[2], m[0]), s)


@pytest.fixture(scope="module")
def docker():
    if not DOCKERFILE.is_file():
        pytest.fail(f"{DOCKERFILE} is missing: the course image is built from it (Binder, Codespaces, Docker)")
    instrs = instructions(DOCKERFILE)
    return instrs, variables(instrs)


def first(instrs, kw: str, pred=lambda rest: True) -> int:
    "Index of the first `kw` instruction whose arguments satisfy `pred` (-1 if none)."
    return next((i for i, (k, rest, _) in enumerate(instrs) if k == kw and pred(rest)), -1)


# --- hadolint on every Dockerfile, week 04's under deploy/ included ---------------------------------

def is_dockerfile(p: Path) -> bool:
    "Dockerfile, Dockerfile.<name> or <name>.Dockerfile; not their per-file ignore lists (*.dockerignore)."
    return p.is_file() and p.suffix != ".dockerignore" and (
        p.name == "Dockerfile" or p.name.startswith("Dockerfile.") or p.suffix == ".Dockerfile")


DOCKERFILES = sorted({DOCKERFILE, *filter(is_dockerfile, (ROOT / "deploy").rglob("*"))})


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_clean(path):
    res = run(tool("hadolint"), "--no-color", str(path), cwd=ROOT)
    assert res.returncode == 0 and not res.stdout.strip(), \
        f"hadolint found problems in {path.relative_to(ROOT)}:\n{res.stdout}{res.stderr}"


# --- the course image's own rules ----------------------------------------------------------------

def test_base_image_is_pinned(docker):
    instrs, env = docker
    stages: set[str] = set()
    for kw, rest, no in instrs:
        if kw != "FROM":
            continue
        toks = [t for t in rest.split() if not t.startswith("--")]
        image = expand(toks[0], env)
        if len(toks) >= 3 and toks[1].upper() == "AS":
            stages.add(toks[2])
        if image in stages or image == "scratch":
            continue
        name = image.split("@")[0].rsplit("/", 1)[-1]
        assert "@sha256:" in image or ":" in name, f"Dockerfile:{no}: FROM {image} has no tag: pin an exact tag"
        assert not name.endswith(":latest"), f"Dockerfile:{no}: FROM {image} uses `latest`: pin an exact tag"
        tag = name.partition(":")[2]
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag), \
            f"Dockerfile:{no}: FROM {image}: pin an exact version (e.g. 3.11.14-slim-trixie) or a digest"


def test_runs_as_non_root_uid_1000(docker):
    instrs, env = docker
    users = [expand(rest, env) for kw, rest, _ in instrs if kw == "USER"]
    assert users, "Dockerfile has no USER: the image would run as root (Binder refuses root containers)"
    assert users[-1].split(":")[0] not in ("root", "0"), f"the final USER is {users[-1]}: it must not be root"
    create = next((expand(rest, env) for kw, rest, _ in instrs
                   if kw == "RUN" and re.search(r"\b(useradd|adduser)\b", rest)), None)
    assert create, "no RUN creates the user (useradd/adduser): Binder needs uid 1000 with a home directory"
    cmd = shlex.split(next(part for part in re.split(r"&&|;", create) if re.search(r"useradd|adduser", part)))
    uid = next((cmd[i + 1] for i, t in enumerate(cmd[:-1]) if t in ("--uid", "-u")), None)
    assert uid == "1000", f"the user is created with uid {uid!r}, Binder and Codespaces expect 1000"
    assert users[-1].split(":")[0] in (cmd[-1], "1000"), f"USER {users[-1]} is not the created user {cmd[-1]}"
    assert cmd[-1] == "jovyan" and env.get("HOME") == "/home/jovyan", \
        f"user {cmd[-1]!r} with HOME {env.get('HOME')!r}: the course expects jovyan with HOME /home/jovyan"
    assert {"NB_USER", "NB_UID"} <= {rest.split("=")[0] for kw, rest, _ in instrs if kw == "ARG"}, \
        "Binder passes NB_USER and NB_UID as build args: declare both with ARG"


def test_lock_is_installed_before_the_code_is_copied(docker):
    instrs, _ = docker
    copy_lock = first(instrs, "COPY", lambda r: LOCK in r)
    install = first(instrs, "RUN", lambda r: f"-r {LOCK}" in r)
    copy_all = first(instrs, "COPY", lambda r: [t for t in r.split() if not t.startswith("--")][0] == ".")
    assert copy_lock >= 0, f"no `COPY {LOCK} ...`: the lock must be copied on its own, before the code"
    assert install >= 0, f"no RUN installs `-r {LOCK}`"
    assert copy_all >= 0, "no `COPY . ...`: the course files must be in the image (Binder: in ${HOME})"
    assert copy_lock < install < copy_all, \
        "the lock must be copied and installed BEFORE `COPY . `, or every edit re-installs the environment"
    assert "--compile-bytecode" in instrs[install][1] and "uv pip install" in instrs[install][1], \
        "install the lock with `uv pip install --compile-bytecode` (fast first import for learners)"
    assert "--chown" in instrs[copy_all][1] and "${HOME}" in instrs[copy_all][1], \
        "Binder needs the repository in ${HOME}, owned by the user: `COPY --chown=${NB_UID}:${NB_UID} . ${HOME}`"


def test_healthcheck_port_command_and_labels(docker):
    instrs, _ = docker
    kws = {kw for kw, _, _ in instrs}
    hc = first(instrs, "HEALTHCHECK")
    assert hc >= 0 and instrs[hc][1].upper() != "NONE", "the image needs a HEALTHCHECK"
    assert first(instrs, "EXPOSE", lambda r: "8888" in r.split()) >= 0, "EXPOSE 8888 (JupyterLab)"
    assert "CMD" in kws and "LABEL" in kws
    cmd = json.loads(instrs[first(instrs, "CMD")][1])  # exec form, so Binder can replace it
    assert cmd[:2] == ["jupyter", "lab"] and "--ip=0.0.0.0" in cmd and "--port=8888" in cmd, cmd
    assert any("notebooks/index.ipynb" in arg for arg in cmd), "JupyterLab should open on the course start page"
    lock = (ROOT / "requirements" / "lock.txt").read_text()
    assert re.search(r"^notebook==", lock, re.M), "Binder starts `jupyter notebook ...`: the lock needs `notebook`"
    labels = " ".join(rest for kw, rest, _ in instrs if kw == "LABEL")
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.source"):
        assert key in labels, f"LABEL {key} is missing"


def test_dockerignore_keeps_local_state_out():
    path = ROOT / ".dockerignore"
    assert path.is_file(), ".dockerignore is missing: the host .venv would be copied into the image"
    entries = {line.strip().rstrip("/") for line in path.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for must in (".venv", "workspace", ".git", "**/__pycache__"):
        assert must in entries, f".dockerignore must exclude {must}"


# --- CI workflows --------------------------------------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_github_schema(path):
    res = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path))
    assert res.returncode == 0, f"{path.name} is not a valid GitHub workflow:\n{res.stdout}{res.stderr}"


def test_ci_workflow_runs_make_test():
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(on), on
    assert on["schedule"][0]["cron"], "a weekly cron catches upstream breakage"
    assert wf["permissions"] == {"contents": "read"}, "least privilege: `permissions: contents: read`"
    assert "group" in wf["concurrency"]
    job = wf["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest" and 0 < job["timeout-minutes"] <= 90
    uses = {s["uses"].split("@")[0]: s for s in job["steps"] if "uses" in s}
    assert {"actions/checkout", "astral-sh/setup-uv", "actions/setup-python", "actions/upload-artifact"} <= set(uses)
    assert uses["astral-sh/setup-uv"]["with"]["cache-dependency-glob"] == LOCK
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert uses["actions/upload-artifact"]["if"] == "always()", "upload the reports when tests fail too"
    assert any(s.get("run", "").strip() == "make test" for s in job["steps"]), "CI must run `make test`"
    builds_every_image = [s for s in wf["jobs"]["images"]["steps"] if "tests/test_docker_images.py" in s.get("run", "")
                          and s.get("env", {}).get("MLOPS_COURSE_DOCKER_IMAGES") == "train,serve,api,course"]
    assert builds_every_image, "a job builds and runs every image, the course image included"


# --- Codespaces ----------------------------------------------------------------------------------

def test_devcontainer_matches_schema():
    from jsonschema import Draft201909Validator

    text = (ROOT / ".devcontainer/devcontainer.json").read_text()
    doc = json.loads(text)  # plain JSON, no comments: every tool can read it
    schema = json.loads((ROOT / "tests/schemas/devContainer.base.schema.json").read_text())
    errors = sorted(Draft201909Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "devcontainer.json does not match the devcontainer schema:\n" + "\n".join(
        f"  {'/'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}" for e in errors)


def test_devcontainer_builds_the_course_image():
    doc = json.loads((ROOT / ".devcontainer/devcontainer.json").read_text())
    here = ROOT / ".devcontainer"
    assert (here / doc["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert (here / doc["build"]["context"]).resolve() == ROOT
    assert doc["remoteUser"] == "jovyan" and 8888 in doc["forwardPorts"]
    assert "make install" in doc["postCreateCommand"]
    exts = set(doc["customizations"]["vscode"]["extensions"])
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= exts, exts


# --- conda ---------------------------------------------------------------------------------------

def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps, deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements/lock-universal.txt" in pip and "-e ." in pip, pip  # the lock's pins, with markers
    assert (ROOT / LOCK).is_file()


# --- the CI entry point --------------------------------------------------------------------------

def test_ci_run_calls_make_test():
    path = ROOT / ".ci" / "run"
    if not path.exists():
        pytest.skip(".ci/run does not exist yet (the CI entry point that calls `make test`)")
    assert os.access(path, os.X_OK), ".ci/run must be executable: git update-index --chmod=+x .ci/run"
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert any(re.search(r"\bmake test\b", line) for line in code), ".ci/run must call `make test`"


# --- import budget -------------------------------------------------------------------------------

def test_import_does_not_load_heavy_libraries(tmp_path):
    probe = "import json, sys, mlops_course; print(json.dumps(sorted(sys.modules)))"
    res = run(sys.executable, "-c", probe, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    loaded = set(json.loads(res.stdout.strip().splitlines()[-1]))
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY))
    assert not heavy, (f"`import mlops_course` imports {heavy}: import them inside the functions that "
                       "need them so the package imports in well under a second")
