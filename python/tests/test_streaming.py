"""Streamed responses: pieces reach the client as the app produces them, with
backpressure (an endless body holds the worker's memory steady), and a body cut short
by an exception is not completed."""

from pathlib import Path

import pytest

from conftest import read_response, read_until_closed

APPS = [("wsgi", "wsgi_app:app"), ("asgi", "asgi_app:app")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def worker_pid(server) -> int:
    return int(next(line.split("pid ")[1].split(",")[0] for line in server.lines if "ready" in line))


@pytest.mark.parametrize("interface, app", APPS)
def test_first_piece_arrives_before_the_body_ends(serve, tmp_path, interface, app):
    server = serve(app, interface=interface, extra=[])
    marker = tmp_path / "go"
    with server.connect() as sock:
        sock.sendall(f"GET /gen?{marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"first;" not in head:  # the app is still waiting for the marker
            data = sock.recv(65536)
            assert data, head
            head += data
        assert b"second" not in head
        assert b"transfer-encoding: chunked" in head.lower()
        marker.write_text("go")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data
            rest += data
        assert b"second" in rest


@pytest.mark.parametrize("interface, app", APPS)
def test_endless_stream_holds_steady_memory(serve, interface, app):
    server = serve(app, interface=interface)
    pid = worker_pid(server)
    with server.connect() as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        baseline = None
        while received < 256 * 1024 * 1024:
            data = sock.recv(1 << 20)
            assert data
            received += len(data)
            if baseline is None and received > 16 * 1024 * 1024:
                baseline = rss_kib(pid)
        grown = rss_kib(pid) - baseline
    # 240 MiB went through; the worker holds at most a window of it.
    assert grown < 16 * 1024, f"worker RSS grew {grown} KiB"
    # The client left: the app is told (ClientDisconnected) and the worker serves on.
    with server.connect() as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_asgi_send_awaits_room_without_an_executor_thread(serve):
    server = serve("asgi_app:app", interface="asgi")
    with server.connect() as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        # The app produces faster than the connection sends: the window is full
        # again and again, and send() awaits room each time.
        while received < 32 * 1024 * 1024:
            data = sock.recv(1 << 16)
            assert data
            received += len(data)
    with server.connect() as sock:
        sock.sendall(b"GET /threads HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, names, _ = read_response(sock)
    assert status == 200
    # The room doorbell wakes the loop itself: the default executor never started.
    assert not [n for n in names.decode().split() if n.startswith("asyncio_")], names


def test_exception_mid_stream_cuts_the_body_short(serve):
    server = serve("wsgi_app:app")
    data = read_until_closed(server, b"GET /gen_fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # never completed: the client sees an error
    with server.connect() as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
