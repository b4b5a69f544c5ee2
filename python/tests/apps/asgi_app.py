"""ASGI test app: echo with body events, lifespan state, errors."""

import contextvars
import json
import os

MARKER_DIR = os.environ.get("HAYWIRE_TEST_DIR", "/tmp")
# Set as the module is imported: in the worker's context, which requests copy unless
# --reset-contextvars.
IMPORTED = contextvars.ContextVar("imported", default="unset")
IMPORTED.set("set at import")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with open(os.path.join(MARKER_DIR, f"shutdown-{os.getpid()}"), "w") as f:
                    f.write("done")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"]
    if scope["root_path"] and path.startswith(scope["root_path"]):
        path = path[len(scope["root_path"]):]  # as Starlette does
    if path == "/misuse":
        # Each mistake raises RuntimeError in the app; a mapping that is not a dict is
        # a message too.
        import sys
        import types
        errors = []

        async def attempt(message):
            try:
                await send(message)
            except RuntimeError as e:
                errors.append(str(e))

        await attempt({"type": "http.response.body", "body": b"early"})
        await attempt(types.MappingProxyType({"type": "http.response.start", "status": 200}))
        await attempt({"type": "http.response.start", "status": 201})
        await attempt({"type": "http.response.bogus"})
        await attempt(types.MappingProxyType({"type": "http.response.body",
                                              "body": "; ".join(errors).encode()}))
        await attempt({"type": "http.response.body", "body": b"late"})
        print(f"after the response: {errors[-1]}", file=sys.stderr, flush=True)
        return
    if path == "/status":
        # An int subclass (HTTPStatus), or an object `int()` takes.
        import http

        class IntLike:
            def __int__(self):
                return 201

        kind = scope["query_string"]
        status = http.HTTPStatus.IM_A_TEAPOT if kind == b"enum" else IntLike()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": kind})
        return
    if path == "/contextvar":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": IMPORTED.get().encode()})
        return
    if path == "/hello":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": bytearray(b"hello "), "more_body": True})
        await send({"type": "http.response.body", "body": memoryview(b"world")})
        return
    if path == "/block":
        # Synchronous code in a coroutine: the event loop stops for the query's seconds.
        import time
        time.sleep(float(scope["query_string"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"unblocked"})
        return
    if path == "/echo":
        events = 0
        body = b""
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            events += 1
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"x-events", str(events).encode())]})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        await send({"type": "http.response.body", "body": body[len(body) // 2 :]})
        return
    if path == "/first-event":
        # Whether the first receive() let the loop run a callback scheduled before it
        # (it waited for the body), and what it returned.
        import asyncio
        ran = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        message = await receive()
        answer = f"waited={bool(ran)} {len(message['body'])} more={message['more_body']}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer.encode()})
        return
    if path == "/hash":
        import hashlib
        digest, total, events = hashlib.sha256(), 0, 0
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            digest.update(message["body"])
            total += len(message["body"])
            events += 1
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-events", str(events).encode())]})
        await send({"type": "http.response.body", "body": f"{total} {digest.hexdigest()}".encode()})
        return
    if path == "/upload_gone":
        while (message := await receive())["type"] == "http.request":
            if not message["more_body"]:
                break
        with open(os.path.join(MARKER_DIR, scope["query_string"].decode()), "w") as f:
            f.write(message["type"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["type"].encode()})
        return
    if path == "/pathsend":
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": scope["query_string"].decode()})
        return
    if path == "/scope":
        info = {k: v for k, v in scope.items() if isinstance(v, (str, int, list, dict)) and k != "headers"}
        info["client"] = list(scope["client"]) if scope["client"] else None
        info["server"] = list(scope["server"])
        info["raw_path"] = scope["raw_path"].decode()
        info["query_string"] = scope["query_string"].decode()
        info["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(info).encode()})
        return
    if path == "/disconnect":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        message = await receive()
        assert message["type"] == "http.disconnect"
        with open(os.path.join(MARKER_DIR, "disconnect"), "w") as f:
            f.write(message["type"])
        return
    if path == "/gen":
        marker = os.path.join(MARKER_DIR, scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        import asyncio
        for _ in range(200):
            if os.path.exists(marker):
                break
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"second"})
        return
    if path == "/endless":
        piece = b"x" * 65536
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    if path == "/latin1":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-name", b"caf\xe9"), (b"server", b"my-app"),
                                (b"content-length", b"999"),
                                (b"transfer-encoding", b"chunked")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/informational":
        await send({"type": "http.response.start", "status": 101, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/error":
        raise RuntimeError("boom")
    if path == "/threads":  # the worker's thread names, one a line
        import threading
        names = "\n".join(t.name for t in threading.enumerate())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": names.encode()})
        return
    if path == "/executor":  # answered through the loop's default executor
        import asyncio
        pid = await asyncio.get_running_loop().run_in_executor(None, os.getpid)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(pid).encode()})
        return
    if path == "/pid":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"nope"})


async def task_factory_app(scope, receive, send):
    """Sets a task factory at startup; answers with the name of the task it runs in."""
    import asyncio

    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                def factory(loop, coro, **kwargs):
                    return asyncio.Task(coro, loop=loop, name="from-the-app's-factory")
                asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    name = asyncio.current_task().get_name()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": name.encode()})


class Asgi2App:
    """An ASGI 2 app (as Channels 2 wrote them): instantiated with the scope, then
    awaited with receive and send. Answers HTTP with its scope's ASGI version and
    echoes WebSocket text."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": "asgi2 " + message["text"]})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": f"asgi {self.scope['asgi']['version']}".encode()})


def asgi2_function(scope):
    """ASGI 2 as a plain function returning the instance."""
    return Asgi2App(scope)
