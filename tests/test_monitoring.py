"""Monitoring of the housing API: its /metrics, a real Prometheus scraping it, every Grafana panel's PromQL, the
Prometheus config of deploy/, and the API killed and restarted under load (errors only while it is down)."""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from mlops_course.schema import FEATURES

pytestmark = [pytest.mark.api, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="prometheus is not installed (Debian: apt-get install prometheus)")]

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "housing-api.json"
JOB = "housing-api"
AGREED = {  # the metric names weeks 10-12 agreed on, and their types in the text format
    "housing_api_requests": "counter", "housing_api_request_duration_seconds": "histogram",
    "housing_api_requests_in_progress": "gauge", "housing_api_predicted_price_dollars": "histogram",
    "housing_api_feature_value": "summary", "housing_api_model": "info",
}
RULES = {"groups": [{"name": "housing-test", "rules": [
    {"record": "job:housing_api_requests:rate10s", "expr": "sum by (job) (rate(housing_api_requests_total[10s]))"},
    {"alert": "HousingApiServesTraffic", "expr": "job:housing_api_requests:rate10s > 0"},
]}]}


@pytest.fixture(scope="module")
def model_dir(module_workspace, tmp_path_factory):
    "A small tree on simulated districts, saved as an MLflow model folder, and rows to send."
    from mlops_course.serve_runtime import save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=11).sample(600)
    return save_model(train_model(df, "tree", max_depth=6), tmp_path_factory.mktemp("models") / "tree", df[FEATURES])


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    from mlops_course.simulator import HousingMarket

    return json.loads(HousingMarket(seed=11).batch(3, "income_shift", n=200)[FEATURES].to_json(orient="records"))


@pytest.fixture(scope="module")
def api(model_dir):
    "One real API for the module, with the monitoring extension."
    from mlops_course.serve import start_api

    with start_api(str(model_dir), extensions=["mlops_course.monitoring:instrument"], timeout=300) as svc:
        yield svc


@pytest.fixture(scope="module")
def alertmanager_address() -> str:
    from mlops_course.loopback import free_port

    return f"127.0.0.1:{free_port()}"  # nothing answers there: Prometheus lists it all the same


@pytest.fixture(scope="module")
def prometheus(api, module_workspace, alertmanager_address):
    "One real Prometheus for the module, scraping the API every second, with a rule file and an Alertmanager."
    from mlops_course.prometheus_local import start_prometheus, wait_for_scrape

    rules = module_workspace / "rules.yml"
    rules.write_text(yaml.safe_dump(RULES))
    with start_prometheus({JOB: [api.url]}, rule_files=[rules], alertmanagers=[alertmanager_address],
                          workspace=module_workspace / "prometheus", port=None) as svc:
        wait_for_scrape(svc, JOB)
        yield svc


@pytest.fixture(scope="module")
def traffic(api, prometheus, rows):
    "Four seconds of single, batch and bad requests; returns the client's records once Prometheus has scraped them."
    from mlops_course.monitoring import send_traffic

    sent = send_traffic(api.url, rows, seconds=4, batch_every=10, batch_rows=20, bad_every=7)
    time.sleep(2.5)  # two more scrapes: Prometheus has the final counts
    return sent


def promql(prometheus, expr: str):
    from mlops_course.prometheus_local import query

    return query(prometheus, expr)


# --- the API's /metrics -------------------------------------------------------------------------------------------
def test_metrics_have_the_agreed_names_and_types(api, traffic):
    text = httpx.get(api.url + "/metrics", trust_env=False).text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))
    for name, kind in AGREED.items():
        got = types.get(name) or types.get(name + "_total") or types.get(name + "_info")
        assert got == kind or (kind == "info" and got == "gauge"), f"{name}: {got!r}, expected {kind}"
    assert "/metrics" not in httpx.get(api.url + "/openapi.json", trust_env=False).json()["paths"]


def test_route_label_is_the_template_not_the_path(api, prometheus, traffic):
    for path in ["/wp-login.php", "/predict/../admin", "/a1", "/a2"]:
        httpx.get(api.url + path, trust_env=False)
    text = httpx.get(api.url + "/metrics", trust_env=False).text
    routes = set(re.findall(r'housing_api_requests_total\{[^}]*route="([^"]*)"', text))
    assert "<unmatched>" in routes and "/a1" not in routes, routes
    assert routes <= {"/predict", "/predict/batch", "/metrics", "/health", "/ready", "/model", "/openapi.json", "/docs",
                      "<unmatched>"}, routes


def test_prometheus_counts_what_the_client_sent(prometheus, traffic):
    for (route, status), n in traffic.groupby(["route", "status"]).size().items():
        got = promql(prometheus, f'sum(housing_api_requests_total{{job="{JOB}",route="{route}",status="{status}"}})')
        assert got and got[0]["value"] == n, (route, status, n, got)
    predicted = promql(prometheus, f'housing_api_predicted_price_dollars_count{{job="{JOB}"}}')[0]["value"]
    single, batch = (traffic.route == "/predict") & (traffic.status == 200), traffic.route == "/predict/batch"
    assert predicted == single.sum() + 20 * batch.sum()


def test_model_info_and_quantiles(prometheus, traffic, model_dir):
    info = promql(prometheus, f'housing_api_model_info{{job="{JOB}"}}')
    assert [i["metric"]["runtime"] for i in info] == ["sklearn"] and info[0]["value"] == 1
    p = {q: promql(prometheus, f'histogram_quantile({q}, sum by (le) (rate(housing_api_request_duration_seconds_bucket'
                               f'{{job="{JOB}",route="/predict"}}[30s])))')[0]["value"] for q in (0.5, 0.99)}
    assert 0 < p[0.5] <= p[0.99] < 1, p


def test_recording_rule_and_alertmanager_from_the_config(prometheus, traffic, alertmanager_address):
    from mlops_course.prometheus_local import api_get

    assert promql(prometheus, f'job:housing_api_requests:rate10s{{job="{JOB}"}}')  # evaluated every second
    listed = [a["url"] for a in api_get(prometheus, "/api/v1/alertmanagers")["activeAlertmanagers"]]
    assert listed == [f"http://{alertmanager_address}/api/v2/alerts"]


def test_a_bad_query_is_one_clear_error(prometheus):
    from mlops_course.prometheus_local import PromQLError

    with pytest.raises(PromQLError, match="Prometheus refused 'sum\\(rate\\(x\\[1m\\]\\)': .*parenthesis"):
        promql(prometheus, "sum(rate(x[1m])")


def test_a_busy_port_makes_prometheus_pick_another(module_workspace):
    from mlops_course.prometheus_local import start_prometheus

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with start_prometheus({"nothing": ["127.0.0.1:9"]}, workspace=module_workspace / "prometheus",
                              port=port) as other:
            assert other.port != port and other.running


def test_prometheus_missing_is_one_line(monkeypatch):
    from mlops_course import prometheus_local

    monkeypatch.setattr(prometheus_local.shutil, "which", lambda name: None)
    with pytest.raises(prometheus_local.PrometheusError, match="apt-get install prometheus"):
        prometheus_local.start_prometheus({JOB: ["127.0.0.1:9"]})


# --- the dashboard: every panel's query runs against the real Prometheus ------------------------------------------
def _grafana_to_promql(expr: str, variables: dict) -> str:
    "A panel's expression with Grafana's variables filled in as Grafana would for this Prometheus."
    expr = expr.replace("$__rate_interval", "10s").replace("$__interval", "2s").replace("$__range", "1m")
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def _panel_targets():
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


@pytest.mark.parametrize("title, expr", _panel_targets(), ids=[f"{t}-{i}" for i, (t, _) in enumerate(_panel_targets())])
def test_every_panel_query_returns_series(prometheus, traffic, title, expr):
    from mlops_course.prometheus_local import api_get

    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v["current"]["value"] for v in board["templating"]["list"]}
    names = set(re.findall(r"\b(?:housing_api_\w+|process_\w+|up)\b(?=\s*[{\[(]|\s*$|\s*\))", expr))
    known = set(api_get(prometheus, "/api/v1/label/__name__/values"))
    assert names and names <= known, f"{title}: metrics Prometheus does not have: {sorted(names - known)}"
    result = promql(prometheus, _grafana_to_promql(expr, variables))
    assert result, f"{title}: {expr} returned no series"


def test_dashboard_and_provisioning_fit_together():
    board = json.loads(DASHBOARD.read_text())
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = sources["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in board["panels"]} == {uid}
    assert {t["datasource"]["uid"] for p in board["panels"] for t in p["targets"]} == {uid}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] == "housing-api"
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/housing.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert board["templating"]["list"][0]["current"]["value"] == JOB


@pytest.mark.deploy
def test_deploy_config_is_valid_and_scrapes_the_api():
    path = ROOT / "deploy/prometheus/prometheus.yml"
    config = yaml.safe_load(path.read_text())
    assert [j["job_name"] for j in config["scrape_configs"]][0] == JOB
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


# --- a fault: the API killed and restarted under load (last: it replaces the module's API) -------------------------
def test_api_killed_and_restarted_errors_only_while_down(api, prometheus, traffic, rows, model_dir):
    from mlops_course.monitoring import send_traffic
    from mlops_course.prometheus_local import query_range
    from mlops_course.serve import start_api

    out, stop = {}, threading.Event()
    sender = threading.Thread(target=lambda: out.update(sent=send_traffic(api.url, rows, 60, stop=stop)))
    sender.start()
    time.sleep(1.5)
    killed = time.time()
    api.kill()
    time.sleep(2)  # down for a while: Prometheus scrapes it and fails
    restarted = start_api(str(model_dir), port=api.port, extensions=["mlops_course.monitoring:instrument"], timeout=300)
    try:
        ready = time.time()
        time.sleep(2.5)
        stop.set()
        sender.join(30)
        sent = out["sent"]
        failed = sent[(sent.status == 0) | (sent.status >= 500)]  # refused, or 503 while the model loads
        assert (sent.status == 0).any() and failed.t.min() >= killed - 0.5 and failed.t.max() <= ready, (
            killed, ready, failed.groupby("status").t.describe())
        up = query_range(prometheus, f'up{{job="{JOB}"}}', killed - 1, time.time(), step=0.5)[0]
        down = [t for t, v in zip(up["times"], up["values"], strict=True) if v == 0]
        assert down and killed - 1 <= min(down) and max(down) <= ready + 1.5, (killed, ready, up)
        assert up["values"][-1] == 1
    finally:
        stop.set()
        restarted.stop()
