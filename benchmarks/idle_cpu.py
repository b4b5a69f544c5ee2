#!/usr/bin/env python3
"""CPU an idle server spends holding idle keep-alive connections.

Starts `haywire --shards 1` on a free port (pinned to --cpu when given), opens N
connections, makes one request on each, leaves them all open and idle, then reports the
server's CPU time (utime + stime from /proc) over --seconds as a share of one CPU, and
the shard's wake-ups in that time (`loop.parks` from /stats).

    python3 benchmarks/idle_cpu.py [--connections 10000] [--seconds 10] [--cpu 1]
                                   [--binary target/release/haywire] [--config config.toml]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from serverproc import open_used_connections, raise_fd_limit, wait_listening  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parks(port):
    """The shard's loop counters, read on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]
    return json.loads(body)["total"]["loop"]["parks"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--binary", default="target/release/haywire")
    parser.add_argument("--config", default="config.toml", help="needs the /stats route")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()

    raise_fd_limit(args.connections * 2 + 256)
    command = [args.binary, "--config", args.config, "--shards", "1", "--address", "127.0.0.1", "--port", str(args.port)]
    if args.cpu is not None:
        command = ["taskset", "-c", str(args.cpu)] + command
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(args.port)
        conns = open_used_connections(args.port, args.connections, REQUEST)
        time.sleep(1.0)
        parks_before = parks(args.port)
        cpu_before, wall_before = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu_after, wall_after = cpu_seconds(server.pid), time.monotonic()
        parks_after = parks(args.port)
        wall = wall_after - wall_before
        cpu = cpu_after - cpu_before
        print(f"idle connections: {args.connections}")
        print(f"server CPU over {wall:.1f} s: {cpu:.3f} s ({100 * cpu / wall:.2f}% of a CPU)")
        # The first /stats read's own wake-ups land in the window; the second's do not.
        print(f"wake-ups (loop parks): {parks_after - parks_before} ({(parks_after - parks_before) / wall:.1f}/s)")
        for s in conns:
            s.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
