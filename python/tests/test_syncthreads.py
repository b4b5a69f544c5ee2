"""An ASGI app's thread-sensitive sync code (asgiref, as Django runs it): a thread per
request while it runs, kept for later requests instead of started and joined for each."""

import asyncio
import threading
import time

import pytest

from conftest import read_response, request

pytest.importorskip("asgiref")

from haywire.syncthreads import SyncThread  # noqa: E402


def name() -> str:
    return threading.current_thread().name


def test_a_sync_thread_runs_calls_in_turn_on_its_thread():
    thread = SyncThread("one")
    try:
        # From outside a loop: a concurrent.futures.Future, as any executor's.
        assert thread.submit(name).result(5) == "one"

        async def main():
            loop = asyncio.get_running_loop()
            order: list[int] = []
            calls = [loop.run_in_executor(thread, order.append, i) for i in range(5)]
            await asyncio.wait_for(asyncio.gather(*calls), 5)
            assert order == list(range(5))
            assert await loop.run_in_executor(thread, name) == "one"
            with pytest.raises(ValueError):
                await asyncio.wait_for(loop.run_in_executor(thread, int, "x"), 5)
            # What a coroutine would raise instead (an asyncio future refuses it).
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(loop.run_in_executor(thread, next, iter(())), 5)

        asyncio.run(main())
    finally:
        thread.shutdown()
    assert not thread._thread.is_alive()


def test_a_call_cancelled_before_it_starts_is_not_run():
    thread = SyncThread("one")
    gate = threading.Event()
    ran: list[int] = []

    async def main():
        loop = asyncio.get_running_loop()
        first = loop.run_in_executor(thread, gate.wait, 5)
        second = loop.run_in_executor(thread, ran.append, 2)
        second.cancel()
        gate.set()
        assert await asyncio.wait_for(first, 5)
        assert await asyncio.wait_for(loop.run_in_executor(thread, ran.append, 3), 5) is None

    try:
        asyncio.run(main())
    finally:
        thread.shutdown()
    assert ran == [3]


def test_sync_code_of_successive_requests_reuses_a_thread(serve):
    # Without the worker's executor, Django's per-request context starts a thread
    # (ThreadPoolExecutor-<n>_0) for every request and joins it after. A request's
    # thread comes back as soon as its task ends, not when the garbage collector
    # frees its context (asgiref's context refers to itself through its token).
    server = serve("sync_app:app", interface="asgi")
    names = {request(server, "GET", "/thread")[2] for _ in range(6)}
    assert len(names) == 1 and next(iter(names)).startswith(b"haywire-sync")


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


def test_idle_threads_past_the_cap_are_shut_down(serve):
    # 24 requests wait in their sync threads at once; once they are answered, the next
    # request keeps at most `IDLE` (16) of the 24 threads and shuts the others down.
    server = serve("sync_app:app", interface="asgi")
    waiting = [server.connect() for _ in range(24)]
    try:
        for conn in waiting:
            conn.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while int(request(server, "GET", "/threads")[2]) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert request(server, "GET", "/set")[2] == b"set"
        for conn in waiting:
            assert read_response(conn)[2] == b"True"
    finally:
        for conn in waiting:
            conn.close()
    deadline = time.monotonic() + 10
    while (alive := int(request(server, "GET", "/threads")[2])) > 16 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive <= 16


def test_threads_waiting_for_the_garbage_collector_are_bounded(serve):
    # Each /cycle request leaves its context in a reference cycle and the app has the
    # collector disabled: without the bound, every request started a thread (300).
    server = serve("sync_app:app", interface="asgi")
    with server.connect() as conn:
        for _ in range(300):
            conn.sendall(b"GET /cycle HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(conn)[2].startswith(b"haywire-sync")
    assert int(request(server, "GET", "/threads")[2]) <= 256 + 1
