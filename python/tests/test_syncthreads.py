"""An ASGI app's thread-sensitive sync code (asgiref, as Django runs it): a thread per
request while it runs, kept for later requests instead of started and joined for each."""

import asyncio
import os
import threading
import time

import pytest

from conftest import read_response, request

pytest.importorskip("asgiref")

from haywire.syncthreads import SyncThread  # noqa: E402
from test_process import as_policy  # noqa: E402


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


def test_sync_threads_are_batch_threads(serve):
    # Woken by a call, a sync thread must not preempt the loop's thread, which holds the
    # GIL it needs.
    server = serve("sync_app:app", interface="asgi", wrap=as_policy("-o"))
    assert int(request(server, "GET", "/policy")[2]) == os.SCHED_BATCH
    server.stop()
    # A policy the operator chose is kept.
    server = serve("sync_app:app", interface="asgi", wrap=as_policy("-i"))
    assert int(request(server, "GET", "/policy")[2]) == os.SCHED_IDLE


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


def test_a_django_like_handlers_thread_is_reused_without_the_garbage_collector(serve):
    # /listen answers as Django's ASGIHandler does: its disconnect listener's exception,
    # re-raised in the handler's frame, held that frame, the task and the request's
    # context in a cycle (the app has the collector disabled): each request started a
    # thread. The worker drops that exception's traceback once the app has returned.
    server = serve("sync_app:app", interface="asgi")
    with server.connect() as conn:
        names = set()
        for _ in range(6):
            conn.sendall(b"GET /listen HTTP/1.1\r\nHost: x\r\n\r\n")
            names.add(read_response(conn)[2])
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


def meet(server, parties: int) -> set[bytes]:
    """The threads of `parties` requests whose sync code runs at the same time."""
    conns = [server.connect() for _ in range(parties)]
    try:
        for conn in conns:
            conn.sendall(b"GET /meet/%d HTTP/1.1\r\nHost: x\r\n\r\n" % parties)
        return {read_response(conn)[2] for conn in conns}
    finally:
        for conn in conns:
            conn.close()


def test_threads_of_a_burst_serve_the_next_burst(serve):
    # Before, at most 16 idle threads were kept and the other 8 shut down: under 64
    # keep-alive connections about one thread was started per Django request.
    server = serve("sync_app:app", interface="asgi")
    first = meet(server, 24)
    assert len(first) == 24
    assert meet(server, 24) == first


def test_idle_threads_past_the_cap_are_shut_down(serve):
    # 24 requests run their sync code at once; once their threads have been idle for
    # `IDLE_SECONDS` (2 s in this app), at most `IDLE` (16) are left.
    server = serve("sync_app:app", interface="asgi")
    assert len(meet(server, 24)) == 24
    assert int(request(server, "GET", "/threads")[2]) >= 24
    deadline = time.monotonic() + 15
    while (alive := int(request(server, "GET", "/threads")[2])) > 16 and time.monotonic() < deadline:
        time.sleep(0.1)
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
