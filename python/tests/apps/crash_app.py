"""A WSGI app whose worker dies 0.2 s after it is imported, for ever (status 1)."""

import os
import threading


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alive for now"]


threading.Timer(0.2, os._exit, (1,)).start()
