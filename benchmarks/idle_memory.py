#!/usr/bin/env python3
"""Memory held per idle keep-alive connection.

Starts `haywire --shards 1` on a free port, opens N connections, makes one request on
each (so every connection has allocated its buffers once), leaves them all open and
idle, and reports the server's RSS delta divided by N.

    python3 benchmarks/idle_memory.py [--connections 10000] [--binary target/release/haywire]
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from serverproc import open_used_connections, raise_fd_limit, status_kib, wait_listening  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--binary", default="target/release/haywire")
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()

    # The server inherits the limit.
    raise_fd_limit(args.connections * 2 + 256)

    server = subprocess.Popen(
        [args.binary, "--shards", "1", "--address", "127.0.0.1", "--port", str(args.port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(args.port)
        request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
        warm = socket.create_connection(("127.0.0.1", args.port))
        warm.sendall(request)
        warm.recv(4096)
        warm.close()
        time.sleep(0.2)
        before = status_kib(server.pid)
        conns = open_used_connections(args.port, args.connections, request)
        time.sleep(1.0)
        after = status_kib(server.pid)
        per = (after - before) * 1024 / args.connections
        print(f"idle connections: {args.connections}")
        print(f"server RSS: {before} KiB before, {after} KiB after")
        print(f"per idle connection: {per:.0f} bytes")
        for s in conns:
            s.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
