"""Flask and FastAPI from PyPI, run unchanged (examples/python)."""

import json

import pytest

from conftest import EXAMPLES, request


def test_flask(serve):
    pytest.importorskip("flask")
    # No --interface: told from the app, as a uvicorn user runs it.
    server = serve("flask_app:app", interface="auto", cwd=EXAMPLES)
    server.wait_for("flask_app:app is a WSGI app", stderr=True)
    assert request(server, "GET", "/")[2] == b"hello from flask"
    assert json.loads(request(server, "GET", "/json")[2]) == {"message": "Hello, World!"}
    assert json.loads(request(server, "GET", "/users/7?q=a")[2]) == {"id": 7, "q": "a"}
    status, _, body = request(server, "POST", "/upload", b"x" * 5000, {"Content-Type": "application/x-test"})
    assert json.loads(body) == {"size": 5000, "type": "application/x-test"}
    assert request(server, "GET", "/missing")[0] == 404
    assert request(server, "GET", "/boom")[0] == 500
    assert request(server, "HEAD", "/")[0] == 200


def test_fastapi(serve):
    pytest.importorskip("fastapi")
    # No --interface: told from the app, as a uvicorn user runs it.
    server = serve("fastapi_app:app", interface="auto", cwd=EXAMPLES)
    server.wait_for("fastapi_app:app is an ASGI 3 app", stderr=True)
    assert request(server, "GET", "/")[2] == b"hello from fastapi"
    assert json.loads(request(server, "GET", "/json")[2]) == {"message": "Hello, World!"}
    assert json.loads(request(server, "GET", "/users/7?q=a")[2]) == {"id": 7, "q": "a", "started": True}
    status, _, body = request(server, "POST", "/upload", b"x" * 200_000, {"Content-Type": "application/x-test"})
    assert json.loads(body) == {"size": 200_000, "type": "application/x-test"}
    assert json.loads(request(server, "GET", "/sync")[2]) == {"sync": True}
    status, headers, body = request(server, "GET", "/stream")
    assert (status, body, headers["transfer-encoding"]) == (200, b"part0;part1;part2;", "chunked")
    assert request(server, "GET", "/users/notanint")[0] == 422
    assert request(server, "GET", "/missing")[0] == 404


def test_django(serve, tmp_path):
    pytest.importorskip("django")
    # No --interface: told from the app, as a uvicorn user runs it.
    server = serve("django_app:application", interface="auto", cwd=EXAMPLES)
    server.wait_for("django_app:application is a WSGI app", stderr=True)
    hello = json.loads(request(server, "GET", "/json")[2])
    assert hello == {"message": "Hello, World!", "remote_addr": "127.0.0.1", "secure": False}
    status, _, body = request(server, "POST", "/form", b"name=h%C3%A9&tag=a&tag=b",
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(body) == {"name": "h\u00e9", "tags": ["a", "b"]}
    payload = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # 2 MiB
    boundary = "haywireboundary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\";"
                 f" filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    status, _, body = request(server, "POST", "/upload", multipart,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, body
    assert json.loads(body) == {"name": "big.bin", "size": len(payload), "sum": sum(payload) % 65521}
    status, headers, body = request(server, "GET", "/stream")
    assert (status, body, headers["transfer-encoding"]) == (200, b"part0;part1;part2;", "chunked")


def test_django_is_secure_under_tls(serve, tmp_path):
    pytest.importorskip("django")
    import socket
    import ssl
    import subprocess

    from conftest import read_response

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = serve("django_app:application", interface="wsgi", cwd=EXAMPLES,
                   extra=["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                             server_hostname="localhost") as sock:
        sock.sendall(b"GET /json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200
    assert json.loads(body) == {"message": "Hello, World!", "remote_addr": "127.0.0.1", "secure": True}


def test_fastapi_streaming_response_arrives_as_produced(serve, tmp_path):
    pytest.importorskip("fastapi")
    server = serve("fastapi_app:app", interface="asgi", cwd=EXAMPLES)
    marker = tmp_path / "go"
    with server.connect() as sock:
        sock.sendall(f"GET /events?until={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while b"data: first" not in got:  # the generator is still waiting
            data = sock.recv(65536)
            assert data, got
            got += data
        assert b"data: last" not in got
        marker.write_text("go")
        while not got.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data
            got += data
    assert b"data: last" in got
