"""Native API test app."""

import asyncio
import os

import haywire

app = haywire.App()


@app.get("/hello")
def hello(request):
    return "hello world"


@app.get("/users/:id")
def user(request):
    return {"id": request.params["id"], "query": request.query}


@app.post("/echo")
def echo(request):
    return haywire.Response(request.body, status=201, headers=[("X-Len", str(len(request.body)))],
                            content_type=request.header("content-type") or "application/octet-stream")


@app.post("/json")
def post_json(request):
    return {"got": request.json(), "ct": request.headers.get("content-type")}


@app.get("/headers")
def headers(request):
    return {"headers": request.headers, "first": request.header("x-many")}


@app.get("/async/:n")
async def slow(request):
    await asyncio.sleep(0.01)
    return {"n": int(request.params["n"])}


@app.get("/bytes")
def raw_bytes(request):
    return b"\x00\x01"


@app.get("/error")
def error(request):
    raise RuntimeError("boom")


@app.get("/pid")
def pid(request):
    return str(os.getpid())


@app.get("/block/:seconds")
async def block(request):
    # Synchronous code in a coroutine: the event loop stops for that many seconds.
    import time
    time.sleep(float(request.params["seconds"]))
    return "unblocked"
