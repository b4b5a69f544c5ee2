#!/usr/bin/env python3
"""Server memory under an output-amplification attack: clients that pipeline many
requests for a large file and never read the answers.

Starts `haywire --shards 2` serving a 64 KiB file, opens N connections, sends R
pipelined GETs of it on each (about 5 KB sent per connection) and never reads. Once
the server has stopped taking input, reports its RSS (peak and now) while every
connection is still held.

    python3 benchmarks/amplification.py [--connections 1000] [--requests 128]
        [--binary target/release/haywire]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from serverproc import raise_fd_limit, status_kib, wait_listening  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--binary", default="target/release/haywire")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()

    # The server inherits the limit.
    raise_fd_limit(args.connections * 2 + 256)

    work = tempfile.mkdtemp(prefix="haywire-amplification-")
    with open(os.path.join(work, "big.bin"), "wb") as f:
        f.write(b"x" * 64 * 1024)
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(
            f'[server]\naddress = "127.0.0.1"\nport = {args.port}\nshards = 2\n'
            f'[[route]]\nhandler = "static"\npath = "/static"\ndir = "{work}"\n'
        )
    server = subprocess.Popen([args.binary, "--config", config], stdout=subprocess.DEVNULL)
    conns = []
    try:
        wait_listening(args.port)
        time.sleep(0.5)
        before = status_kib(server.pid, "VmRSS")
        wire = b"GET /static/big.bin HTTP/1.1\r\nHost: bench\r\n\r\n" * args.requests
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", args.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(wire)
            conns.append(s)
        # The server stops sending once every client's window is full.
        last = -1
        while True:
            time.sleep(1.0)
            rss = status_kib(server.pid, "VmRSS")
            if rss == last:
                break
            last = rss
        peak = status_kib(server.pid, "VmHWM")
        print(f"connections: {args.connections}, {args.requests} pipelined GETs of 64 KiB each, never read")
        print(f"sent: {len(wire) * args.connections} bytes in all")
        print(f"server RSS: {before} KiB before, {rss} KiB held, {peak} KiB at the peak")
    finally:
        for s in conns:
            s.close()
        server.terminate()
        server.wait()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
