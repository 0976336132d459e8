"""Week 04: the Dockerfiles of deploy/docker, the linter (hadolint + course rules), the layer-cache simulator,
build contexts, pinned requirement subsets, the model export and the Docker helpers' skip path."""
import ast
import importlib.metadata as md
import json
import re
import sys
from pathlib import Path

import pytest

from mlops_course import containers as C

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "deploy" / "docker"
IMAGES = {"serve": DOCKER / "Dockerfile.serve", "train": DOCKER / "Dockerfile.train"}
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
def test_repo_dockerfiles_are_lint_clean(name):
    found = C.lint_dockerfile(IMAGES[name])
    assert found == [], "\n".join(map(str, found))


@pytest.mark.parametrize("name", IMAGES)
def test_repo_dockerfiles_copy_what_their_ignore_file_lets_in(name):
    "Every COPY source of the image is part of its build context (else `COPY failed: file not found`)."
    patterns = C.read_dockerignore(DOCKER / f"Dockerfile.{name}.dockerignore")
    instrs = C.parse_dockerfile(IMAGES[name].read_text())
    env = C._arg_defaults(instrs)
    for i in instrs:
        if i.cmd != "COPY" or "--from" in i.args: continue
        for src in C._split_copy(C._subst(i.args, env))[1]:
            assert not C.is_ignored(src, patterns) or src == "workspace/models/housing", \
                f"{IMAGES[name].name}:{i.line} copies {src}, which Dockerfile.{name}.dockerignore leaves out"
    files = C.context_files(ROOT, patterns)
    assert not any(f.startswith((".venv/", ".git/", "notebooks/", "solutions/", "tests/")) for f in files)
    assert f"deploy/docker/requirements-{name}.txt" in files and "mlops_course/__init__.py" in files
    assert not any("__pycache__" in f for f in files)


@pytest.mark.parametrize("name", IMAGES)
def test_image_requirements_pin_what_the_course_lock_pins(name):
    lock = C._pins(ROOT / "requirements" / "lock.txt")
    pins = C._pins(DOCKER / f"requirements-{name}.txt")
    assert pins, f"requirements-{name}.txt pins nothing"
    wrong = {p: (v, lock.get(p)) for p, v in pins.items() if lock.get(p) != v}
    assert not wrong, (f"requirements-{name}.txt disagrees with requirements/lock.txt {wrong}: regenerate it with the "
                       f"command at the top of deploy/docker/requirements-{name}.in")


def _third_party_imports(module: str) -> set[str]:
    "Distributions imported (anywhere, also inside functions) by a course module."
    tree = ast.parse((ROOT / "mlops_course" / f"{module}.py").read_text())
    tops = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    tops |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    dists = md.packages_distributions()
    return {re.sub(r"[-_.]+", "-", d).lower() for t in tops - set(sys.stdlib_module_names) - {"mlops_course"}
            for d in dists.get(t, [t])}


@pytest.mark.parametrize("name,modules", [("serve", ["config", "data", "features"]),
                                          ("train", ["config", "data", "validate", "features", "train"])])
def test_image_requirements_cover_the_imports_of_the_code_it_runs(name, modules):
    "The pickled model unpickles mlops_course.features (serve); the training image runs data → train."
    pins = set(C._pins(DOCKER / f"requirements-{name}.txt"))
    missing = {m: sorted(_third_party_imports(m) - pins - {"matplotlib", "seaborn"}) for m in modules
               if (ROOT / "mlops_course" / f"{m}.py").exists()}
    missing = {m: v for m, v in missing.items() if v}
    assert not missing, f"add to deploy/docker/requirements-{name}.in and regenerate: {missing}"


# --- parsing and the course rules --------------------------------------------------------------------

def test_parse_dockerfile_joins_continuations_and_numbers_stages():
    instrs = C.parse_dockerfile("ARG X=1\nFROM a:1 AS b\n# c\nRUN x \\\n  # inner comment\n  && y\nFROM b\nUSER 1\n")
    assert [(i.line, i.cmd, i.args, i.stage) for i in instrs] == [
        (1, "ARG", "X=1", -1), (2, "FROM", "a:1 AS b", 0), (4, "RUN", "x && y", 0), (7, "FROM", "b", 1),
        (8, "USER", "1", 1)]
    with pytest.raises(ValueError, match="continuation"):
        C.parse_dockerfile("FROM a:1\nRUN x \\\n")


def test_a_good_dockerfile_has_no_course_findings():
    assert C.course_findings(GOOD) == []


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
    found = C.course_findings(change(GOOD))
    assert [f.rule for f in found] == [rule], found
    assert found[0].source == "course" and found[0].message


def test_healthcheck_none_is_an_explicit_decision_and_base_arg_defaults_resolve():
    text = "ARG BASE=python:3.11.14-slim-trixie\n" + GOOD.replace('CMD ["python", "-c", "print(1)"]', "NONE")
    text = text.replace("FROM python:3.11.14-slim-trixie\n", "FROM ${BASE}\n")
    assert C.course_findings(text) == []
    assert [f.rule for f in C.course_findings("RUN echo\n")] == ["MLC000"]


def test_lint_dockerfile_combines_hadolint_and_course_rules(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install mlflow\nCOPY . .\n")
    found = C.lint_dockerfile(bad)
    assert {f.rule for f in found} >= {"DL3006", "DL3013", "MLC001", "MLC002", "MLC004", "MLC006"}
    assert {f.source for f in found} == {"hadolint", "course"}
    assert [f.line for f in found] == sorted(f.line for f in found)
    assert all(f.rule.startswith("MLC") for f in C.lint_dockerfile(bad, use_hadolint=False))
    with pytest.raises(FileNotFoundError, match="no Dockerfile"):
        C.lint_dockerfile(tmp_path / "missing")


def test_hadolint_parse_error_is_a_finding(tmp_path):
    p = tmp_path / "Dockerfile"
    p.write_text("FRM python:3.11\n")
    assert [f.rule for f in C.hadolint(p)] == ["DL1000"]


# --- layer cache ------------------------------------------------------------------------------------

def test_layers_rebuilt_follows_the_cache_chain():
    code = C.layers_rebuilt(GOOD, ["app/main.py"])
    assert [i.cmd for i in code] == ["COPY", "USER", "HEALTHCHECK", "CMD"]
    lock = C.layers_rebuilt(GOOD, ["requirements.txt"])
    assert [i.line for i in lock][:3] == [2, 3, 5], "the lock change rebuilds the builder and the COPY --from"
    assert C.layers_rebuilt(GOOD, ["README.md"]) == []
    naive = "FROM python:3.11.14-slim-trixie\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n"
    assert [i.cmd for i in C.layers_rebuilt(naive, ["README.md"])] == ["COPY", "RUN"]


def test_layers_rebuilt_on_the_serving_image():
    rebuilt = C.layers_rebuilt(IMAGES["serve"], ["mlops_course/features.py"])
    assert rebuilt and not any("pip install" in i.args for i in rebuilt)
    assert any("pip install" in i.args for i in C.layers_rebuilt(IMAGES["serve"], ["deploy/docker/requirements-serve.txt"]))
    assert C.layers_rebuilt(IMAGES["serve"], ["workspace/models/housing/MLmodel"])[0].args.startswith("${MODEL_DIR}")


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
    assert C.is_ignored(path.lstrip("/"), patterns) is ignored


def test_context_files_prunes_and_reincludes(tmp_path):
    for f in ["keep/a.py", "keep/__pycache__/a.pyc", "drop/b.txt", "big/.venv/c", "req.txt"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    got = C.context_files(tmp_path, ["*", "!keep", "!req.txt", "**/__pycache__"])
    assert got == ["req.txt", "keep/a.py"]
    assert len(C.context_files(tmp_path)) == 5


# --- sizes -----------------------------------------------------------------------------------------

def test_requirements_size_measures_the_installed_pins():
    df = C.requirements_size(DOCKER / "requirements-serve.txt")
    assert {"scikit-learn", "mlflow-skinny", "pandas"} <= set(df.package)
    assert (df.MB > 0).all() and df.MB.is_monotonic_decreasing
    assert (df.pinned == df.installed).all()


# --- Docker helpers ---------------------------------------------------------------------------------

def test_docker_available_explains_a_missing_client(monkeypatch):
    monkeypatch.setenv("PATH", "")
    status = C.docker_available()
    assert not status and "no `docker` client" in status.reason
    with pytest.raises(C.DockerUnavailable, match=r"^no Docker engine: skipped; run this on a machine with Docker"):
        C.build_image(IMAGES["serve"], "housing-serve:test")
    with pytest.raises(C.DockerUnavailable, match="no Docker engine"):
        C.run_container("housing-train:test")
    with pytest.raises(C.DockerUnavailable, match="no Docker engine"):
        with C.serving_container("housing-serve:test"):
            pass


def test_docker_status_is_consistent():
    status = C.docker_available(timeout=20)
    assert isinstance(status.reason, str) and status.reason
    if not status:
        with pytest.raises(C.DockerUnavailable, match="no Docker engine: skipped"):
            C.require_docker()


# --- the training entry point of the image ------------------------------------------------------------

@pytest.mark.slow
def test_train_and_export_writes_a_servable_mlflow_model(tmp_path, workspace):
    import mlflow.pyfunc

    from mlops_course.data import TARGET, load_housing
    out = tmp_path / "model"
    assert C.main(["train", "--out", str(out), "--n", "1500"]) == 0
    assert (out / "MLmodel").exists() and json.loads((out / "metrics.json").read_text())["r2"] > 0.5
    reqs = (out / "requirements.txt").read_text()
    serve_pins = C._pins(DOCKER / "requirements-serve.txt")
    for line in reqs.split():
        if "==" in line:
            name, version = line.split("==")
            assert serve_pins.get(name) == version, f"the model needs {line}, the serving image pins {serve_pins.get(name)}"
    X = load_housing().head(4).drop(columns=[TARGET])
    assert (mlflow.pyfunc.load_model(str(out)).predict(X) > 0).all()
