"""An ASGI app whose sync code runs through asgiref's `sync_to_async` inside a
`ThreadSensitiveContext` per request, as Django's ASGIHandler runs its middleware and
views."""

import asyncio
import contextvars
import gc
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async

# The collector runs only when asked (some apps disable it): contexts left in cycles
# stay until then.
gc.disable()

gate = threading.Event()
left: list[str] = []  # thread names of the calls made by tasks left running
tasks: set[asyncio.Task] = set()


def thread_name() -> str:
    return threading.current_thread().name


async def leftover() -> None:
    await asyncio.sleep(2)  # well after the response
    try:
        left.append(await sync_to_async(thread_name)())
    except RuntimeError as e:
        left.append(f"error: {e}")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    async with ThreadSensitiveContext():
        path = scope["path"]
        if path == "/thread":
            body = await sync_to_async(thread_name)()
        elif path == "/cycle":  # leaves its context in a reference cycle, as Django does
            cycle: list = [contextvars.copy_context()]
            cycle.append(cycle)
            body = await sync_to_async(thread_name)()
        elif path == "/threads":  # how many of the worker's sync threads are alive
            body = str(sum(t.name.startswith("haywire-sync") for t in threading.enumerate()))
        elif path == "/wait":  # waits in its sync thread for /set, made in another's
            body = str(await sync_to_async(gate.wait)(10))
        elif path == "/set":
            await sync_to_async(gate.set)()
            body = "set"
        elif path == "/leave":  # answers its thread's name, leaves a task running
            task = asyncio.create_task(leftover())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            body = await sync_to_async(thread_name)()
        else:
            body = ",".join(left)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
