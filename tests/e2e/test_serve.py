"""End to end: what `make run` starts (gunicorn + gunicorn.conf.py + wsgi), in a scratch instance directory.

Checks the deployment promises: the API answers, the master runs exactly one scheduler (workers none),
runs happen one at a time, a scheduler that dies is replaced, and stopping gunicorn stops the scheduler.
Always SQLite files in a temporary directory: the developer's instance/ is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes() -> list[tuple[int, int, list[str]]]:
    """(pid, parent pid, argv) of every process we can see: /proc on Linux, `ps` elsewhere."""
    found = []
    if Path("/proc/self/stat").exists():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue  # gone meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] == "Z":
                continue  # a zombie has finished: it is not running anything
            found.append((int(entry.name), int(fields[1]), [arg for arg in argv if arg]))
        return found
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        pid, ppid, state, *argv = line.split()
        if not state.startswith("Z"):
            found.append((int(pid), int(ppid), argv))
    return found


def _is_scheduler(argv: list[str]) -> bool:
    return any(argv[i : i + 2] == ["sync", "schedule"] for i in range(len(argv)))


def _schedulers_of(master: int) -> list[int]:
    return [pid for pid, ppid, argv in _processes() if ppid == master and _is_scheduler(argv)]


def _alive(pid: int) -> bool:
    return any(found == pid for found, _, _ in _processes())


def _wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
            return response.status
    except Exception:  # refused while booting, 503, timeout: not healthy yet
        return None


def _runs(store: Path) -> list[tuple[int, str, datetime, datetime | None]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT id, status, started_at, finished_at FROM sync_runs ORDER BY id").fetchall()
    return [(id_, status, datetime.fromisoformat(start), datetime.fromisoformat(end) if end else None) for id_, status, start, end in rows]


@pytest.fixture
def served(tmp_path):
    """Migrate and seed a scratch instance, start gunicorn on a free port; stop everything afterwards."""
    port = _free_port()
    env = {
        **os.environ,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "GESCOM_DATABASE_URL": f"sqlite:///{tmp_path / 'gescom.db'}",
        "GESCOM_SCHEMA": "",
        "SYNC_INTERVAL": "1",
        "SYNC_SCHEDULER": "on",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for command in (["db", "upgrade"], ["demo", "init", "--orders", "30"]):
        done = subprocess.run(flask + command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"flask {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"

    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = {"master": master, "port": port, "store": tmp_path / "store.db", "log": log_path, "seen": set()}
    try:
        yield server
    finally:
        if master.poll() is None:
            master.send_signal(signal.SIGTERM)
            try:
                master.wait(30)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(10)
        for pid in server["seen"]:  # schedulers left behind by a failed test: never leak processes
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log.close()


def _log_tail(server, lines: int = 60) -> str:
    text = server["log"].read_text(errors="replace").splitlines()
    return "\n--- gunicorn log (tail) ---\n" + "\n".join(text[-lines:])


def test_make_run_serves_and_schedules_one_run_at_a_time(served):
    master: subprocess.Popen = served["master"]

    assert _wait_for(lambda: _health(served["port"]) == 200 or master.poll() is not None, 30), "no answer" + _log_tail(served)
    assert master.poll() is None, f"gunicorn exited with {master.returncode}" + _log_tail(served)

    # Exactly one scheduler, a child of the master; the workers are not schedulers.
    schedulers = _wait_for(lambda: _schedulers_of(master.pid), 10)
    served["seen"].update(schedulers)
    time.sleep(1.5)  # would a second one appear (a worker starting one, say)?
    schedulers = _schedulers_of(master.pid)
    served["seen"].update(schedulers)
    assert len(schedulers) == 1, f"schedulers under the master: {schedulers}" + _log_tail(served)
    [scheduler] = schedulers
    workers = [pid for pid, ppid, argv in _processes() if ppid == master.pid and pid != scheduler]
    assert len(workers) == 2, f"workers: {workers}" + _log_tail(served)
    assert not any(_is_scheduler(argv) for pid, ppid, argv in _processes() if ppid in workers)

    # Several runs, all succeeded, never two at once.
    def finished():
        runs = [run for run in _runs(served["store"]) if run[1] != "running"]
        return runs if len(runs) >= 3 else None

    runs = _wait_for(finished, 20, interval=0.5)
    assert runs, f"runs so far: {_runs(served['store'])}" + _log_tail(served)
    assert all(status == "succeeded" for _, status, _, _ in runs), runs
    for (_, _, _, previous_end), (run_id, _, start, _) in zip(runs, runs[1:]):
        assert start >= previous_end, f"run {run_id} started at {start}, before the previous one finished at {previous_end}"

    # A scheduler that dies is replaced, by exactly one.
    os.kill(scheduler, signal.SIGKILL)

    def replaced():
        current = _schedulers_of(master.pid)
        return current if current and scheduler not in current else None

    replacement = _wait_for(replaced, 15)
    served["seen"].update(replacement or [])
    assert replacement and len(replacement) == 1, f"after killing {scheduler}: {replacement}" + _log_tail(served)
    [scheduler] = replacement

    # Stopping gunicorn stops its scheduler.
    master.send_signal(signal.SIGTERM)
    try:
        code = master.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn did not stop within 30 s of SIGTERM" + _log_tail(served))
    assert code == 0, f"gunicorn exited with {code}" + _log_tail(served)
    assert _wait_for(lambda: not _alive(scheduler), 15), f"scheduler {scheduler} still running after gunicorn stopped" + _log_tail(served)
