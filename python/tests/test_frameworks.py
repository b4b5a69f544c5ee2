"""Flask and FastAPI from PyPI, run unchanged (examples/python)."""

import json

import pytest

from conftest import EXAMPLES, request


def test_flask(serve):
    pytest.importorskip("flask")
    server = serve("flask_app:app", interface="wsgi", cwd=EXAMPLES)
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
    server = serve("fastapi_app:app", interface="asgi", cwd=EXAMPLES)
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
