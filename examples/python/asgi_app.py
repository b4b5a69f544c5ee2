"""A bare ASGI app (hello world and JSON), used by benchmarks/python.

    python -m haywire asgi_app:app
"""

import json

HELLO = [(b"content-type", b"text/plain")]
JSON = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
    else:
        body = b"hello world"
        await send({"type": "http.response.start", "status": 200, "headers": HELLO})
    await send({"type": "http.response.body", "body": body})
