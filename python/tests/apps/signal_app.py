"""Apps that install their own signal handlers at import, as apps do for a debug dump
or to reopen a log: SIGUSR1 appends a line to $SIGNAL_LOG, SIGUSR2's handler raises,
SIGALRM's exits with status 7."""

import os
import signal
import sys

LOG = os.environ.get("SIGNAL_LOG", "/dev/null")


def on_usr1(signum, frame):
    with open(LOG, "a") as f:
        f.write(f"usr1 {os.getpid()}\n")


def on_usr2(signum, frame):
    raise RuntimeError("the app's SIGUSR2 handler failed")


def on_alarm(signum, frame):
    sys.exit(7)


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGALRM, on_alarm)
signal.signal(signal.SIGUSR2, on_usr2)


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
