"""--uds: the supervisor binds one Unix socket (replacing a stale socket file, never a
live one) and every worker serves it; the file goes when the supervisor stops. Over a
Unix socket the client has no address (as uvicorn): no REMOTE_ADDR, ``client`` None,
and proxy headers are believed only with ``--forwarded-allow-ips '*'``."""

import json
import os
import signal
import socket
import stat
import tempfile
import time

import pytest

from conftest import Server, read_response


@pytest.fixture
def uds_path():
    with tempfile.TemporaryDirectory(prefix="hw-uds-") as folder:
        yield os.path.join(folder, "app.sock")


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def send_get(sock: socket.socket, target: str, headers=(), close: bool = True) -> None:
    lines = [f"GET {target} HTTP/1.1", "Host: x", *headers]
    if close:
        lines.append("Connection: close")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def get(path: str, target: str, headers=()) -> tuple[int, bytes]:
    with connect(path) as sock:
        send_get(sock, target, headers)
        status, _, body, _ = read_response(sock)
        return status, body


def test_two_workers_serve_one_unix_socket_and_the_file_goes_at_stop(serve, uds_path):
    # A server that died left its socket file: nothing listens on it, so it is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(uds_path)
    stale.close()
    # Unbound: pinned, a worker whose CPU is busy with other work comes late to every
    # connection, and the other would serve them all.
    config = os.path.join(os.path.dirname(uds_path), "haywire.toml")
    with open(config, "w") as f:
        f.write('[server]\nplacement = "unbound"\n')
    server = serve("wsgi_app:app", workers=2, config=config, extra=["--uds", uds_path])
    assert any(f"http+unix://{uds_path}" in line for line in server.lines), server.lines
    assert stat.S_ISSOCK(os.stat(uds_path).st_mode)
    # Every worker accepts from the one socket; which one serves a connection is up
    # to the scheduler, so try until both have answered (bounded).
    pids = set()
    for _ in range(300):
        status, body = get(uds_path, "/pid")
        assert status == 200
        pids.add(body)
        if len(pids) == 2:
            break
    assert len(pids) == 2, pids
    # Keep-alive: two requests on one connection.
    with connect(uds_path) as sock:
        for _ in range(2):
            send_get(sock, "/hello", close=False)
            status, _, body, _ = read_response(sock)
            assert (status, body) == (200, b"hello world")
    # No client address; the default --forwarded-allow-ips (127.0.0.1) does not
    # cover a Unix peer, so its proxy headers are ignored.
    status, body = get(uds_path, "/environ", ["X-Forwarded-For: 1.2.3.4"])
    env = json.loads(body)
    assert "REMOTE_ADDR" not in env and "REMOTE_PORT" not in env, env
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (uds_path, "")
    assert env["wsgi.url_scheme"] == "http"
    assert server.stop() == 0
    assert not os.path.exists(uds_path)


def test_sigterm_removes_the_file_at_once_and_drains_what_is_in_flight(serve, uds_path):
    server = serve("wsgi_app:app", extra=["--uds", uds_path])
    with connect(uds_path) as sock:
        send_get(sock, "/sleep?1.5")
        time.sleep(0.3)  # the app is sleeping on the request
        server.proc.send_signal(signal.SIGTERM)
        # New clients are refused from the start of the stop (a proxy tries another
        # upstream), while the request in flight is still answered.
        deadline = time.monotonic() + 1.0
        while os.path.exists(uds_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not os.path.exists(uds_path), "the file outlived the start of the stop"
        assert server.proc.poll() is None
        status, headers, body, _ = read_response(sock)
        assert (status, body) == (200, b"slept")
    assert server.proc.wait(20) == 0


def test_asgi_over_uds_has_no_client_unless_a_trusted_proxy_names_it(serve, uds_path):
    serve("asgi_app:app", interface="asgi", extra=["--uds", uds_path, "--forwarded-allow-ips", "*"])
    status, body = get(uds_path, "/scope")
    scope = json.loads(body)
    assert status == 200
    assert (scope["client"], scope["server"], scope["scheme"]) == (None, [uds_path, None], "http")
    _, body = get(uds_path, "/scope", ["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https"])
    scope = json.loads(body)
    assert (scope["client"], scope["scheme"]) == (["1.2.3.4", 0], "https")


def test_a_live_socket_is_not_stolen(serve, uds_path):
    serve("wsgi_app:app", extra=["--uds", uds_path])
    second = Server("wsgi_app:app", extra=["--uds", uds_path])
    assert second.proc.wait(20) == 1
    second.wait_for("key `server.unix`.*listening", stderr=True)
    assert get(uds_path, "/hello") == (200, b"hello world")


def test_uds_permissions_sets_the_socket_file_mode(serve, uds_path):
    serve("wsgi_app:app", extra=["--uds", uds_path, "--uds-permissions", "640"])
    assert stat.S_IMODE(os.stat(uds_path).st_mode) == 0o640
    assert get(uds_path, "/hello") == (200, b"hello world")


@pytest.mark.parametrize("mode", ["1777", "9"])
def test_uds_permissions_out_of_range_is_refused(uds_path, mode):
    server = Server("wsgi_app:app", extra=["--uds", uds_path, "--uds-permissions", mode])
    assert server.proc.wait(20) == 2
    server.wait_for("--uds-permissions", stderr=True)
