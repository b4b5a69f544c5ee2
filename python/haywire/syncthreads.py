"""Threads for an ASGI app's synchronous code, kept from one request to the next.

asgiref's ``sync_to_async`` (Django's async mode calls it for every sync middleware
method, signal and view: about 16 times per request of Django's default project) runs
"thread-sensitive" code on one thread per ``ThreadSensitiveContext``. Django enters a
context per request, so asgiref starts a thread for each request and, when it ends,
another one to join it: two thread starts per request, under any server. asgiref lets
the caller supply the context's executor (``ThreadSensitiveContext(executor=...)``, in
asgiref 3.13): the worker enters one around each HTTP request with a `SyncThread` from
an idle list, and Django's own context inside it then changes nothing. Each request
still has its own thread while it runs, so a view that waits on a database does not
hold up the others.

The context is not exited after the response: asgiref would then make the
thread-sensitive calls of a task the request left running raise ``RuntimeError``. Such a
task keeps the thread: a thread goes back to the idle list only once nothing refers to
its context any more (asgiref: never one executor for two blocks at once).

WebSocket sessions get no context: no app asks for one per session (Django's handler
serves HTTP only), so their thread-sensitive code runs where asgiref puts it under any
server, and a thread per open connection would grow with the connections.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any, Callable

# Idle threads kept for later requests however long they wait. Past this, one that has
# waited `IDLE_SECONDS` is shut down: the threads kept follow the number of requests
# running at once (64 keep-alive connections need 64 or more), none is started per
# request, and they shrink back after a burst.
IDLE = 16
IDLE_SECONDS = 10.0
# Threads of answered requests whose contexts are still referred to. A context held by
# a reference cycle (as Django's handler held each request's before the worker dropped
# its disconnect exception's traceback: `asgi._drop_traceback`) comes back only when
# the garbage collector frees the cycle, without bound if the app disables the
# collector. Past this many, a full collection is run before a thread is started
# (10-25 ms of CPU with Django's default project loaded: at most once per this many
# requests).
LEFT = 256


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):
        # An asyncio future refuses it (TypeError, the awaiting task never woken); a
        # coroutine turns it into this too.
        future.set_exception(RuntimeError("sync call raised StopIteration"))
    else:
        future.set_exception(error)


class SyncThread(Executor):
    """One thread running the calls submitted to it one at a time, in order (what
    asgiref asks of a context's executor).

    A call submitted from an event loop's thread (asgiref's ``run_in_executor``) gets a
    future of that loop, which ``run_in_executor`` passes through as it is, and the
    thread settles it with one ``call_soon_threadsafe``. A ``ThreadPoolExecutor``'s
    future instead takes a lock for each change of state and is chained to a loop
    future by callbacks on both sides: of the Python calls asgiref makes per hop, about
    a fifth. From other threads, ``submit`` returns a ``concurrent.futures.Future``."""

    def __init__(self, name: str) -> None:
        self._calls: SimpleQueue = SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        future = Future() if loop is None else loop.create_future()
        self._calls.put((loop, future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Ends the thread after the calls already submitted."""
        if not self._closed:
            self._closed = True
            self._calls.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _work(self) -> None:
        # SCHED_BATCH (unless the worker was started under another policy), as the shard
        # thread: a call wakes the thread while the loop's thread holds the GIL it needs,
        # and preempted by it, the loop's thread stopped for nothing (10-14 times per
        # Django request under 64 connections: the GIL came back to it at once).
        try:
            if os.sched_getscheduler(0) == os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError:  # a sandbox refusing it: run as before
            pass
        calls = self._calls
        while (call := calls.get()) is not None:
            loop, future, fn, args, kwargs = call
            # Let go of the call before waiting for the next: what it refers to (the
            # request's context among it) must not outlive it here.
            del call
            if loop is None:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as error:
                        future.set_exception(error)
            elif not future.cancelled():
                result, error = None, None
                try:
                    result = fn(*args, **kwargs)
                except BaseException as caught:
                    error = caught
                try:
                    loop.call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:
                    pass  # the loop is closed: nobody awaits the future any more
                result = error = None
            loop = future = fn = args = kwargs = None


class SyncThreads:
    """`SyncThread`s for requests' thread-sensitive code, reused."""

    def __init__(self, context: Any) -> None:
        self._context = context  # asgiref.sync.ThreadSensitiveContext
        # Idle threads, the most recently freed last (taken first), with when each was
        # freed: the first ones are those idle longest.
        self._idle: deque[tuple[SyncThread, float]] = deque()
        # Threads of answered requests in the order answered, with their contexts
        # (weakly): free once nothing refers to the context.
        self._left: deque[tuple[SyncThread, weakref.ref]] = deque()
        self._made = 0  # numbers the threads' names
        self._trim: asyncio.TimerHandle | None = None  # due when idle ones may be shut down

    async def enter(self) -> tuple[SyncThread, Any]:
        """Makes an idle (or new) thread the thread-sensitive one of the calling
        task's context; hand what it returns to ``leave`` once the request is
        answered."""
        self._drain()
        if not self._idle:
            self._reclaim()  # one held longer may have been freed since
        if not self._idle and len(self._left) >= LEFT:
            gc.collect()
            self._reclaim()
        if self._idle:
            thread = self._idle.pop()[0]
        else:
            self._made += 1
            thread = SyncThread(f"haywire-sync-{self._made}")
        context = self._context(executor=thread)
        await context.__aenter__()
        return thread, context

    def leave(self, entered: tuple[SyncThread, Any]) -> None:
        """The request is answered: its thread is free for another once no task or
        callback refers to its context."""
        thread, context = entered
        # asgiref's context keeps the token of the context variable it set, and the
        # token refers back to the task's variables: a cycle only the garbage
        # collector frees, which under sequential load left dozens of threads waiting
        # for it. The context is never exited (its token is not needed again), so
        # dropping the token lets it go with the last task that uses it.
        context.token = None
        self._left.append((thread, weakref.ref(context)))

    def _drain(self) -> None:
        # A context is usually freed as its request's task ends: the threads answered
        # first are free first, and go back to the idle list before the next request
        # takes one, so the threads on top of it are those in use and the ones below
        # wait to be shut down.
        left = self._left
        while left and left[0][1]() is None:
            self._free(left.popleft()[0])

    def _free(self, thread: SyncThread) -> None:
        self._idle.append((thread, time.monotonic()))
        if self._trim is None and len(self._idle) > IDLE:
            self._trim = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._shut_idle)

    def _reclaim(self) -> None:
        left = self._left
        for _ in range(len(left)):
            thread, context = left.popleft()
            if context() is None:
                self._free(thread)
            else:
                left.append((thread, context))

    def _shut_idle(self) -> None:
        """Shuts down the threads idle for `IDLE_SECONDS` past the `IDLE` kept."""
        self._trim = None
        self._drain()
        idle = self._idle
        due = time.monotonic() - IDLE_SECONDS
        while len(idle) > IDLE and idle[0][1] <= due:
            idle.popleft()[0].shutdown(wait=False)
        if len(idle) > IDLE and self._trim is None:
            wait = idle[0][1] - due
            self._trim = asyncio.get_running_loop().call_later(wait, self._shut_idle)


def sync_threads() -> SyncThreads | None:
    """`SyncThreads` when the app has imported an asgiref that takes an executor for a
    thread-sensitive context; None otherwise (no cost for apps without it)."""
    module = sys.modules.get("asgiref.sync")
    context = getattr(module, "ThreadSensitiveContext", None)
    if context is None:
        return None
    try:
        takes_executor = "executor" in inspect.signature(context).parameters
    except (TypeError, ValueError):
        return None
    return SyncThreads(context) if takes_executor else None
