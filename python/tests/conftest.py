"""Helpers: start `python -m haywire` as a subprocess on a free loopback port, talk to
it over real sockets, stop it with SIGTERM. Every wait is bounded."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
EXAMPLES = HERE.parent.parent / "examples" / "python"
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `python -m haywire`."""

    def __init__(self, app: str, *, interface: str = "wsgi", workers: int = 1,
                 config: str | None = None, extra: list[str] | None = None,
                 cwd: Path = APPS, port: int | None = None,
                 wrap: list[str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        self.port = free_port() if port is None else port
        command = [*(wrap or []), sys.executable, "-m", "haywire", "--interface", interface,
                   "--address", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), *(extra or [])]
        if config:
            command += ["--config", config]
        command.append(app)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=f"{cwd}:{APPS}")
        self.proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     pass_fds=pass_fds)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.errors), daemon=True).start()
        self.workers = workers

    def _pump(self, stream, sink: list[str]) -> None:
        for line in stream:
            with self._cond:
                sink.append(line)
                self._cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = TIMEOUT,
                 stderr: bool = False) -> list[str]:
        """The first `count` lines of stdout (or stderr) matching `pattern`, once
        printed."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        lines = self.errors if stderr else self.lines
        with self._cond:
            while True:
                found = [l for l in lines if regex.search(l)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._cond.wait(0.5)):
                    raise AssertionError(
                        f"no {count}x {pattern!r} in time; stdout={self.lines} stderr={self.errors}"
                    )
                self._cond.wait(min(left, 0.2))

    def ready(self, count: int | None = None) -> "Server":
        self.wait_for(r"worker \d+ ready", count or self.workers)
        return self

    def stop(self, timeout: float = TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        _leftover.pop(sock.fileno(), None)
        return sock


_leftover: dict[int, bytes] = {}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m haywire ARGS` in the apps' directory, run to its end."""
    return subprocess.run([sys.executable, "-m", "haywire", *args], cwd=APPS,
                          capture_output=True, text=True, timeout=30)


def worker_pids(server: Server) -> list[int]:
    """The workers that have said they are ready, in order."""
    return [int(line.split("pid ")[1].split(",")[0]) for line in server.lines if "ready" in line]


def read_response(sock: socket.socket, head_only: bool = False) -> tuple[int, dict[str, str], bytes, bytes]:
    """Reads one response from `sock`; returns (status, headers, body, leftover-free)."""
    buf = _leftover.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if not head_only and headers.get("transfer-encoding") == "chunked":
        body, rest = read_chunked(sock, rest)
        _leftover[sock.fileno()] = rest
        return status, headers, body, head
    if not head_only and "content-length" not in headers and status not in (204, 304):
        # Delimited by the end of the connection (a streamed body to HTTP/1.0).
        while data := sock.recv(65536):
            rest += data
        return status, headers, rest, head
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed inside a body")
        rest += data
    body, _leftover[sock.fileno()] = rest[:length], rest[length:]
    return status, headers, body, head


def read_chunked(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    """Decodes a chunked body from `buf` and the socket; returns (body, what follows)."""
    body = b""
    while True:
        while b"\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed inside a chunked body")
            buf += data
        size_line, _, buf = buf.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(buf) < size + 2:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed inside a chunk")
            buf += data
        if size == 0:
            return body, buf[2:]
        body += buf[:size]
        buf = buf[size + 2:]


def read_until_closed(server: Server, raw: bytes) -> bytes:
    """Everything the server sends for `raw` (a whole request) until it closes."""
    data = b""
    with server.connect() as sock:
        sock.sendall(raw)
        while chunk := sock.recv(65536):
            data += chunk
    return data


def wait_file(path: str, timeout: float = 10.0) -> str:
    """The text of the file at `path` once an app has written it (an app may run after
    the response it sent is complete: a WSGI iterable's close(), an ASGI task)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) or not open(path).read():
        assert time.monotonic() < deadline, f"no {path} in time"
        time.sleep(0.05)
    return open(path).read()


def request(server: Server, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection."""
    with server.connect() as sock:
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        status, hdrs, data, _ = read_response(sock, head_only=method == "HEAD")
        return status, hdrs, data


@pytest.fixture
def serve():
    """Starts servers; stops every one at the end of the test."""
    servers: list[Server] = []

    def start(app: str, **kwargs) -> Server:
        server = Server(app, **kwargs)
        servers.append(server)
        return server.ready()

    yield start
    for server in servers:
        try:
            server.stop()
        except Exception:
            pass
