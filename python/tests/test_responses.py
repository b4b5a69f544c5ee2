"""What reaches the wire from an app's response: header bytes unchanged, framing
headers the server's own, informational statuses refused."""

import re
import time

import pytest

from conftest import read_response


def raw_response(server, path):
    with server.connect() as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_response(sock)


@pytest.mark.parametrize("interface, app", [("wsgi", "wsgi_app:raw"), ("asgi", "asgi_app:app")])
def test_header_bytes_pass_through_and_framing_is_the_servers(serve, interface, app):
    server = serve(app, interface=interface)
    status, headers, body, head = raw_response(server, "/latin1")
    assert (status, body) == (200, b"ok")
    assert b"\r\nx-name: caf\xe9\r\n" in head.lower() + b"\r\n"  # Latin-1 in, same bytes out
    assert headers["content-length"] == "2"
    assert "transfer-encoding" not in headers
    # The app's Server header replaces the server's: one, the app's.
    assert head.lower().count(b"\r\nserver:") == 1 and headers["server"] == "my-app", head


@pytest.mark.parametrize("flag, expected", [(["--server-header", "edge/1 (test)"], "edge/1 (test)"),
                                            (["--no-server-header"], None), ([], "haywire")])
def test_server_header_flags(serve, flag, expected):
    server = serve("wsgi_app:app", extra=flag)
    status, headers, _, _ = raw_response(server, "/hello")
    assert (status, headers.get("server")) == (200, expected)


def test_a_bad_server_header_is_refused_naming_the_key():
    from conftest import Server

    server = Server("wsgi_app:app", extra=["--server-header", "a\tb"])
    assert server.proc.wait(20) == 2
    server.wait_for("server.server_header", stderr=True)


@pytest.mark.parametrize("interface, app", [("wsgi", "wsgi_app:app"), ("asgi", "asgi_app:app")])
def test_informational_status_from_the_app_is_a_500(serve, interface, app):
    server = serve(app, interface=interface)
    status, _, _, _ = raw_response(server, "/informational")
    assert status == 500
    assert raw_response(server, "/pid")[0] == 200  # the worker lives on
    # stderr is read by a thread: give it a moment to see the logged reason.
    deadline = time.monotonic() + 10
    while not any("is informational (1xx)" in line for line in server.errors):
        assert time.monotonic() < deadline, server.errors
        time.sleep(0.05)


def test_header_flags_reach_every_response_the_app_does_not_answer_itself(serve):
    server = serve("wsgi_app:raw", extra=["--header", "X-Frame-Options: DENY",
                                          "--header", "X-Name:default",
                                          "--header", "server: edge/3"])
    status, headers, _, head = raw_response(server, "/latin1")
    # The app set X-Name (and its own Server): its values, once each.
    assert headers["x-frame-options"] == "DENY"
    assert head.lower().count(b"\r\nx-name:") == 1 and b"caf\xe9" in head
    assert headers["server"] == "my-app"
    status, headers, _, _ = raw_response(server, "/hello")
    assert (headers["x-frame-options"], headers["x-name"], headers["server"]) == (
        "DENY", "default", "edge/3")


@pytest.mark.parametrize("flag, named", [("Date: x", "server.headers.Date"),
                                         ("X-Bad: a\tb", "server.headers.X-Bad"),
                                         ("no colon", "--header")])
def test_a_bad_header_flag_is_refused_naming_it(flag, named):
    from conftest import Server

    server = Server("wsgi_app:app", extra=["--header", flag])
    assert server.proc.wait(20) == 2
    server.wait_for(re.escape(named), stderr=True)
