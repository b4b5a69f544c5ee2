"""ASGI over real sockets: body events, collected response, disconnect, lifespan, and
ASGI 2 apps."""

import json
import os
import re

import pytest

from conftest import APPS, read_response, request, wait_file


def test_hello(serve):
    server = serve("asgi_app:app", interface="asgi")
    status, headers, body = request(server, "GET", "/hello")
    assert (status, body, headers["content-type"]) == (200, b"hello world", "text/plain")


def test_a_status_is_an_int_or_what_int_makes_of_it(serve):
    server = serve("asgi_app:app", interface="asgi")
    with server.connect() as sock:
        sock.sendall(b"GET /status?enum HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.split(b"\r\n")[0] == b"HTTP/1.1 418 I'm a teapot"
    status, _, body = request(server, "GET", "/status?other")
    assert (status, body) == (201, b"other")


def test_large_body_arrives_in_more_body_events(serve):
    server = serve("asgi_app:app", interface="asgi")
    payload = os.urandom(300 * 1024)
    status, headers, body = request(server, "POST", "/echo", payload)
    assert status == 200 and body == payload
    assert int(headers["x-events"]) >= 5  # at most 64 KiB each, as they arrive
    assert headers["transfer-encoding"] == "chunked"  # sent in two body events


def test_chunked_upload(serve):
    server = serve("asgi_app:app", interface="asgi")
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert (status, body, headers["x-events"]) == (200, b"hello world", "1")


def test_scope(serve):
    server = serve("asgi_app:app", interface="asgi")
    status, _, body = request(server, "GET", "/scope?x=%20y", headers={"X-Test": "1"})
    scope = json.loads(body)
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "x=%20y"
    assert ["x-test", "1"] in scope["headers"]
    assert scope["state"]["started"] > 0  # lifespan state reaches requests


def test_head_keep_alive_pipelining(serve):
    server = serve("asgi_app:app", interface="asgi")
    with server.connect() as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, _ = read_response(sock, head_only=True)
        assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"")
        batch = b"".join(
            f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{i:02d}".encode()
            for i in range(30)
        )
        sock.sendall(batch)
        bodies = [read_response(sock)[2] for _ in range(30)]
    assert bodies == [f"{i:02d}".encode() for i in range(30)]


def test_send_refuses_messages_out_of_order(serve):
    server = serve("asgi_app:app", interface="asgi")
    status, _, body = request(server, "GET", "/misuse")
    assert (status, body.decode()) == (200, "http.response.body before http.response.start; "
                                            "http.response.start sent twice; "
                                            "unexpected ASGI message 'http.response.bogus'")
    server.wait_for("after the response: response already complete", stderr=True)


def test_disconnect_after_response(serve):
    server = serve("asgi_app:app", interface="asgi")
    marker = "/tmp/disconnect"
    if os.path.exists(marker):
        os.unlink(marker)
    assert request(server, "POST", "/disconnect", b"x")[2] == b"ok"
    assert wait_file(marker) == "http.disconnect"


def test_requests_run_in_tasks_of_the_apps_task_factory(serve):
    # Without a factory a request's task is made directly (cheaper than
    # loop.create_task); one the app set is still used.
    server = serve("asgi_app:task_factory_app", interface="asgi")
    assert request(server, "GET", "/")[2] == b"from-the-app's-factory"


def test_exception_is_500_and_worker_lives(serve):
    server = serve("asgi_app:app", interface="asgi")
    pid = request(server, "GET", "/pid")[2]
    assert request(server, "GET", "/error")[0] == 500
    assert request(server, "GET", "/pid")[2] == pid


@pytest.mark.parametrize("extra, seen", [([], b"set at import"),
                                         (["--reset-contextvars"], b"unset")])
def test_requests_run_in_a_copy_of_the_workers_context_or_a_fresh_one(serve, extra, seen):
    server = serve("asgi_app:app", interface="asgi", extra=extra)
    assert request(server, "GET", "/contextvar")[2] == seen


def test_lifespan_shutdown_runs_on_sigterm(serve):
    server = serve("asgi_app:app", interface="asgi")
    pid = int(request(server, "GET", "/pid")[2])
    marker = f"/tmp/shutdown-{pid}"
    assert server.stop() == 0
    assert open(marker).read() == "done"
    os.unlink(marker)


def test_lifespan_startup_failure_stops_the_server():
    import subprocess
    import sys

    from conftest import APPS

    result = subprocess.run(
        [sys.executable, "-m", "haywire", "--interface", "asgi", "--port", "0",
         "--address", "127.0.0.1", "--workers", "1", "asgi_fail:app"],
        cwd=APPS, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "no database" in result.stderr


@pytest.mark.parametrize("app, interface", [("asgi_app:Asgi2App", "asgi"),
                                            ("asgi_app:asgi2_function", "asgi2")])
def test_asgi2_apps_serve_http_websocket_and_lifespan(serve, app, interface):
    from websockets.sync.client import connect

    server = serve(app, interface=interface)
    assert request(server, "GET", "/")[::2] == (200, b"asgi 2.0")
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "asgi2 hi"
    assert server.stop() == 0
    assert not any("Traceback" in line for line in server.errors), server.errors


def test_asgi3_is_told_from_asgi2(monkeypatch):
    from haywire.asgi import is_asgi2

    monkeypatch.syspath_prepend(str(APPS))
    import asgi_app

    class Asgi3:
        async def __call__(self, scope, receive, send): ...

    assert not is_asgi2(asgi_app.app) and not is_asgi2(Asgi3())
    assert is_asgi2(asgi_app.Asgi2App) and is_asgi2(asgi_app.asgi2_function)


def test_interface_auto_tells_every_kind_of_app(monkeypatch):
    from haywire.worker import detect_interface

    monkeypatch.syspath_prepend(str(APPS))
    import asgi_app
    import native_app
    import wsgi_app

    class WsgiClass:  # PEP 3333: a class is an app too, instantiated per request
        def __init__(self, environ, start_response): ...

        def __iter__(self): return iter([])

    class Asgi3:
        async def __call__(self, scope, receive, send): ...

    def asgi3_returning_an_awaitable(scope, receive, send): ...

    cases = [
        (wsgi_app.raw, "wsgi"), (WsgiClass, "wsgi"), (asgi_app.app, "asgi3"), (Asgi3(), "asgi3"),
        (asgi3_returning_an_awaitable, "asgi3"), (asgi_app.Asgi2App, "asgi2"),
        (asgi_app.asgi2_function, "asgi2"), (native_app.app, "native"),
        (wsgi_app.app, None),  # wsgiref's validator takes *args: served as WSGI, said so
    ]
    for app, kind in cases:
        assert detect_interface(app) == kind, app


def test_interface_auto_serves_each_kind_and_says_which(serve):
    for app, path, body, said in [("wsgi_app:raw", "/hello", b"hello world", "a WSGI app"),
                                  ("asgi_app:app", "/hello", b"hello world", "an ASGI 3 app"),
                                  ("asgi_app:Asgi2App", "/", b"asgi 2.0", "an ASGI 2 app"),
                                  ("native_app:app", "/hello", b"hello world", "a haywire.App")]:
        server = serve(app, interface="auto")
        assert request(server, "GET", path)[2] == body, app
        server.wait_for(re.escape(f"{app} is {said} (--interface auto)"), stderr=True)
