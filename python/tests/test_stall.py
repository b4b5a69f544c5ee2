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
        # Taken in one batch with it, the request behind would count as begun (an ASGI
        # loop starts a task for each request it takes).
        time.sleep(0.3)
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
