"""The logging extension in a real uvicorn server: request ids in headers, error bodies and every JSON log line,
sampled prediction lines, no secrets in the log."""
from __future__ import annotations

import json
import re

import pytest

from mlops_course.logs import read_logs
from mlops_course.schema import FEATURES
from mlops_course.services import wait_until

pytestmark = [pytest.mark.api, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    "A small tree pipeline on simulated districts, saved as an MLflow model folder."
    from mlops_course.serve_runtime import save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=11).sample(400)
    return save_model(train_model(df, "tree", max_depth=5), tmp_path_factory.mktemp("models") / "m", df[FEATURES]), \
        json.loads(df[FEATURES].head(1).to_json(orient="records"))[0]


@pytest.fixture(scope="module")
def api(model_dir, tmp_path_factory):
    "The API with the logging extension, its JSON lines in a file, half of the predictions sampled."
    from mlops_course.serve import start_api

    log_file = tmp_path_factory.mktemp("logs") / "api.jsonl"
    env = {"MLOPS_COURSE_LOG_FILE": str(log_file), "MLOPS_COURSE_LOG_SAMPLE_PREDICTIONS": "0.5"}
    with start_api(str(model_dir[0]), extensions=["mlops_course.logs:add_logging"], env=env, timeout=300) as svc:
        svc.log_file = log_file
        yield svc


def lines_of(api, rid: str) -> list[dict]:
    "The log lines of one request (waiting for the request line, written when the response is sent)."
    wait_until(lambda: any(x.get("request_id") == rid and x["event"] == "request" for x in read_logs(api.log_file)),
               10, what=f"the log line of request {rid}")
    return [x for x in read_logs(api.log_file) if x.get("request_id") == rid]


def test_a_sane_client_id_is_kept_and_logged(api, client, model_dir):
    r = client.post("/predict", json=model_dir[1], headers={"X-Request-ID": "t-keep-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "t-keep-1"
    (request,) = [x for x in lines_of(api, "t-keep-1") if x["event"] == "request"]
    assert (request["route"], request["status"], request["method"]) == ("/predict", 200, "POST")
    assert request["duration_ms"] > 0 and request["timestamp"].endswith("Z")


@pytest.mark.parametrize("header", ["a\tb", "x" * 300, "", "<id>", "{\"level\": \"info\"}"])
def test_an_insane_client_id_is_replaced(client, model_dir, header):
    r = client.post("/predict", json=model_dir[1], headers=[(b"X-Request-ID", header.encode())])
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_error_bodies_carry_the_request_id(api, client, model_dir):
    bad = client.post("/predict", json={**model_dir[1], "median_income": "3"}, headers={"X-Request-ID": "t-bad"})
    assert bad.status_code == 422 and bad.json()["request_id"] == "t-bad" and bad.json()["detail"]
    missing = client.get("/nowhere", headers={"X-Request-ID": "t-404"})
    assert missing.status_code == 404 and missing.json()["request_id"] == "t-404"
    (line,) = lines_of(api, "t-404")
    assert line["route"] == "<unmatched>" and line["level"] == "warning"  # the raw path is not logged


def test_predictions_are_sampled_by_request_id(api, client, model_dir):
    from mlops_course.logs import sampled

    ids = [f"t-sample-{i}" for i in range(20)]
    for rid in ids:
        client.post("/predict", json=model_dir[1], headers={"X-Request-ID": rid})
    logged = {rid for rid in ids if any(x["event"] == "prediction" for x in lines_of(api, rid))}
    assert logged == {rid for rid in ids if sampled(rid, 0.5)} and 0 < len(logged) < 20


def test_no_secret_reaches_the_log(api, client, model_dir):
    client.post("/predict", json=model_dir[1], headers={"X-Request-ID": "t-secret", "Authorization": "Bearer s3cr3t",
                                                        "X-API-Key": "k-s3cr3t", "Cookie": "session=s3cr3t"})
    lines_of(api, "t-secret")
    text = api.log_file.read_text()
    assert "s3cr3t" not in text and "127.0.0.1" not in text
