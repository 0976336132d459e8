"""Week 03: the DVC scratch project — runners and their errors, the pipeline spec, the stage commands, and one
end-to-end run of the real git + DVC tools (track, repro, skip, diff, time travel, push/pull)."""
import json
import re
import shutil
from pathlib import Path

import pytest

from mlops_course import versioning as V
from mlops_course.errors import CourseError

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# --- runners and their errors ------------------------------------------------------------------------

def test_commands_never_fall_through_to_a_parent_repository(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(V.VersioningError, match="not a DVC project .*init_project"):
        V.dvc(tmp_path / "plain", "status")
    with pytest.raises(V.VersioningError, match="not a git project"):
        V.git(tmp_path / "plain", "log")
    with pytest.raises(V.VersioningError, match="no project folder"):
        V.git(tmp_path / "missing", "status")


def test_dvc_outside_git_is_one_clear_error(tmp_path):
    with pytest.raises(V.VersioningError) as e:
        V.dvc(tmp_path, "init")
    msg = str(e.value)
    assert msg.startswith("`dvc init` failed") and "not tracked by any supported SCM" in msg
    assert "Fix: DVC versions data next to git: run `git init`" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__, "no traceback chain"


def test_missing_git_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(V.shutil, "which", lambda name: None)
    with pytest.raises(V.VersioningError, match="git is not installed.*Install git"):
        V.tool_path("git")


@pytest.mark.parametrize("output,fix", [
    ("ERROR: failed to reproduce 'train': failed to run: python x", "a pipeline stage failed"),
    ("fatal: not a git repository (or any of the parent directories)", "run `git init`"),
    ("error: pathspec 'v9' did not match any file(s) known to git", "no such git revision"),
    ("something else entirely", "run the same command in a terminal"),
])
def test_fix_hints(output, fix):
    assert fix in V._fix_for(output)


def test_init_project_refuses_to_wipe_a_foreign_folder(workspace):
    foreign = workspace / "mine"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("do not delete")
    with pytest.raises(V.VersioningError, match="not a DVC scratch project"):
        V.init_project(foreign)
    assert (foreign / "thesis.tex").exists()


# --- pipeline spec and params ---------------------------------------------------------------------------

def test_pipeline_stages_chain_through_their_files():
    st = V.pipeline_stages()
    assert list(st) == ["prepare", "train", "evaluate"]
    assert st["prepare"]["deps"] == [V.DATA_FILE] and st["prepare"]["outs"] == ["data/prepared"]
    assert st["train"]["deps"][0].startswith("data/prepared/") and "train" in st["train"]["params"]
    assert V.MODEL_FILE in st["evaluate"]["deps"] and st["train"]["outs"] == [V.MODEL_FILE]
    assert all(s["cmd"].startswith("python -m mlops_course.versioning ") for s in st.values())


@pytest.mark.parametrize("stages,message", [
    ({}, "non-empty dict"),
    ({"train": {"deps": ["a"]}}, "needs a 'cmd'"),
    ({"train": {"cmd": "x", "output": ["m"]}}, "unknown keys ['output']"),
    ({"train": {"cmd": "x", "outs": "m.pkl"}}, "'outs' must be a list"),
])
def test_write_pipeline_rejects_bad_stages(tmp_path, stages, message):
    with pytest.raises(V.PipelineSpecError, match=re.escape(message)):
        V.write_pipeline(tmp_path, stages)
    assert not (tmp_path / "dvc.yaml").exists()


def test_stage_commands_in_process(tmp_path):
    "prepare → train → evaluate as plain functions on a folder (what `dvc repro` runs in subprocesses)."
    V.write_data_version(tmp_path, month=0, n=600)
    V.write_params(tmp_path, {**V.PARAMS, "train": {"model": "ridge", "params": {}}})
    sizes = V.stage_prepare(tmp_path)
    assert sum(sizes.values()) == 600 and set(sizes) == {"train", "val", "test"}
    V.stage_train(tmp_path)
    m = V.stage_evaluate(tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["rmse"] == m["rmse"] > 0 and saved["n_test"] == sizes["test"]
    plots = (tmp_path / "plots" / "predictions.csv").read_text().splitlines()
    assert plots[0] == "actual,predicted" and len(plots) == sizes["test"] + 1


def test_stage_without_params_says_what_to_do(tmp_path):
    with pytest.raises(V.PipelineSpecError, match="write_params"):
        V.stage_train(tmp_path)
    assert issubclass(V.PipelineSpecError, CourseError) and issubclass(V.VersioningError, CourseError)


def test_models_are_saved_with_skops_and_loaded_with_trusted_types_only(tmp_path):
    import skops.io as sio
    V.write_data_version(tmp_path, month=0, n=300)
    V.write_params(tmp_path, {**V.PARAMS, "train": {"model": "ridge", "params": {}}})
    V.stage_prepare(tmp_path)
    V.stage_train(tmp_path)
    model = V.load_model(tmp_path / V.MODEL_FILE)
    assert type(model).__name__ == "Pipeline"
    sio.dump({"f": Path}, tmp_path / "odd.skops")  # a type outside scikit-learn/NumPy/SciPy/the course
    with pytest.raises(V.PipelineSpecError, match="review them before trusting them"):
        V.load_model(tmp_path / "odd.skops")


def test_the_stage_command_line_is_typer(tmp_path):
    from typer.testing import CliRunner
    V.write_data_version(tmp_path, month=0, n=300)
    V.write_params(tmp_path, {**V.PARAMS, "train": {"model": "ridge", "params": {}}})
    for stage in ("prepare", "train", "evaluate"):
        r = CliRunner().invoke(V.app, [stage, "--root", str(tmp_path)])
        assert r.exit_code == 0 and r.output.startswith(f"{stage}: "), r.output
    assert CliRunner().invoke(V.app, ["fit"]).exit_code == 2


def test_rerun_reads_what_the_lock_recorded():
    lock = {"prepare": {"deps": {"data/housing.csv": "a"}, "params": {"seed": 42, "prepare.test_size": 0.2},
                        "outs": {"data/prepared": "b.dir"}},
            "train": {"deps": {"data/prepared/train.csv": "c"}, "params": {"seed": 42, "train.params.alpha": 1.0},
                      "outs": {"models/model.skops": "d"}},
            "evaluate": {"deps": {"models/model.skops": "d", "data/prepared/test.csv": "e"}, "params": {},
                         "outs": {"metrics.json": "f"}}}
    assert V.rerun(lock, params=["train"]) == ["train", "evaluate"]
    assert V.rerun(lock, params=["train.params.alpha"]) == ["train", "evaluate"]
    assert V.rerun(lock, params=["seed"]) == ["prepare", "train", "evaluate"]
    assert V.rerun(lock, files=["data"]) == ["prepare", "train", "evaluate"]
    assert V.rerun(lock, files=["models/model.skops"]) == ["evaluate"]
    assert V.rerun(lock, params=["prepare.val_size"]) == []


def test_data_versions_are_deterministic_and_differ(tmp_path):
    a = V.file_md5(V.write_data_version(tmp_path / "a", month=0, n=300))
    b = V.file_md5(V.write_data_version(tmp_path / "b", month=0, n=300))
    c = V.file_md5(V.write_data_version(tmp_path / "c", month=6, scenario="inflation", n=300))
    assert a == b != c


# --- the real thing ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dvc_project_end_to_end(workspace):
    p = V.init_project()
    assert p == workspace / "dvc-project" and V.git(p, "status", "--porcelain") == ""
    assert V.git(p, "config", "user.email").endswith(".invalid")

    V.write_data_version(p, month=0, n=600)
    v1_md5 = V.track(p, V.DATA_FILE, message="month 0")
    assert V.file_md5(p / ".dvc/cache/files/md5" / v1_md5[:2] / v1_md5[2:]) == v1_md5
    assert V.git(p, "ls-files", "data") == "data/.gitignore\ndata/housing.csv.dvc"

    V.write_params(p, {**V.PARAMS, "train": {"model": "ridge", "params": {"alpha": 1.0}}})
    V.write_pipeline(p, V.pipeline_stages())
    assert V.repro(p) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}
    assert V.repro(p) == {"prepare": "skipped", "train": "skipped", "evaluate": "skipped"}
    assert V.status(p) == {}
    files = ["dvc.yaml", "dvc.lock", "params.yaml", "metrics.json", "plots/predictions.csv", "data/.gitignore",
             "models/.gitignore"]
    V.commit(p, "v1", *files, tag="v1")
    assert sorted(V.lock_outs(p, "v1")) == ["evaluate", "prepare", "train"]

    explicit = V.pipeline_stages()  # DVC's explicit-file form of the same params: the same pipeline, the same lock
    explicit["train"]["params"] = [{"params.yaml": ["seed", "train"]}]
    V.write_pipeline(p, explicit)
    assert V.repro(p) == {"prepare": "skipped", "train": "skipped", "evaluate": "skipped"}
    assert V.lock_stages(p) == V.lock_stages(p, "v1")
    V.git(p, "checkout", "--", "dvc.yaml")

    V.write_params(p, {**V.PARAMS, "train": {"model": "ridge", "params": {"alpha": 10.0}}})
    ran = V.repro(p)
    assert ran == {"prepare": "skipped", "train": "ran", "evaluate": "ran"}
    assert V.stages_rerun(p, params=["train.params.alpha"], rev="v1") == [s for s, r in ran.items() if r == "ran"]
    V.commit(p, "v2", *files, tag="v2")
    pd_ = V.params_diff(p, "v1", "v2").set_index("param")
    assert pd_.loc["train.params.alpha", ["old", "new"]].tolist() == [1.0, 10.0]
    md = V.metrics_diff(p, "v1", "v2").set_index("metric")
    assert md.loc["rmse", "new"] == json.loads((p / "metrics.json").read_text())["rmse"]

    V.write_params(p, {**V.PARAMS, "train": {"model": "no_such_model", "params": {}}})
    with pytest.raises(V.VersioningError) as e:
        V.repro(p)
    assert re.search(r"stage error: [\w.]*Error: unknown model kind 'no_such_model'", str(e.value)), str(e.value)
    assert "Fix: a pipeline stage failed" in str(e.value)
    V.git(p, "checkout", "--", "params.yaml")
    V.dvc(p, "checkout")

    assert V.checkout(p, "v1") == {}
    assert json.loads((p / "metrics.json").read_text()) == json.loads(V.git(p, "show", "v1:metrics.json"))
    assert V.checkout(p, "main") == {}
    with pytest.raises(V.VersioningError, match="no such git revision"):
        V.checkout(p, "v9")

    V.dvc(p, "push", "--all-tags")
    V.clear_cache(p)
    assert not (p / V.DATA_FILE).exists() and not (p / V.MODEL_FILE).exists()
    assert (p / "metrics.json").exists(), "git-tracked metrics stay"
    V.dvc(p, "pull")
    assert V.file_md5(p / V.DATA_FILE) == v1_md5 and V.status(p) == {}

    again = V.init_project()  # reset: a fresh project, the remote emptied
    assert V.git(again, "log", "--format=%s") == "Initialize DVC with a local remote"
    assert not any(f.is_file() for f in (workspace / "dvc-remote").rglob("*")), "the reset empties the remote"


@pytest.mark.slow
def test_the_stages_write_the_model_their_dvc_yaml_declares(workspace):
    "Another spelling of the same pipeline (explicit params file, another model file name) runs, skips and locks alike."
    p = V.init_project()
    V.write_data_version(p, month=0, n=600)
    V.track(p, V.DATA_FILE, message="month 0")
    V.write_params(p, {**V.PARAMS, "train": {"model": "ridge", "params": {}}})
    stages = V.pipeline_stages(model_file="models/model.pkl")
    stages["train"]["params"] = [{"params.yaml": ["seed", "train"]}]
    V.write_pipeline(p, stages)
    assert V.repro(p) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}
    assert V.repro(p) == {"prepare": "skipped", "train": "skipped", "evaluate": "skipped"}
    assert "models/model.pkl" in V.lock_outs(p)["train"] and not (p / V.MODEL_FILE).exists()
    assert type(V.load_model(p / "models/model.pkl")).__name__ == "Pipeline"  # skops, whatever the name
    assert V.stages_rerun(p, params=["train.params.alpha"]) == ["train", "evaluate"]
