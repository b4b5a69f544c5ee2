"""Haywire for Python: WSGI, ASGI and native handlers on Haywire's thread-per-core shards.

Run an app with ``python -m haywire [--interface wsgi|asgi|native] module:app``.
HTTP parsing, keep-alive, pipelining and writes stay in Rust; each worker process runs
one shard and one Python thread that answers the requests the shard hands it.
"""

from ._haywire import ClientDisconnected, ConfigError, Request
from .native import App, Response

__all__ = ["App", "ClientDisconnected", "ConfigError", "Request", "Response", "__version__"]
__version__ = "0.1.0"
