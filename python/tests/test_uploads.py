"""Request bodies reach the app as they arrive: `wsgi.input` and ASGI `receive()` read
an upload while it is sent, the server reads from the client only while the app keeps
up (a 64 MiB upload leaves the worker's memory about where it was), `--max-body-size`
is the only limit, and an app is told when the client leaves mid-body."""

import hashlib
import json
import os
import socket
import time

import pytest

from conftest import read_response, request, wait_file
from test_streaming import rss_kib, worker_pid

APPS = [("wsgi", "wsgi_app:app"), ("asgi", "asgi_app:app")]
MIB = 1024 * 1024


@pytest.mark.parametrize("interface, app", APPS)
def test_64_mib_upload_is_hashed_as_it_arrives_in_bounded_memory(serve, interface, app):
    server = serve(app, interface=interface, extra=["--max-body-size", str(128 * MIB)])
    pid = worker_pid(server)
    block = os.urandom(MIB)
    total = 64 * MIB
    digest = hashlib.sha256()
    with server.connect() as sock:
        sock.sendall(f"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode())
        baseline = rss_kib(pid)
        peak = baseline
        for i in range(total // MIB):
            piece = block[i:] + block[:i]  # every MiB differs: the hash checks order
            digest.update(piece)
            sock.sendall(piece)
            peak = max(peak, rss_kib(pid))
        status, _, body, _ = read_response(sock)
    assert status == 200
    assert body == f"{total} {digest.hexdigest()}".encode()
    grown = peak - baseline
    print(f"\n{interface}: 64 MiB upload, worker RSS {baseline} KiB -> peak {peak} KiB"
          f" (+{grown} KiB)")
    # Gathered whole, the body alone would add 64 MiB.
    assert grown < 16 * 1024, f"worker RSS grew {grown} KiB during a 64 MiB upload"


@pytest.mark.parametrize("interface, app", APPS)
def test_chunked_upload_is_read_as_it_arrives(serve, tmp_path, interface, app):
    server = serve(app, interface=interface)
    with server.connect() as sock:
        sock.sendall(b"POST /hash?7 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n")
        # The app has the first piece before the rest is sent: nothing answers yet.
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        sock.settimeout(10)
        sock.sendall(b"6\r\n world\r\n0\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert (status, body) == (200, f"11 {hashlib.sha256(b'hello world').hexdigest()}".encode())
    if interface == "asgi":
        assert int(headers["x-events"]) >= 2


def test_wsgi_input_reads_lines_and_iterates(serve):
    server = serve("wsgi_app:app")
    lines = b"".join(f"line {i}\n".encode() for i in range(5000))
    with server.connect() as sock:
        sock.sendall(b"POST /lines HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(lines), 7000):  # pieces that split lines
            piece = lines[start:start + 7000]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200
    assert json.loads(body) == {"first": "line 0\n", "rest": 4999, "last": "line 4999\n"}


@pytest.mark.parametrize("interface, app, told", [
    ("wsgi", "wsgi_app:app", "ClientDisconnected"),
    ("asgi", "asgi_app:app", "http.disconnect"),
])
def test_app_is_told_when_the_client_leaves_mid_upload(serve, tmp_path, interface, app, told):
    server = serve(app, interface=interface)
    marker = tmp_path / "gone"
    with server.connect() as sock:
        sock.sendall(f"POST /upload_gone?{marker} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {MIB}\r\n\r\n".encode() + b"x" * 100_000)
        time.sleep(0.2)
    assert wait_file(marker) == told
    assert request(server, "GET", "/pid")[0] == 200


@pytest.mark.parametrize("interface, app", APPS)
def test_max_body_size_bounds_streamed_uploads(serve, interface, app):
    server = serve(app, interface=interface, extra=["--max-body-size", str(MIB)])
    # Announced too large: refused before the app sees it.
    status, headers, _ = request(server, "POST", "/hash", b"x" * (MIB + 1))
    assert status == 413 and headers.get("connection") == "close"
    # Chunked: refused once it passes the limit (the app's read fails).
    with server.connect() as sock:
        sock.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"y" * 65536
        try:
            for _ in range(2 * MIB // len(piece)):
                sock.sendall(b"10000\r\n" + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we sent
        status, _, _, _ = read_response(sock)
    assert status == 413
    # At the limit exactly: accepted.
    status, _, body = request(server, "POST", "/hash", b"z" * MIB)
    assert (status, body) == (200, f"{MIB} {hashlib.sha256(b'z' * MIB).hexdigest()}".encode())


@pytest.mark.parametrize("interface, app", APPS)
def test_a_chunked_body_that_came_whole_is_held_to_max_body_size(serve, interface, app):
    """Its length is known only once it is taken whole: checked then."""
    server = serve(app, interface=interface, extra=["--max-body-size", "100"])

    def post(n: int) -> bytes:
        return (b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n0\r\n\r\n" % (n, b"c" * n))

    with server.connect() as sock:
        sock.sendall(post(100))
        status, _, body, _ = read_response(sock)
        assert (status, body) == (200, f"100 {hashlib.sha256(b'c' * 100).hexdigest()}".encode())
        sock.sendall(post(101))
        status, headers, _, _ = read_response(sock)
        assert status == 413 and headers.get("connection") == "close"


def test_asgi_receive_awaits_body_without_an_executor_thread(serve):
    server = serve("asgi_app:app", interface="asgi")
    with server.connect() as sock:
        sock.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        # Nothing has arrived when the app first calls receive(), nor between pieces:
        # it awaits bytes again and again.
        for _ in range(5):
            time.sleep(0.05)
            sock.sendall(b"5\r\nhello\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, _, body, _ = read_response(sock)
        assert (status, body) == (200, f"25 {hashlib.sha256(b'hello' * 5).hexdigest()}".encode())
        sock.sendall(b"GET /threads HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, names, _ = read_response(sock)
    assert status == 200
    # The ready doorbell wakes the loop itself: the default executor never started.
    assert not [n for n in names.decode().split() if n.startswith("asyncio_")], names


def test_many_slow_asgi_uploads_leave_the_default_executor_free(serve):
    server = serve("asgi_app:app", interface="asgi")
    # More uploads than the default executor has threads (min(32, cpus + 4)), each
    # stalled after its first piece: were each receive() waiting in an executor thread,
    # the app's own run_in_executor would queue behind them until they go on.
    clients = 40
    socks = []
    try:
        for _ in range(clients):
            sock = server.connect()
            socks.append(sock)
            sock.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"\r\n3\r\nabc\r\n")
        time.sleep(0.3)  # every app has taken its first piece and awaits the next
        with server.connect() as probe:
            probe.settimeout(10)
            probe.sendall(b"GET /executor HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                status, _, _, _ = read_response(probe)
            except socket.timeout:
                pytest.fail("a request using run_in_executor waited behind the uploads")
        assert status == 200
        # The uploads go on, slowly, and all complete.
        for _ in range(3):
            for sock in socks:
                sock.sendall(b"3\r\ndef\r\n")
            time.sleep(0.05)
        digest = hashlib.sha256(b"abc" + b"def" * 3).hexdigest()
        for sock in socks:
            sock.settimeout(10)
            sock.sendall(b"0\r\n\r\n")
            status, _, body, _ = read_response(sock)
            assert (status, body) == (200, f"12 {digest}".encode())
    finally:
        for sock in socks:
            sock.close()


def test_a_small_body_sent_with_its_head_comes_whole_with_the_request(serve):
    """A body that arrived with its head (at most 64 KiB, under Content-Length or
    chunked) is complete when the request is handed over: it goes with it as bytes, not through the
    body pipe. A body sent after its head still streams."""
    wsgi = serve("wsgi_app:app")
    asgi = serve("asgi_app:app", interface="asgi")
    body = b"b" * 1024
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n"
    chunked = b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for server, path, whole, streamed in [
        (wsgi, b"/input-kind", b"BytesIO 1024", b"BufferedReader 1024"),
        # The first receive() returns it without the loop running anything else (the
        # worker is pinned to one CPU, as the benchmarks run it: through the pipe, the
        # app asked before the shard had put the body there and awaited it).
        (asgi, b"/first-event", b"waited=False 1024 more=False",
         b"waited=True 1024 more=False"),
    ]:
        with server.connect() as sock:
            for _ in range(3):
                sock.sendall(head % path + body)
                assert read_response(sock)[:3:2] == (200, whole)
            # Chunked, all of it with the head: whole as well.
            sock.sendall(chunked % path + b"18\r\n" + body[:24] + b"\r\n3e8\r\n"
                         + body[24:] + b"\r\n0\r\n\r\n")
            assert read_response(sock)[:3:2] == (200, whole)
            sock.sendall(head % path)
            time.sleep(0.2)  # the app has the request before the body
            sock.sendall(body)
            assert read_response(sock)[:3:2] == (200, streamed)
