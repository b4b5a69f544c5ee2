"""A plain FastAPI app, run unchanged on Haywire:

    python -m haywire fastapi_app:app
"""

import asyncio
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

state = {"started": False}


@asynccontextmanager
async def lifespan(app):
    state["started"] = True
    yield
    state["started"] = False


app = FastAPI(lifespan=lifespan)


@app.get("/", response_class=PlainTextResponse)
async def index():
    return "hello from fastapi"


@app.get("/json")
async def json_endpoint():
    return {"message": "Hello, World!"}


@app.get("/users/{user_id}")
async def user(user_id: int, q: str | None = None):
    return {"id": user_id, "q": q, "started": state["started"]}


@app.post("/upload")
async def upload(request: Request):
    data = await request.body()
    return {"size": len(data), "type": request.headers.get("content-type")}


@app.get("/sync")
def sync_endpoint():
    return {"sync": True}


@app.get("/stream")
async def stream():
    async def parts():
        for i in range(3):
            yield f"part{i};"

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/events")
async def events(until: str):
    """Server-sent events: one now, the next once the file `until` exists (10 s at most)."""
    async def stream():
        yield "data: first\n\n"
        for _ in range(200):
            if os.path.exists(until):
                break
            await asyncio.sleep(0.05)
        yield "data: last\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
