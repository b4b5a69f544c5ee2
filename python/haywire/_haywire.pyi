"""Type stubs for the Rust extension module ``haywire._haywire``."""

import asyncio
import socket
from os import PathLike
from typing import Any, Awaitable, Callable, Iterable

class ConfigError(ValueError):
    """A configuration problem; the message names the key."""

class ConfigSummary:
    """What the supervisor needs from a validated config."""

    address: str
    port: int
    shards: int
    pinned: bool
    cpus: list[int]
    routes: list[str]
    shutdown_grace: float
    tls: bool
    unix: str
    unix_mode: int
    backlog: int

def check_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> ConfigSummary:
    """Validates a config with ``overrides`` (dotted keys such as ``"server.port"`` to
    values) over it; raises ConfigError naming the key."""

def cipher_suites() -> list[tuple[str, str, bool]]:
    """The suites ``tls.ciphers`` can name, TLS 1.3's first: ``(IANA's name, OpenSSL's
    name, is TLS 1.3)``."""

class UnixSocket:
    """A listening Unix socket bound by :func:`bind_unix`."""

    def fileno(self) -> int:
        """The descriptor to pass to the workers; -1 once closed."""
    def close(self) -> None:
        """Closes this descriptor and removes the socket file (if still the one bound)."""

def bind_unix(path: str, mode: int, backlog: int) -> UnixSocket:
    """Binds a listening Unix socket (a stale socket file is replaced); raises OSError
    naming the key ``server.unix`` for a live socket or another file at ``path``."""

class ClientDisconnected(ConnectionError):
    """The client is gone: a streamed response cannot be sent."""

class Request:
    """One request handed to Python; answer it once with :meth:`respond`."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str:
        """The path, still percent-encoded, without the query."""
    @property
    def query(self) -> str:
        """The query string without ``?`` (empty when none)."""
    @property
    def http_version(self) -> str: ...
    @property
    def route(self) -> int:
        """Index of the native route that matched, ``-1`` for the fallback."""
    @property
    def body(self) -> bytes:
        """The whole body (a streamed one is read to its end first)."""
    @property
    def streamed(self) -> bool:
        """Whether the body arrives as it is read (``read_body``)."""
    def read_body(self, max: int = -1, block: bool = True) -> bytes | None:
        """The next bytes of a streamed body (``b""`` at its end; ``None`` when nothing
        has arrived and not ``block``); raises ``ClientDisconnected`` when it cannot end."""
    def watch_body(self) -> bool:
        """True when ``read_body`` has nothing yet: ``token`` then comes from
        ``Worker.take_ready`` once bytes, the end or the client's leaving arrive; False
        when ``read_body`` may be tried now."""
    @property
    def body_complete(self) -> bool:
        """Whether the whole body has been read."""
    @property
    def text(self) -> str: ...
    @property
    def raw_headers(self) -> list[tuple[str, bytes]]: ...
    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; repeated headers joined with ``, ``."""
    @property
    def params(self) -> dict[str, str]: ...
    @property
    def responded(self) -> bool: ...
    def send_file(self, status: int, headers: object, file: object, offset: int = 0,
                  length: int | None = None) -> bool:
        """Sends ``length`` bytes of ``file`` from ``offset`` (the server reads it as the
        client takes it); False, nothing sent, when it is not a regular file."""
    def start_stream(self, status: int, headers: object, length: int | None = None) -> None:
        """Starts a streamed response (chunked, or ``length`` bytes)."""
    def send_piece(self, data: bytes, block: bool = True) -> bool:
        """Sends the next piece; False (nothing sent) when full and not ``block``."""
    def watch_room(self) -> bool:
        """True when full: ``token`` then comes from ``Worker.take_ready`` once there is
        room (or the client is gone); False when ``send_piece`` may be tried now."""
    @property
    def token(self) -> int:
        """This request's number on its worker, as ``Worker.take_ready`` gives it."""
    def end_stream(self, abort: bool = False) -> None:
        """Ends the streamed body (``abort``: cut short, the connection closes)."""
    @property
    def client(self) -> tuple[str, int, str] | None:
        """``(host, port, scheme)``: the peer, or what a trusted proxy reports."""
    def header(self, name: str) -> str | None: ...
    def wsgi_start(
        self, base: dict[str, object], make_input: "Callable[[Request], object]"
    ) -> "tuple[dict[str, object], StartResponse]":
        """The PEP 3333 environ (a copy of ``base`` plus this request's CGI keys; its
        ``wsgi.input`` from ``make_input(self)`` when the request has a body, else
        ``base``'s) and the ``start_response`` for this request."""
    def asgi_start(
        self,
        base: dict[str, object],
        receive_slow: "Callable[[Exchange], Awaitable[dict]]",
        send_slow: "Callable[[Exchange, dict], Awaitable[None]]",
    ) -> "tuple[dict[str, object], Exchange]":
        """A copy of ``base`` plus this request's ASGI HTTP scope keys, and the
        request's :class:`Exchange`; the request counts as begun
        (``--stall-timeout``)."""
    def begin(self) -> None:
        """The app begins this request now (``--stall-timeout``); :meth:`asgi_start`
        does this itself."""
    def json(self) -> object: ...
    def respond(
        self,
        status: int,
        headers: "Iterable[tuple[str | bytes, str | bytes]]",
        body: "bytes | bytearray | memoryview",
    ) -> None: ...


class StartResponse:
    """PEP 3333's ``start_response`` for one request (see ``Request.wsgi_start``)."""

    def __call__(
        self, status: str, response_headers: list[tuple[str, str]], exc_info: object = None
    ) -> "Callable[[bytes], None]":
        """Remembers the status and headers; returns :meth:`write`."""
    def write(self, data: bytes) -> None:
        """Streams ``data`` (the response starts streamed at the first bytes)."""
    def respond_whole(self, result: object) -> bool:
        """Sends ``result`` when it is a list or tuple of bytes and the response was
        started and not streamed (the app's Content-Length cuts a longer body); False,
        sending nothing, otherwise."""
    @property
    def code(self) -> int | None: ...
    @property
    def headers(self) -> list[tuple[str, str]] | None: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def streaming(self) -> bool: ...

class Exchange:
    """One request's ASGI ``receive`` and ``send``: what finishes at once is done in
    Rust, the rest by ``receive_slow(self)`` and ``send_slow(self, message)``."""

    request: Request
    body_done: bool
    status: int | None
    headers: object
    streaming: bool
    complete: bool
    done: "asyncio.Future[None] | None"
    told: "asyncio.Task[Any] | None"

    def receive(self) -> "Awaitable[dict]": ...
    def send(self, message: dict) -> "Awaitable[None]": ...

class Worker:
    """One single-shard Haywire server answered by this process's Python thread."""

    def __init__(
        self,
        path: str | None = None,
        overrides: dict[str, Any] | None = None,
        index: int = 0,
        stats_dir: str | PathLike[str] | None = None,
        max_in_flight: int = 2048,
        routes: list[tuple[str, str]] = ...,
        fallback: bool = True,
        forwarded_allow_ips: str = "",
        root_path: str = "",
        stall_timeout: float | None = None,
        websocket: bool = False,
        listener: socket.socket | None = None,
    ) -> None: ...
    def start(self) -> int:
        """Starts the shard; returns the bound port (0 on a Unix socket)."""
    @property
    def shard_thread_id(self) -> int | None:
        """The shard thread's id once started."""
    @property
    def stats_dir(self) -> str | None:
        """The private directory the counters are published in, once started."""
    def serve(self, handler: Callable[[Request], object]) -> None:
        """Calls ``handler`` for every request until the server stops; raises what an
        app's signal handler raised while it waited (call it again to carry on)."""
    def stop(self) -> None:
        """Stops the server gracefully, as SIGTERM does (queued requests are answered)."""
    def fileno(self) -> int: ...
    def take(self) -> list[Request] | None:
        """The requests waiting now; call :meth:`Request.begin` as each starts (for
        ``--stall-timeout``)."""
    def ready_fileno(self) -> int:
        """The doorbell of requests an event loop may go on with (``watch_body``,
        ``watch_room``)."""
    def take_ready(self) -> list[int]:
        """The tokens whose ``watch_body`` or ``watch_room`` has been answered since
        the last call."""
    def websocket_fileno(self) -> int:
        """The doorbell of WebSocket events (``websocket=True``), else -1."""
    def take_websocket(self) -> list[tuple[int, int, Any, int]]:
        """``(kind, id, payload, size)`` events; see ``haywire/websocket.py``."""

class WebSocket:
    """One WebSocket connection of an ASGI app (driven by ``haywire/websocket.py``)."""

    def asgi_scope(self, base: dict[str, Any]) -> dict[str, Any]: ...
    def accept(self, subprotocol: str | None = None,
               headers: "Iterable[tuple[str | bytes, str | bytes]] | None" = None) -> None: ...
    def reject(self, status: int = 403) -> None: ...
    def deny(self, status: int, headers: "Iterable[tuple[str | bytes, str | bytes]]",
             body: bytes) -> None:
        """Refuses the handshake with this HTTP response (the denial response)."""
    def send(self, data: "str | bytes | bytearray | memoryview") -> bool:
        """False when 256 KiB are in flight: wait for room while ``over_window()``."""
    def over_window(self) -> bool: ...
    def consumed(self, n: int) -> None: ...
    def close(self, code: int = 1000, reason: str = "") -> None: ...
    def finish(self, failed: bool = False) -> None: ...
