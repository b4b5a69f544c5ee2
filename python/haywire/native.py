"""The native API: routes registered in Haywire's Rust router, handlers in Python.

    app = haywire.App()

    @app.get("/users/:id")
    def user(request):
        return {"id": request.params["id"]}

A handler receives a :class:`haywire.Request` and returns ``str`` (text/plain),
``bytes`` (application/octet-stream), ``dict`` or ``list`` (JSON), a
:class:`Response`, or ``None`` (204). ``async def`` handlers run on the worker's
asyncio loop.
"""

from __future__ import annotations

import inspect
import json
import sys
import traceback
from typing import Any, Callable, Iterable

Handler = Callable[..., Any]

# One encoder for every JSON body: `json.dumps` with `separators` builds a new encoder
# per call, which cost 40% of a small body's encoding.
_JSON = json.JSONEncoder(separators=(",", ":"))


def _json_bytes(value: Any) -> bytes:
    """`value` as compact JSON, as ``json.dumps(value, separators=(",", ":"))`` gives it."""
    return _JSON.encode(value).encode()


class Response:
    """A response with a status, headers and a body."""

    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        body: str | bytes | dict | list | None = b"",
        status: int = 200,
        headers: Iterable[tuple[str, str]] | dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        # The common case (bytes, no headers but a content type) takes no generator,
        # no copy of the body and no scan of the headers: it is every request's cost.
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, dict):
            self.headers = list(headers.items())
        else:
            self.headers = list(headers)
        if type(body) is not bytes:
            if isinstance(body, str):
                body = body.encode()
                content_type = content_type or "text/plain; charset=utf-8"
            elif isinstance(body, (dict, list)):
                body = _json_bytes(body)
                content_type = content_type or "application/json"
            elif body is None:
                body = b""
            elif isinstance(body, (bytes, bytearray, memoryview)):
                body = bytes(body)
            else:
                raise TypeError(f"unsupported body type {type(body).__name__}")
        if content_type is not None and not (self.headers and any(
            n.lower() == "content-type" for n, _ in self.headers
        )):
            self.headers.append(("Content-Type", content_type))
        self.status = status
        self.body = body

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Any = None) -> "Response":
        """A JSON response of any JSON-serializable value."""
        return cls(
            _json_bytes(value),
            status,
            headers,
            "application/json",
        )


def _send(request: Any, value: Any) -> None:
    """Answers ``request`` with a handler's return value."""
    if isinstance(value, Response):
        request.respond(value.status, value.headers, value.body)
    elif isinstance(value, str):
        request.respond(200, [("Content-Type", "text/plain; charset=utf-8")], value.encode())
    elif isinstance(value, (bytes, bytearray, memoryview)):
        request.respond(200, [("Content-Type", "application/octet-stream")], bytes(value))
    elif isinstance(value, (dict, list)):
        body = _json_bytes(value)
        request.respond(200, [("Content-Type", "application/json")], body)
    elif value is None:
        request.respond(204, [], b"")
    else:
        raise TypeError(f"handler returned unsupported {type(value).__name__}")


def _fail(request: Any) -> None:
    traceback.print_exc(file=sys.stderr)
    if not request.responded:
        request.respond(
            500, [("Content-Type", "text/plain")], b"internal server error\n"
        )


class App:
    """A set of routes in Haywire's syntax: ``/users/:id`` captures a segment,
    a trailing ``/*`` matches the rest. Routing happens in Rust."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []

    def route(self, path: str, methods: Iterable[str] = ("GET",)) -> Callable[[Handler], Handler]:
        """Registers the decorated function for ``methods`` on ``path``."""

        def register(handler: Handler) -> Handler:
            for method in methods:
                self.routes.append((method.upper(), path, handler))
            return handler

        return register

    def get(self, path: str) -> Callable[[Handler], Handler]:
        """GET ``path`` (HEAD is answered from it)."""
        return self.route(path, ("GET",))

    def post(self, path: str) -> Callable[[Handler], Handler]:
        """POST ``path``."""
        return self.route(path, ("POST",))

    def put(self, path: str) -> Callable[[Handler], Handler]:
        """PUT ``path``."""
        return self.route(path, ("PUT",))

    def patch(self, path: str) -> Callable[[Handler], Handler]:
        """PATCH ``path``."""
        return self.route(path, ("PATCH",))

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        """DELETE ``path``."""
        return self.route(path, ("DELETE",))

    @property
    def is_async(self) -> bool:
        """Whether any handler is a coroutine function (the worker then runs asyncio)."""
        return any(inspect.iscoroutinefunction(h) for _, _, h in self.routes)

    def dispatcher(self) -> Callable[[Any], None]:
        """The synchronous dispatcher the worker calls with each request."""
        handlers = [h for _, _, h in self.routes]

        def dispatch(request: Any) -> None:
            try:
                _send(request, handlers[request.route](request))
            except Exception:
                _fail(request)

        return dispatch

    def async_dispatcher(self, loop: Any) -> Callable[[Any], None]:
        """A dispatcher for an asyncio loop: sync handlers run at once, coroutines as
        tasks; each request begins (``request.begin()``, for ``--stall-timeout``) when
        its handler runs."""
        handlers = [h for _, _, h in self.routes]
        is_coro = [inspect.iscoroutinefunction(h) for h in handlers]

        async def run(handler: Handler, request: Any) -> None:
            request.begin()
            try:
                _send(request, await handler(request))
            except Exception:
                _fail(request)

        tasks: set[Any] = set()

        def dispatch(request: Any) -> None:
            route = request.route
            if is_coro[route]:
                # The loop keeps only weak references to tasks: hold them until done.
                task = loop.create_task(run(handlers[route], request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                return
            request.begin()
            try:
                _send(request, handlers[route](request))
            except Exception:
                _fail(request)

        return dispatch
