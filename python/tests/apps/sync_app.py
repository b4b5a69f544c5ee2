"""An ASGI app whose sync code runs through asgiref's `sync_to_async` inside a
`ThreadSensitiveContext` per request, as Django's ASGIHandler runs its middleware and
views."""

import asyncio
import contextvars
import gc
import os
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async

import haywire.syncthreads

# Threads past the 16 kept are shut down after 2 s idle, not 10: the test waits for it.
haywire.syncthreads.IDLE_SECONDS = 2.0

# The collector runs only when asked (some apps disable it): contexts left in cycles
# stay until then.
gc.disable()

gate = threading.Event()
barriers: dict[int, threading.Barrier] = {}
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


class Aborted(Exception):
    pass


async def listen(receive) -> None:
    """Django's ASGIHandler.listen_for_disconnect."""
    if (await receive())["type"] == "http.disconnect":
        raise Aborted


async def answer_listening(receive, send) -> None:
    """Answers as Django's ASGIHandler.handle does: a task listens for the disconnect
    while another answers, and the listener's exception is re-raised in this frame,
    which refers to the task: a reference cycle holding the request's context."""
    await receive()  # the request's body

    async def answer() -> None:
        body = await sync_to_async(thread_name)()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    tasks = [asyncio.create_task(listen(receive)), asyncio.create_task(answer())]
    await asyncio.wait(tasks)
    for task in tasks:
        try:
            task.result()
        except Aborted:
            pass


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    async with ThreadSensitiveContext():
        path = scope["path"]
        if path == "/listen":
            await answer_listening(receive, send)
            return
        if path == "/thread":
            body = await sync_to_async(thread_name)()
        elif path == "/cycle":  # leaves its context in a reference cycle, as Django does
            cycle: list = [contextvars.copy_context()]
            cycle.append(cycle)
            body = await sync_to_async(thread_name)()
        elif path == "/policy":  # its sync thread's scheduling policy
            body = str(await sync_to_async(os.sched_getscheduler)(0))
        elif path == "/threads":  # how many of the worker's sync threads are alive
            body = str(sum(t.name.startswith("haywire-sync") for t in threading.enumerate()))
        elif path == "/wait":  # waits in its sync thread for /set, made in another's
            body = str(await sync_to_async(gate.wait)(10))
        elif path.startswith("/meet/"):  # waits in its sync thread for n-1 others
            parties = int(path.removeprefix("/meet/"))
            barrier = barriers.setdefault(parties, threading.Barrier(parties))
            await sync_to_async(barrier.wait)(10)
            body = await sync_to_async(thread_name)()
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
