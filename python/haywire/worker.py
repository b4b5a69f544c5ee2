"""A worker process: one interpreter, pinned to one CPU, running one Haywire shard on
its own SO_REUSEPORT listener (or on the supervisor's ``--uds`` socket, which every
worker shares) and answering requests on its main thread.

Started by the supervisor (``python -m haywire``); not meant to be run by hand.
Exit status 3 means the app cannot start (import error, lifespan startup failed):
the supervisor then stops instead of restarting it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import faulthandler
import gc
import importlib
import inspect
import json
import logging
import os
import random
import signal
import socket
import sys
import traceback
from typing import Any, Callable

from . import asgi, handoff, logconfig, websocket, wsgi
from ._haywire import Worker
from .procname import set_process_name
from .native import App

FATAL = 3


def import_app(spec: str, app_dir: str | None = None) -> Any:
    """Imports ``module:attribute`` (the attribute may be dotted), looking first in
    `app_dir` (--app-dir), else in the working directory."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"app {spec!r} must look like module:attribute")
    if app_dir is not None:
        sys.path.insert(0, os.path.abspath(app_dir))
    elif "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


# What `--interface auto` found, as the worker runs it (interface, ASGI version) and
# as it says it.
_AS_RUN = {"native": ("native", "auto"), "wsgi": ("wsgi", "auto"), "asgi3": ("asgi", "3"),
           "asgi2": ("asgi", "2")}
_NAMES = {"native": "a haywire.App", "wsgi": "a WSGI app", "asgi3": "an ASGI 3 app",
          "asgi2": "an ASGI 2 app"}
# `--interface auto`: an app's interface by the positional parameters its call takes.
_BY_ARITY = {1: "asgi2", 2: "wsgi", 3: "asgi3"}


def detect_interface(app: Any) -> str | None:
    """`--interface auto`: "native" for a haywire.App, "asgi3" for a coroutine function
    or an object whose ``__call__`` is one, else by what a call takes: the scope alone
    (an ASGI 2 class or function, its result then awaited), environ and start_response
    (WSGI), or scope, receive and send (ASGI 3 returning an awaitable). None when the
    call's parameters say none of these (``*args``, as wsgiref's validator takes)."""
    if isinstance(app, App):
        return "native"
    call = app if inspect.isclass(app) or inspect.isroutine(app) else getattr(app, "__call__", None)
    if not inspect.isclass(app) and inspect.iscoroutinefunction(call):
        return "asgi3"
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    required = [p for p in parameters
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return _BY_ARITY.get(len(required))


def _die_with_parent(parent: int | None) -> None:
    """Asks the kernel to SIGTERM this process when the supervisor dies, and exits if
    it has died already. The supervisor is named by pid, not assumed to be other than
    PID 1: in a container it is PID 1."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        sys.exit(0)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            if kind == "uvloop":
                raise
    return asyncio.new_event_loop()


def _counted(handler: Any, args: argparse.Namespace) -> Any:
    """With --max-requests, `handler` counting requests: at the limit (plus a random
    share of --max-requests-jitter, this worker's own) the worker asks the supervisor
    (on its pipe) for a successor, which stops it once ready."""
    if args.max_requests <= 0 or args.ready_fd is None:
        return handler
    limit = args.max_requests + random.randint(0, max(args.max_requests_jitter, 0))
    count = 0

    def counted(request: Any) -> None:
        nonlocal count
        count += 1
        if count == limit:
            os.write(args.ready_fd, b"q%d;" % limit)
        handler(request)

    return counted


def _freeze_heap() -> None:
    """Moves what the app has built so far (modules, classes, its caches) out of the
    garbage collector's reach, as Instagram's servers do: a full collection then
    traverses only what came after. Without it, each full collection walked the whole
    heap with the Python thread stopped (5-6 ms for the tiny benchmark app, 10 of them
    in 3 s of ASGI keep-alive load): that was the tail of the latency."""
    gc.collect()
    gc.freeze()


def _batch_shard(worker: Worker) -> None:
    """Makes the shard thread SCHED_BATCH: a readiness (a client's request, the app's
    answer) then no longer preempts the Python thread on their shared core, and the shard
    runs when Python waits or its time slice ends, taking everything that came meanwhile
    in one turn. Preempted per event, it woke about once per request under a Django load,
    each wake a turn of glommio's reactor (several io_uring_enter calls): 0.9 wake-ups and
    about 100 us of shard CPU per request, against 0.07 and 35 us as a batch thread. When
    Python waits, the core is free and the shard runs at once, as before. A policy the
    operator chose (`chrt`, a service manager's CPUSchedulingPolicy) is kept."""
    tid = worker.shard_thread_id
    try:
        if tid is not None and os.sched_getscheduler(tid) == os.SCHED_OTHER:
            os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
    except OSError as e:  # a sandbox refusing it: serve as before
        logging.getLogger("haywire").debug("shard thread stays SCHED_OTHER: %s", e)


def _wait(worker: Worker, wait: Callable[[], Any], exits: list[BaseException]) -> bool:
    """Calls `wait`, where the main thread sleeps and Python runs the app's own signal
    handlers; False when one raised. An `Exception` is shown and the worker serves on,
    as after an app's error (a failed debug dump must not take it down); `SystemExit` or
    `KeyboardInterrupt` asks the process to end: the worker stops gracefully, as on
    SIGTERM, and the caller raises it once the queued requests are answered."""
    try:
        wait()
        return True
    except Exception:
        traceback.print_exc()
    except BaseException as exit:
        worker.stop()
        exits.append(exit)
    return False


def serve_threaded(worker: Worker, handler: Any, threads: int) -> None:
    """Runs `handler` on a pool of `threads` threads: while one request waits (a
    database, an HTTP call, a slow client), the GIL lets another run. The main thread
    waits on the doorbell in `select` (GIL released) and hands each request over; the
    shard's --max-in-flight bound still caps the requests queued."""
    import concurrent.futures
    import select

    def run(request: Any) -> None:
        request.begin()  # a request waiting for a free thread has not begun
        try:
            handler(request)
        except BaseException:
            traceback.print_exc()

    exits: list[BaseException] = []
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="haywire-wsgi") as pool:
        fd = worker.fileno()
        while True:
            requests = worker.take()
            if requests is None:
                break
            for request in requests:
                pool.submit(run, request)
            requests = request = None  # the pool holds the only references
            _wait(worker, lambda: select.select([fd], [], []), exits)
    if exits:
        raise exits[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haywire.worker")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--config")
    parser.add_argument("--overrides", type=json.loads, default={},
                        help="the supervisor's config overrides, as JSON")
    parser.add_argument("--interface", default="wsgi")
    parser.add_argument("--asgi-version", choices=("auto", "2", "3"), default="auto")
    parser.add_argument("--stats-dir")
    parser.add_argument("--max-in-flight", type=int, default=2048)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--ws-max-queue", type=int)
    parser.add_argument("--no-ws", action="store_true")
    parser.add_argument("--reset-contextvars", action="store_true")
    parser.add_argument("--lifespan-timeout", type=float, default=60.0)
    parser.add_argument("--stall-timeout", type=float, default=0.0)
    parser.add_argument("--forwarded-allow-ips", default="")
    parser.add_argument("--root-path", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-requests", type=int, default=0)
    parser.add_argument("--max-requests-jitter", type=int, default=0)
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--process-name")
    parser.add_argument("--log-level")
    parser.add_argument("--log-config")
    parser.add_argument("--use-colors", action="store_true")
    parser.add_argument("--app-dir")
    parser.add_argument("--parent", type=int)
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--listen-fd", type=int,
                        help="the supervisor's --uds or --fd socket, served instead of"
                        " binding one")
    parser.add_argument("app")
    args = parser.parse_args(argv)
    args.overrides = handoff.take_over(args.overrides)

    _die_with_parent(args.parent)
    if args.process_name:
        set_process_name(args.process_name)
    try:
        logconfig.configure(args.log_level, args.log_config, args.use_colors)
    except Exception:
        traceback.print_exc()
        return FATAL
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.stall_timeout > 0:
        # The shard aborts a stalled worker: SIGABRT then prints where every thread is.
        faulthandler.enable()
    try:
        app = import_app(args.app, args.app_dir)
        if args.factory:
            app = app()
    except Exception:
        traceback.print_exc()
        return FATAL
    if args.interface == "auto":
        detected = detect_interface(app)
        if args.index == 0:
            found = (_NAMES[detected] if detected else
                     "served as WSGI: its parameters do not tell (give --interface if it is not)")
            print(f"haywire: {args.app} is {found} (--interface auto)", file=sys.stderr)
        args.interface, args.asgi_version = _AS_RUN[detected or "wsgi"]

    listener = socket.socket(fileno=args.listen_fd) if args.listen_fd is not None else None
    native = args.interface == "native"
    if native and not isinstance(app, App):
        print(f"haywire: {args.app} is not a haywire.App", file=sys.stderr)
        return FATAL
    try:
        worker = Worker(
            path=args.config,
            overrides=args.overrides,
            index=args.index,
            stats_dir=args.stats_dir,
            max_in_flight=args.max_in_flight,
            routes=[(method, path) for method, path, _ in app.routes] if native else [],
            fallback=not native,
            forwarded_allow_ips=args.forwarded_allow_ips,
            root_path=args.root_path,
            stall_timeout=args.stall_timeout,
            websocket=args.interface == "asgi" and not args.no_ws,
            ws_max_queue=args.ws_max_queue,
            listener=listener,
        )
    except Exception as e:
        print(f"haywire: worker {args.index}: {e}", file=sys.stderr)
        return FATAL
    if listener is None:
        server_name = args.overrides.get("server.address") or "localhost"
        # WSGI SERVER_PORT and ASGI `server`.
        wsgi_port: int | str = args.overrides.get("server.port") or 0
        server: tuple[str, int | None] = (server_name, wsgi_port)
    elif listener.family == socket.AF_UNIX:
        # A Unix socket has no port: SERVER_NAME is its path and SERVER_PORT empty (as
        # gunicorn without a Host header), and ASGI's `server` is `[path, None]` as the
        # spec says; apps build URLs from the Host header, which a proxy sets.
        server_name = listener.getsockname()
        wsgi_port, server = "", (server_name, None)
    else:  # --fd: an inherited TCP listener
        server_name, wsgi_port = listener.getsockname()[:2]
        server = (server_name, wsgi_port)
    if listener is not None:
        listener.close()  # the Worker holds its own descriptor

    def start() -> None:
        _freeze_heap()
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            # `worker.start` makes SIGINT a graceful stop, as SIGTERM (a terminal's
            # Ctrl-C reaches every worker); Python's KeyboardInterrupt on top would end
            # the worker at once, with a traceback. An app's own handler is kept.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            port = worker.start()
        except Exception as e:
            # Cannot bind or start the shard: restarting would not help.
            print(f"haywire: worker {args.index} cannot start: {e}", file=sys.stderr)
            sys.exit(FATAL)
        _batch_shard(worker)
        cpu = "-" if args.cpu is None else args.cpu
        where = f"unix {server_name}" if wsgi_port == "" else f"port {port}"
        line = f"haywire: worker {args.index} ready (pid {os.getpid()}, cpu {cpu}, {where})\n"
        # One write: workers share the supervisor's stdout, and print() writes the text
        # and its newline apart, so lines of two workers could interleave.
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), line.encode())
        if args.ready_fd is not None:
            # Tells the supervisor the app has started: an exit after this is a crash
            # to restart, not a start-up failure.
            # The pipe stays open: `q` later asks to be replaced (--max-requests).
            os.write(args.ready_fd, b"r")

    if args.interface == "wsgi" or (native and not app.is_async):
        if args.interface == "wsgi":
            handler = wsgi.make_handler(app, server_name, wsgi_port, args.workers > 1,
                                        args.threads > 1)
        else:
            handler = app.dispatcher()
        handler = _counted(handler, args)
        start()
        if args.threads > 1:
            serve_threaded(worker, handler, args.threads)
            return 0
        exits: list[BaseException] = []
        while not _wait(worker, lambda: worker.serve(handler), exits):
            pass
        if exits:
            raise exits[0]
        return 0

    loop = _new_loop(args.loop)
    asyncio.set_event_loop(loop)
    state: dict = {}
    lifespan = None
    if args.interface == "asgi":
        if args.asgi_version == "2" or (args.asgi_version == "auto" and asgi.is_asgi2(app)):
            app = asgi.as_asgi3(app)

        async def start_lifespan() -> asgi.Lifespan:
            span = asgi.Lifespan(app, state, required=args.lifespan == "on")
            await asyncio.wait_for(span.startup(), args.lifespan_timeout)
            return span

        try:
            if args.lifespan != "off":
                lifespan = loop.run_until_complete(start_lifespan())
        except asyncio.TimeoutError:
            print(f"haywire: worker {args.index}: lifespan startup took longer than"
                  f" {args.lifespan_timeout:g} s (--lifespan-timeout)", file=sys.stderr)
            return FATAL
        except Exception:
            traceback.print_exc()
            return FATAL
        handler = asgi.make_handler(app, loop, server, state, worker, args.reset_contextvars)
        if not args.no_ws:
            on_websocket = websocket.make_handler(app, loop, server, state)
            loop.add_reader(worker.websocket_fileno(),
                            lambda: on_websocket(worker.take_websocket()))
    else:
        handler = app.async_dispatcher(loop)

    handler = _counted(handler, args)

    def on_ready() -> None:
        # Each request begins when its handler runs (`asgi_start`, `begin`): one that
        # blocks the loop leaves the rest of its batch waiting (--stall-timeout).
        requests = worker.take()
        if requests is None:
            loop.stop()
            return
        for request in requests:
            handler(request)

    loop.add_reader(worker.fileno(), on_ready)
    start()
    exits: list[BaseException] = []
    while not _wait(worker, loop.run_forever, exits):
        pass
    loop.remove_reader(worker.fileno())
    if lifespan is not None:
        try:
            loop.run_until_complete(asyncio.wait_for(lifespan.shutdown(), args.lifespan_timeout))
        except asyncio.TimeoutError:
            print(f"haywire: worker {args.index}: lifespan shutdown took longer than"
                  f" {args.lifespan_timeout:g} s (--lifespan-timeout)", file=sys.stderr)
    loop.close()
    if exits:
        raise exits[0]
    return 0


if __name__ == "__main__":
    sys.exit(main())
