"""WSGI over real sockets; the app runs under wsgiref.validate with warnings as errors."""

import json
import os
import time

import haywire

from conftest import read_response, read_until_closed, request, wait_file


def test_hello_and_headers(serve):
    server = serve("wsgi_app:raw")  # a list: one body with a Content-Length
    status, headers, body = request(server, "GET", "/hello")
    assert (status, body) == (200, b"hello world")
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "11"
    server = serve("wsgi_app:app")  # the validator's iterator: streamed
    status, headers, body = request(server, "GET", "/hello")
    assert (status, body, headers["transfer-encoding"]) == (200, b"hello world", "chunked")
    status, headers, body = request(server, "GET", "/status")
    assert (status, body, headers["x-custom"]) == (201, b"created", "yes")


def test_environ_follows_pep_3333(serve):
    server = serve("wsgi_app:app", workers=2)
    status, _, body = request(
        server, "POST", "/environ?a=1&b=%20", b"xyz",
        {"Content-Type": "text/x-test", "X-Forwarded-For": "a", "X_Forwarded_For": "spoof"},
    )
    assert status == 200
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_SOFTWARE"] == f"haywire/{haywire.__version__}"
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.multithread"] is False
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"] == "localhost"
    assert env["HTTP_X_FORWARDED_FOR"] == "a"  # the underscore twin is dropped


def test_environ_header_keys_values_and_repeats(serve):
    # Common names (interned keys), uncommon ones, repeats joined with `,`, and Latin-1
    # values: the environ is built in Rust with fast paths for ASCII and common names.
    server = serve("wsgi_app:app")
    with server.connect() as sock:
        sock.sendall(b"GET /environ HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n"
                     b"X-Odd-Name: 1\r\nx-odd-name: 2\r\nAccept: a\r\nAccept: b\r\n"
                     b"X-Latin: caf\xe9\r\nSec-Fetch-Mode: navigate\r\n"
                     b"X-Three: 1\r\nX-THREE: caf\xe9\r\nx-three: 3\r\n"
                     b"Content-Type: text/a\r\nContent-Type: text/b\r\n"
                     b"Connection: close\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200
    env = json.loads(body)
    assert (env["HTTP_HOST"], env["HTTP_USER_AGENT"]) == ("h", "ua")
    assert env["HTTP_X_ODD_NAME"] == "1,2"
    assert env["HTTP_ACCEPT"] == "a,b"
    assert env["HTTP_X_LATIN"] == "caf\u00e9"
    assert env["HTTP_CONNECTION"] == "close"
    assert env["HTTP_SEC_FETCH_MODE"] == "navigate"
    assert env["HTTP_X_THREE"] == "1,caf\u00e9,3"  # in the order sent, any case
    assert env["CONTENT_TYPE"] == "text/b"  # a repeated Content-Type: the last
    assert env["REMOTE_ADDR"] == "127.0.0.1" and int(env["REMOTE_PORT"]) > 0


def test_environ_joins_the_most_repeats_a_head_holds(serve):
    # Every header of a full head repeated (64, the most a request may carry), each
    # value once, in order; the unrepeated names beside them stay as sent.
    server = serve("wsgi_app:app")
    values = [f"{i:02d}" + "v" * 100 for i in range(62)]
    head = "".join(f"X-Many: {v}\r\n" for v in values)
    with server.connect() as sock:
        sock.sendall(f"GET /environ HTTP/1.1\r\nHost: h\r\n{head}Connection: close\r\n\r\n".encode())
        status, _, body, _ = read_response(sock)
    assert status == 200
    env = json.loads(body)
    assert env["HTTP_X_MANY"] == ",".join(values)
    assert (env["HTTP_HOST"], env["HTTP_CONNECTION"]) == ("h", "close")


def test_path_info_is_decoded_latin1(serve):
    server = serve("wsgi_app:app")
    status, _, body = request(server, "GET", "/environ%C3%A9")
    # Not /environ: 404 from the app, but decoded first.
    assert status == 404


def test_single_worker_is_not_multiprocess(serve):
    server = serve("wsgi_app:app")
    env = json.loads(request(server, "GET", "/environ")[2])
    assert env["wsgi.multiprocess"] is False


def test_input_never_reads_past_body(serve):
    server = serve("wsgi_app:app")
    status, headers, body = request(server, "POST", "/echo", b"0123456789" * 100)
    assert (status, body) == (200, b"0123456789" * 100)
    assert headers["x-extra"] == "0"


def test_chunked_upload(serve):
    server = serve("wsgi_app:app")
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert (status, body) == (200, b"hello world")


def test_large_body(serve):
    server = serve("wsgi_app:app")
    payload = os.urandom(900 * 1024)
    status, _, body = request(server, "POST", "/echo", payload)
    assert status == 200 and body == payload


def test_head_has_length_but_no_body(serve):
    server = serve("wsgi_app:raw")
    with server.connect() as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, _ = read_response(sock, head_only=True)
        assert (status, headers["content-length"], body) == (200, "11", b"")
        status, _, body, _ = read_response(sock)
        assert body == b"hello world"


def test_keep_alive_and_pipelining(serve):
    server = serve("wsgi_app:app")
    with server.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2] == b"hello world"
        batch = b"".join(
            f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{i:02d}".encode()
            for i in range(20)
        )
        sock.sendall(batch)
        bodies = [read_response(sock)[2] for _ in range(20)]
    assert bodies == [f"{i:02d}".encode() for i in range(20)]


def test_iterable_streamed_and_closed(serve, tmp_path):
    server = serve("wsgi_app:app", extra=[])
    marker = f"closed-{os.getpid()}-{id(tmp_path)}"
    status, headers, body = request(server, "GET", f"/chunks?{marker}")
    assert (status, body, headers["transfer-encoding"]) == (200, b"abcdef", "chunked")
    path = os.path.join("/tmp", marker)
    assert wait_file(path) == "closed"
    os.unlink(path)


def test_iterable_over_a_list_sent_whole_and_closed(serve, tmp_path):
    # An object whose __iter__ walks a list (Django's HttpResponse) is sent whole with a
    # Content-Length the app did not set, not chunked; its close() still runs. A
    # generator is still streamed.
    server = serve("wsgi_app:raw")
    marker = f"closed-{os.getpid()}-{id(tmp_path)}"
    status, headers, body = request(server, "GET", f"/chunks?{marker}")
    assert (status, body, headers.get("content-length")) == (200, b"abcdef", "6")
    assert "transfer-encoding" not in headers
    path = os.path.join("/tmp", marker)
    assert wait_file(path) == "closed"
    os.unlink(path)
    with open(path, "w"):
        pass  # lets /gen finish at once
    try:
        status, headers, body = request(server, "GET", f"/gen?{marker}")
    finally:
        os.unlink(path)
    assert (status, body, headers["transfer-encoding"]) == (200, b"first;second", "chunked")


def test_write_callable(serve):
    server = serve("wsgi_app:app")
    assert request(server, "GET", "/write")[2] == b"written-returned"


def test_exc_info_replaces_unsent_headers(serve):
    server = serve("wsgi_app:app")
    status, _, body = request(server, "GET", "/exc_info")
    assert (status, body) == (503, b"recovered")


def test_start_response_misuse_is_500_and_logged(serve):
    # PEP 3333's rules: a second start_response needs exc_info; write() needs a
    # start_response first; the status is a native string.
    server = serve("wsgi_app:raw")
    for path in ("/twice", "/write-early", "/bytes-status"):
        assert request(server, "GET", path)[:3:2] == (500, b"internal server error\n"), path
    for error in ("called twice without exc_info", r"write\(\) before start_response\(\)",
                  "invalid WSGI status b'200 OK'"):
        server.wait_for(error, stderr=True)


def test_exc_info_after_bytes_went_out_is_raised_and_cuts_the_body(serve):
    server = serve("wsgi_app:raw")
    data = read_until_closed(server, b"GET /exc-after-send HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # never completed: the client sees an error
    server.wait_for("ValueError: too late", stderr=True)


def test_content_length_honoured(serve):
    server = serve("wsgi_app:app")
    status, headers, body = request(server, "GET", "/length")
    assert (status, headers["content-length"], body) == (200, "5", b"01234")


def test_whole_list_or_tuple_bodies(serve):
    # The fast path for a list or tuple (joined in Rust): pieces of any buffer type, the
    # app's Content-Length cutting a longer body, a shorter one sent with its real
    # length, an empty body, no start_response and a str piece answered 500.
    server = serve("wsgi_app:raw")
    status, headers, body = request(server, "GET", "/whole")
    assert (status, headers["content-length"], body) == (200, "6", b"abcdef")
    status, headers, body = request(server, "GET", "/whole?3")
    assert (status, headers["content-length"], body) == (200, "3", b"abc")
    status, headers, body = request(server, "GET", "/whole?9")
    assert (status, headers["content-length"], body) == (200, "6", b"abcdef")
    status, headers, body = request(server, "GET", "/none")
    assert (status, body) == (204, b"")
    assert request(server, "GET", "/unstarted")[0] == 500
    assert request(server, "GET", "/str-body")[0] == 500
    assert request(server, "GET", "/whole")[2] == b"abcdef"  # the worker lives on
    deadline = time.monotonic() + 10
    wanted = ("sent 6 of 9 bytes", "without start_response", "TypeError")
    while not all(any(w in line for line in server.errors) for w in wanted):
        assert time.monotonic() < deadline, server.errors
        time.sleep(0.05)


def test_status_lines_checked_every_time(serve):
    # A valid status line gives its code, an invalid one is refused, each time.
    server = serve("wsgi_app:raw")
    for _ in range(3):
        assert request(server, "GET", "/teapot")[:3:2] == (418, b"short and stout")
        assert request(server, "GET", "/bad-status")[0] == 500


def test_input_of_a_request_without_a_body(serve):
    # One shared stateless input for bodiless requests: it reads empty every way, and
    # an app closing it does not break the next request's.
    server = serve("wsgi_app:raw")
    for _ in range(2):
        assert request(server, "GET", "/input")[2] == b"[b'', b'', b'', []]"
    assert request(server, "POST", "/echo", b"abc")[2] == b"abc"


def test_the_heap_built_at_start_is_frozen(serve):
    # What the app built before serving is out of the collector's reach: a full
    # collection no longer walks it with the Python thread stopped (milliseconds each).
    server = serve("wsgi_app:raw")
    status, _, body = request(server, "GET", "/gc-frozen")
    assert status == 200 and int(body) > 1000


def test_exception_is_500_and_worker_lives(serve):
    server = serve("wsgi_app:app")
    pid = request(server, "GET", "/pid")[2]
    status, _, body = request(server, "GET", "/error")
    assert status == 500
    assert request(server, "GET", "/pid")[2] == pid
    server.stop()
    assert any("RuntimeError: boom" in line for line in server.errors)


def test_file_wrapper(serve):
    server = serve("wsgi_app:app")
    status, _, body = request(server, "GET", "/file")
    assert status == 200
    assert body == open(__file__.replace("test_wsgi.py", "apps/wsgi_app.py"), "rb").read()


def test_http10_request(serve):
    server = serve("wsgi_app:app")
    with server.connect() as sock:
        sock.sendall(b"GET /environ HTTP/1.0\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200 and json.loads(body)["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_max_body_size(serve):
    server = serve("wsgi_app:app", extra=["--max-body-size", "1000"])
    assert request(server, "POST", "/echo", b"x" * 1000)[2] == b"x" * 1000
    assert request(server, "POST", "/echo", b"x" * 1001)[0] == 413
    # Without --config the default takes uploads well past the core's 1 MiB.
    server = serve("wsgi_app:app")
    payload = os.urandom(3 * 1024 * 1024)
    assert request(server, "POST", "/echo", payload)[2] == payload


def test_threads_run_requests_at_once(serve):
    server = serve("wsgi_app:app", extra=["--threads", "2"])
    socks = [server.connect() for _ in range(2)]
    for sock in socks:
        sock.sendall(b"GET /barrier HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = [read_response(sock) for sock in socks]
    for sock in socks:
        sock.close()
    assert [(a[0], a[2]) for a in answers] == [(200, b"together")] * 2
