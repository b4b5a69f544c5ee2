"""A native app with only sync handlers (the worker runs without asyncio)."""

import haywire

app = haywire.App()


@app.get("/hello")
def hello(request):
    return "hello world"


@app.get("/items/:a/:b")
def items(request):
    return request.params


@app.get("/error")
def error(request):
    raise ValueError("boom")
