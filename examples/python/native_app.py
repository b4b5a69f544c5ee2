"""Haywire's native Python API: routes live in Haywire's Rust router.

    python -m haywire native_app:app
"""

import haywire

app = haywire.App()


@app.get("/")
def index(request):
    return "hello world"


@app.get("/json")
def json_endpoint(request):
    return {"message": "Hello, World!"}


@app.get("/users/:id")
async def user(request):
    return {"id": request.params["id"], "query": request.query}
