"""Streaming inference from Redis Streams: scoring, dead letters, a consumer killed mid-batch (exactly once in the output)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlops_course.schema import FEATURES

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (Debian: apt-get install redis-server)")


@pytest.fixture(scope="module")
def broker(module_workspace):
    "One scratch redis-server for the module."
    from mlops_course.streaming import start_redis

    with start_redis() as svc:
        yield svc


@pytest.fixture
def r(broker):
    from mlops_course.streaming import connect

    client = connect(f"redis://{broker.host}:{broker.port}/0")
    client.flushdb()
    return client


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    "A small model folder, and its runtime loaded as the API loads it."
    from mlops_course.serve_runtime import load_runtime, save_model
    from mlops_course.simulator import HousingMarket
    from mlops_course.train import train_model

    df = HousingMarket(seed=21).sample(500)
    folder = save_model(train_model(df, "hgb", max_iter=10), tmp_path_factory.mktemp("m") / "model", df[FEATURES])
    return folder, load_runtime(str(folder))


@pytest.fixture(scope="module")
def rows():
    from mlops_course.simulator import HousingMarket

    return json.loads(HousingMarket(seed=21).batch(month=2, n=150)[FEATURES].to_json(orient="records"))


def test_events_are_scored_like_the_pipeline(r, model, rows):
    from mlops_course.serve_runtime import frame
    from mlops_course.streaming import Consumer, Streams, publish, results

    runtime = model[1]
    ids = publish(r, rows)
    assert Consumer(r, runtime, "one", batch=40).run() == len(rows)
    out = results(r)
    assert list(out) == ids
    assert np.array_equal([float(out[i]["prediction"]) for i in ids], runtime.pipeline.predict(frame(rows)))
    assert r.xpending(Streams().input, Streams().group)["pending"] == 0


def test_bad_events_go_to_the_dead_letter_stream_with_a_reason(r, model, rows):
    from mlops_course.streaming import Consumer, dead_letters, publish, results

    bad = [{**rows[0], "ocean_proximity": "NEAR LAKE"}, {**rows[1], "colour": "red"},
           {**rows[2], "median_income": "7.5"}, [1, 2], "{broken"]
    ids = publish(r, [rows[3], *bad])
    Consumer(r, model[1], "one").run()
    dead = dead_letters(r)
    assert list(results(r)) == ids[:1] and sorted(dead) == sorted(ids[1:])
    assert "NEAR LAKE" in dead[ids[1]]["payload"] and "'INLAND'" in dead[ids[1]]["reason"]
    assert "Extra inputs are not permitted" in dead[ids[2]]["reason"]
    assert "median_income" in dead[ids[3]]["reason"] and "valid number" in dead[ids[3]]["reason"]
    assert dead[ids[5]]["reason"].startswith("not a JSON district")


def test_a_consumer_killed_mid_batch_is_redone_exactly_once(r, broker, model, rows, tmp_path):
    "A real process reads a batch, writes half its results and is SIGKILLed; another consumer finishes the rest."
    from mlops_course.streaming import Consumer, Streams, publish, results

    folder, runtime = model
    ids = publish(r, rows[:100])
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal
        from mlops_course.serve_runtime import load_runtime
        from mlops_course.streaming import Consumer, connect
        c = Consumer(connect("redis://{broker.host}:{broker.port}/0"), load_runtime({str(folder)!r}), "doomed", batch=100)
        done, dead = c.score(c.read())
        c.write(done[:37], dead)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    died = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert died.returncode == -9, died.stderr[-2000:]
    pending = r.xpending(Streams().input, Streams().group)
    assert pending["pending"] == 63 and pending["consumers"] == [{"name": "doomed", "pending": 63}]
    assert len(results(r)) == 37
    # A consumer that started before the crash: the idle pending events are not its own to take yet ...
    patient = Consumer(r, runtime, "patient", claim_idle_ms=60_000)
    assert patient.step() == 0
    # ... a takeover after the idle time (0 here) finishes them: every event once in the output
    Consumer(r, runtime, "rescuer", batch=25, claim_idle_ms=0).run()
    out = [f["event_id"] for _, f in r.xrange(Streams().output)]
    assert sorted(out) == sorted(ids) and len(out) == len(set(out))
    assert r.xpending(Streams().input, Streams().group)["pending"] == 0


def test_a_redelivered_event_is_acknowledged_not_written_again(r, model, rows):
    from mlops_course.streaming import Consumer, Streams, publish

    publish(r, rows[:5])
    c = Consumer(r, model[1], "twice")
    events = c.read()
    done, dead = c.score(events)
    c.write(done, dead)
    c.write(done, dead)  # the same results again, as after a crash between the write and the ack
    assert r.xlen(Streams().output) == 5


def test_two_consumers_share_the_stream(r, model, rows):
    from mlops_course.streaming import Consumer, Streams, publish

    ids = publish(r, rows)
    a, b = Consumer(r, model[1], "a", batch=20), Consumer(r, model[1], "b", batch=20)
    while a.step() + b.step():
        pass
    out = [f["event_id"] for _, f in r.xrange(Streams().output)]
    assert sorted(out) == sorted(ids) and len(set(out)) == len(ids)
    per = {c["name"]: c for c in r.xinfo_consumers(Streams().input, Streams().group)}
    assert set(per) == {"a", "b"}


def test_no_broker_is_one_clear_error(monkeypatch):
    import mlops_course.streaming as streaming

    monkeypatch.setattr(streaming.shutil, "which", lambda name: None)
    with pytest.raises(streaming.StreamingError, match="redis-server is not installed: apt-get install redis-server"):
        streaming.start_redis()
    with pytest.raises(streaming.StreamingError, match="no Redis answers at redis://127.0.0.1:9/0"):
        streaming.connect("redis://127.0.0.1:9/0")
