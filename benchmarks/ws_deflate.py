"""What permessage-deflate costs the server: the shard's CPU time per echoed message,
with the client offering the extension and without, in alternating rounds.

The server is examples/websocket.rs (one shard, on --server-cpu), the client the
`websockets` package (on --client-cpu), which compresses as browsers do when the
server accepts. Messages go in batches (--batch in flight) so the shard's time per
message is its work on it, not a wake-up per message.

    cargo build --release --example websocket
    python3 -m venv /tmp/ws-venv && /tmp/ws-venv/bin/pip install websockets
    /tmp/ws-venv/bin/python benchmarks/ws_deflate.py [--messages 40000] [--rounds 2]
"""

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--port", type=int, default=8131)
    args = parser.parse_args()
    # A JSON list of twelve small records: 900 bytes, about 210 compressed.
    message = json.dumps([{"id": i, "name": f"user{i}", "email": f"user{i}@example.com",
                           "active": i % 2 == 0} for i in range(12)])
    binary = ROOT / "target/release/examples/websocket"
    server = subprocess.Popen(["taskset", "-c", args.server_cpu, str(binary), "--port",
                               str(args.port), "--shards", "1"], stdout=subprocess.DEVNULL)
    os.sched_setaffinity(0, {args.client_cpu})
    try:
        time.sleep(1)

        def cpu() -> float:
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        per_message: dict[str, list[float]] = {"deflate": [], "plain": []}
        for _ in range(args.rounds):
            for kind in per_message:
                compression = "deflate" if kind == "deflate" else None
                with connect(f"ws://127.0.0.1:{args.port}/ws", compression=compression,
                             max_size=None) as ws:
                    for _ in range(200):  # warm-up
                        ws.send(message)
                        ws.recv()
                    before = cpu()
                    for _ in range(args.messages // args.batch):
                        for _ in range(args.batch):
                            ws.send(message)
                        for _ in range(args.batch):
                            assert ws.recv() == message
                    per_message[kind].append(1e6 * (cpu() - before) / args.messages)
    finally:
        server.terminate()
        server.wait()
    print(f"{len(message)}-byte message, {args.batch} in flight, {args.messages} per run")
    print("| client | shard CPU per message (median) | runs |")
    print("| --- | ---: | --- |")
    for kind, runs in per_message.items():
        shown = ", ".join(f"{r:.1f}" for r in runs)
        print(f"| {kind} | {statistics.median(runs):.1f} µs | {shown} |")


if __name__ == "__main__":
    main()
