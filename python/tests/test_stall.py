"""--stall-timeout: a worker whose app leaves requests waiting, none begun, for that
long is aborted (every Python thread's traceback on stderr) and replaced; a request
that runs long with nothing waiting behind it is not a stall."""

import time

import pytest

from conftest import read_response, request


def send_get(server, target):
    sock = server.connect()
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


@pytest.mark.parametrize("interface, app, stuck, frame, threads", [
    ("wsgi", "wsgi_app:app", "/hang", "wsgi_app.py", 1),
    ("wsgi", "wsgi_app:app", "/hang", "wsgi_app.py", 2),
    ("asgi", "asgi_app:app", "/block?3600", "asgi_app.py", 1),
])
def test_a_stalled_worker_is_aborted_with_its_tracebacks_and_replaced(serve, interface, app,
                                                                      stuck, frame, threads):
    server = serve(app, interface=interface,
                   extra=["--stall-timeout", "1", "--threads", str(threads)])
    # With two threads, both are stuck before the request behind them waits.
    stuck_too = send_get(server, stuck) if threads == 2 else None
    with send_get(server, stuck):
        time.sleep(0.3)  # the request behind arrives once the stuck one runs
        second = send_get(server, "/hello")
        started = time.monotonic()
        server.wait_for(r"--stall-timeout 1\b", stderr=True)
        assert time.monotonic() - started < 10
        # faulthandler's dump: the app's frame where it is stuck.
        server.wait_for(rf'File ".*{frame}", line \d+ in ', stderr=True)
        server.wait_for(r"worker 0 .*was killed by SIGABRT; restarting", stderr=True)
        second.close()
    if stuck_too:
        stuck_too.close()
    server.wait_for(r"worker \d+ ready", count=2)
    assert request(server, "GET", "/hello")[::2] == (200, b"hello world")


@pytest.mark.parametrize("interface, app, stuck, behind, frame", [
    ("asgi", "asgi_app:app", "/block?3600", "/hello", "asgi_app.py"),
    # A coroutine handler behind: a plain one would run (and end) as it is taken.
    ("native", "native_app:app", "/block/3600", "/async/1", "native_app.py"),
])
def test_a_request_taken_in_one_batch_with_a_stuck_one_has_not_begun(serve, interface, app,
                                                                     stuck, behind, frame):
    """Pipelined on one connection, both requests reach the loop in one batch: the
    one behind the request that blocks the loop waits, unbegun, and is seen."""
    server = serve(app, interface=interface, extra=["--stall-timeout", "1"])
    with server.connect() as sock:
        sock.sendall(f"GET {stuck} HTTP/1.1\r\nHost: x\r\n\r\n"
                     f"GET {behind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        started = time.monotonic()
        server.wait_for(r"--stall-timeout 1\b", stderr=True, timeout=10)
        assert time.monotonic() - started < 10
        server.wait_for(rf'File ".*{frame}", line \d+ in ', stderr=True)
        server.wait_for(r"worker 0 .*was killed by SIGABRT; restarting", stderr=True)


@pytest.mark.parametrize("interface, app, target", [
    ("asgi", "asgi_app:app", "/hello"),
    ("native", "native_app:app", "/hello"),  # a plain handler beside coroutine ones
    ("native", "native_app:app", "/async/1"),
])
def test_answered_requests_leave_no_stall_behind(serve, interface, app, target):
    """Each request the loop runs counts as begun, whichever way it runs: answered,
    none is left waiting, however long the worker then idles."""
    server = serve(app, interface=interface, extra=["--stall-timeout", "0.5"])
    for _ in range(3):
        with send_get(server, target) as sock:
            assert read_response(sock)[0] == 200
    time.sleep(1.5)
    assert not any("stall-timeout" in line for line in server.errors), server.errors
    assert len(server.wait_for(r"worker \d+ ready")) == 1


def test_a_long_request_with_nothing_waiting_is_not_a_stall(serve):
    server = serve("wsgi_app:app", extra=["--stall-timeout", "0.5"])
    with send_get(server, "/sleep?2") as sock:
        status, _, body, _ = read_response(sock)
    assert (status, body) == (200, b"slept")
    assert not any("stall-timeout" in line for line in server.errors), server.errors
    assert len(server.wait_for(r"worker \d+ ready")) == 1


def test_without_the_flag_a_stuck_app_is_left_alone(serve):
    server = serve("wsgi_app:app", extra=["--workers-kill-timeout", "1"])
    with send_get(server, "/hang"), send_get(server, "/hello"):
        time.sleep(2)
    assert not any("SIGABRT" in line for line in server.errors), server.errors
    assert server.proc.poll() is None
