"""Signals and the process model's edge cases, with real processes: PID 1, double
SIGTERM, SIGHUP, the kill timeout, SIGTERM during start-up, a worker exiting 3 after it
started, lifespan failures, and the private stats directory."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import APPS, Server, read_response, request, run_cli


def workers_of(server: Server) -> list[int]:
    """Pids of the live worker processes serving `server`'s port."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"haywire.worker" in args and state != "Z" and \
                json.loads(args[args.index(b"--overrides") + 1])["server.port"] == server.port:
            found.append(int(entry.name))
    return found


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status:
            found.append(int(entry.name))
    return found


def worker_arg(pid: int, name: str) -> str:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return args[args.index(name.encode()) + 1].decode()


def wait_until(predicate, timeout: float = 20.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(step)


def test_fallback_stats_dir_is_private_and_new(tmp_path):
    """A worker without --stats-dir makes a fresh 0700 directory with an unguessable
    name (a planted /tmp/haywire-<pid> symlink is not followed) and removes it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    script = f"""
import os, signal, sys, time
from haywire._haywire import Worker
planted = f"/tmp/haywire-{{os.getpid()}}"
os.symlink({str(victim)!r}, planted)
try:
    w = Worker(overrides={{"server.address": "127.0.0.1", "server.port": 0}})
    w.start()
    time.sleep(0.6)
    d = str(w.stats_dir)
    st = os.lstat(d)
    print(d, oct(st.st_mode & 0o777), os.getpid(), sorted(os.listdir(d)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    w.serve(lambda r: r.respond(200, [], b""))
    print("gone" if not os.path.exists(d) else "left", flush=True)
finally:
    os.unlink(planted)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    path, mode, pid, files = first.split(" ", 3)
    assert mode == "0o700"
    assert Path(path).name != f"haywire-{pid}"  # not the guessable name
    assert not Path(path).is_symlink()
    assert "worker-0.json" in files
    assert list(victim.iterdir()) == []  # nothing written through the planted link
    assert second == "gone"


def test_given_stats_dir_must_be_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for bad in (shared, link):
        script = f"""
from haywire._haywire import Worker
try:
    Worker(overrides={{"server.address": "127.0.0.1", "server.port": 0}}, stats_dir={str(bad)!r}).start()
except RuntimeError as e:
    print("refused:", e)
"""
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
        assert "refused:" in result.stdout and "writable only by it" in result.stdout, result


def test_pid_1_serves_without_restarts():
    """As a container's first process (PID 1 of its pid namespace) the workers stay up."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    flags = ["-fp", "--mount-proc"] if os.geteuid() == 0 else ["-Ufpr", "--mount-proc"]
    server = Server("wsgi_app:app", workers=2, wrap=[unshare, *flags])
    try:
        server.ready()
        pids = {request(server, "GET", "/pid")[2] for _ in range(30)}
        time.sleep(1.5)  # a worker that exits at once would have been restarted by now
        assert len(server.wait_for(r"worker \d+ ready", 2)) == 2
        assert not [line for line in server.errors if "restarting" in line]
        assert {request(server, "GET", "/pid")[2] for _ in range(30)} <= pids
        # unshare waits for its child: signal the supervisor (PID 1 inside) itself.
        (supervisor,) = children_of(server.proc.pid)
        os.kill(supervisor, signal.SIGTERM)
        assert server.proc.wait(20) == 0
    finally:
        server.stop()


def test_double_sigterm_lets_in_flight_requests_finish(serve):
    """systemd signals every process of the unit: the worker gets SIGTERM from it and
    again from the supervisor, and still finishes the request in flight."""
    server = serve("wsgi_app:app")
    worker = workers_of(server)[0]
    with server.connect() as slow:
        slow.sendall(b"GET /sleep?1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        os.kill(worker, signal.SIGTERM)
        server.proc.send_signal(signal.SIGTERM)
        os.kill(worker, signal.SIGTERM)
        status, _, body, _ = read_response(slow)
        assert (status, body) == (200, b"slept")
    assert server.proc.wait(15) == 0


def test_sighup_replaces_workers_and_cleans_up_on_stop(serve):
    server = serve("wsgi_app:app")
    old = workers_of(server)
    stats_dir = Path(worker_arg(old[0], "--stats-dir"))
    assert stats_dir.is_dir()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for(r"worker 0 ready", 2)
    wait_until(lambda: not set(workers_of(server)) & set(old))
    assert server.proc.poll() is None
    assert int(request(server, "GET", "/pid")[2]) not in old
    assert server.stop() == 0
    assert not stats_dir.exists()


def test_hung_app_is_killed_after_the_kill_timeout(serve):
    server = serve("wsgi_app:app", extra=["--workers-kill-timeout", "1"])
    with server.connect() as hung:
        hung.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0  # the app sleeps for an hour
    server.wait_for("did not stop within 1 s; killing it", stderr=True)


def test_sigterm_during_start_up_stops_every_worker():
    server = Server("slow_import:app", workers=12)
    try:
        # Signal as soon as the first worker exists, while the others are being spawned.
        wait_until(lambda: workers_of(server), timeout=20, step=0.001)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        assert workers_of(server) == []
    finally:
        for pid in workers_of(server):
            os.kill(pid, signal.SIGKILL)
        server.stop()


def test_worker_exiting_3_after_start_is_restarted(serve):
    server = serve("wsgi_app:app")
    first = int(request(server, "GET", "/pid")[2])
    with server.connect() as sock:
        sock.sendall(b"GET /exit3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100) == b""
    server.wait_for(r"worker 0 ready", 2)
    assert server.proc.poll() is None
    assert int(request(server, "GET", "/pid")[2]) != first
    server.wait_for("exited with status 3; restarting", stderr=True)


def test_lifespan_that_raises_is_shown_and_the_app_served(serve):
    server = serve("asgi_lifespan:raising", interface="asgi")
    assert request(server, "GET", "/")[2] == b"hello"
    text = "".join(server.errors)
    assert "Traceback" in text and "lifespan-bug" in text


def test_lifespan_on_makes_a_raising_lifespan_a_failed_start():
    result = run_cli("--interface", "asgi", "--port", "0", "--address", "127.0.0.1",
                     "--workers", "1", "--lifespan", "on", "asgi_lifespan:raising")
    assert result.returncode == 1, result.stderr
    assert "lifespan-bug" in result.stderr and "--lifespan on" in result.stderr


def test_lifespan_off_never_runs_it(serve):
    # The lifespan would hang for an hour: with it off, the app is served at once.
    server = serve("asgi_lifespan:hanging", interface="asgi", extra=["--lifespan", "off"])
    assert request(server, "GET", "/")[2] == b"hello"


def test_lifespan_startup_timeout_stops_the_server():
    result = subprocess.run(
        [sys.executable, "-m", "haywire", "--interface", "asgi", "--port", "0",
         "--address", "127.0.0.1", "--workers", "1", "--lifespan-timeout", "0.5",
         "asgi_lifespan:hanging"],
        cwd=APPS, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "lifespan startup took longer than 0.5 s" in result.stderr


APP_SIGNAL_CASES = [
    pytest.param("signal_app:wsgi", "wsgi", [], id="wsgi"),
    pytest.param("signal_app:wsgi", "wsgi", ["--threads", "4"], id="wsgi-threads"),
    pytest.param("signal_app:asgi", "asgi", ["--loop", "asyncio"], id="asgi"),
]


@pytest.mark.parametrize("app,interface,extra", APP_SIGNAL_CASES)
def test_app_signal_handler_runs_while_the_worker_waits(serve, tmp_path, monkeypatch,
                                                         app, interface, extra):
    """A handler the app installed (SIGUSR1, at import) runs within 2 s of the signal
    while the worker is idle, waiting for its next request: none is made after it."""
    log = tmp_path / "signals"
    monkeypatch.setenv("SIGNAL_LOG", str(log))
    server = serve(app, interface=interface, extra=extra)
    assert request(server, "GET", "/")[0] == 200
    [pid] = workers_of(server)
    time.sleep(0.2)  # the worker is back waiting for the next request
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: log.exists() and f"usr1 {pid}\n" in log.read_text(), timeout=2.0)
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: log.read_text().count(f"usr1 {pid}\n") == 2, timeout=2.0)


@pytest.mark.parametrize("app,interface,extra", APP_SIGNAL_CASES)
def test_app_signal_handler_that_raises_is_shown_and_the_worker_serves(serve, app,
                                                                        interface, extra):
    """An exception from the app's handler is logged with its traceback, as an app's
    error is; the worker keeps serving, and is not restarted."""
    server = serve(app, interface=interface, extra=extra)
    [pid] = workers_of(server)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 2.0
    while not any("SIGUSR2 handler failed" in line for line in server.errors):
        assert time.monotonic() < deadline, f"no traceback in time: {server.errors}"
        time.sleep(0.05)
    assert request(server, "GET", "/")[0] == 200
    assert workers_of(server) == [pid]


@pytest.mark.parametrize("app,interface,extra", APP_SIGNAL_CASES)
def test_app_signal_handler_calling_exit_ends_the_worker_with_its_status(serve, app,
                                                                         interface, extra):
    """`sys.exit(7)` in the app's handler ends the worker (gracefully, as SIGTERM does)
    with status 7, as it would end any Python program; the supervisor restarts it."""
    server = serve(app, interface=interface, extra=extra)
    [pid] = workers_of(server)
    os.kill(pid, signal.SIGALRM)
    wait_until(lambda: f"worker 0 (pid {pid}) exited with status 7;" in "".join(server.errors),
               timeout=5.0)
    server.wait_for(r"worker 0 ready", count=2)
    assert request(server, "GET", "/")[0] == 200


@pytest.mark.parametrize("interface,app", [("wsgi", "signal_app:wsgi"),
                                           ("asgi", "signal_app:asgi")])
def test_sigint_to_a_worker_stops_it_gracefully_without_a_traceback(serve, interface, app):
    """SIGINT (a terminal's Ctrl-C reaches every worker) stops a worker as SIGTERM does:
    status 0, and no KeyboardInterrupt from Python's default handler."""
    server = serve(app, interface=interface)
    [pid] = workers_of(server)
    os.kill(pid, signal.SIGINT)
    wait_until(lambda: f"worker 0 (pid {pid}) exited with status 0;" in "".join(server.errors),
               timeout=5.0)
    assert not any("KeyboardInterrupt" in line for line in server.errors), server.errors
