#!/usr/bin/env python3
"""What an app's own code costs per request, with no server: bench.py's "app alone".

    app_alone.py wsgi|asgi|native MODULE:ATTR PATH [SECONDS]

Calls the app for GET PATH over and over in this process (after a warm-up) and prints
its CPU µs per request: the process's CPU time (every thread's, so a Django ASGI view's
sync thread counts) ÷ the calls. A WSGI call gets a fresh copy of a ready environ, as
a server would build, and its result is iterated and closed; an ASGI call gets a copy
of a ready scope, a `receive` that answers the empty body and then waits (the client
stays), and a `send` that drops the message, awaited on uvloop's loop (asyncio's when
uvloop is missing). A native call (a `haywire.App`) runs the GET route whose path is
PATH with a stand-in request and turns its return value into a response as the worker
does (a dict into JSON, say), handing it to a `respond` that drops it. What a
server adds on top (parsing, the environ or scope from the request, the bridge, the
socket) is not in it: a server's CPU per request is at least this plus its own floor.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import time
from typing import Any, Callable

WARM_UP_S = 0.3
BATCH = 50


def load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def wsgi_call(app: Callable[..., Any], path: str) -> Callable[[], None]:
    base = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }

    def start_response(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
        return lambda data: None

    def call() -> None:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        try:
            for _ in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()

    return call


def native_call(app: Any, path: str) -> Callable[[], None]:
    from haywire.native import _send  # what the worker does with a handler's value

    handler = next((h for method, route, h in app.routes if method == "GET" and route == path), None)
    if handler is None:
        raise SystemExit(f"no GET route {path!r} in the app")

    class StandIn:
        responded = False

        def respond(self, status: int, headers: list, body: bytes) -> None:
            pass

    request = StandIn()

    def call() -> None:
        _send(request, handler(request))

    return call


def asgi_scope(path: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
    }


def measure(batch: Callable[[], None], seconds: float) -> float:
    """CPU µs per call of the BATCH calls `batch` makes, over about `seconds` of CPU."""
    start = time.process_time()
    while time.process_time() - start < WARM_UP_S:
        batch()
    calls, start = 0, time.process_time()
    while (spent := time.process_time() - start) < seconds:
        batch()
        calls += BATCH
    return spent / calls * 1e6


def main() -> int:
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ("wsgi", "asgi", "native"):
        print(__doc__, file=sys.stderr)
        return 2
    interface, target, path = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) == 5 else 1.0
    app = load(target)
    if interface != "asgi":
        call = (wsgi_call if interface == "wsgi" else native_call)(app, path)

        def batch() -> None:
            for _ in range(BATCH):
                call()

        print(f"{measure(batch, seconds):.2f}")
        return 0

    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    scope = asgi_scope(path)

    async def send(message: dict) -> None:
        pass

    def receiver() -> Callable[[], Any]:
        told = False

        async def receive() -> dict:
            nonlocal told
            if told:  # nothing more until the client leaves, which it does not
                await loop.create_future()
            told = True
            return {"type": "http.request", "body": b"", "more_body": False}

        return receive

    async def calls() -> None:
        for _ in range(BATCH):
            await app(dict(scope), receiver(), send)

    print(f"{measure(lambda: loop.run_until_complete(calls()), seconds):.2f}")
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
