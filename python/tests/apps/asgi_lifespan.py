"""ASGI apps whose lifespan misbehaves."""


async def _hello(send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def raising(scope, receive, send):
    """Raises on lifespan startup: served without lifespan, the traceback shown."""
    if scope["type"] == "lifespan":
        raise KeyError("lifespan-bug")
    await _hello(send)


async def hanging(scope, receive, send):
    """Never answers lifespan startup."""
    if scope["type"] == "lifespan":
        await receive()
        import asyncio
        await asyncio.sleep(3600)
    await _hello(send)
