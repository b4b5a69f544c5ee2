"""ASGI 3 (HTTP and lifespan) on Haywire, on an asyncio loop in the worker's Python
thread.

The request body is delivered as it arrives, in ``http.request`` events of at most
64 KiB with ``more_body``: the server reads from the client only while the app keeps
up, so an upload is limited by ``--max-body-size``, not by memory. When the client
leaves before the body ends, ``receive()`` answers ``http.disconnect``. ``receive()``
awaits bytes that have not arrived yet on the loop itself (the server rings the loop's
ready doorbell when they do): no executor thread waits, however many uploads are slow.
A response whose body comes in one ``http.response.body`` event is sent with a
Content-Length; one in several events (``more_body``) is streamed as produced:
chunked, or with the app's Content-Length. ``send`` awaits room while the client is
512 KiB behind (the server rings the ready doorbell once three quarters have gone out: no
thread waits), and raises
``haywire.ClientDisconnected`` (a ``ConnectionError``) once the client is gone. After the response (or once the app returns) ``receive()``
answers ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import sys
import traceback
from typing import Any, Callable

from ._haywire import ClientDisconnected
from .syncthreads import sync_threads

CHUNK = 64 * 1024
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_ERROR = (500, [("Content-Type", "text/plain")], b"internal server error\n")


_ASGI2 = {"version": "2.0", "spec_version": "2.3"}


def is_asgi2(app: Any) -> bool:
    """Whether `app` looks like ASGI 2 (called with the scope, returning an instance
    that is then awaited with receive and send) rather than ASGI 3 (a coroutine
    function of all three), judged as uvicorn's `--interface auto` does: a class
    without `__await__`, a plain function, or an object whose `__call__` is not a
    coroutine function."""
    if inspect.isclass(app):
        return not hasattr(app, "__await__")
    if inspect.isfunction(app):
        return not inspect.iscoroutinefunction(app)
    return not inspect.iscoroutinefunction(getattr(app, "__call__", None))


def as_asgi3(app: Callable[..., Any]) -> Callable[..., Any]:
    """An ASGI 2 `app` as an ASGI 3 one."""
    async def asgi3(scope: dict, receive: Any, send: Any) -> None:
        scope["asgi"] = _ASGI2
        await app(scope)(receive, send)

    return asgi3


class LifespanFailed(Exception):
    """The app reported ``lifespan.startup.failed``."""


class Lifespan:
    """Runs the app's lifespan protocol: startup before the worker accepts, shutdown
    after it has drained. Apps that do not support lifespan are tolerated, unless
    `required` (``--lifespan on``): then raising on startup fails it."""

    def __init__(self, app: Callable[..., Any], state: dict, required: bool = False) -> None:
        self.app = app
        self.state = state
        self.required = required
        self.supported = True
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.startup_done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.shutdown_done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self._send)
        except Exception:
            # Raising before startup completes means "lifespan not supported" (as
            # uvicorn's `--lifespan auto`), but the reason is shown: it may be a bug.
            traceback.print_exc(file=sys.stderr)
            if not self.startup_done.done() and self.required:
                self.startup_done.set_exception(
                    LifespanFailed("the app raised on lifespan startup (--lifespan on)"))
            elif not self.startup_done.done():
                print("haywire: the ASGI app raised on lifespan startup (above);"
                      " serving without lifespan", file=sys.stderr)
                self.supported = False
                self.startup_done.set_result(None)
        finally:
            for future in (self.startup_done, self.shutdown_done):
                if not future.done():
                    future.set_result(None)

    async def _send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.startup_done.set_result(None)
        elif kind == "lifespan.startup.failed":
            self.startup_done.set_exception(LifespanFailed(message.get("message", "")))
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_done.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            print(f"haywire: lifespan shutdown failed: {message.get('message', '')}", file=sys.stderr)
            self.shutdown_done.set_result(None)

    async def startup(self) -> None:
        """Sends ``lifespan.startup`` and waits for the app's answer."""
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.startup_done

    async def shutdown(self) -> None:
        """Sends ``lifespan.shutdown`` and waits for the app's answer."""
        if not self.supported or self.task is None:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.shutdown_done


def _content_length(headers: Any) -> int | None:
    """The app's Content-Length, if it set a valid one."""
    for name, value in headers:
        if bytes(name).lower() == b"content-length":
            try:
                length = int(bytes(value))
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


class _Ready:
    """Requests waiting for body bytes (``watch_body``) or for room in their response's
    window (``watch_room``): the server posts their tokens to the worker's ready
    doorbell, which the loop watches. An executor thread per wait would cost a thread
    hand-off each way, and a few slow uploads would hold every thread of the default
    executor."""

    def __init__(self, worker: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._worker = worker
        self._loop = loop
        # A request's body and its response may both be awaited (by two tasks): a
        # post for its token wakes both, and each looks again.
        self._waiting: dict[int, list[asyncio.Future]] = {}
        loop.add_reader(worker.ready_fileno(), self._ready)

    def _ready(self) -> None:
        for token in self._worker.take_ready():
            for future in self._waiting.pop(token, ()):
                if not future.done():
                    future.set_result(None)

    async def wait(self, watch: Callable[[], bool], token: int) -> None:
        """Returns once what ``watch`` (a request's ``watch_body`` or ``watch_room``)
        watches for has happened, or at once when it already has; ``token`` is the
        request's."""
        if not watch():
            return
        future = self._loop.create_future()
        self._waiting.setdefault(token, []).append(future)
        try:
            await future
        finally:
            waiting = self._waiting.get(token)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[token]


def _drop_traceback(task: asyncio.Task) -> None:
    """Drops the traceback of the exception that ended `task`, a task the request's
    disconnect was reported to, once the app has returned.

    Django's handler runs a task that raises ``RequestAborted`` when told
    ``http.disconnect`` and re-raises it in its own frame (``task.result()``), whose
    locals hold the task: the task keeps the exception, the exception's traceback that
    frame. The cycle (the request's scope, request object and contextvars context
    among it) waited for a full garbage collection, and with the context the request's
    sync thread (`SyncThreads`); without the traceback it is freed as the request ends.
    The exception counts as retrieved (the app has returned: nothing is left to
    retrieve it)."""
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        error.__traceback__ = None


def make_handler(
    app: Callable[..., Any],
    loop: asyncio.AbstractEventLoop,
    server: tuple[str, int | None],
    state: dict,
    worker: Any,
    fresh_context: bool = False,
) -> Callable[[Any], None]:
    """The per-request function: starts a task running the app for the request, in a
    copy of the loop thread's context, or with `fresh_context` (--reset-contextvars)
    an empty one."""
    ready = _Ready(worker, loop)
    threads = sync_threads()
    base = {
        "type": "http",
        "asgi": _ASGI,
        "scheme": "http",
        "root_path": "",
        "client": None,
        "server": server,
        "extensions": {"http.response.pathsend": {}},
        # Every request's own keys, set for each (`asgi_start`, then state): a copy of
        # `base` then has room for them, and setting one replaces a value instead of
        # adding a key (no table growth per request).
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "state": None,
    }

    # The exchange's receive and send (Rust) answer at once what they can: the whole
    # request body, http.response.start, a body in one event. These coroutines do
    # the rest, with the exchange's state.
    async def receive_slow(exchange: Any) -> dict:
        request = exchange.request
        if not exchange.body_done:  # the body arrives as it is read
            try:
                piece = request.read_body(CHUNK, False)
                while piece is None:  # nothing yet: the server rings when there is
                    await ready.wait(request.watch_body, request.token)
                    piece = request.read_body(CHUNK, False)
            except ClientDisconnected:
                exchange.body_done = True
                return {"type": "http.disconnect"}
            exchange.body_done = not piece or request.body_complete
            return {"type": "http.request", "body": piece, "more_body": not exchange.body_done}
        if not request.responded or (exchange.streaming and not exchange.complete):
            if exchange.done is None:
                exchange.done = loop.create_future()
            await exchange.done
        exchange.told = asyncio.current_task()
        return {"type": "http.disconnect"}

    async def send_slow(exchange: Any, message: dict) -> None:
        # The exchange has checked the order: the response is started and not complete.
        request = exchange.request
        status, headers = exchange.status, exchange.headers
        kind = message["type"]
        if kind == "http.response.body":  # a streamed body
            data = message.get("body", b"")
            more = message.get("more_body", False)
            if not exchange.streaming:
                exchange.streaming = True
                request.start_stream(status, headers, _content_length(headers))
            # The client is 512 KiB behind: await room (send_piece raises once the
            # client is gone).
            while data and not request.send_piece(data, False):
                await ready.wait(request.watch_room, request.token)
            if not more:
                request.end_stream()
                exchange.complete = True
                if exchange.done is not None:
                    exchange.done.set_result(None)
        elif kind == "http.response.pathsend":
            # The server sends the file as it sends static files (sendfile).
            if status is None or exchange.streaming:
                raise RuntimeError("http.response.pathsend needs a started, unsent response")
            with open(message["path"], "rb") as file:
                if not request.send_file(status, headers, file, 0, _content_length(headers)):
                    raise RuntimeError(f"pathsend: {message['path']!r} is not a regular file")
            if exchange.done is not None:
                exchange.done.set_result(None)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    async def run(request: Any) -> None:
        scope, exchange = request.asgi_start(base, receive_slow, send_slow)
        scope["state"] = state.copy() if state else {}
        entered = None if threads is None else await threads.enter()
        try:
            await app(scope, exchange.receive, exchange.send)
        except ClientDisconnected:
            pass  # the client left mid-stream
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if exchange.streaming and not exchange.complete:
                request.end_stream(abort=True)
            elif not request.responded:
                request.respond(*_ERROR)
        else:
            if exchange.streaming and not exchange.complete:
                print("haywire: ASGI app returned inside a streamed body", file=sys.stderr)
                request.end_stream(abort=True)
            elif not request.responded:
                print("haywire: ASGI app returned without a complete response", file=sys.stderr)
                request.respond(*_ERROR)
        finally:
            done = exchange.done
            if done is not None and not done.done():
                done.set_result(None)
            if exchange.told is not None:
                _drop_traceback(exchange.told)
            if entered is not None:
                threads.leave(entered)
            # Let go here, not in a done callback: that would be one more callback
            # for the loop to schedule and run per request.
            tasks.pop(request, None)

    # The loop keeps only weak references to tasks: each request's is held here until
    # it ends.
    tasks: dict[Any, asyncio.Task] = {}

    def handle(request: Any) -> None:
        # Named: a task left to name itself formats "Task-<n>", a tenth of its cost
        # (an app's own task factory, if it set one, still makes it).
        context = contextvars.Context() if fresh_context else None
        if loop.get_task_factory() is None:
            task = asyncio.Task(run(request), loop=loop, name="haywire-request", context=context)
        else:
            task = loop.create_task(run(request), context=context)
        if not task.done():  # a factory's task may have run to its end already
            tasks[request] = task

    return handle
