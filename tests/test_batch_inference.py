"""Batch inference: a monthly file scored in chunks with the API's validation and runtime; bad rows reported; idempotent."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_course.batch_inference import PREDICTION, BatchInferenceError, records, score_file
from mlops_course.schema import FEATURES
from mlops_course.serve_runtime import frame


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    "A small HistGradientBoosting pipeline, saved as an MLflow model folder and loaded as the API loads it."
    from mlops_course.serve_runtime import load_runtime, save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=11).sample(600)
    folder = save_model(train_model(df, "hgb", max_iter=15), tmp_path_factory.mktemp("m") / "model", df[FEATURES])
    return load_runtime(str(folder))


def month_file(tmp_path, scenario="none", month=7, n=400, suffix=".csv"):
    from mlops_course.simulator import HousingMarket

    df = HousingMarket(seed=3).batch(month=month, scenario=scenario, n=n)
    path = tmp_path / f"month=2024-{month:02d}{suffix}"
    df.to_parquet(path, index=False) if suffix == ".parquet" else df.to_csv(path, index=False)
    return path, df


def test_scores_every_row_like_the_pipeline_and_is_idempotent(runtime, tmp_path):
    path, df = month_file(tmp_path)
    first = score_file(path, runtime, out_dir=tmp_path / "out", chunk_rows=150, progress=False)
    m = first.manifest
    assert (m["rows"], m["scored"], m["rejected"]) == (len(df), len(df), 0) and not first.skipped
    assert m["input_sha256"] and m["model_identity"].startswith("sha256:") and m["chunk_rows"] == 150
    got = first.read()
    assert got["row"].tolist() == list(range(len(df)))
    assert np.array_equal(got[PREDICTION], runtime.pipeline.predict(frame(records(df))))
    again = score_file(path, runtime, out_dir=tmp_path / "out")
    assert again.skipped and again.folder == first.folder and again.manifest == m
    assert [p.name for p in (tmp_path / "out").iterdir()] == [first.folder.name]


def test_bad_rows_are_reported_not_dropped(runtime, tmp_path):
    path, df = month_file(tmp_path, scenario="new_category", month=8)
    result = score_file(path, runtime, out_dir=tmp_path / "out", chunk_rows=100, progress=False)
    bad = [json.loads(line) for line in result.rejected.read_text().splitlines()]
    lake = df.index[df.ocean_proximity == "NEAR LAKE"].tolist()
    assert lake and [b["row"] for b in bad] == lake and result.manifest["rejected"] == len(lake)
    assert bad[0]["errors"][0]["field"] == "ocean_proximity" and "'INLAND'" in bad[0]["errors"][0]["message"]
    assert bad[0]["errors"][0]["input"] == "NEAR LAKE"
    assert sorted(result.read()["row"].tolist() + lake) == list(range(len(df)))


def test_text_in_a_number_column_is_rejected_not_made_missing(runtime, tmp_path):
    path, df = month_file(tmp_path, n=50)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    cells = text[3].split(",")
    cells[header.index("total_bedrooms")] = "n/a!"  # a nullable column: coercing to NaN would hide it
    text[3] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    result = score_file(path, runtime, out_dir=tmp_path / "out", progress=False)
    bad = [json.loads(line) for line in result.rejected.read_text().splitlines()]
    assert [b["row"] for b in bad] == [2] and bad[0]["errors"][0]["input"] == "n/a!"
    assert result.manifest["scored"] == 49


def test_parquet_in_parquet_out(runtime, tmp_path):
    path, df = month_file(tmp_path, scenario="unit_bug", month=7, suffix=".parquet")
    result = score_file(path, runtime, out_dir=tmp_path / "out", progress=False)
    assert result.predictions.suffix == ".parquet" and result.manifest["rejected"] > 0
    assert {e["field"] for line in result.rejected.read_text().splitlines()
            for e in json.loads(line)["errors"]} == {"median_income"}
    got = pd.read_parquet(result.predictions)
    assert len(got) == result.manifest["scored"]


def test_a_crash_midway_leaves_nothing_and_a_rerun_completes(runtime, tmp_path, monkeypatch):
    path, df = month_file(tmp_path)
    calls = {"n": 0}
    real = runtime.predict

    def crash_on_second_chunk(rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(rows)

    monkeypatch.setattr(runtime, "predict", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        score_file(path, runtime, out_dir=tmp_path / "out", chunk_rows=100, progress=False)
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.setattr(runtime, "predict", real)
    result = score_file(path, runtime, out_dir=tmp_path / "out", chunk_rows=100, progress=False)
    assert not result.skipped and result.manifest["scored"] == len(df)


def test_file_level_problems_are_one_clear_error(runtime, tmp_path):
    with pytest.raises(BatchInferenceError, match="no batch file at"):
        score_file(tmp_path / "nowhere.csv", runtime)
    (tmp_path / "cols.csv").write_text("longitude,latitude\n-120,37\n")
    with pytest.raises(BatchInferenceError, match=r"lacks the feature columns \['housing_median_age'"):
        score_file(tmp_path / "cols.csv", runtime, out_dir=tmp_path / "out")
    (tmp_path / "month.xlsx").write_bytes(b"PK")
    with pytest.raises(BatchInferenceError, match="is .csv, .csv.gz or .parquet"):
        score_file(tmp_path / "month.xlsx", runtime, out_dir=tmp_path / "out")
    assert not list((tmp_path / "out").glob(".*"))
