"""--metrics: the workers' counters in Prometheus's text format on an address of their
own (Granian's --metrics-address/--metrics-port), served by the supervisor from what
the workers publish every 250 ms: a scrape never reaches a worker, and the app's port
shows nothing more."""

from __future__ import annotations

import http.server
import socket
import threading

from ._haywire import METRICS_CONTENT_TYPE, metrics_text

PATH = "/metrics"


class _Handler(http.server.BaseHTTPRequestHandler):
    # A client that sends nothing gives its thread back after this many seconds.
    timeout = 10
    server_version = "haywire"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.partition("?")[0] != PATH:
            self.send_error(404, f"the metrics are at {PATH}")
            return
        body = metrics_text(self.server.stats_dir)
        self.send_response(200)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes are not news


# Connections served at once, each on a thread of its own: one more is closed at once,
# so a flood of connections that send nothing costs no more than this many threads.
MAX_CONNECTIONS = 16


class Exporter(http.server.ThreadingHTTPServer):
    """Serves GET /metrics on `address`:`port` until `shutdown`; binding raises
    OSError (a port taken, an address not this host's)."""

    daemon_threads = True

    def __init__(self, address: str, port: int, stats_dir: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.stats_dir = stats_dir
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((address, port), _Handler)
        threading.Thread(target=self.serve_forever, name="haywire-metrics", daemon=True).start()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}{PATH}" if ":" in host else f"http://{host}:{port}{PATH}"
