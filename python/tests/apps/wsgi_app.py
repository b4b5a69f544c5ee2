"""WSGI test apps. `app` runs under wsgiref.validate with its warnings as errors."""

import json
import os
import subprocess
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

MARKER_DIR = os.environ.get("HAYWIRE_TEST_DIR", "/tmp")
BARRIER = __import__("threading").Barrier(2)
HOARD: list = []  # what /grow keeps


class Closing:
    """An iterable whose close() leaves a marker file."""

    def __init__(self, chunks, marker):
        self.chunks = chunks
        self.marker = marker

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed")


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello world"]
    if path == "/environ":
        keys = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
        keys["wsgi.version"] = list(environ["wsgi.version"])
        body = json.dumps(keys).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/os-environ":  # the process environment, and what a child process inherits
        inherited = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
        body = json.dumps({"os": dict(os.environ), "child": inherited}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo":
        # A chunked body has no CONTENT_LENGTH: read to its end (wsgi.input_terminated).
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        data = stream.read(int(length)) if length else b"".join(iter(lambda: stream.read(4096), b""))
        extra = stream.read(10)  # never past the body
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Extra", str(len(extra)))])
        return [data]
    if path == "/input-kind":
        # The class of wsgi.input under the validator's wrapper, and the body.
        stream = environ["wsgi.input"]
        kind = type(getattr(stream, "input", stream)).__name__
        data = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [kind.encode(), b" ", str(len(data)).encode()]
    if path == "/chunks":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"a", b"", b"bc", b"def"], os.path.join(MARKER_DIR, environ["QUERY_STRING"]))
    if path == "/whole":
        # A list or tuple is joined in Rust: bytes-likes, empty pieces, the app's
        # Content-Length (QUERY_STRING) honoured.
        headers = [("Content-Type", "text/plain")]
        if environ["QUERY_STRING"]:
            headers.append(("Content-Length", environ["QUERY_STRING"]))
        start_response("200 OK", headers)
        return (b"ab", b"", bytearray(b"cd"), memoryview(b"ef"))
    if path == "/teapot":
        start_response("418 I'm a teapot", [])
        return [b"short and stout"]
    if path == "/bad-status":
        start_response("20 OK", [])  # raises: not a three-digit code and a space
        return [b"unreachable"]
    if path == "/input":
        stream = environ["wsgi.input"]
        seen = [stream.read(), stream.read(5), stream.readline(), list(stream)]
        stream.close()  # an app may close it: the next request's input still reads
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(seen).encode()]
    if path == "/gc-frozen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(__import__("gc").get_freeze_count()).encode()]
    if path == "/none":
        start_response("204 No Content", [])
        return []
    if path == "/unstarted":
        return []
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text is not bytes"]
    if path == "/twice":
        start_response("200 OK", [])
        start_response("201 Created", [])  # raises: a second call needs exc_info
        return [b"unreachable"]
    if path == "/write-early":
        start_response.write(b"x")  # raises: write() before start_response()
        return [b"unreachable"]
    if path == "/bytes-status":
        start_response(b"200 OK", [])  # raises: the status is a native string
        return [b"unreachable"]
    if path == "/exc-after-send":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        try:
            raise ValueError("too late")
        except ValueError:
            import sys
            # Bytes went out: start_response re-raises, and the body is cut short.
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"unreachable"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        return [b"returned"]
    if path == "/error":
        raise RuntimeError("boom")
    if path == "/exc_info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late")
        except ValueError:
            import sys
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"recovered"]
    if path == "/length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"0123456789"]
    if path == "/sleep":
        import time
        time.sleep(float(environ["QUERY_STRING"] or "0.5"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"), 1000)
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path == "/grow":  # keeps 200 MiB for the life of the process (a leak)
        HOARD.append(bytearray(200 << 20))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path == "/latin1":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Name", "caf\u00e9"), ("Server", "my-app"),
                                  ("Content-Length", "999"), ("Transfer-Encoding", "chunked")])
        return [b"ok"]
    if path == "/informational":
        start_response("103 Early Hints", [("Content-Type", "text/plain"), ("Link", "</a.css>")])
        return [b""]
    if path == "/gen":
        # Yields one piece, then waits (at most 10 s) for the file the query names.
        def pieces(marker=os.path.join(MARKER_DIR, environ["QUERY_STRING"])):
            import time
            yield b"first;"
            for _ in range(200):
                if os.path.exists(marker):
                    break
                time.sleep(0.05)
            yield b"second"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return pieces()
    if path == "/endless":
        piece = b"x" * 65536
        def forever():
            while True:
                yield piece
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return forever()
    if path == "/gen_fail":
        def failing():
            yield b"partial"
            raise RuntimeError("mid-stream")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return failing()
    if path == "/barrier":
        # Answers only when two requests are inside the app at once (5 s at most).
        import threading
        try:
            BARRIER.wait(5)
        except threading.BrokenBarrierError:
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b"alone"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.multithread"] and b"together" or b"?"]
    if path == "/log":
        import logging
        logging.getLogger("testapp").info("app-info-line")
        logging.getLogger("testapp").warning("app-warning-line")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]
    if path == "/getenv":
        # The worker's environment (--env-file), not the WSGI environ.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [os.environ.get(environ["QUERY_STRING"], "(unset)").encode()]
    if path == "/exit3":
        os._exit(3)
    if path == "/hang":
        import time
        time.sleep(3600)
    if path == "/hash":
        # Hashes the body as it reads it, in reads of the size the query names.
        import hashlib
        size = int(environ["QUERY_STRING"] or "65536")
        stream, digest, total = environ["wsgi.input"], hashlib.sha256(), 0
        while piece := stream.read(size):
            digest.update(piece)
            total += len(piece)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{total} {digest.hexdigest()}".encode()]
    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = list(stream)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"first": first.decode(), "rest": len(rest),
                            "last": rest[-1].decode() if rest else None}).encode()]
    if path == "/upload_gone":
        # Reads until the client leaves: the read raises ClientDisconnected.
        from haywire import ClientDisconnected
        try:
            while environ["wsgi.input"].read(65536):
                pass
            outcome = "complete"
        except ClientDisconnected:
            outcome = "ClientDisconnected"
        with open(os.path.join(MARKER_DIR, environ["QUERY_STRING"]), "w") as f:
            f.write(outcome)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [outcome.encode()]
    if path == "/sendfile":
        # QUERY_STRING: path[&offset[&length]]; serve as wsgi_app:raw (the validator
        # would hide the file wrapper).
        name, *rest = environ["QUERY_STRING"].split("&")
        f = open(name, "rb")
        if rest:
            f.seek(int(rest[0]))
        headers = [("Content-Type", "application/octet-stream")]
        if len(rest) > 1:
            headers.append(("Content-Length", rest[1]))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f)
    if path == "/status":
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Custom", "yes")])
        return [b"created"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"nope"]


app = validator(raw)


def create_app():
    """A factory (--factory wsgi_app:create_app)."""
    return app
