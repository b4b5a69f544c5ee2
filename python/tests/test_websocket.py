"""ASGI WebSocket (FastAPI) over real sockets, with the `websockets` package as the
client: echo, subprotocols, close codes both ways, refusal, size limits, backpressure."""

import json
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import APPS, request
from test_context import certificate  # noqa: F401 (a fixture)

APP = "ws_app:app"


def url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def seen(server) -> dict:
    status, _, body = request(server, "GET", "/seen")
    assert status == 200
    return json.loads(body)


def wait_seen(server, check, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = seen(server)
        if check(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_echo_text_and_binary_with_a_subprotocol_and_headers(serve):
    server = serve(APP, interface="asgi")
    with connect(url(server, "/echo"), subprotocols=["x", "chat"], open_timeout=10) as ws:
        assert ws.subprotocol == "chat"
        # The client's permessage-deflate offer is taken: messages go both ways compressed.
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        assert ws.response.headers["x-hello"] == "1"
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(b"\x00\xff" * 40000)
        assert ws.recv(timeout=10) == b"\x00\xff" * 40000
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        assert ws.subprotocol is None, "not offered: not announced"
        ws.send("")
        assert ws.recv(timeout=10) == ""


def test_scope(serve):
    server = serve(APP, interface="asgi")
    with connect(url(server, "/scope?a=%20b"), subprotocols=["p1", "p2"],
                 additional_headers={"X-Test": "1"}, open_timeout=10) as ws:
        scope = json.loads(ws.recv(timeout=10))
        assert ws.subprotocol is None
    assert scope["type"] == "websocket"
    assert (scope["path"], scope["query_string"]) == ("/scope", "a=%20b")
    assert scope["scheme"] == "ws"
    assert scope["subprotocols"] == ["p1", "p2"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["http_version"] == "1.1"
    assert ["x-test", "1"] in scope["headers"]


def test_the_app_closes_with_its_code_and_reason(serve):
    server = serve(APP, interface="asgi")
    with connect(url(server, "/bye"), open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye now")


def test_the_app_sees_the_clients_close_code(serve):
    server = serve(APP, interface="asgi")
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("one")
        assert ws.recv(timeout=10) == "one"
        ws.close(code=4002, reason="done here")
    state = wait_seen(server, lambda s: s["disconnects"])
    assert state["disconnects"] == [[4002, "done here"]]


def test_an_app_that_closes_before_accept_gets_403(serve):
    server = serve(APP, interface="asgi")
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/reject"), open_timeout=10)
    assert refused.value.response.status_code == 403
    # A path the app has no WebSocket for: Starlette closes before accept too.
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/nowhere"), open_timeout=10)
    assert refused.value.response.status_code == 403
    # Plain HTTP on the same paths still reaches the app.
    assert request(server, "GET", "/seen")[0] == 200


def test_an_app_can_refuse_with_its_own_http_response(serve):
    server = serve(APP, interface="asgi")
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/deny"), open_timeout=10)
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.body == b"log in first\n"
    # A 1xx is no final answer: the app's error, a 500, and the traceback says why.
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/deny-1xx"), open_timeout=10)
    assert refused.value.response.status_code == 500
    server.wait_for("informational", stderr=True)  # printed as the 500 goes out: waited for
    # The server still serves.
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("after")
        assert ws.recv(timeout=10) == "after"


@pytest.mark.parametrize("how", ["config", "flag"])
def test_a_message_over_the_limit_closes_with_1009(serve, tmp_path, how):
    config = tmp_path / "ws.toml"
    config.write_text("[websocket]\nmax_message_size = 1024\n")
    if how == "config":
        server = serve(APP, interface="asgi", config=str(config))
    else:  # uvicorn's flag
        server = serve(APP, interface="asgi", extra=["--ws-max-size", "1024"])
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("x" * 1024)
        assert ws.recv(timeout=10) == "x" * 1024
        ws.send("x" * 1025)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009
    # The app hears of it as the end of the connection.
    state = wait_seen(server, lambda s: s["disconnects"])
    assert state["disconnects"] and state["disconnects"][0][0] in (1006, 1009)


def test_many_messages_in_flight_arrive_in_order_without_loss(serve):
    server = serve(APP, interface="asgi")
    count = 3000
    with connect(url(server, "/echo"), open_timeout=10, max_queue=None) as ws:
        writer = threading.Thread(
            target=lambda: [ws.send(f"{i}:" + "y" * (i % 700)) for i in range(count)])
        writer.start()
        got = [ws.recv(timeout=10) for _ in range(count)]
        writer.join(10)
    assert got == [f"{i}:" + "y" * (i % 700) for i in range(count)]


def test_a_client_that_reads_nothing_stalls_the_apps_send(serve):
    server = serve(APP, interface="asgi")
    # Uncompressed: the bound is on bytes (compressed, these messages would be a few
    # hundred bytes each on the wire).
    with connect(url(server, "/blast"), open_timeout=10, close_timeout=1, max_queue=1,
                 compression=None) as ws:
        # The app sends 64 KiB messages for ever; the client reads none of them.
        before, deadline = -1, time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = seen(server)["blasted"]
            if now == before:
                break
            before = now
        assert now == before, f"send never stalled ({now} messages)"
        assert 0 < now * 65536 < 24 << 20, f"{now} messages of 64 KiB taken"
        # Reading lets it go on.
        for _ in range(now + 4):
            ws.recv(timeout=10)
        assert wait_seen(server, lambda s: s["blasted"] > now)["blasted"] > now
        ws.socket.close()


def test_an_app_that_reads_nothing_stalls_the_client(serve):
    server = serve(APP, interface="asgi")
    total = 48 << 20
    piece = b"z" * 65536
    sent = 0
    with connect(url(server, "/sleepy"), open_timeout=10, compression=None) as ws:
        def push() -> None:
            nonlocal sent
            for _ in range(total // len(piece)):
                ws.send(piece)
                sent += len(piece)
        request(server, "GET", "/seen")  # the app is up
        # The app sleeps for 2 s before reading: the client must stall meanwhile.
        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        time.sleep(1.5)
        stalled = sent
        assert stalled < 24 << 20, f"the server took {stalled} bytes the app did not read"
        pusher.join(60)
        assert sent == total
        state = wait_seen(server, lambda s: s["read"] >= total, timeout=60)
        assert state["read"] == total


def test_empty_messages_an_app_does_not_read_stop_being_taken(serve, tmp_path):
    """Each message counts against the app's unread window beyond its payload, so
    empty ones stop the server taking more too: their Python objects cannot pile up."""
    config = tmp_path / "stats.toml"
    config.write_text('[[route]]\nhandler = "stats"\npath = "/stats"\n')
    server = serve(APP, interface="asgi", config=str(config))
    count = 100_000

    def taken() -> int:
        report = json.loads(request(server, "GET", "/stats")[2])
        return report["total"]["websocket"]["messages_in"]

    with connect(url(server, "/deaf"), open_timeout=10, ping_interval=None) as ws:
        # Empty binary frames, masked with a zero key, straight to the socket.
        ws.socket.sendall(b"\x82\x80\x00\x00\x00\x00" * count)
        before, deadline = -1, time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.5)  # more than a stats publication period
            now = taken()
            if now == before and now > 0:
                break
            before = now
        assert 0 < now == before < 8192, f"{now} messages taken, none read"
        request(server, "POST", "/hear")
        assert wait_seen(server, lambda s: s["heard"] == count, 60)["heard"] == count


def test_ws_max_queue_lets_the_shard_take_a_message_as_the_app_reads_one(serve):
    """With --ws-max-queue 1 the shard waits for the app after every message (tiny
    ones: the byte window never fills), and this app never sends, which would wake
    the connection's task anyway: every message but the first reaches it only if its
    reading the one before lets the shard take the next."""
    server = serve(APP, interface="asgi", extra=["--ws-max-queue", "1"])
    count = 3000
    with connect(url(server, "/deaf"), open_timeout=10, ping_interval=None) as ws:
        for _ in range(count):
            ws.send(b"m")
        request(server, "POST", "/hear")
        assert wait_seen(server, lambda s: s["heard"] == count, 60)["heard"] == count


@pytest.mark.parametrize("extra, held", [([], 40), (["--ws-max-queue", "3"], 3)])
def test_ws_max_queue_bounds_the_messages_the_worker_holds_for_the_app(serve, extra, held):
    """Forty tiny messages (far under the byte window) sent to an app that reads none
    for a second: the worker holds all forty, or with --ws-max-queue 3 three."""
    server = serve(APP, interface="asgi", extra=extra)
    with connect(url(server, "/held"), open_timeout=10, ping_interval=None) as ws:
        for _ in range(40):
            ws.send(b"m")
        assert ws.recv(timeout=10) == str(held)


@pytest.mark.parametrize("flag", [["--ws", "none"], ["--no-ws"]])
def test_without_websocket_an_upgrade_reaches_the_app_as_a_plain_request(serve, flag):
    server = serve(APP, interface="asgi", extra=flag)
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/echo"), open_timeout=10)
    assert refused.value.response.status_code == 404  # FastAPI's answer to a plain GET


def test_uvicorns_implementation_choices_are_served_by_haywires_own(serve):
    server = serve(APP, interface="asgi", extra=["--http", "httptools", "--ws", "wsproto"])
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"


def test_wss_under_tls(serve, certificate):  # noqa: F811
    cert, key = certificate
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    server = serve(APP, interface="asgi", extra=["--ssl-certfile", cert, "--ssl-keyfile", key])
    base = f"wss://127.0.0.1:{server.port}"
    with connect(base + "/scope", ssl=context, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["scheme"] == "wss"
    with connect(base + "/echo", ssl=context, open_timeout=10) as ws:
        ws.send(b"over tls" * 5000)
        assert ws.recv(timeout=10) == b"over tls" * 5000


def test_an_app_that_raises_gets_500_before_accept_and_1011_after(serve):
    server = serve(APP, interface="asgi")
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/fail-before-accept"), open_timeout=10)
    assert refused.value.response.status_code == 500
    with connect(url(server, "/fail-after-accept"), open_timeout=10) as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1011
    # The worker lives on.
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"


def test_a_graceful_stop_closes_open_websockets_with_1001(serve):
    server = serve(APP, interface="asgi")
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        ws.send("before")
        assert ws.recv(timeout=10) == "before"
        stopping = threading.Thread(target=server.stop, daemon=True)
        stopping.start()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1001
        stopping.join(15)
    assert server.proc.wait(15) == 0


def test_keepalive_pings_keep_a_quiet_connection_open_and_close_a_silent_client(serve, tmp_path):
    config = tmp_path / "ws.toml"
    config.write_text("[websocket]\nidle_timeout = 0.6\n")
    server = serve(APP, interface="asgi", config=str(config),
                   extra=["--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.5"])
    # The client answers pings (and sends none of its own): quiet for over twice the idle
    # timeout, the connection is still open (without the server's pings: 1001 at 0.6 s).
    with connect(url(server, "/echo"), open_timeout=10, ping_interval=None) as ws:
        time.sleep(1.5)
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"
    # A client that answers nothing: pinged, then closed with 1011.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        received = b""
        while piece := raw.recv(4096):  # until the server ends it, 2 s after its close
            received += piece
        head, _, frames = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert frames[:2] == b"\x89\x00", frames  # an empty ping first
        close = frames[2:]
        assert close[:2] == b"\x88" + bytes([len(close) - 2]) and close[2:4] == (1011).to_bytes(2, "big")


def test_compression_can_be_turned_off(serve):
    server = serve(APP, interface="asgi", extra=["--ws-per-message-deflate", "false"])
    with connect(url(server, "/echo"), open_timeout=10) as ws:
        assert ws.protocol.extensions == []
        ws.send("plain " * 1000)
        assert ws.recv(timeout=10) == "plain " * 1000


def test_bad_ping_settings_are_config_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "haywire", "--interface", "asgi",
                             "--ws-ping-timeout", "0", APP], cwd=APPS,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "websocket.ping_timeout" in result.stderr, result.stderr


def test_a_wsgi_app_refuses_the_upgrade(serve):
    server = serve("wsgi_app:app", interface="wsgi")
    with pytest.raises(InvalidStatus):
        connect(url(server, "/hello"), open_timeout=10)
