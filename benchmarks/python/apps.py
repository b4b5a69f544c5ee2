"""The same tiny app in every interface the Python benchmarks compare:
GET / -> hello world, GET /json -> {"message": "Hello, World!"}, GET /users/<n> ->
hello world, POST /echo -> the body, GET /stream -> 1 MiB streamed in 16 pieces of 64 KiB
(no Content-Length: chunked), anything else -> 404 (the mixed scenario's /nope).

    wsgi_app    WSGI (haywire --interface wsgi, granian wsgi, gunicorn)
    asgi_app    ASGI (haywire --interface asgi, granian asgi, uvicorn)
    native_app  haywire.App (haywire --interface native; it has no /stream: the native
                API answers with one body, it has no streamed response)
    rsgi_app    RSGI (granian rsgi), Granian's native interface
"""

import json

HELLO = b"hello world"
PIECE = b"x" * 65536
PIECES = 16  # 1 MiB in all


def _pieces():
    for _ in range(PIECES):
        yield PIECE


def _json() -> bytes:
    return json.dumps({"message": "Hello, World!"}).encode()


# --- WSGI -------------------------------------------------------------------------
def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [HELLO]
    if path == "/json":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_json()]
    if path.startswith("/users/"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [HELLO]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _pieces()  # a generator: streamed as produced, not a list sent whole
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", environ.get("CONTENT_TYPE", "text/plain"))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


# --- ASGI -------------------------------------------------------------------------
TEXT = [(b"content-type", b"text/plain")]
JSON = [(b"content-type", b"application/json")]
OCTETS = [(b"content-type", b"application/octet-stream")]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": OCTETS})
        for i in range(PIECES):
            await send({"type": "http.response.body", "body": PIECE, "more_body": i < PIECES - 1})
        return
    status, headers, body = 404, TEXT, b"not found"
    if path == "/" or path.startswith("/users/"):
        status, body = 200, HELLO
    elif path == "/json":
        status, headers, body = 200, JSON, _json()
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- haywire native ---------------------------------------------------------------
try:
    import haywire

    native_app = haywire.App()

    @native_app.get("/")
    def _hello(request):
        return haywire.Response(HELLO, content_type="text/plain")

    @native_app.get("/json")
    def _json_route(request):
        return {"message": "Hello, World!"}

    @native_app.get("/users/:id")
    def _user(request):
        return haywire.Response(HELLO, content_type="text/plain")

    @native_app.post("/echo")
    def _echo(request):
        return haywire.Response(request.body, content_type="text/plain")

except ImportError:  # granian, uvicorn and gunicorn do not need it
    pass


# --- RSGI (granian) ---------------------------------------------------------------
async def rsgi_app(scope, protocol):
    path = scope.path
    if path == "/" or path.startswith("/users/"):
        protocol.response_bytes(200, [("content-type", "text/plain")], HELLO)
    elif path == "/json":
        protocol.response_bytes(200, [("content-type", "application/json")], _json())
    elif path == "/stream":
        transport = protocol.response_stream(200, [("content-type", "application/octet-stream")])
        for piece in _pieces():
            await transport.send_bytes(piece)
    elif path == "/echo":
        body = await protocol()
        protocol.response_bytes(200, [("content-type", "text/plain")], body)
    else:
        protocol.response_bytes(404, [("content-type", "text/plain")], b"not found")
