"""A bare WSGI app (hello world and JSON), used by benchmarks/python.

    python -m haywire wsgi_app:app
"""

import json


def app(environ, start_response):
    if environ["PATH_INFO"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello world"]
