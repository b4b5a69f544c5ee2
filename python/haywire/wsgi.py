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

from . import __version__
from ._haywire import ClientDisconnected

_ERROR = (500, [("Content-Type", "text/plain")], b"internal server error\n")
# The iterators of a list and a tuple: producing their next block cannot wait.
_WHOLE_ITERATORS = (type(iter([])), type(iter(())))


class FileWrapper(util.FileWrapper):
    """``wsgi.file_wrapper``: a regular file (from its current position, up to the
    app's Content-Length) is sent by the server as it serves static files, read as the
    client takes it, with a Content-Length, the app's thread free at once; anything
    else is iterated in ``blksize`` blocks."""


def _send_file(request: Any, start: Any, result: FileWrapper) -> bool:
    """Sends ``result``'s file through the server; False when it is not a regular file."""
    try:
        offset = result.filelike.tell()
        return bool(request.send_file(start.code, start.headers, result.filelike, offset,
                                      start.content_length))
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
    """``wsgi.input`` of a request with a body."""
    if request.streamed:
        return io.BufferedReader(_Body(request), 64 * 1024)
    return io.BytesIO(request.body)


def make_handler(
    app: Callable[..., Any], server_name: str, port: int | str, multiprocess: bool,
    multithread: bool = False,
) -> Callable[[Any], None]:
    """The per-request function a worker calls with each :class:`haywire.Request`."""
    base = {
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(port),
        "SERVER_SOFTWARE": f"haywire/{__version__}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input": _NO_BODY,  # replaced for a request with a body
    }

    def handle(request: Any) -> None:
        # The environ and start_response (with its write) are made in Rust: built
        # here, their closures and cells cost about what a hello-world app does.
        environ, start = request.wsgi_start(base, _input)
        result = None
        try:
            result = app(environ, start)
            # The whole body, as nearly every app returns it (a list or tuple): joined
            # and sent with a Content-Length, in Rust.
            if start.respond_whole(result):
                return
            kind = result.__class__
            if (kind is list or kind is tuple) and not start.streaming:
                if any(result):
                    raise AssertionError("body before start_response()")
                _no_start(request)
                return
            if (isinstance(result, FileWrapper) and start.code is not None
                    and not start.streaming and _send_file(request, start, result)):
                return
            # A list or tuple (a subclass here) is the whole body: one response with a
            # Content-Length. So is an iterable whose iterator walks a list or tuple
            # (Django's HttpResponse iterates its _container): every block already
            # exists, so collecting them delays none (PEP 3333). Any other iterable is
            # streamed as it is produced.
            blocks = iter(result)
            whole = not start.streaming and (
                blocks.__class__ in _WHOLE_ITERATORS or isinstance(result, (list, tuple)))
            write = start.write
            chunks: list[bytes] = []
            for chunk in blocks:
                if chunk:
                    if start.code is None:
                        raise AssertionError("body before start_response()")
                    if whole:
                        chunks.append(chunk)
                    else:
                        write(chunk)
            if start.streaming:
                request.end_stream()
                return
        except ClientDisconnected:
            return  # the client left; close() below still runs
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if start.streaming:
                request.end_stream(abort=True)
            else:
                request.respond(*_ERROR)
            return
        finally:
            kind = result.__class__
            if kind is not list and kind is not tuple and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    traceback.print_exc(file=sys.stderr)
        if not start.respond_whole(chunks):
            _no_start(request)

    return handle


def _no_start(request: Any) -> None:
    print("haywire: WSGI app returned without start_response()", file=sys.stderr)
    request.respond(*_ERROR)
