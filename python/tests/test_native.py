"""The native API: routes in Rust's router, handlers in Python."""

import json

import pytest

from conftest import read_response, request
from haywire import Response


def test_routes_params_and_return_types(serve):
    server = serve("native_app:app", interface="native")
    status, headers, body = request(server, "GET", "/hello")
    assert (status, body) == (200, b"hello world")
    assert headers["content-type"].startswith("text/plain")
    status, headers, body = request(server, "GET", "/users/42?x=1")
    assert status == 200 and json.loads(body) == {"id": "42", "query": "x=1"}
    assert headers["content-type"] == "application/json"
    status, headers, body = request(server, "GET", "/bytes")
    assert (body, headers["content-type"]) == (b"\x00\x01", "application/octet-stream")


def test_request_headers_lower_case_names_repeats_joined(serve):
    # Repeats in the order sent, whatever their case; Latin-1 values; `header` gives the
    # first. Many repeats (the head's 64 headers) are joined in one pass, each value once.
    server = serve("native_app:app", interface="native")
    many = "".join(f"X-Many: {i}\r\n" for i in range(60))
    with server.connect() as sock:
        sock.sendall(b"GET /headers HTTP/1.1\r\nHost: h\r\nAccept: a\r\nACCEPT: caf\xe9\r\n"
                     + many.encode() + b"Connection: close\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200
    got = json.loads(body)
    assert got["headers"] == {"host": "h", "accept": "a, caf\u00e9", "connection": "close",
                              "x-many": ", ".join(str(i) for i in range(60))}
    assert got["first"] == "0"


def test_response_object_and_body(serve):
    server = serve("native_app:app", interface="native")
    status, headers, body = request(server, "POST", "/echo", b"abc", {"Content-Type": "text/x"})
    assert (status, body, headers["x-len"], headers["content-type"]) == (201, b"abc", "3", "text/x")
    status, _, body = request(server, "POST", "/json", b'{"a": [1, 2]}', {"Content-Type": "application/json"})
    assert json.loads(body) == {"got": {"a": [1, 2]}, "ct": "application/json"}


def test_response_converts_each_body_and_header_form():
    body = b"hi"
    plain = Response(body, content_type="text/plain")
    assert (plain.status, plain.headers, plain.body) == (200, [("Content-Type", "text/plain")], body)
    assert plain.body is body  # bytes are kept, not copied
    text = Response("é", 201, {"X-A": "1"})
    assert (text.status, text.body) == (201, "é".encode())
    assert text.headers == [("X-A", "1"), ("Content-Type", "text/plain; charset=utf-8")]
    data = Response({"a": [1, 2]})
    assert (data.body, data.headers) == (b'{"a":[1,2]}', [("Content-Type", "application/json")])
    assert (Response(None).body, Response(None).headers) == (b"", [])
    assert Response(bytearray(b"ab")).body == b"ab" and Response(memoryview(b"cd")).body == b"cd"
    assert type(Response(bytearray(b"ab")).body) is bytes
    # The app's own Content-Type, in any case, wins over the one implied.
    own = Response("x", headers=[("content-TYPE", "text/x")], content_type="text/y")
    assert own.headers == [("content-TYPE", "text/x")]
    assert Response.json([1], 202).body == b"[1]"
    # As json.dumps with compact separators writes it (one shared encoder): ASCII only.
    assert Response.json({"é": [1.5, None, True]}).body == b'{"\\u00e9":[1.5,null,true]}'
    with pytest.raises(TypeError, match="unsupported body type int"):
        Response(3)


def test_async_handlers_interleave(serve):
    server = serve("native_app:app", interface="native")
    with server.connect() as sock:
        sock.sendall(b"".join(f"GET /async/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(20)))
        bodies = [json.loads(read_response(sock)[2]) for _ in range(20)]
    assert bodies == [{"n": i} for i in range(20)]


def test_unrouted_is_404_and_wrong_method_405_from_rust(serve):
    server = serve("native_app:app", interface="native")
    assert request(server, "GET", "/nothing")[0] == 404
    assert request(server, "DELETE", "/hello")[0] == 405


def test_exception_is_500_and_worker_lives(serve):
    server = serve("native_app:app", interface="native")
    pid = request(server, "GET", "/pid")[2]
    assert request(server, "GET", "/error")[0] == 500
    assert request(server, "GET", "/pid")[2] == pid


def test_sync_only_app(serve):
    server = serve("native_sync:app", interface="native")
    assert request(server, "GET", "/hello")[2] == b"hello world"
    assert json.loads(request(server, "GET", "/items/1/two")[2]) == {"a": "1", "b": "two"}
    assert request(server, "GET", "/error")[0] == 500
    assert request(server, "HEAD", "/hello")[:2][0] == 200
