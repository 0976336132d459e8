"""The tracing extension: the stage spans of a request, the batch route (a `def` endpoint in a thread), a failing
model, and the logging and tracing extensions on one app."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mlops_course.logs import LogSettings, add_logging, read_logs
from mlops_course.schema import FEATURES
from mlops_course.serve import ServeSettings, create_app, get_runtime
from mlops_course.tracing import TracingSettings, add_tracing, spans_of, trace_table

pytestmark = [pytest.mark.api]


@pytest.fixture(scope="module")
def housing(tmp_path_factory):
    from mlops_course.serve_runtime import save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=5).sample(300)
    folder = save_model(train_model(df, "tree", max_depth=4), tmp_path_factory.mktemp("m") / "m", df[FEATURES])
    return folder, json.loads(df[FEATURES].head(3).to_json(orient="records"))


@pytest.fixture
def traced(housing, tmp_path):
    "An app with both extensions: logs to a file, spans to memory."
    app = create_app(ServeSettings(model=str(housing[0])))
    add_logging(app, LogSettings(file=tmp_path / "api.jsonl"))
    add_tracing(app, TracingSettings(exporter="memory"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.model.loaded.wait(60)
        yield app, client, tmp_path / "api.jsonl"


def test_a_batch_is_traced_through_its_stages(traced, housing):
    app, client, _ = traced
    assert client.post("/predict/batch", json={"rows": housing[1]}).status_code == 200
    spans = spans_of(app.state.span_exporter)
    table = trace_table(spans)
    assert {"POST /predict/batch", "validate", "handler", "model.predict", "serialize"} <= set(table["span"])
    model = next(s for s in spans if s["name"] == "model.predict")
    assert model["attributes"]["model.rows"] == 3
    handler = next(s for s in spans if s["name"] == "handler")
    assert model["parent_id"] == handler["span_id"]  # the thread of a `def` endpoint keeps the trace context
    assert len({s["trace_id"] for s in spans}) == 1


def test_a_failing_model_marks_the_trace_and_the_log(traced, housing):
    app, client, log_file = traced

    class Broken:
        name, info = "broken", None

        def predict(self, rows):
            raise RuntimeError("disk gone")

    app.dependency_overrides[get_runtime] = lambda: Broken()
    r = client.post("/predict", json=housing[1][0], headers={"X-Request-ID": "trace-500"})
    assert r.status_code == 500 and r.json()["request_id"] == "trace-500"
    server = next(s for s in spans_of(app.state.span_exporter) if s["kind"] == "SERVER")
    assert server["status"] == "ERROR" and server["attributes"]["http.status_code"] == 500
    assert {x["request_id"] for x in read_logs(log_file) if x["level"] == "error"} == {"trace-500"}


def test_probes_are_not_traced(traced):
    app, client, _ = traced
    client.get("/health"), client.get("/ready")
    assert spans_of(app.state.span_exporter) == []
