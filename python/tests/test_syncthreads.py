"""An ASGI app's thread-sensitive sync code (asgiref, as Django runs it): a thread per
request while it runs, kept for later requests instead of started and joined for each."""

import time

import pytest

from conftest import read_response, request

pytest.importorskip("asgiref")


def test_sync_code_of_successive_requests_reuses_a_thread(serve):
    # Without the worker's executor, Django's per-request context starts a thread
    # (ThreadPoolExecutor-<n>_0) for every request and joins it after.
    # A request's thread comes back once its context is collected (the app collects
    # in each request, after its own thread was chosen): two threads take turns.
    server = serve("sync_app:app", interface="asgi")
    names = {request(server, "GET", "/thread")[2] for _ in range(6)}
    assert len(names) <= 2 and all(name.startswith(b"haywire-sync") for name in names)


def test_concurrent_requests_run_sync_code_on_their_own_threads(serve):
    server = serve("sync_app:app", interface="asgi")
    with server.connect() as waiting:
        waiting.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # its sync call is waiting: one shared thread would hold /set back
        assert request(server, "GET", "/set")[2] == b"set"
        assert read_response(waiting)[2] == b"True"


def test_a_task_left_running_keeps_its_requests_thread(serve):
    # The request's context is not exited (asgiref would make the task's call raise),
    # and its thread is not given to later requests while the task may still use it.
    server = serve("sync_app:app", interface="asgi")
    thread = request(server, "GET", "/leave")[2]
    assert thread.startswith(b"haywire-sync")
    for _ in range(3):
        assert request(server, "GET", "/thread")[2] != thread
    deadline = time.monotonic() + 10
    while not (left := request(server, "GET", "/left")[2]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == thread
