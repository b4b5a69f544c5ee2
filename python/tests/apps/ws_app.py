"""A FastAPI app with WebSocket endpoints for test_websocket.py."""

import asyncio

from fastapi import FastAPI, WebSocket
from starlette.responses import PlainTextResponse

app = FastAPI()
# What the app saw, read back over HTTP (one worker: one process).
seen: dict = {"disconnects": [], "blasted": 0, "read": 0, "heard": 0}
# Set by POST /hear: /deaf starts reading.
hear = asyncio.Event()


@app.get("/seen")
async def get_seen() -> dict:
    return seen


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    protocol = "chat" if "chat" in ws.scope["subprotocols"] else None
    await ws.accept(subprotocol=protocol, headers=[(b"x-hello", b"1")])
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            seen["disconnects"].append([message["code"], message.get("reason", "")])
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


@app.websocket("/scope")
async def scope(ws: WebSocket) -> None:
    await ws.accept()
    s = ws.scope
    await ws.send_json({
        "type": s["type"], "path": s["path"], "query_string": s["query_string"].decode(),
        "scheme": s["scheme"], "subprotocols": s["subprotocols"],
        "client": list(s["client"]), "http_version": s["http_version"],
        "headers": [[n.decode(), v.decode()] for n, v in s["headers"]],
    })
    await ws.close()


@app.websocket("/bye")
async def bye(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close(code=4001, reason="bye now")


@app.websocket("/reject")
async def reject(ws: WebSocket) -> None:
    await ws.close()


@app.websocket("/deny")
async def deny(ws: WebSocket) -> None:
    """Refuses with a response of its own (Starlette's denial response)."""
    await ws.send_denial_response(
        PlainTextResponse("log in first\n", status_code=401,
                          headers={"WWW-Authenticate": "Bearer"}))


@app.websocket("/deny-1xx")
async def deny_informational(ws: WebSocket) -> None:
    """A denial response with a 1xx status: not a final answer, so refused (500)."""
    await ws.send({"type": "websocket.http.response.start", "status": 101, "headers": []})
    await ws.send({"type": "websocket.http.response.body", "body": b"no"})


@app.websocket("/blast")
async def blast(ws: WebSocket) -> None:
    """Sends 64 KiB messages for ever; counts how many the server took."""
    await ws.accept()
    piece = b"x" * 65536
    while True:
        await ws.send_bytes(piece)
        seen["blasted"] += 1


@app.websocket("/sleepy")
async def sleepy(ws: WebSocket) -> None:
    """Reads nothing for 2 s, then counts the bytes it receives until the end."""
    await ws.accept()
    await asyncio.sleep(2)
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        seen["read"] += len(message.get("bytes") or b"")


@app.websocket("/deaf")
async def deaf(ws: WebSocket) -> None:
    """Reads nothing until POST /hear, then counts the messages it receives."""
    await ws.accept()
    await hear.wait()
    while (await ws.receive())["type"] != "websocket.disconnect":
        seen["heard"] += 1


@app.websocket("/held")
async def held(ws: WebSocket) -> None:
    """Reads nothing for a second, then says how many of the first 40 messages were
    already in the worker: received without the event loop running in between (a
    receive that has to wait lets the loop run the callback scheduled before it)."""
    await ws.accept()
    await asyncio.sleep(1.0)
    loop, held = asyncio.get_running_loop(), 0
    while held < 40:
        ran: list = []
        loop.call_soon(ran.append, True)
        await ws.receive()
        if ran:
            break
        held += 1
    await ws.send_text(str(held))


@app.post("/hear")
async def start_hearing() -> None:
    hear.set()


@app.websocket("/fail-before-accept")
async def fail_before_accept(ws: WebSocket) -> None:
    raise RuntimeError("WebSocket app failure before accept, on purpose")


@app.websocket("/fail-after-accept")
async def fail_after_accept(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive_text()
    raise RuntimeError("WebSocket app failure after accept, on purpose")
