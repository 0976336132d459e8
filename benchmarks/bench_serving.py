"""The course's housing API (sklearn runtime) against `mlflow models serve` on the same model, loaded with `wrk`.

    .venv/bin/python benchmarks/bench_serving.py               # appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_serving.py --no-record --seconds 5 --repeats 3

One model (HistGradientBoosting on a simulated table, saved with mlflow.sklearn.save_model) is served by both,
each with one worker, started and stopped in interleaved repetitions. Per repetition and server: start-up to
ready, resident memory of the server's processes once warm, 1-row requests per second and their p99 latency,
1,000-row batches (rows per second). The medians are recorded, with the bars of the serving issue.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from results import record as append_section  # benchmarks/ is on sys.path when a script here runs

LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n'
BARS = {"1-row req/s ratio": 5.0, "p99 ms": 40.0, "batch rows/s ratio": 1.5, "start-up ratio": 0.5, "memory ratio": 0.5}


def wrk(url: str, body: str, seconds: int, connections: int) -> tuple[float, float]:
    "Requests per second and p99 latency (ms) of `wrk` POSTing `body` to `url` for `seconds`."
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA.format(body=body))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                          "-s", f.name, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    os.unlink(f.name)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk saw error responses from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def rss_mb(svc) -> float:
    "Resident memory (MB) of the server's processes (the watchdog that leads the group excluded)."
    import psutil

    leader = psutil.Process(svc.pid)
    return sum(p.memory_info().rss for p in leader.children(recursive=True)) / 1e6


def post(url: str, payload) -> dict:
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=60) as r:
        return json.loads(r.read())


def model_folder(rows: int, seed: int = 42):
    "A HistGradientBoosting pipeline on a simulated table, saved as an MLflow model folder; and that table."
    from mlops_course.schema import FEATURES
    from mlops_course.serve_runtime import save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=seed).sample(rows)
    pipeline = train_model(df, "hgb", max_iter=100)
    return save_model(pipeline, Path(tempfile.mkdtemp(prefix="bench-serving-")) / "model", df[FEATURES]), df, pipeline


def measure(kind: str, folder: Path, one: dict, batch: list[dict], seconds: int, connections: int) -> dict:
    "Start one server, warm it, load it with wrk (1 row, then 1,000-row batches), stop it."
    from mlops_course.registry import serve_model
    from mlops_course.serve import start_api

    svc = start_api(str(folder), timeout=600) if kind == "course" else serve_model(str(folder), timeout=600)
    try:
        if kind == "course":
            url1, body1, urlb, bodyb = f"{svc.url}/predict", one, f"{svc.url}/predict/batch", {"rows": batch}
        else:
            url1 = urlb = f"{svc.url}/invocations"
            body1, bodyb = {"dataframe_records": [one]}, {"dataframe_records": batch}
        answer = post(urlb, bodyb)
        preds = answer["predictions"]
        for _ in range(20):
            post(url1, body1)
        memory = rss_mb(svc)
        rps, p99 = wrk(url1, json.dumps(body1), seconds, connections)
        brps, _ = wrk(urlb, json.dumps(bodyb), seconds, 2)
        return {"startup s": svc.startup_seconds, "memory MB": memory, "1-row req/s": rps, "p99 ms": p99,
                "batch rows/s": brps * len(batch), "predictions": preds}
    finally:
        svc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8, help="wrk duration of each load")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections for 1-row requests")
    ap.add_argument("--rows", type=int, default=5_000, help="rows of the training table")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    ws = Path(tempfile.mkdtemp(prefix="bench-serving-ws-"))
    os.environ["MLOPS_COURSE_WORKSPACE"] = str(ws)
    os.environ["MLOPS_COURSE_TRACKING_URI"] = f"sqlite:///{ws}/mlflow.db"  # serve_model wants one; a folder needs none
    import numpy as np

    from mlops_course.serve_runtime import frame

    folder, df, pipeline = model_folder(args.rows)
    rows = json.loads(df.drop(columns="median_house_value").head(1_000).to_json(orient="records"))
    expected = pipeline.predict(frame(rows))
    runs, load_before = {"course": [], "mlflow": []}, os.getloadavg()[0]
    for rep in range(args.repeats):
        for kind in ("course", "mlflow") if rep % 2 == 0 else ("mlflow", "course"):
            r = measure(kind, folder, rows[0], rows, args.seconds, args.connections)
            r["max abs diff"] = float(np.max(np.abs(np.asarray(r.pop("predictions")) - expected)))
            runs[kind].append(r)
            print(kind, {k: round(v, 3) for k, v in r.items()}, flush=True)
    med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in runs.items()}
    c, m = med["course"], med["mlflow"]
    ratios = {"1-row req/s ratio": c["1-row req/s"] / m["1-row req/s"], "p99 ms": c["p99 ms"],
              "batch rows/s ratio": c["batch rows/s"] / m["batch rows/s"],
              "start-up ratio": c["startup s"] / m["startup s"], "memory ratio": c["memory MB"] / m["memory MB"]}
    met = {k: (v >= BARS[k] if "req/s" in k or "rows/s" in k else v <= BARS[k]) for k, v in ratios.items()}
    lines = [f"## bench_serving — {dt.date.today()}", "",
             f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; one worker each; "
             f"{args.repeats} interleaved repetitions (medians); wrk {args.seconds} s per load, "
             f"{args.connections} connections for 1-row requests, 2 for 1,000-row batches; "
             f"HistGradientBoosting (100 iterations) on {args.rows:,} simulated rows; 1-minute load average "
             f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine skews every number).", "",
             "| measure | course API (sklearn) | mlflow models serve |", "|---|---|---|"]
    for k in c:
        lines.append(f"| {k} | {c[k]:,.4g} | {m[k]:,.4g} |")
    lines += ["", "| bar | measured | target | met |", "|---|---|---|---|"]
    for k, v in ratios.items():
        lines.append(f"| {k} | {v:.3g} | {'≥' if k in ('1-row req/s ratio', 'batch rows/s ratio') else '≤'} "
                     f"{BARS[k]:g} | {'yes' if met[k] else 'NO'} |")
    lines.append(f"| predictions identical to pipeline.predict (course API) | max abs diff {c['max abs diff']:g} "
                 f"| 0 | {'yes' if c['max abs diff'] == 0 else 'NO'} |")
    section = "\n".join(lines)
    print(section)
    if not args.no_record:
        append_section(section)


if __name__ == "__main__":
    main()
