"""--fd: the supervisor serves a listening socket it inherited (systemd socket
activation, a parent process) instead of binding one; every worker accepts from it.
Anything but a listening stream socket is refused naming the flag."""

import json
import os
import socket
import tempfile

import pytest

from conftest import Server, read_response, request


def listening(family=socket.AF_INET, address=("127.0.0.1", 0)) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(128)
    return sock


def test_workers_serve_an_inherited_tcp_listener(serve, tmp_path):
    config = tmp_path / "haywire.toml"
    config.write_text('[server]\nplacement = "unbound"\n')
    with listening() as sock:
        port = sock.getsockname()[1]
        # --port names another port: the inherited socket wins, as uvicorn's --fd.
        server = serve("wsgi_app:app", workers=2, config=str(config), port=port,
                       extra=["--fd", str(sock.fileno())], pass_fds=(sock.fileno(),))
        assert any(f"http://127.0.0.1:{port} " in line for line in server.lines), server.lines
        pids = set()
        for _ in range(300):
            status, _, body = request(server, "GET", "/pid")
            assert status == 200
            pids.add(body)
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        env = json.loads(request(server, "GET", "/environ")[2])
        assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(port))
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert server.stop() == 0


def test_asgi_scope_names_the_inherited_address(serve):
    with listening() as sock:
        port = sock.getsockname()[1]
        server = serve("asgi_app:app", interface="asgi", port=port,
                       extra=["--fd", str(sock.fileno())], pass_fds=(sock.fileno(),))
        scope = json.loads(request(server, "GET", "/scope")[2])
        assert scope["server"] == ["127.0.0.1", port]
        assert scope["client"][0] == "127.0.0.1"


def test_an_inherited_unix_socket_is_served_and_its_file_left_to_its_owner(serve):
    with tempfile.TemporaryDirectory(prefix="hw-fd-") as folder:
        path = os.path.join(folder, "app.sock")
        with listening(socket.AF_UNIX, path) as sock:
            server = serve("wsgi_app:app", extra=["--fd", str(sock.fileno())],
                           pass_fds=(sock.fileno(),))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(10)
                client.connect(path)
                client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert read_response(client)[::2] == (200, b"hello world")
            assert server.stop() == 0
            assert os.path.exists(path)  # whoever bound it removes it


@pytest.mark.parametrize("kind", ["closed", "pipe", "unbound socket", "not listening"])
def test_a_descriptor_that_is_not_a_listener_is_refused_naming_the_flag(kind):
    keep = []
    if kind == "closed":
        fd = 1000
    elif kind == "pipe":
        r, w = os.pipe()
        keep += [r, w]
        fd = r
    else:
        sock = socket.socket()
        if kind == "not listening":
            sock.bind(("127.0.0.1", 0))
        keep.append(sock)
        fd = sock.fileno()
    try:
        server = Server("wsgi_app:app", extra=["--fd", str(fd)],
                        pass_fds=() if kind == "closed" else (fd,))
        assert server.proc.wait(20) == 2
        server.wait_for(f"--fd {fd}: ", stderr=True)
    finally:
        for item in keep:
            item.close() if isinstance(item, socket.socket) else os.close(item)


def test_fd_and_uds_together_are_refused():
    with listening() as sock:
        server = Server("wsgi_app:app", extra=["--fd", str(sock.fileno()), "--uds", "/tmp/x.sock"],
                        pass_fds=(sock.fileno(),))
        assert server.proc.wait(20) == 2
        server.wait_for("--fd and --uds", stderr=True)
