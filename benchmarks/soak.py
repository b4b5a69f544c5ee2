#!/usr/bin/env python3
"""Soak: minutes of mixed valid, invalid, slow and abruptly closed clients.

Starts `haywire` (2 shards, short timeouts) on a free loopback port, runs worker
threads for --seconds split into --rounds, and after each round (once the load has
stopped and timeouts have expired) reads the server's RSS and open file descriptors
(/proc/PID/fd). Buffer pools and the allocator keep memory after the first round; a
leak would keep growing from round to round. Not part of CI: it takes minutes.

    python3 benchmarks/soak.py [--seconds 180] [--workers 8]
"""
import argparse
import os
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time

CONFIG = """
[server]
address = "127.0.0.1"
port = {port}
shards = 2
placement = "unbound"
[timeouts]
header = 1.0
body = 1.0
keep_alive = 2.0
write = 2.0
[[route]]
handler = "text"
path = "/"
body = "hello world"
[[route]]
handler = "echo"
path = "/echo"
[[route]]
handler = "stats"
path = "/stats"
"""

VALID = [
    b"GET / HTTP/1.1\r\nHost: s\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: s\r\n\r\n",
    b"GET /missing HTTP/1.1\r\nHost: s\r\n\r\n",
]
INVALID = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: s\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: s\r\n\r\n",
]


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


KINDS = ["valid", "pipeline", "invalid", "slow", "reset", "idle"]


def worker(port, deadline, counts, lock, kinds=KINDS):
    rng = random.Random()
    while time.time() < deadline:
        kind = rng.choice(kinds)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if kind == "valid":
                for _ in range(rng.randint(1, 5)):
                    s.sendall(rng.choice(VALID))
                    s.recv(65536)
            elif kind == "pipeline":
                s.sendall(b"".join(rng.choice(VALID) for _ in range(rng.randint(2, 40))))
                s.recv(65536)
            elif kind == "invalid":
                s.sendall(rng.choice(INVALID))
                s.recv(65536)
            elif kind == "slow":
                for b in b"GET / HTTP/1.1\r\nHost: s\r\nX-Slow: yes\r\n"[: rng.randint(3, 30)]:
                    s.sendall(bytes([b]))
                    time.sleep(0.05)
            elif kind == "reset":
                s.sendall(rng.choice(VALID + INVALID)[: rng.randint(1, 40)])
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif kind == "idle":
                s.sendall(VALID[0])
                s.recv(65536)
                time.sleep(rng.uniform(0, 0.5))
            s.close()
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
        except OSError:
            with lock:
                counts["socket errors"] = counts.get("socket errors", 0) + 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--binary", default="target/release/haywire")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--rounds", type=int, default=6, help="soak rounds; RSS is compared after each")
    parser.add_argument("--kinds", default=",".join(KINDS), help="client kinds to mix")
    args = parser.parse_args()

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(CONFIG.format(port=args.port))
        config = f.name
    server = subprocess.Popen([args.binary, "--config", config], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        # Warm up buffers and pools before the baseline.
        warm_deadline = time.time() + 5
        lock = threading.Lock()
        counts = {}
        threads = [threading.Thread(target=worker, args=(args.port, warm_deadline, {}, lock)) for _ in range(args.workers)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        time.sleep(3)  # timeouts expire
        rss0, fds0 = status(server.pid)
        print(f"baseline after warm-up: RSS {rss0} KiB, {fds0} file descriptors")
        peak = rss0
        after = []
        for round_ in range(1, args.rounds + 1):
            deadline = time.time() + args.seconds / args.rounds
            kinds = args.kinds.split(",")
            threads = [
                threading.Thread(target=worker, args=(args.port, deadline, counts, lock, kinds))
                for _ in range(args.workers)
            ]
            [t.start() for t in threads]
            while any(t.is_alive() for t in threads):
                time.sleep(1)
                peak = max(peak, status(server.pid)[0])
            time.sleep(3)  # timeouts expire, connections close
            rss, fds = status(server.pid)
            after.append((rss, fds))
            print(f"round {round_}: RSS {rss} KiB, {fds} file descriptors")
        rss1, fds1 = after[-1]
        print(f"clients: {dict(sorted(counts.items()))}")
        print(f"RSS: {rss0} KiB before, peak {peak} KiB, {rss1} KiB after ({rss1 - rss0:+} KiB)")
        print(f"file descriptors: {fds0} before, {fds1} after")
        # Pools and the allocator keep memory up to a high-water mark that a mix of
        # clients takes a few rounds to reach; a leak keeps growing by the same amount
        # every round, so the last round is judged.
        growth = after[-1][0] - after[-2][0] if len(after) > 1 else 0
        ok = fds1 == fds0 and growth < max(256, rss0 // 20)
        print(f"growth in the last round: {growth:+} KiB")
        print("OK" if ok else "LEAK?")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait()
        os.unlink(config)


if __name__ == "__main__":
    raise SystemExit(main())
