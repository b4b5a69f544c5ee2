"""Threads for an ASGI app's synchronous code, kept from one request to the next.

asgiref's ``sync_to_async`` (Django's async mode calls it for every sync middleware
method, signal and view: about 16 times per request of Django's default project) runs
"thread-sensitive" code on one thread per ``ThreadSensitiveContext``. Django enters a
context per request, so asgiref starts a thread for each request and, when it ends,
another one to join it: two thread starts per request, under any server. asgiref lets
the caller supply the context's executor (``ThreadSensitiveContext(executor=...)``, in
asgiref 3.13): the worker enters one around
each request with a single-thread executor from an idle list, and Django's own context
inside it then changes nothing. Each request still has its own thread while it runs, so
a view that waits on a database does not hold up the others.

The context is not exited after the response: asgiref would then make the
thread-sensitive calls of a task the request left running raise ``RuntimeError``. Such a
task keeps the thread: an executor goes back to the idle list only once nothing refers
to its context any more (asgiref: never one executor for two blocks at once).
"""

from __future__ import annotations

import inspect
import sys
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Idle threads kept for later requests; past this, one freed is let go (it ends once
# nothing refers to its executor).
IDLE = 64


class SyncThreads:
    """Single-thread executors for requests' thread-sensitive code, reused."""

    def __init__(self, context: Any) -> None:
        self._context = context  # asgiref.sync.ThreadSensitiveContext
        self._idle: list[ThreadPoolExecutor] = []
        # Executors of answered requests, with their contexts (weakly): free once
        # nothing refers to the context.
        self._left: list[tuple[ThreadPoolExecutor, weakref.ref]] = []
        self._made = 0  # numbers the threads' names

    async def enter(self) -> tuple[ThreadPoolExecutor, weakref.ref]:
        """Makes an idle (or new) executor the thread-sensitive one of the calling
        task's context; hand what it returns to ``leave`` once the request is
        answered."""
        if not self._idle:
            self._reclaim()
        if self._idle:
            executor = self._idle.pop()
        else:
            self._made += 1
            executor = ThreadPoolExecutor(1, thread_name_prefix=f"haywire-sync-{self._made}")
        context = self._context(executor=executor)
        await context.__aenter__()
        return executor, weakref.ref(context)

    def leave(self, entered: tuple[ThreadPoolExecutor, weakref.ref]) -> None:
        """The request is answered: its executor is free for another once no task or
        callback refers to its context. The request's own task ends after this, and the
        context refers to itself (asgiref keeps the token of the context variable it
        set), so it is the garbage collector that frees it: Django's default project
        allocates enough that a thread is started for 1 request in 100."""
        self._left.append(entered)

    def _reclaim(self) -> None:
        left = []
        for executor, context in self._left:
            if context() is not None:
                left.append((executor, context))
            elif len(self._idle) < IDLE:
                self._idle.append(executor)
        self._left = left


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
