"""Alerting: the Alertmanager config of deploy/ checked by amtool and run for real (routes by severity, inhibition),
the course's webhook receiver, the alert rules of deploy/prometheus/rules checked and unit-tested with promtool."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mlops_course.alerting import (
    AlertingError,
    active_alerts,
    post_alert,
    received_alerts,
    start_alertmanager,
    start_receiver,
    wait_for_alert,
)

ROOT = Path(__file__).resolve().parents[1]
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
needs_alertmanager = pytest.mark.skipif(not (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")),
                                        reason="Alertmanager is not installed (apt-get install prometheus-alertmanager)")


@pytest.mark.deploy
@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_the_deployed_alertmanager_config_is_valid():
    r = subprocess.run(["amtool", "check-config", str(AM_CONFIG)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.code
def test_a_missing_alertmanager_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AlertingError, match="apt-get install prometheus-alertmanager"):
        start_alertmanager("http://127.0.0.1:1")


@pytest.fixture(scope="module")
def receiver(module_workspace):
    with start_receiver(module_workspace / "alerts" / "received.jsonl") as svc:
        yield svc


@pytest.fixture(scope="module")
def alertmanager(receiver, module_workspace):
    with start_alertmanager(receiver.url, workspace=module_workspace) as svc:
        yield svc


@pytest.mark.api
@pytest.mark.slow
@needs_alertmanager
def test_alerts_are_routed_by_severity(alertmanager, receiver):
    post_alert(alertmanager, "T1Page", {"severity": "page", "service": "housing-api"}, {"summary": "wake up"})
    post_alert(alertmanager, "T1Ticket", {"severity": "ticket", "service": "housing-api"})
    assert wait_for_alert(receiver, "T1Page", timeout=30)["path"] == "/page"
    assert wait_for_alert(receiver, "T1Ticket", timeout=30)["path"] == "/tickets"
    assert {"T1Page", "T1Ticket"} <= {a["alertname"] for a in active_alerts(alertmanager)}


@pytest.mark.api
@pytest.mark.slow
@needs_alertmanager
def test_no_traffic_holds_back_the_other_api_alerts(alertmanager, receiver):
    post_alert(alertmanager, "HousingApiNoTraffic", {"severity": "page", "service": "housing-api"})
    wait_for_alert(receiver, "HousingApiNoTraffic", timeout=30)
    post_alert(alertmanager, "T2ErrorRatio", {"severity": "page", "service": "housing-api"})
    post_alert(alertmanager, "T2Other", {"severity": "page", "service": "another-api"})  # not the same service
    wait_for_alert(receiver, "T2Other", timeout=30)
    time.sleep(2)  # group_wait and group_interval are 1 s: an uninhibited T2ErrorRatio would be here by now
    assert "T2ErrorRatio" not in {a["alertname"] for a in received_alerts(receiver)}
    states = {a["alertname"]: a["state"] for a in active_alerts(alertmanager)}
    assert states["T2ErrorRatio"] == "suppressed"


@pytest.mark.api
@pytest.mark.slow
@needs_alertmanager
def test_the_receiver_survives_garbage(receiver):
    import httpx

    with httpx.Client(trust_env=False) as c:
        assert c.post(receiver.url + "/alerts", content=b"not json").status_code == 400
        assert c.get(receiver.url + "/").status_code == 200
    received_alerts(receiver)  # still readable


RULES = ROOT / "deploy" / "prometheus" / "rules"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")


@pytest.mark.deploy
@needs_promtool
def test_the_alert_rules_are_valid():
    r = subprocess.run(["promtool", "check", "rules", str(RULES / "housing.yml")], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.mark.deploy
@needs_promtool
def test_the_alert_rules_pass_their_unit_tests():
    r = subprocess.run(["promtool", "test", "rules", "housing_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.mark.deploy
def test_every_alert_has_a_severity_a_service_and_a_summary():
    import yaml

    alerts = [r for g in yaml.safe_load((RULES / "housing.yml").read_text())["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {"HousingApiHighErrorRatio", "HousingApiHighLatencyP99", "HousingApiNoTraffic",
                                            "HousingApiPriceDrift"}
    for a in alerts:
        assert a["labels"]["severity"] in ("page", "ticket") and a["labels"]["service"] == "housing-api", a["alert"]
        assert a["annotations"]["summary"] and a.get("for"), a["alert"]


AGREED_METRICS = {"housing_api_requests_total", "housing_api_request_duration_seconds", "housing_api_requests_in_progress",
                  "housing_api_predicted_price_dollars", "housing_api_feature_value", "housing_api_model_info"}


@pytest.mark.deploy
def test_the_rules_use_only_the_metrics_the_api_exports():
    import re

    text = (RULES / "housing.yml").read_text()
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bhousing_api_[a-z_]+", text)}
    assert used and used <= AGREED_METRICS, used - AGREED_METRICS


# --- end to end: the API's metrics scraped by Prometheus, the deployed rules (on a clock of seconds) evaluated,
# --- the firing alert sent to Alertmanager, routed to the receiver, then resolved by traffic -------------------

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")


@pytest.fixture(scope="module")
def housing_api(tmp_path_factory):
    "The housing API with the metrics and logging extensions, on a small model."
    import json

    from mlops_course.schema import FEATURES
    from mlops_course.serve import start_api
    from mlops_course.serve_runtime import save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=2).sample(300)
    folder = save_model(train_model(df, "tree", max_depth=4), tmp_path_factory.mktemp("m") / "m", df[FEATURES])
    with start_api(str(folder), extensions=["mlops_course.monitoring:instrument", "mlops_course.logs:add_logging"],
                   timeout=300) as api:
        api.district = json.loads(df[FEATURES].head(1).to_json(orient="records"))[0]
        yield api


@pytest.mark.api
@pytest.mark.slow
@needs_alertmanager
@needs_prometheus
def test_an_alert_fires_end_to_end_and_resolves(housing_api, tmp_path):
    import httpx

    from mlops_course.alerting import shorten_rules
    from mlops_course.prometheus_local import query, start_prometheus

    rules = shorten_rules(out=tmp_path / "rules" / "housing.yml")
    with start_receiver(tmp_path / "received.jsonl") as receiver, \
            start_alertmanager(receiver.url, workspace=tmp_path) as alertmanager, \
            start_prometheus({"housing-api": [housing_api]}, rule_files=[rules], alertmanagers=[alertmanager.url],
                             workspace=tmp_path / "prometheus") as prom:
        # an API that answers no prediction: HousingApiNoTraffic fires, Alertmanager pages
        fired = wait_for_alert(receiver, "HousingApiNoTraffic", timeout=60)
        assert (fired["path"], fired["severity"]) == ("/page", "page")
        assert query(prom, 'ALERTS{alertname="HousingApiNoTraffic", alertstate="firing"}')
        # traffic comes back: the alert resolves, and the receiver hears that too
        with httpx.Client(base_url=housing_api.url, trust_env=False) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not [a for a in received_alerts(receiver)
                                                       if a["alertname"] == "HousingApiNoTraffic" and a["status"] == "resolved"]:
                assert client.post("/predict", json=housing_api.district).status_code == 200
                time.sleep(0.1)
        resolved = wait_for_alert(receiver, "HousingApiNoTraffic", status="resolved", timeout=1)
        assert resolved["starts_at"] == fired["starts_at"]  # the same alert, now over
