"""WSGI (PEP 3333) on Haywire.

Haywire cannot stream a response body yet: the iterable (and anything passed to
``write``) is collected into one body sent with a Content-Length. A Content-Length the
application sets is honoured: the body is cut to it (a shorter body is sent as is, with
its real length, and a warning on ``wsgi.errors``).
"""

from __future__ import annotations

import io
import sys
import traceback
from typing import Any, Callable
from wsgiref.util import FileWrapper

_ERROR = (500, [("Content-Type", "text/plain")], b"internal server error\n")


def _status_code(status: str) -> int:
    if not isinstance(status, str) or len(status) < 4 or status[3] != " ":
        raise ValueError(f"invalid WSGI status {status!r}")
    return int(status[:3])


def make_handler(
    app: Callable[..., Any], server_name: str, port: int, multiprocess: bool
) -> Callable[[Any], None]:
    """The per-request function a worker calls with each :class:`haywire.Request`."""
    base = {
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }

    def handle(request: Any) -> None:
        environ = request.wsgi_environ(base)
        environ["wsgi.input"] = io.BytesIO(request.body)

        state: dict[str, Any] = {"status": None, "headers": None, "sent": False}
        chunks: list[bytes] = []

        def write(data: bytes) -> None:
            if state["status"] is None:
                raise AssertionError("write() before start_response()")
            if data:
                state["sent"] = True
                chunks.append(data)

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info:
                try:
                    if state["sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["status"] is not None:
                raise AssertionError("start_response() called twice without exc_info")
            _status_code(status)
            state["status"] = status
            state["headers"] = headers
            return write

        result = None
        try:
            result = app(environ, start_response)
            for chunk in result:
                if chunk:
                    if state["status"] is None:
                        raise AssertionError("body before start_response()")
                    state["sent"] = True
                    chunks.append(chunk)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            request.respond(*_ERROR)
            return
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    traceback.print_exc(file=sys.stderr)
        if state["status"] is None:
            print("haywire: WSGI app returned without start_response()", file=sys.stderr)
            request.respond(*_ERROR)
            return
        data = b"".join(chunks)
        headers = state["headers"]
        for name, value in headers:
            if name.lower() == "content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if len(data) > declared:
                    data = data[:declared]
                elif len(data) < declared:
                    print(
                        f"haywire: WSGI app sent {len(data)} of {declared} bytes"
                        " (Content-Length)",
                        file=sys.stderr,
                    )
                break
        request.respond(int(state["status"][:3]), headers, data)

    return handle
