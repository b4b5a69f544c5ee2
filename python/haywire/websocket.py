"""ASGI ``websocket`` connections on Haywire's own WebSocket support.

The shard checks the handshake, frames, UTF-8 and size limits (a message over
``[websocket] max_message_size`` closes with 1009), answers pings and runs the close
handshake; this module speaks ASGI to the app. Events arrive from the shard on a
doorbell the event loop watches (``Worker.websocket_fileno``).

- The first ``receive()`` is ``websocket.connect``. ``websocket.accept`` answers 101 (with
  ``subprotocol``, if the client offered it, and ``headers``); ``websocket.close`` before
  accept, or the app returning without accepting, answers 403 (500 if it raised);
  ``websocket.http.response.start`` and ``.body`` (the ``websocket.http.response``
  extension, in ``scope["extensions"]``: Starlette's ``send_denial_response``) answer
  with the app's own HTTP response instead.
- ``websocket.receive`` carries ``text`` or ``bytes``; ``websocket.disconnect`` the
  client's close code and reason (1005: a close without a code; 1006: no close), and
  is what ``receive()`` answers from then on.
- ``websocket.send`` waits while 256 KiB of the app's messages have not reached the
  connection's output buffer (itself bounded by ``[websocket] write_buffer``): a slow
  client stalls ``send``. After the client has gone it raises
  ``haywire.ClientDisconnected`` (a ``ConnectionError``).
- While the app leaves 64 KiB received unread, the server stops reading the socket.
- ``websocket.close`` starts the closing handshake (``code``, ``reason``); an app that
  returns while the connection is open closes it with 1000 (1011 if it raised).
"""

from __future__ import annotations

import asyncio
import collections
import sys
import traceback
from typing import Any, Callable

from ._haywire import ClientDisconnected

_ASGI = {"version": "3.0", "spec_version": "2.4"}

# Event kinds from Worker.take_websocket().
CONNECT, TEXT, BYTES, DISCONNECT, ROOM = range(5)


class _Session:
    """One connection's ASGI ``receive``/``send`` pair."""

    def __init__(self, ws: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.ws = ws
        self.loop = loop
        self.inbox: collections.deque = collections.deque()  # (message, size)
        self.waiting: asyncio.Future | None = None  # receive() waits for a message
        self.room: asyncio.Future | None = None  # send() waits for room
        self.connected = False  # websocket.connect was received
        self.accepted = False
        self.closed = False  # the app closed or refused
        self.gone: dict | None = None  # the websocket.disconnect, once over
        # A denial response being sent: its status, headers and body so far.
        self.denial: tuple[int, Any, list] | None = None

    def wake(self) -> None:
        for future in (self.waiting, self.room):
            if future is not None and not future.done():
                future.set_result(None)

    def event(self, kind: int, payload: Any, size: int) -> None:
        if kind == TEXT:
            self.inbox.append(({"type": "websocket.receive", "text": payload}, size))
        elif kind == BYTES:
            self.inbox.append(({"type": "websocket.receive", "bytes": payload}, size))
        elif kind == DISCONNECT:
            code, reason = payload
            self.gone = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.wake()

    async def receive(self) -> dict:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while not self.inbox:
            if self.gone is not None:
                return self.gone
            self.waiting = self.loop.create_future()
            await self.waiting
        message, size = self.inbox.popleft()
        self.ws.consumed(size)
        return message

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            if self.accepted or self.closed:
                raise RuntimeError("websocket.accept after the handshake was answered")
            self.ws.accept(message.get("subprotocol"), message.get("headers") or ())
            self.accepted = True
        elif kind == "websocket.send":
            if not self.accepted or self.closed:
                raise RuntimeError("websocket.send on a WebSocket that is not open")
            if self.gone is not None:
                raise ClientDisconnected("the client is gone")
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
            if data is None:
                raise ValueError("websocket.send needs text or bytes")
            if not self.ws.send(data):
                # The client is behind: wait until the shard reports room again.
                while self.ws.over_window() and self.gone is None:
                    self.room = self.loop.create_future()
                    await self.room
        elif kind == "websocket.http.response.start":
            if self.accepted or self.closed or self.denial is not None:
                raise RuntimeError("websocket.http.response.start after the handshake was"
                                   " answered")
            self.denial = (int(message["status"]), message.get("headers") or (), [])
        elif kind == "websocket.http.response.body":
            if self.denial is None or self.closed:
                raise RuntimeError("websocket.http.response.body without a started response")
            status, headers, body = self.denial
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.ws.deny(status, headers, b"".join(body))
                self.closed = True
        elif kind == "websocket.close":
            if self.closed:
                raise RuntimeError("websocket.close sent twice")
            if self.accepted:
                self.ws.close(int(message.get("code", 1000)), message.get("reason") or "")
            else:
                self.ws.reject(403)
            self.closed = True
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")


def make_handler(
    app: Callable[..., Any],
    loop: asyncio.AbstractEventLoop,
    server: tuple[str, int | None],
    state: dict,
) -> Callable[[list], None]:
    """The function that takes ``Worker.take_websocket()``'s events: a task per
    connection runs the app, and messages go to its session."""
    base = {"type": "websocket", "asgi": _ASGI, "root_path": "", "client": None,
            "server": server, "extensions": {"websocket.http.response": {}}}
    sessions: dict[int, _Session] = {}
    tasks: set[asyncio.Task] = set()

    async def run(session: _Session) -> None:
        ws = session.ws
        scope = ws.asgi_scope(base)
        scope["state"] = state.copy() if state else {}
        failed = False
        try:
            await app(scope, session.receive, session.send)
        except ClientDisconnected:
            pass
        except Exception:
            traceback.print_exc(file=sys.stderr)
            failed = True
        finally:
            ws.finish(failed)

    def handle(events: list) -> None:
        for kind, ident, payload, size in events:
            if kind == CONNECT:
                session = sessions[ident] = _Session(payload, loop)
                task = loop.create_task(run(session))
                # The loop keeps only weak references to tasks: hold them until done.
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                continue
            session = sessions.get(ident)
            if session is None:
                continue
            if kind == DISCONNECT:
                del sessions[ident]
            session.event(kind, payload, size)

    return handle
