"""Threads for an ASGI app's synchronous code, kept from one request to the next.

asgiref's ``sync_to_async`` (Django's async mode calls it for every sync middleware
method, signal and view: about 16 times per request of Django's default project) runs
"thread-sensitive" code on one thread per ``ThreadSensitiveContext``. Django enters a
context per request, so asgiref starts a thread for each request and, when it ends,
another one to join it: two thread starts per request, under any server. asgiref lets the caller supply the context's executor
(``ThreadSensitiveContext(executor=...)``, asgiref 3.13): the worker enters one around
each request with a single-thread executor from an idle list, and Django's own context
inside it then changes nothing. Each request still has its own thread while it runs, so
a view that waits on a database does not hold up the others.

The context is not exited after the response: asgiref would then make the
thread-sensitive calls of a task the request left running raise ``RuntimeError``. Such a
task keeps the thread; its calls share it with later requests, as they share asgiref's
default thread outside any context.
"""

from __future__ import annotations

import inspect
import sys
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

    async def enter(self) -> ThreadPoolExecutor:
        """Makes an idle (or new) executor the thread-sensitive one of the calling
        task's context; hand it back with ``leave`` once the request is answered."""
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(
            1, thread_name_prefix="haywire-sync")
        await self._context(executor=executor).__aenter__()
        return executor

    def leave(self, executor: ThreadPoolExecutor) -> None:
        """Keeps `executor` for a later request."""
        if len(self._idle) < IDLE:
            self._idle.append(executor)


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
