"""The service handle: readiness, logs, clear errors, and stopping whole process groups (no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mlops_course.errors import CourseError
from mlops_course.services import (
    Service,
    ServiceError,
    free_port,
    http_ok,
    port_in_use,
    start_service,
    wait_until,
)

HTTP = [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"]


def alive(pid: int) -> bool:
    "True if `pid` exists and is not a zombie."
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_pids(pgid: int) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and alive(p.pid):
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return out


def test_free_port_is_free():
    p = free_port()
    assert 1024 < p < 65536
    assert not port_in_use(p)
    assert not http_ok(f"http://127.0.0.1:{p}/", timeout=0.5)


def test_wait_until_answers_yes_no_or_one_error():
    t0 = time.monotonic()
    assert wait_until(lambda: time.monotonic() - t0 > 0.2, timeout=10, interval=0.02) is True
    t0 = time.monotonic()
    assert wait_until(lambda: False, timeout=0.3, interval=0.05) is False
    assert 0.3 <= time.monotonic() - t0 < 5
    with pytest.raises(ServiceError, match="gave up waiting for the file to appear after 0.1 s") as e:
        wait_until(lambda: False, 0.1, what="the file to appear")
    assert isinstance(e.value, CourseError)


def test_wait_until_checks_at_least_once_and_lets_check_abort():
    assert wait_until(lambda: True, timeout=0) is True
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise KeyError("gave up")
        return False

    with pytest.raises(KeyError):
        wait_until(check, timeout=30, interval=0.01)
    assert len(calls) == 3


def test_start_ready_stop(workspace):
    with start_service(HTTP, "web", ready="http://{host}:{port}/") as svc:
        assert isinstance(svc, Service) and svc.running
        assert svc.url == f"http://127.0.0.1:{svc.port}" and http_ok(svc.url)
        assert svc.log_path == workspace / "logs" / "web.log" and svc.log_path.exists()
        assert svc.startup_seconds is not None and str(svc.port) in repr(svc)
        assert svc.pgid == os.getpgid(svc.pid) != os.getpgid(0)  # its own process group
    assert not svc.running and not http_ok(svc.url, timeout=0.5)
    assert group_pids(svc.pgid) == []
    assert svc.stop() == svc.proc.returncode  # stopping twice is harmless


def test_port_placeholder_and_fixed_port(workspace):
    port = free_port()
    with start_service(HTTP, "web", port=port) as svc:
        assert svc.port == port and port_in_use(port)
        assert str(port) in svc.cmd


def test_port_taken_is_refused_with_the_port_and_the_fix(workspace):
    with start_service(HTTP, "web") as svc:
        with pytest.raises(ServiceError, match=f"port {svc.port} on 127.0.0.1 is already in use") as e:
            start_service(HTTP, "second", port=svc.port)
        assert "port=None" in str(e.value) and "lsof" in str(e.value)
        assert not (workspace / "logs" / "second.log").exists()  # nothing was started


def test_a_picked_port_taken_before_the_bind_is_picked_again(workspace, monkeypatch):
    "Another server takes the port between the pick and the bind: its answers must not pass for ours."
    import mlops_course.services as services

    with start_service(HTTP, "other", ready="http://{host}:{port}/") as other:
        picks = iter([other.port, free_port()])
        monkeypatch.setattr(services, "free_port", lambda host="127.0.0.1": next(picks))
        with start_service(HTTP, "ours", ready="http://{host}:{port}/") as ours:
            assert ours.port != other.port and ours.running and http_ok(ours.url)


def test_crash_at_startup_quotes_the_log(workspace):
    cmd = [sys.executable, "-c", "import sys; print('config file missing: /etc/x.yaml'); sys.exit(3)"]
    with pytest.raises(ServiceError) as e:
        start_service(cmd, "crasher", timeout=30)
    msg = str(e.value)
    assert "crasher exited with code 3 before it was ready" in msg
    assert "config file missing: /etc/x.yaml" in msg and "crasher.log" in msg
    assert msg.count("\n") < 25  # one error, not a wall of text


def test_timeout_stops_the_service_and_says_so(workspace):
    cmd = [sys.executable, "-c", "import time; print('warming up', flush=True); time.sleep(60)"]
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match="was not ready after 1.5 s") as e:
        start_service(cmd, "sleepy", timeout=1.5)
    assert "warming up" in str(e.value) and "timeout=" in str(e.value)
    assert time.monotonic() - t0 < 30
    assert not any(
        "time.sleep(60)" in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
    )


def test_missing_program(workspace):
    with pytest.raises(ServiceError, match="program 'no-such-program-xyz' not found"):
        start_service(["no-such-program-xyz"], "ghost")


def test_bad_ready_argument(workspace):
    with pytest.raises(TypeError, match="ready must be a URL"):
        start_service(HTTP, "web", ready=42)


def test_callable_readiness(workspace):
    calls = []

    def ready(svc):
        calls.append(svc.port)
        return port_in_use(svc.port)

    with start_service(HTTP, "web", ready=ready) as svc:
        assert calls and calls[-1] == svc.port


def test_stop_reaches_children_that_ignore_sigterm(workspace):
    svc = start_service(
        ["bash", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"],
        "stubborn",
        ready=lambda s: len(psutil.Process(s.pid).children(recursive=True)) == 3,
        timeout=30,
    )
    children = [c.pid for c in psutil.Process(svc.pid).children(recursive=True)]
    svc.stop(grace=0.5)
    assert svc.proc.returncode == -signal.SIGKILL
    assert not any(alive(p) for p in [svc.pid, *children])


def test_stop_is_graceful_when_possible(workspace):
    svc = start_service(
        ["bash", "-c", "trap 'echo bye; exit 0' TERM; sleep 300 & wait"],
        "polite",
        ready=lambda s: len(psutil.Process(s.pid).children(recursive=True)) >= 2,
        timeout=30,
    )
    assert svc.stop(grace=10) == 0
    assert "bye" in svc.log_path.read_text()
    assert group_pids(svc.pgid) == []


def test_kill_is_immediate(workspace):
    svc = start_service(HTTP, "web")
    svc.kill()
    assert svc.proc.returncode == -signal.SIGKILL and group_pids(svc.pgid) == []
    assert not port_in_use(svc.port)


def test_error_while_waiting_stops_the_service(workspace):
    def broken(svc):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        start_service(HTTP, "web", ready=broken)
    time.sleep(0.2)
    assert not any(
        "http.server" in " ".join(p.info["cmdline"] or []) and str(workspace) in str(p.info["cwd"])
        for p in psutil.process_iter(["cmdline", "cwd"])
    )


def test_no_orphans_when_the_interpreter_exits(workspace):
    "A script starts two servers with children (one ignores SIGTERM) and exits without stopping them: none survive."
    script = textwrap.dedent("""
        import psutil
        from mlops_course.services import start_service
        def kids(s): return len(psutil.Process(s.pid).children(recursive=True)) >= 2
        a = start_service(["bash", "-c", "sleep 300 & wait"], "left-running", ready=kids)
        b = start_service(["bash", "-c", "trap '' TERM; sleep 300 & wait"], "stubborn", ready=kids)
        print(*[p for s in (a, b) for p in [s.pid, *(c.pid for c in psutil.Process(s.pid).children(recursive=True))]])
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLOPS_COURSE_WORKSPACE": str(workspace)},
    )
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 6  # two watchdogs, two bash, two sleeps
    time.sleep(0.2)
    assert not any(alive(p) for p in pids)


def test_log_dir_argument(tmp_path):
    with start_service(HTTP, "web", log_dir=tmp_path / "elsewhere") as svc:
        assert svc.log_path == tmp_path / "elsewhere" / "web.log"
    svc.log_path.unlink()
    assert svc.log_tail() == "(no log file)"


def test_the_course_python_comes_first_on_path(workspace, monkeypatch):
    "Helpers started by name (uvicorn, mlflow) resolve to the course's environment even from a bare kernel PATH."
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with start_service(
        ["bash", "-c", "command -v python; exec sleep 60"],
        "which",
        ready=lambda s: s.log_path.stat().st_size > 0,
    ) as svc:
        first = svc.log_path.read_text().splitlines()[0]
    assert first == os.path.join(os.path.dirname(sys.executable), "python")


def test_watchdog_stops_the_server_when_its_owner_is_killed(workspace):
    "SIGKILL the process that started a server (no atexit runs): the watchdog takes the whole group down."
    code = (
        "import time, psutil; from mlops_course.services import start_service; "
        "s = start_service(['bash', '-c', 'sleep 300 & wait'], 'orphan', "
        "ready=lambda s: len(psutil.Process(s.pid).children(recursive=True)) >= 2); "
        "print(s.pid, *[c.pid for c in psutil.Process(s.pid).children(recursive=True)], flush=True); time.sleep(300)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLOPS_COURSE_WORKSPACE": str(workspace)},
    )
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)


def test_exit_code_of_the_server_is_reported(workspace):
    svc = start_service(
        [sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(7)"],
        "short",
        ready=lambda s: True,
    )
    assert svc.proc.wait(timeout=30) == 7
    svc.stop()
