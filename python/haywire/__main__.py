"""``python -m haywire``: the supervisor.

Validates the config (errors name the key, exit status 2), picks the port (``--port 0``
reserves one free port for every worker), starts one worker process per CPU, each
pinned to its CPU, restarts a worker that dies, and on SIGTERM or SIGINT stops every
worker gracefully and exits 0 once all are done.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from ._haywire import ConfigError, ConfigSummary, check_config

CONFIG_ERROR = 2
FATAL = 3
INTERFACES = ("wsgi", "asgi", "native")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m haywire",
        description="Serve a WSGI, ASGI or native Python app on Haywire's shards.",
    )
    parser.add_argument("app", help="the app as module:attribute")
    parser.add_argument("--interface", choices=INTERFACES, default="wsgi",
                        help="how the app is called (default: wsgi)")
    parser.add_argument("--config", metavar="PATH",
                        help="config.toml (server, limits, timeouts, stock routes)")
    parser.add_argument("--address", metavar="ADDR", help="overrides server.address")
    parser.add_argument("--port", type=int, metavar="N", help="overrides server.port; 0 picks a free port")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="worker processes (overrides server.shards; default: one per CPU"
                        " the process may use)")
    parser.add_argument("--max-in-flight", type=int, default=2048, metavar="N",
                        help="requests a worker holds unanswered; past it: 503 (default 2048)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop for asgi and async native apps (auto: uvloop if installed)")
    return parser.parse_args(argv)


def reserve_port(address: str) -> tuple[socket.socket, int]:
    """Binds (without listening) a SO_REUSEPORT socket on a free port, held for the
    supervisor's life so the port stays ours; workers bind it too."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address, 0))
    return sock, sock.getsockname()[1]


class Supervisor:
    """Starts, watches and stops the workers."""

    def __init__(self, args: argparse.Namespace, config: ConfigSummary, port: int, stats_dir: str) -> None:
        self.args = args
        self.address = config.address
        self.port = port
        self.stats_dir = stats_dir
        allowed = sorted(os.sched_getaffinity(0))
        cpus = list(config.cpus) if config.pinned and config.cpus else allowed
        self.workers = args.workers or config.shards or len(cpus)
        # server.placement = "pinned": worker k on the k-th CPU (round robin past the
        # end); "unbound": the kernel schedules the workers.
        self.cpus: list[int | None] = [
            cpus[i % len(cpus)] if config.pinned else None for i in range(self.workers)
        ]
        self.children: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}
        self.stopping = False
        self.failed = False

    def spawn(self, index: int) -> None:
        args = self.args
        command = [
            sys.executable, "-m", "haywire.worker",
            "--index", str(index),
            "--workers", str(self.workers),
            "--address", self.address,
            "--port", str(self.port),
            "--interface", args.interface,
            "--stats-dir", self.stats_dir,
            "--max-in-flight", str(args.max_in_flight),
            "--loop", args.loop,
        ]
        if self.cpus[index] is not None:
            command += ["--cpu", str(self.cpus[index])]
        if args.config:
            command += ["--config", args.config]
        command.append(args.app)
        # Its own process group: a terminal's Ctrl-C reaches only the supervisor, which
        # then stops each worker once.
        child = subprocess.Popen(command, process_group=0)
        self.children[child.pid] = index
        self.started[index] = time.monotonic()

    def stop(self, *_: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(self.workers):
            self.spawn(index)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self.children:
                continue
            index = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                continue
            if code == FATAL:
                print(f"haywire: worker {index} cannot start the app; stopping", file=sys.stderr, flush=True)
                self.failed = True
                self.stop()
                continue
            print(f"haywire: worker {index} (pid {pid}) exited with status {code}; restarting",
                  file=sys.stderr, flush=True)
            # A worker that keeps dying at once is restarted at most once a second.
            if time.monotonic() - self.started.get(index, 0.0) < 1.0:
                time.sleep(1.0)
            if not self.stopping:
                self.spawn(index)
        return 1 if self.failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = args.config or "(defaults)"
    try:
        config = check_config(args.config, args.address, args.port)
    except ConfigError as e:
        print(f"haywire: config error in {source}: {e}", file=sys.stderr)
        return CONFIG_ERROR
    except (OverflowError, TypeError) as e:
        print(f"haywire: config error: key `server.port`: {e}", file=sys.stderr)
        return CONFIG_ERROR
    allowed = os.sched_getaffinity(0)
    if config.pinned and not set(config.cpus) <= allowed:
        print(f"haywire: config error in {source}: key `server.cpus`: {sorted(set(config.cpus) - allowed)}"
              f" not among the CPUs this process may use ({sorted(allowed)})", file=sys.stderr)
        return CONFIG_ERROR
    if args.workers < 0:
        print("haywire: --workers must not be negative", file=sys.stderr)
        return CONFIG_ERROR
    module, _, attribute = args.app.partition(":")
    if not module or not attribute:
        print(f"haywire: app {args.app!r} must look like module:attribute", file=sys.stderr)
        return CONFIG_ERROR
    reserved = None
    port = config.port
    if port == 0:
        reserved, port = reserve_port(config.address)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    stats_dir = tempfile.mkdtemp(prefix="haywire-", dir=shm)
    supervisor = Supervisor(args, config, port, stats_dir)
    print(
        f"haywire: serving {args.app} ({args.interface}) on http://{config.address}:{port}"
        f" with {supervisor.workers} worker(s)",
        flush=True,
    )
    try:
        return supervisor.run()
    finally:
        shutil.rmtree(stats_dir, ignore_errors=True)
        if reserved is not None:
            reserved.close()


if __name__ == "__main__":
    sys.exit(main())
