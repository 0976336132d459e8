"""Week 04: the Dockerfiles of deploy/docker, the linter (hadolint + course rules), the layer-cache simulator,
build contexts (checked against docker-py), pinned requirement subsets, the model export and the Docker helpers'
skip path."""
import ast
import importlib.metadata as md
import json
import re
import sys
from pathlib import Path

import pytest

from mlops_course import build_cache as B
from mlops_course import containers as C
from mlops_course import docker_engine as E
from mlops_course import dockerfile as D
from mlops_course.errors import CourseError

IMAGES = ("serve", "train", "api")  # deploy/docker/Dockerfile.<name>


@pytest.fixture(scope="module")
def docker(repo_root) -> Path:
    "The folder of the housing system's Dockerfiles."
    return repo_root / "deploy" / "docker"
GOOD = """FROM python:3.11.14-slim-trixie AS builder
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --requirement /tmp/requirements.txt
FROM python:3.11.14-slim-trixie
COPY --from=builder /usr/local /usr/local
COPY app /app
USER 10001:10001
HEALTHCHECK CMD ["python", "-c", "print(1)"]
CMD ["python", "-m", "app"]
"""


# --- the repository's Dockerfiles -------------------------------------------------------------------

@pytest.mark.parametrize("name", IMAGES)
def test_repo_dockerfiles_are_lint_clean(name, docker):
    found = D.lint_dockerfile(docker / f"Dockerfile.{name}")
    assert found == [], "\n".join(map(str, found))


@pytest.mark.parametrize("name", IMAGES)
def test_repo_dockerfiles_copy_what_their_ignore_file_lets_in(name, docker, repo_root):
    "Every COPY source of the image is part of its build context (else `COPY failed: file not found`)."
    patterns = B.read_dockerignore(docker / f"Dockerfile.{name}.dockerignore")
    instrs = D.parse_dockerfile((docker / f"Dockerfile.{name}").read_text())
    env = D._arg_defaults(instrs)
    for i in instrs:
        if i.cmd != "COPY" or "--from" in i.args: continue
        for src in D._split_copy(D._subst(i.args, env))[1]:
            assert not B.is_ignored(src, patterns) or src == "workspace/models/housing", \
                f"Dockerfile.{name}:{i.line} copies {src}, which Dockerfile.{name}.dockerignore leaves out"
    files = B.context_files(repo_root, patterns)
    assert not any(f.startswith((".venv/", ".git/", "notebooks/", "solutions/", "tests/")) for f in files)
    assert f"deploy/docker/requirements-{name}.txt" in files and "mlops_course/__init__.py" in files
    assert not any("__pycache__" in f for f in files)


@pytest.mark.parametrize("name", IMAGES)
def test_image_requirements_pin_what_the_course_lock_pins(name, docker, repo_root):
    lock = B.pins(repo_root / "requirements" / "lock.txt")
    pins = B.pins(docker / f"requirements-{name}.txt")
    assert pins, f"requirements-{name}.txt pins nothing"
    wrong = {p: (v, lock.get(p)) for p, v in pins.items() if lock.get(p) != v}
    assert not wrong, (f"requirements-{name}.txt disagrees with requirements/lock.txt {wrong}: regenerate it with the "
                       f"command at the top of deploy/docker/requirements-{name}.in")


def _third_party_imports(root: Path, module: str) -> dict[str, set[str]]:
    "{top-level name: the distributions that provide it} of what a course module imports (also inside functions)."
    tree = ast.parse((root / "mlops_course" / f"{module}.py").read_text())
    tops = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    tops |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    dists = md.packages_distributions()
    return {t: {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(t, [t])}
            for t in tops - set(sys.stdlib_module_names) - {"mlops_course"}}


@pytest.mark.parametrize("name,modules", [("serve", ["config", "data", "features"]),
                                          ("api", ["serve", "serve_http", "serve_schema", "serve_runtime", "model_store",
                                                   "schema", "features", "errors"]),
                                          ("train", ["config", "data", "validate", "features", "train", "errors",
                                                     "containers", "dockerfile", "build_cache", "docker_engine"])])
def test_image_requirements_cover_the_imports_of_the_code_it_runs(name, modules, docker, repo_root):
    "The skops model loads mlops_course.features types (serve); the training image runs containers: data → train."
    pins = set(B.pins(docker / f"requirements-{name}.txt"))
    # the API image serves the model folder baked into it: model_store imports mlflow only to read a registry kept in
    # a file (sqlite:, file:) or to save a model, neither of which the container does
    not_needed = {"matplotlib", "seaborn"} | ({"mlflow"} if name == "api" else set())
    missing = {m: sorted(t for t, d in _third_party_imports(repo_root, m).items()  # mlflow: mlflow or mlflow-skinny will do
                         if not d & pins and t not in not_needed)
               for m in modules if (repo_root / "mlops_course" / f"{m}.py").exists()}
    missing = {m: v for m, v in missing.items() if v}
    assert not missing, f"add to deploy/docker/requirements-{name}.in and regenerate: {missing}"


# --- parsing and the course rules --------------------------------------------------------------------

def test_parse_dockerfile_joins_continuations_and_numbers_stages():
    instrs = D.parse_dockerfile("ARG X=1\nFROM a:1 AS b\n# c\nRUN x \\\n  # inner comment\n  && y\nFROM b\nUSER 1\n")
    assert [(i.line, i.cmd, i.args, i.stage) for i in instrs] == [
        (1, "ARG", "X=1", -1), (2, "FROM", "a:1 AS b", 0), (4, "RUN", "x && y", 0), (7, "FROM", "b", 1),
        (8, "USER", "1", 1)]
    with pytest.raises(ValueError, match="continuation"):
        D.parse_dockerfile("FROM a:1\nRUN x \\\n")


def test_a_good_dockerfile_has_no_course_findings():
    assert D.course_findings(GOOD) == []


@pytest.mark.parametrize("rule,change", [
    ("MLC001", lambda t: t.replace("FROM python:3.11.14-slim-trixie AS builder", "FROM python AS builder")),
    ("MLC001", lambda t: t.replace("FROM python:3.11.14-slim-trixie\n", "FROM python:latest\n")),
    ("MLC001", lambda t: t.replace("FROM python:3.11.14-slim-trixie\n", "FROM ${BASE}\n")),
    ("MLC002", lambda t: t.replace("USER 10001:10001\n", "")),
    ("MLC002", lambda t: t.replace("USER 10001:10001", "USER root")),
    ("MLC002", lambda t: t.replace("USER 10001:10001", "USER 0:0")),
    ("MLC003", lambda t: t.replace("COPY requirements.txt /tmp/requirements.txt", "COPY . /src")),
    ("MLC004", lambda t: t.replace('HEALTHCHECK CMD ["python", "-c", "print(1)"]\n', "")),
    ("MLC005", lambda t: t.replace("USER 10001", "ENV DB_PASSWORD=hunter2\nUSER 10001")),
    ("MLC005", lambda t: t.replace("USER 10001", "ARG HF_TOKEN\nUSER 10001")),
    ("MLC005", lambda t: t.replace("USER 10001", "ENV KEY AKIAABCDEFGHIJKLMNOP\nUSER 10001")),
    ("MLC006", lambda t: "FROM python:3.11.14-slim-trixie\nUSER 10001\nHEALTHCHECK NONE\n"),
])
def test_each_course_rule_fires_on_its_violation(rule, change):
    found = D.course_findings(change(GOOD))
    assert [f.rule for f in found] == [rule], found
    assert found[0].source == "course" and found[0].message


def test_healthcheck_none_is_an_explicit_decision_and_base_arg_defaults_resolve():
    text = "ARG BASE=python:3.11.14-slim-trixie\n" + GOOD.replace('CMD ["python", "-c", "print(1)"]', "NONE")
    text = text.replace("FROM python:3.11.14-slim-trixie\n", "FROM ${BASE}\n")
    assert D.course_findings(text) == []
    assert [f.rule for f in D.course_findings("RUN echo\n")] == ["MLC000"]


def test_lint_dockerfile_combines_hadolint_and_course_rules(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install mlflow\nCOPY . .\n")
    found = D.lint_dockerfile(bad)
    assert {f.rule for f in found} >= {"DL3006", "DL3013", "MLC001", "MLC002", "MLC004", "MLC006"}
    assert {f.source for f in found} == {"hadolint", "course"}
    assert [f.line for f in found] == sorted(f.line for f in found)
    assert all(f.rule.startswith("MLC") for f in D.lint_dockerfile(bad, use_hadolint=False))
    with pytest.raises(FileNotFoundError, match="no Dockerfile"):
        D.lint_dockerfile(tmp_path / "missing")


def test_hadolint_parse_error_is_a_finding(tmp_path):
    p = tmp_path / "Dockerfile"
    p.write_text("FRM python:3.11\n")
    assert [f.rule for f in D.hadolint(p)] == ["DL1000"]


# --- layer cache ------------------------------------------------------------------------------------

def test_layers_rebuilt_follows_the_cache_chain():
    code = B.layers_rebuilt(GOOD, ["app/main.py"])
    assert [i.cmd for i in code] == ["COPY", "USER", "HEALTHCHECK", "CMD"]
    lock = B.layers_rebuilt(GOOD, ["requirements.txt"])
    assert [i.line for i in lock][:3] == [2, 3, 5], "the lock change rebuilds the builder and the COPY --from"
    assert B.layers_rebuilt(GOOD, ["README.md"]) == []
    naive = "FROM python:3.11.14-slim-trixie\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n"
    assert [i.cmd for i in B.layers_rebuilt(naive, ["README.md"])] == ["COPY", "RUN"]


def test_layers_rebuilt_on_the_serving_image(docker):
    rebuilt = B.layers_rebuilt(docker / "Dockerfile.serve", ["mlops_course/features.py"])
    assert rebuilt and not any("pip install" in i.args for i in rebuilt)
    assert any("pip install" in i.args for i in B.layers_rebuilt(docker / "Dockerfile.serve", ["deploy/docker/requirements-serve.txt"]))
    assert B.layers_rebuilt(docker / "Dockerfile.serve", ["workspace/models/housing/MLmodel"])[0].args.startswith("${MODEL_DIR}")


# --- .dockerignore semantics --------------------------------------------------------------------------

@pytest.mark.parametrize("path,patterns,ignored", [
    ("a.txt", ["*"], True),
    ("x/y/z.py", ["*"], True),
    ("x/y/z.py", ["*", "!x"], False),
    ("x/y/__pycache__/m.pyc", ["**/__pycache__"], True),
    ("README.md", ["*.md", "!README*.md"], False),
    ("docs/a.md", ["*.md"], False),
    ("docs/a.md", ["**/*.md"], True),
    ("/abs/like", ["./abs"], True),
    (".venv/lib/site.py", [".venv"], True),
])
def test_is_ignored(path, patterns, ignored):
    assert B.is_ignored(path.lstrip("/"), patterns) is ignored


def _tree(root, files):
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")


@pytest.mark.parametrize("patterns", [
    [], ["*"], [".venv", ".git"], ["*", "!app", "**/__pycache__"], ["*.md", "!README*.md"], ["**/*.md"],
    ["*", "!workspace/models/housing", "!deploy/docker/requirements-*.txt"], ["./abs", "a?b.txt"],
    ["workspace", "!workspace/models"], ["app/", "!app/main.py"], ["**", "!README.md"], ["docs/../notes.md"],
    "Dockerfile.serve.dockerignore", "Dockerfile.train.dockerignore",
])
def test_build_context_is_what_docker_py_sends(tmp_path, patterns, docker):
    "The matcher agrees with docker-py's port of the engine's .dockerignore rules (docker.utils.build.exclude_paths)."
    from docker.utils.build import exclude_paths
    if isinstance(patterns, str):
        patterns = B.read_dockerignore(docker / patterns)
    _tree(tmp_path, ["app/main.py", "app/__pycache__/main.pyc", "app/sub/__pycache__/x.pyc", "docs/a.md", "README.md",
                     "notes.md", ".venv/lib/site.py", ".git/HEAD", "workspace/data/housing.csv",
                     "workspace/models/housing/MLmodel", "deploy/docker/requirements-serve.txt",
                     "deploy/docker/requirements-train.txt", "deploy/docker/Dockerfile.serve", "abs/like.txt", "a?b.txt",
                     "mlops_course/__init__.py", "mlops_course/__pycache__/x.pyc", "mlops_course/calibration/c.json"])
    theirs = {p for p in exclude_paths(str(tmp_path), list(patterns), dockerfile="no-such-Dockerfile")
              if (tmp_path / p).is_file()}
    assert set(B.context_files(tmp_path, patterns)) == theirs


def test_context_files_prunes_and_reincludes(tmp_path):
    for f in ["keep/a.py", "keep/__pycache__/a.pyc", "drop/b.txt", "big/.venv/c", "req.txt"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    got = B.context_files(tmp_path, ["*", "!keep", "!req.txt", "**/__pycache__"])
    assert got == ["req.txt", "keep/a.py"]
    assert len(B.context_files(tmp_path)) == 5


# --- sizes -----------------------------------------------------------------------------------------

def test_requirements_size_measures_the_installed_pins(docker):
    df = B.requirements_size(docker / "requirements-serve.txt")
    assert {"scikit-learn", "mlflow-skinny", "pandas"} <= set(df.package)
    assert (df.MB > 0).all() and df.MB.is_monotonic_decreasing
    assert (df.pinned == df.installed).all()


# --- Docker helpers ---------------------------------------------------------------------------------

def test_docker_available_explains_a_missing_client(monkeypatch, docker):
    monkeypatch.setenv("PATH", "")
    status = E.docker_available()
    assert not status and "no `docker` client" in status.reason
    with pytest.raises(E.DockerUnavailable, match=r"^no Docker engine: skipped; run this on a machine with Docker"):
        E.build_image(docker / "Dockerfile.serve", "housing-serve:test")
    with pytest.raises(E.DockerUnavailable, match="no Docker engine"):
        E.run_container("housing-train:test")
    with pytest.raises(E.DockerUnavailable, match="no Docker engine"):
        with E.serving_container("housing-serve:test"):
            pass


def test_docker_status_says_what_answered_or_what_is_missing():
    status = E.docker_available(timeout=20)
    if status:
        assert re.fullmatch(r"Docker engine \d+\.\d+\S*", status.reason), status.reason
        E.require_docker()
    else:
        assert re.search(r"no `docker` client|no engine answers|did not answer", status.reason), status.reason
        with pytest.raises(E.DockerUnavailable, match="no Docker engine: skipped"):
            E.require_docker()


def test_every_error_of_the_week_is_a_course_error():
    for cls in (D.DockerfileError, D.DockerfileNotFound, E.DockerUnavailable, E.DockerError, C.ExportError):
        assert issubclass(cls, CourseError), cls
    assert issubclass(D.DockerfileNotFound, FileNotFoundError) and issubclass(D.DockerfileError, ValueError)


def test_old_names_stay_importable_from_containers():
    from mlops_course.containers import (  # noqa: F401
        context_files,
        course_findings,
        docker_available,
        hadolint,
        layers_rebuilt,
        lint_dockerfile,
        parse_dockerfile,
    )
    assert C.lint_dockerfile is D.lint_dockerfile and C.docker_available is E.docker_available


# --- the training entry point of the image ------------------------------------------------------------

@pytest.mark.slow
def test_train_and_export_writes_a_servable_mlflow_model(tmp_path, workspace, docker):
    import mlflow.pyfunc
    from typer.testing import CliRunner

    from mlops_course.data import TARGET, load_housing
    out = tmp_path / "model"
    r = CliRunner().invoke(C.app, ["train", "--out", str(out), "--n", "1500"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["model_dir"] == str(out)
    assert (out / "MLmodel").exists() and json.loads((out / "metrics.json").read_text())["r2"] > 0.5
    reqs = (out / "requirements.txt").read_text()
    serve_pins = B.pins(docker / "requirements-serve.txt")
    for line in reqs.split():
        if "==" in line:
            name, version = line.split("==")
            assert serve_pins.get(name) == version, f"the model needs {line}, the serving image pins {serve_pins.get(name)}"
    X = load_housing().head(4).drop(columns=[TARGET])
    assert (mlflow.pyfunc.load_model(str(out)).predict(X) > 0).all()
