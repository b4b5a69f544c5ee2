"""`wsgi.file_wrapper` and ASGI `http.response.pathsend` send a file the way the server
sends static files (`Response::with_file`, sendfile): byte-exact, with a Content-Length,
while the app's thread goes on to the next request."""

import hashlib
import os
import time

import pytest

from conftest import read_response, request, run_cli

APPS = [("wsgi", "wsgi_app:raw", "/sendfile"), ("asgi", "asgi_app:app", "/pathsend")]


@pytest.mark.parametrize("interface, app, path", APPS)
def test_file_is_sent_byte_exact_with_a_content_length(serve, tmp_path, interface, app, path):
    data = os.urandom(3 * 1024 * 1024 + 123)
    file = tmp_path / "data.bin"
    file.write_bytes(data)
    server = serve(app, interface=interface)
    status, headers, body = request(server, "GET", f"{path}?{file}")
    assert status == 200
    assert headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in headers
    assert body == data
    # HEAD: the length, no body.
    status, headers, body = request(server, "HEAD", f"{path}?{file}")
    assert (status, headers["content-length"], body) == (200, str(len(data)), b"")


def test_file_wrapper_starts_at_the_file_position_and_honours_content_length(serve, tmp_path):
    data = os.urandom(200_000)
    file = tmp_path / "data.bin"
    file.write_bytes(data)
    server = serve("wsgi_app:raw")
    status, headers, body = request(server, "GET", f"/sendfile?{file}&1000")
    assert (status, headers["content-length"], body) == (200, str(len(data) - 1000), data[1000:])
    status, headers, body = request(server, "GET", f"/sendfile?{file}&1000&500")
    assert (status, headers["content-length"], body) == (200, "500", data[1000:1500])


@pytest.mark.parametrize("interface, app, path", APPS)
def test_the_worker_serves_others_while_a_slow_client_takes_a_file(
        serve, tmp_path, interface, app, path):
    block = os.urandom(1024 * 1024)
    file = tmp_path / "big.bin"
    with open(file, "wb") as f:
        for _ in range(64):
            f.write(block)
    server = serve(app, interface=interface)
    with server.connect() as slow:
        slow.sendall(f"GET {path}?{file} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = slow.recv(1024)  # the head is out; the client reads no further yet
        assert buf
        time.sleep(0.2)
        # Sent through the app's thread, 64 MiB to a client that does not read would
        # hold that thread (one worker, one thread) and this request would wait.
        started = time.monotonic()
        with server.connect() as other:
            other.settimeout(5)
            other.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[0] == 200
        print(f"\n{interface}: /pid answered in {time.monotonic() - started:.3f} s"
              " while 64 MiB waited for a client")
        digest = hashlib.sha256()
        received = 0
        slow.settimeout(20)
        while b"\r\n\r\n" not in buf:
            piece = slow.recv(65536)
            assert piece, buf
            buf += piece
        received_body = buf.partition(b"\r\n\r\n")[2]
        digest.update(received_body)
        received = len(received_body)
        while received < 64 * 1024 * 1024:
            piece = slow.recv(1 << 20)
            assert piece, (received, buf[:300])
            digest.update(piece)
            received += len(piece)
    assert received == 64 * 1024 * 1024
    assert digest.hexdigest() == hashlib.sha256(block * 64).hexdigest()


def test_static_path_flags_serve_files_in_rust_beside_the_configs_routes(serve, tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "site.css").write_text("body{}")
    config = tmp_path / "haywire.toml"
    config.write_text('[[route]]\nhandler = "text"\npath = "/stock"\nbody = "from the config"\n')
    server = serve("wsgi_app:app", config=str(config),
                   extra=["--static-path-mount", str(assets), "--static-path-route", "/assets"])
    status, headers, body = request(server, "GET", "/assets/site.css")
    assert (status, body) == (200, b"body{}")
    assert headers["cache-control"] == "max-age=86400"  # Granian's default
    assert request(server, "GET", "/stock")[2] == b"from the config"  # the file's route kept
    assert request(server, "GET", "/hello")[2] == b"hello world"  # the app, as before
    missing = run_cli("--static-path-mount", str(tmp_path / "nowhere"), "wsgi_app:app")
    assert missing.returncode == 2 and "--static-path-mount" in missing.stderr, missing.stderr
    (assets / "docs").mkdir()
    (assets / "docs" / "main.html").write_text("docs")
    plain = serve("wsgi_app:app", extra=["--static-path-mount", str(assets),
                                         "--static-path-expires", "0",
                                         "--static-path-dir-to-file", "main.html"])
    status, headers, body = request(plain, "GET", "/static/site.css")
    assert (status, body, "cache-control" in headers) == (200, b"body{}", False)
    assert request(plain, "GET", "/static/docs/")[:3:2] == (200, b"docs")
    bad = run_cli("--static-path-mount", str(assets), "--static-path-dir-to-file", "../x",
                  "wsgi_app:app")
    assert bad.returncode == 2, bad.stderr
    assert '--static-path-dir-to-file: "../x" is not a file name' in bad.stderr, bad.stderr
    route = run_cli("--static-path-mount", str(assets), "--static-path-route", "x", "wsgi_app:app")
    assert route.returncode == 2 and "--static-path-route: must start" in route.stderr
