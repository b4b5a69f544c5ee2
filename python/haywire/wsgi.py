"""WSGI (PEP 3333) on Haywire.

``wsgi.input`` gives the request body as it arrives (``read(n)``, ``readline``,
iteration): an upload is limited by ``--max-body-size``, not by memory, since the
server reads from the client only while the application keeps up. A read raises
``haywire.ClientDisconnected`` when the client leaves before the body ends.

A list or tuple returned by the application, or an iterable whose iterator walks one
(Django's ``HttpResponse``), is one body sent with a Content-Length.
Any other iterable (a generator, Django's ``StreamingHttpResponse``, Flask's
``stream_with_context``) and anything passed to ``write`` are streamed as produced:
chunked, or with the application's Content-Length; the thread waits, GIL released,
while the client is 512 KiB behind, so memory stays bounded. A Content-Length the
application sets is honoured: the body is cut to it (a shorter whole body is sent with
its real length and a warning; a shorter stream ends the connection).
"""

from __future__ import annotations

import io
import sys
import traceback
from typing import Any, Callable

from wsgiref import util

from ._haywire import ClientDisconnected

_ERROR = (500, [("Content-Type", "text/plain")], b"internal server error\n")
# The iterators of a list and a tuple: producing their next block cannot wait.
_WHOLE_ITERATORS = (type(iter([])), type(iter(())))


class FileWrapper(util.FileWrapper):
    """``wsgi.file_wrapper``: a regular file (from its current position, up to the
    app's Content-Length) is sent by the server as it serves static files, read as the
    client takes it, with a Content-Length, the app's thread free at once; anything
    else is iterated in ``blksize`` blocks."""


def _send_file(request: Any, code: int, headers: list, result: FileWrapper) -> bool:
    """Sends ``result``'s file through the server; False when it is not a regular file."""
    try:
        offset = result.filelike.tell()
        return bool(request.send_file(code, headers, result.filelike, offset,
                                      _content_length(headers)))
    except (AttributeError, OSError):  # no fileno()/tell(): iterate instead
        return False


class _Body(io.RawIOBase):
    """A streamed request body as a raw stream; ``wsgi.input`` buffers it."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self._request.read_body(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def readall(self) -> bytes:
        pieces = []
        while piece := self._request.read_body():
            pieces.append(piece)
        return b"".join(pieces)


class _NoBody(io.RawIOBase):
    """``wsgi.input`` of a request without a body: one stateless instance shared by all
    (every read gives ``b""``; closing it does nothing), where a ``BytesIO`` made per
    request cost about 800 of the Python thread's 22,000 instructions on a small GET."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return 0

    def close(self) -> None:
        pass


_NO_BODY = _NoBody()


def _input(request: Any) -> io.IOBase:
    if request.streamed:
        return io.BufferedReader(_Body(request), 64 * 1024)
    body = request.body
    return io.BytesIO(body) if body else _NO_BODY


# Status lines seen, by code: an app uses a handful, and a dict lookup is a tenth of the
# slice and int() that parse one. Bounded, so an app inventing reason phrases cannot
# grow it.
_CODES: dict[str, int] = {}


def _status_code(status: str) -> int:
    code = _CODES.get(status) if status.__class__ is str else None
    if code is not None:
        return code
    if not isinstance(status, str) or len(status) < 4 or status[3] != " ":
        raise ValueError(f"invalid WSGI status {status!r}")
    code = int(status[:3])
    if len(_CODES) < 256:
        _CODES[status] = code
    return code


def make_handler(
    app: Callable[..., Any], server_name: str, port: int | str, multiprocess: bool,
    multithread: bool = False,
) -> Callable[[Any], None]:
    """The per-request function a worker calls with each :class:`haywire.Request`."""
    base = {
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }

    def handle(request: Any) -> None:
        environ = request.wsgi_environ(base)
        environ["wsgi.input"] = _input(request)
        # What start_response was given (the status as its code), whether body bytes
        # went out, and whether they went out streamed. Plain locals of the closures:
        # a state object or dict per request costs more than the app's own work.
        code: int | None = None
        headers: Any = None
        sent = streaming = False

        def write(data: bytes) -> None:
            """Streams `data`, starting the streamed response first if needed; waits
            (GIL released) while the client is 512 KiB behind."""
            nonlocal sent, streaming
            if code is None:
                raise AssertionError("write() before start_response()")
            if data:
                sent = True
                if not streaming:
                    streaming = True
                    request.start_stream(code, headers, _content_length(headers))
                request.send_piece(data)

        def start_response(status: str, response_headers: list, exc_info: Any = None) -> Callable:
            nonlocal code, headers
            if exc_info:
                try:
                    if sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif code is not None:
                raise AssertionError("start_response() called twice without exc_info")
            code = _status_code(status)
            headers = response_headers
            return write

        result = None
        try:
            result = app(environ, start_response)
            kind = result.__class__
            if (kind is list or kind is tuple) and not streaming:
                # The whole body, as nearly every app returns it: joined, and sent with
                # a Content-Length, in Rust. (Neither has a close() to call.)
                if code is None:
                    if any(result):
                        raise AssertionError("body before start_response()")
                    _no_start(request)
                else:
                    request.respond_chunks(code, headers, result)
                return
            if (isinstance(result, FileWrapper) and code is not None and not streaming
                    and _send_file(request, code, headers, result)):
                return
            # A list or tuple (a subclass here) is the whole body: one response with a
            # Content-Length. So is an iterable whose iterator walks a list or tuple
            # (Django's HttpResponse iterates its _container): every block already
            # exists, so collecting them delays none (PEP 3333). Any other iterable is
            # streamed as it is produced.
            blocks = iter(result)
            whole = not streaming and (
                blocks.__class__ in _WHOLE_ITERATORS or isinstance(result, (list, tuple)))
            chunks: list[bytes] = []
            for chunk in blocks:
                if chunk:
                    if code is None:
                        raise AssertionError("body before start_response()")
                    if whole:
                        chunks.append(chunk)
                    else:
                        write(chunk)
            if streaming:
                request.end_stream()
                return
        except ClientDisconnected:
            return  # the client left; close() below still runs
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if streaming:
                request.end_stream(abort=True)
            else:
                request.respond(*_ERROR)
            return
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    traceback.print_exc(file=sys.stderr)
        if code is None:
            _no_start(request)
            return
        request.respond_chunks(code, headers, chunks)

    return handle


def _no_start(request: Any) -> None:
    print("haywire: WSGI app returned without start_response()", file=sys.stderr)
    request.respond(*_ERROR)


def _content_length(headers: list) -> int | None:
    """The app's Content-Length, if it set a valid one."""
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None
