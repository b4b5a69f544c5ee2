"""``python -m haywire``: the supervisor.

Validates the config (errors name the key, exit status 2), picks the port (``--port 0``
reserves one free port for every worker) or binds the ``--uds`` Unix socket once for
every worker (removed at stop), or takes the listening socket inherited as ``--fd``,
starts one worker process per CPU, each
pinned to its CPU, restarts a worker that dies, replaces every worker gracefully on
SIGHUP, and on SIGTERM or SIGINT stops every worker gracefully (killing one still
running after ``--workers-kill-timeout``) and exits 0 once all are done. A worker that
has served ``--max-requests`` (plus up to ``--max-requests-jitter``), has run
``--workers-lifetime``, or whose memory stays over ``--workers-max-rss``, is replaced
the same graceful way.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from typing import Any

from . import __version__, ciphers, handoff, logconfig
from .exporter import Exporter
from .procname import set_process_name
from ._haywire import ConfigError, ConfigSummary, UnixSocket, bind_unix, check_config

CONFIG_ERROR = 2
FATAL = 3
# Python apps take uploads (forms, files) that the core's 1 MiB default would refuse.
DEFAULT_MAX_BODY = 16 << 20
INTERFACES = ("auto", "wsgi", "asgi", "asgi3", "asgi2", "native")
FORCED_ASGI = {"asgi2": "2", "asgi3": "3"}
# The core's stock access-log formats; any other --access-log-format is a template.
LOG_FORMATS = ("combined", "json")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m haywire",
        description="Serve a WSGI, ASGI or native Python app on Haywire's shards.",
    )
    parser.add_argument("app", help="the app as module:attribute")
    parser.add_argument("--interface", choices=INTERFACES, default="auto",
                        help="how the app is called (default: auto, told by what the app's"
                        " call takes: WSGI, ASGI 3, ASGI 2 or a haywire.App); asgi tells ASGI 3"
                        " from ASGI 2 apps as uvicorn does, asgi3/asgi2 say which")
    parser.add_argument("--config", metavar="PATH",
                        help="config.toml (server, limits, timeouts, stock routes)")
    parser.add_argument("--version", action="version", version=f"haywire {__version__}")
    parser.add_argument("--address", "--host", metavar="ADDR", help="overrides server.address")
    parser.add_argument("--port", type=int, metavar="N", help="overrides server.port; 0 picks a free port")
    parser.add_argument("--uds", metavar="PATH",
                        help="serve on this Unix socket instead of TCP (overrides server.unix;"
                        " the file's mode is server.unix_mode)")
    parser.add_argument("--uds-permissions", type=_octal, metavar="MODE",
                        help="the --uds socket file's permission bits, in octal, e.g. 660"
                        " (overrides server.unix_mode)")
    parser.add_argument("--fd", type=int, metavar="N",
                        help="serve the listening socket (TCP or Unix) this process inherited"
                        " as descriptor N, e.g. from systemd or a parent process, instead of"
                        " binding --address/--port or --uds")
    parser.add_argument("--process-name", metavar="NAME",
                        help="name the supervisor NAME and worker k NAME:wk, as ps -o comm,"
                        " top and pgrep show them (15 bytes at most, the kernel's limit)")
    parser.add_argument("--pid-file", metavar="PATH",
                        help="write the supervisor's pid to PATH (removed at exit)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="worker processes (overrides server.shards; default: one per CPU"
                        " the process may use)")
    parser.add_argument("--max-in-flight", "--limit-concurrency", "--backpressure", type=int,
                        default=2048, metavar="N",
                        help="requests a worker holds unanswered; past it: 503 (default 2048;"
                        " uvicorn's and Granian's names accepted)")
    parser.add_argument("--respawn-interval", type=_duration, default=1.0, metavar="SECONDS",
                        help="a worker that dies is restarted no sooner than this after it"
                        " started, so one that keeps dying is restarted once per interval"
                        " (Granian's; default 1)")
    parser.add_argument("--respawn-failed-workers", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="restart a worker that dies (the default); with"
                        " --no-respawn-failed-workers (Granian's default) a worker's"
                        " unexpected exit stops the server, exit status 1")
    parser.add_argument("--workers-kill-timeout", type=_duration, metavar="SECONDS",
                        help="a stopping worker still running after this is killed"
                        " (default: server.shutdown_grace + 5)")
    parser.add_argument("--stall-timeout", "--timeout-worker-healthcheck", type=_duration, default=0.0,
                        metavar="SECONDS",
                        help="a worker whose app leaves requests waiting this long without"
                        " beginning one (deadlocked, looping, its event loop blocked) is"
                        " aborted, with every thread's traceback, and replaced; its"
                        " connections are lost (default 0: never; uvicorn's name accepted)")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                        help="ASGI lifespan: auto serves without it an app that raises on it,"
                        " on makes that a failed start, off never runs it (uvicorn's; default auto)")
    parser.add_argument("--reset-contextvars", action="store_true",
                        help="run each ASGI request in an empty contextvars context, not a"
                        " copy of the worker's (uvicorn's)")
    parser.add_argument("--lifespan-timeout", type=_duration, default=60.0, metavar="SECONDS",
                        help="ASGI lifespan startup/shutdown longer than this fails (default 60)")
    parser.add_argument("--forwarded-allow-ips", metavar="LIST",
                        default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
                        help="proxies (addresses, CIDR networks, '*') whose Forwarded and"
                        " X-Forwarded-For/-Proto headers set the client and scheme"
                        " (default: $FORWARDED_ALLOW_IPS or 127.0.0.1; '' for none)")
    parser.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=True,
                        help="--no-proxy-headers: trust no proxy's headers, as"
                        " --forwarded-allow-ips '' (uvicorn's)")
    parser.add_argument("--ssl-certfile", "--ssl-certificate", metavar="PATH", help="PEM certificate chain: serve HTTPS"
                        " (overrides tls.cert)")
    parser.add_argument("--ssl-keyfile", metavar="PATH", help="PEM private key (overrides tls.key)")
    parser.add_argument("--ssl-keyfile-password", metavar="TEXT",
                        help="password of an encrypted --ssl-keyfile (PEM ENCRYPTED PRIVATE KEY;"
                        " overrides tls.key_password; handed to workers in their environment,"
                        " not on their command lines)")
    parser.add_argument("--ssl-protocol-min", choices=("tls1.2", "tls1.3"),
                        help="oldest TLS version served (Granian's; overrides tls.min_version;"
                        " default tls1.2)")
    parser.add_argument("--ssl-ca-certs", metavar="PATH",
                        help="PEM CA certificates: ask clients for a certificate they signed"
                        " (mutual TLS; overrides tls.client_ca)")
    parser.add_argument("--ssl-crl", metavar="PATH",
                        help="PEM certificate revocation lists of the --ssl-ca-certs CAs: a"
                        " client certificate they revoke is refused (Granian's; overrides"
                        " tls.client_crl)")
    parser.add_argument("--ssl-cert-reqs", type=int, choices=(0, 1, 2), metavar="0|1|2",
                        help="with --ssl-ca-certs: 2 a client certificate is required (the"
                        " default), 1 optional, 0 not asked (uvicorn's values; overrides"
                        " tls.client_auth)")
    parser.add_argument("--ssl-version", type=_ssl_version, metavar="N",
                        help="uvicorn's: 17 (its default, ssl.PROTOCOL_TLS_SERVER) or 2"
                        " (PROTOCOL_TLS): the newest version both sides have, TLS 1.3 or 1.2;"
                        " one version alone is not offered (--ssl-protocol-min tls1.3: 1.3"
                        " only)")
    parser.add_argument("--ssl-ciphers", type=_cipher_list, metavar="LIST",
                        help="the TLS 1.2 suites to offer, as an OpenSSL cipher string"
                        " (uvicorn's; read by Python's OpenSSL, e.g. ECDHE+AESGCM:!aNULL or"
                        " ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256): those it"
                        " selects that Haywire has; TLS 1.3 names restrict TLS 1.3 too; its"
                        " default TLSv1: every suite (overrides tls.ciphers)")
    parser.add_argument("--ssl-ca", metavar="PATH",
                        help="Granian's --ssl-ca-certs: client certificates these CAs signed"
                        " are verified when presented, and required with --ssl-client-verify")
    parser.add_argument("--ssl-client-verify", action=argparse.BooleanOptionalAction,
                        default=False,
                        help="require a client certificate signed by the --ssl-ca (or"
                        " --ssl-ca-certs, or the config's tls.client_ca) CAs (Granian's)")
    parser.add_argument("--backlog", type=int, metavar="N",
                        help="listen backlog (overrides server.backlog)")
    parser.add_argument("--access-log", nargs="?", const="stdout", metavar="PATH",
                        help="the server's access log, to stdout or appended to PATH"
                        " (overrides log.access)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_const", const="off",
                        help="no access log (overrides log.access; the default without --config)")
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        help="level of Python's root logger in the workers (default info, or"
                        " what --log-config sets)")
    parser.add_argument("--log-config", metavar="PATH",
                        help="Python logging config for the workers: a .json or .yaml file"
                        " for logging.config.dictConfig, else an ini file for fileConfig")
    parser.add_argument("--app-dir", metavar="DIR",
                        help="import the app from DIR (default: the working directory)")
    parser.add_argument("--env-file", "--env-files", action="append", metavar="PATH",
                        help="set the variables of this .env file in the workers' environment"
                        " (repeatable: an earlier file's value wins, and the environment's"
                        " over all; needs python-dotenv)")
    parser.add_argument("--working-dir", metavar="DIR",
                        help="run as if started in DIR: the app, --config and other relative"
                        " paths are found from there (Granian's)")
    parser.add_argument("--factory", action=argparse.BooleanOptionalAction, default=False,
                        help="the app is a factory: call it (no arguments) to get the app")
    parser.add_argument("--max-requests", "--limit-max-requests", type=int, default=0, metavar="N",
                        help="replace a worker after it has served N requests (0: never)")
    parser.add_argument("--max-requests-jitter", "--limit-max-requests-jitter", type=int, default=0,
                        metavar="N",
                        help="each worker serves up to N more than --max-requests (picked at"
                        " random), so that workers started together are not replaced together")
    parser.add_argument("--workers-lifetime", type=_duration, metavar="SECONDS",
                        help="replace a worker once it has run this long (default: never)")
    parser.add_argument("--workers-max-rss", type=int, default=0, metavar="MIB",
                        help="replace a worker whose resident memory is over MIB mebibytes"
                        " (0: never; checked every --rss-sample-interval)")
    parser.add_argument("--rss-sample-interval", type=_duration, default=30.0, metavar="SECONDS",
                        help="how often --workers-max-rss is checked (default 30)")
    parser.add_argument("--rss-samples", type=int, default=1, metavar="N",
                        help="consecutive checks over --workers-max-rss before a worker is"
                        " replaced (default 1)")
    parser.add_argument("--reload", action=argparse.BooleanOptionalAction, default=False,
                        help="development: restart the workers when a .py file under the"
                        " current directory changes")
    parser.add_argument("--reload-dir", "--reload-paths", action="append", metavar="DIR",
                        help="with --reload: watch DIR instead of the working directory"
                        " (repeatable)")
    parser.add_argument("--reload-include", action="append", metavar="GLOB",
                        help="with --reload: watch files whose name matches GLOB too, e.g."
                        " '*.html' (repeatable; *.py always)")
    parser.add_argument("--reload-exclude", action="append", metavar="GLOB",
                        help="with --reload: ignore files and directories whose name or path"
                        " under the watched directory matches GLOB (repeatable)")
    parser.add_argument("--reload-ignore-dirs", action="append", metavar="NAME",
                        help="with --reload: ignore directories named NAME (Granian's;"
                        " repeatable)")
    parser.add_argument("--reload-ignore-patterns", action="append", type=_regex,
                        metavar="REGEX",
                        help="with --reload: ignore files and directories whose name REGEX"
                        " matches (Granian's; repeatable)")
    parser.add_argument("--reload-ignore-paths", action="append", metavar="PATH",
                        help="with --reload: ignore PATH and what is under it (Granian's;"
                        " repeatable)")
    parser.add_argument("--reload-delay", type=_duration, default=1.0, metavar="SECONDS",
                        help="with --reload: time between two looks at the files (default 1)")
    parser.add_argument("--reload-tick", dest="reload_delay", type=_milliseconds, metavar="MS",
                        help="--reload-delay in milliseconds, 50 to 5000 (Granian's)")
    parser.add_argument("--reload-ignore-worker-failure", action=argparse.BooleanOptionalAction,
                        default=False,
                        help="with --reload: a worker that cannot start the app waits for"
                        " the next change instead of stopping the server (Granian's)")
    parser.add_argument("--threads", "--blocking-threads", type=int, default=1, metavar="N",
                        help="WSGI and sync native: threads per worker running the app"
                        " (default 1: the fastest for apps that do not wait)")
    parser.add_argument("--static-path-mount", metavar="DIR",
                        help="serve the files under DIR at --static-path-route, in Rust, without"
                        " entering Python (Granian's; adds a [[route]] handler = \"static\" to"
                        " --config's)")
    parser.add_argument("--static-path-route", default="/static", metavar="PATH",
                        help="where --static-path-mount's files are served (default /static)")
    parser.add_argument("--static-path-expires", type=_whole_duration, default=86400,
                        metavar="SECONDS",
                        help="Cache-Control max-age of --static-path-mount's files (default"
                        " 86400, as Granian; 0: none)")
    parser.add_argument("--static-path-dir-to-file", metavar="FILE",
                        help="the file a directory under --static-path-mount serves (Granian's;"
                        " default index.html)")
    parser.add_argument("--max-body-size", type=int, metavar="BYTES",
                        help="largest request body, read whole before the app runs; larger"
                        " gets 413 (overrides limits.max_request_size; default without"
                        f" --config: {DEFAULT_MAX_BODY >> 20} MiB)")
    parser.add_argument("--root-path", "--url-path-prefix", default="", metavar="PATH",
                        help="the prefix the app is mounted at (SCRIPT_NAME, root_path)")
    parser.add_argument("--http", choices=("auto", "1", "h11", "httptools", "2"), default="auto",
                        help="uvicorn's and Granian's choice of HTTP implementation: Haywire's"
                        " own HTTP/1.1 parser serves in every case but 2, which is refused")
    parser.add_argument("--ws", nargs="?", const="auto", default="auto",
                        choices=("auto", "none", "websockets", "websockets-sansio", "wsproto"),
                        help="none: no WebSocket, an upgrade reaches an ASGI app as a plain"
                        " request (uvicorn's; any other value: Haywire's own WebSocket)")
    parser.add_argument("--no-ws", dest="ws", action="store_const", const="none",
                        help="as --ws none (Granian's)")
    parser.add_argument("--ws-max-size", type=int, metavar="BYTES",
                        help="largest WebSocket message; larger closes the connection with 1009"
                        " (overrides websocket.max_message_size; default 16 MiB)")
    parser.add_argument("--ws-max-queue", type=int, metavar="N",
                        help="received WebSocket messages a connection may leave unread before"
                        " the server stops reading it (uvicorn's; default: no count, 64 KiB"
                        " of them)")
    parser.add_argument("--ws-ping-interval", type=_duration, metavar="SECONDS",
                        help="ping a WebSocket client silent this long, keeping the connection"
                        " open through proxies (overrides websocket.ping_interval; default 20;"
                        " 0: never)")
    parser.add_argument("--ws-ping-timeout", type=_duration, metavar="SECONDS",
                        help="close (1011) a pinged WebSocket client that sends nothing for this"
                        " long (overrides websocket.ping_timeout; default 20)")
    parser.add_argument("--ws-per-message-deflate", choices=("true", "false"),
                        help="accept WebSocket clients' permessage-deflate offers (overrides"
                        " websocket.compression; default true)")
    parser.add_argument("--server-header", metavar="TEXT",
                        help="the Server header of every response the app does not set its"
                        " own on (overrides server.server_header; default haywire)")
    parser.add_argument("--no-server-header", dest="server_header", action="store_const",
                        const="", help="send no Server header (the app's own still goes)")
    parser.add_argument("--header", action="append", type=_header, metavar="NAME:VALUE",
                        help="a header for every response that has none of that name"
                        " (repeatable; merged over server.headers; server:TEXT sets"
                        " the Server header)")
    parser.add_argument("--access-log-format", metavar="combined|json|TEMPLATE",
                        help="the access log's lines: combined (the default), json, or a"
                        " template such as '{remote} \"{request}\" {status} {bytes}' (overrides"
                        " log.format, or log.template; fields: remote, time, time_iso, request,"
                        " method, target, path, query, protocol, scheme, status, bytes, referer,"
                        " user_agent, header:NAME, shard, duration_us, duration_ms)")
    parser.add_argument("--access-log-fmt", dest="access_log_format", type=_granian_log_format,
                        metavar="FORMAT",
                        help="Granian's access log format, e.g. '%%(addr)s \"%%(method)s"
                        " %%(path)s\" %%(status)d %%(dt_ms).3f', as the template that writes"
                        " it (its time in ISO 8601, UTC; widths and precisions not applied)")
    parser.add_argument("--http1-keep-alive", action=argparse.BooleanOptionalAction,
                        help="--no-http1-keep-alive: close every connection after its response"
                        " (Granian's; overrides server.keep_alive)")
    parser.add_argument("--http1-pipeline-flush", action="store_true",
                        help="accepted for Granian's command lines: the responses to pipelined"
                        " requests always leave in one write")
    parser.add_argument("--use-colors", action=argparse.BooleanOptionalAction, default=False,
                        help="color the level names of the workers' log lines (the default"
                        " format only, not --log-config's; uvicorn's, whose default colors a"
                        " terminal: here off unless asked)")
    parser.add_argument("--timeout-keep-alive", type=_duration, metavar="SECONDS",
                        help="close a connection idle this long between requests (uvicorn's;"
                        " overrides timeouts.keep_alive; default 60)")
    parser.add_argument("--timeout-graceful-shutdown", type=_duration, metavar="SECONDS",
                        help="at a stop, how long busy connections may finish before they are"
                        " closed (uvicorn's; overrides server.shutdown_grace; default 10)")
    parser.add_argument("--http1-header-read-timeout", type=int, metavar="MS",
                        help="time a client has to send a request head, in milliseconds"
                        " (Granian's; overrides timeouts.header)")
    parser.add_argument("--h11-max-incomplete-event-size", type=int, metavar="BYTES",
                        help="largest request head; larger gets 431 (uvicorn's; overrides"
                        " limits.max_head_size)")
    parser.add_argument("--metrics", action=argparse.BooleanOptionalAction, default=False,
                        help="serve every worker's counters, Prometheus's text format, at"
                        " /metrics on --metrics-address:--metrics-port (Granian's), apart"
                        " from the app's port")
    parser.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR",
                        help="--metrics: the address to listen on (default 127.0.0.1)")
    parser.add_argument("--metrics-port", type=int, default=9090, metavar="N",
                        help="--metrics: the port to listen on (default 9090)")
    parser.add_argument("--metrics-scrape-interval", type=_duration, metavar="SECONDS",
                        help="accepted for Granian's command lines: the workers publish their"
                        " counters every 250 ms, so a scrape is never older")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop for asgi and async native apps (auto: uvloop if installed)")
    return parser.parse_args(argv)


def _octal(value: str) -> int:
    try:
        return int(value, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal number: {value!r}") from None


def _flag(value: str | None) -> bool | None:
    """A true/false flag's value; None when not given."""
    return None if value is None else value == "true"


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _duration(value: str) -> float:
    """Seconds, as a number or as Granian writes durations: 90, 1.5, 2m, 1h30m, 1d."""
    try:
        return float(value)
    except ValueError:
        pass
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise argparse.ArgumentTypeError(f"not seconds nor a duration such as 1h30m: {value!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _whole_duration(value: str) -> int:
    seconds = _duration(value)
    if seconds != int(seconds):
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {value!r}")
    return int(seconds)


def _ssl_version(value: str) -> int:
    """--ssl-version: uvicorn's ssl.PROTOCOL_* number; only the negotiating ones."""
    if value not in ("2", "17"):
        raise argparse.ArgumentTypeError(
            f"{value}: one protocol version alone is not offered; 17 (or 2) negotiates TLS"
            " 1.3 or 1.2, and --ssl-protocol-min tls1.3 serves 1.3 only")
    return int(value)


def _cipher_list(value: str) -> list[str]:
    """--ssl-ciphers: an OpenSSL cipher string as tls.ciphers' names (empty: all)."""
    try:
        return ciphers.cipher_list(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _milliseconds(value: str) -> float:
    """--reload-tick: milliseconds, 50 to 5000 as Granian's, as seconds."""
    try:
        ms = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 50 <= ms <= 5000:
        raise argparse.ArgumentTypeError(f"must be 50 to 5000 (milliseconds), not {ms}")
    return ms / 1000


# Granian's access-log atoms and the log.template fields that write them.
GRANIAN_ATOMS = {"addr": "remote", "time": "time_iso", "dt_ms": "duration_ms",
                 "status": "status", "path": "path", "query_string": "query",
                 "method": "method", "scheme": "scheme", "protocol": "protocol"}
_GRANIAN_PIECE = re.compile(
    r"%%|%\((\w+|header\{[^}]+\})\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|[{}]|%")


def _granian_log_format(value: str) -> str:
    """--access-log-fmt: Granian's %-style line as a log.template."""
    def piece(match: re.Match) -> str:
        text, atom = match.group(0), match.group(1)
        if text in ("{", "}"):
            return text * 2
        if text == "%%":
            return "%"
        if atom is None:
            raise argparse.ArgumentTypeError(
                f"a '%' at {match.start()} starts no %(atom)s: write %% for a percent sign")
        if atom.startswith("header{"):
            return "{header:" + atom[7:-1].strip() + "}"
        if atom not in GRANIAN_ATOMS:
            raise argparse.ArgumentTypeError(
                f"unknown atom %({atom}); the atoms: {', '.join(GRANIAN_ATOMS)}, header{{NAME}}")
        return "{" + GRANIAN_ATOMS[atom] + "}"

    return _GRANIAN_PIECE.sub(piece, value)


def _regex(value: str) -> re.Pattern:
    try:
        return re.compile(value)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression: {value!r}: {e}") from None


def _header(value: str) -> tuple[str, str]:
    name, colon, text = value.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME:VALUE")
    return name.strip(), text.strip()


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the flags set (dotted, as in config.toml), for check_config and
    every worker; a flag not given sets nothing."""
    headers = dict(args.header or [])
    server_header = args.server_header
    for name in list(headers):
        if name.lower() == "server":  # as uvicorn: --header server:X names the server
            server_header = headers.pop(name)
    client_ca, cert_reqs = _client_auth(args)
    values = {
        "server.address": args.address,
        "server.port": args.port,
        "server.unix": args.uds,
        "server.backlog": args.backlog,
        "server.keep_alive": args.http1_keep_alive,
        "server.server_header": server_header,
        "server.headers": headers or None,
        "tls.cert": args.ssl_certfile,
        "tls.key": args.ssl_keyfile,
        "tls.key_password": args.ssl_keyfile_password,
        "tls.min_version": (args.ssl_protocol_min or "").removeprefix("tls") or None,
        "tls.client_ca": client_ca if cert_reqs != 0 else "",
        "tls.client_crl": args.ssl_crl,
        "tls.client_auth": {1: "optional", 2: "required"}.get(cert_reqs),
        "tls.ciphers": args.ssl_ciphers,
        "limits.max_request_size": args.max_body_size,
        "limits.max_head_size": args.h11_max_incomplete_event_size,
        "timeouts.keep_alive": args.timeout_keep_alive,
        "timeouts.header": (args.http1_header_read_timeout / 1000
                            if args.http1_header_read_timeout is not None else None),
        "server.shutdown_grace": args.timeout_graceful_shutdown,
        "log.access": args.access_log,
        "log.format": args.access_log_format if args.access_log_format in LOG_FORMATS else None,
        "log.template": (args.access_log_format
                         if args.access_log_format not in (None, *LOG_FORMATS) else None),
        "websocket.max_message_size": args.ws_max_size,
        "websocket.ping_interval": args.ws_ping_interval,
        "websocket.ping_timeout": args.ws_ping_timeout,
        "websocket.compression": _flag(args.ws_per_message_deflate),
    }
    if args.static_path_mount:
        route = {"handler": "static", "path": args.static_path_route,
                 "dir": os.path.abspath(args.static_path_mount)}
        if args.static_path_expires > 0:
            route["max_age"] = args.static_path_expires
        if args.static_path_dir_to_file is not None:
            route["index"] = args.static_path_dir_to_file
        # An array replaces the file's: the file's routes go first, unchanged.
        values["route"] = [*_config_file(args.config).get("route", []), route]
    return {key: value for key, value in values.items() if value is not None}


# The keys of the route the --static-path-* flags add, and the flag that sets each.
_STATIC_FLAGS = {"dir": "--static-path-mount", "index": "--static-path-dir-to-file",
                 "path": "--static-path-route"}


def _static_flag_error(args: argparse.Namespace, error: str) -> str | None:
    """The config check's `error` about the route the --static-path-* flags add (the
    one after the file's routes), told as the flag's: the user wrote no such route."""
    if not args.static_path_mount:
        return None
    index = len(_config_file(args.config).get("route", []))
    found = re.search(rf"route\[{index}\]\.(\w+)`?: (.*)", error)
    if found is None or found[1] not in _STATIC_FLAGS:
        return None
    return f"{_STATIC_FLAGS[found[1]]}: {found[2]}"


def _client_auth(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """The client CAs' file and uvicorn's --ssl-cert-reqs value the TLS flags ask for
    (None: the config's). Granian's --ssl-ca verifies a certificate when presented,
    and --ssl-client-verify requires one."""
    reqs = args.ssl_cert_reqs
    if reqs is None and args.ssl_client_verify:
        reqs = 2
    elif reqs is None and args.ssl_ca:
        reqs = 1
    return args.ssl_ca_certs or args.ssl_ca, reqs


def _config_file(path: str | None) -> dict:
    """The config file `path` as TOML (empty if it cannot be read: the config check
    then says why)."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def reserve_port(address: str) -> tuple[socket.socket, int]:
    """Binds (without listening) a SO_REUSEPORT socket on a free port, held for the
    supervisor's life so the port stays ours; workers bind it too."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address, 0))
    return sock, sock.getsockname()[1]


class Child:
    """One worker process as the supervisor sees it."""

    def __init__(self, index: int, proc: subprocess.Popen, ready_fd: int, replaces: int | None) -> None:
        self.index = index
        self.proc = proc
        self.ready_fd: int | None = ready_fd
        self.ready = False
        self.started = time.monotonic()
        self.kill_at: float | None = None
        # After SIGHUP: the pid of the old worker this one retires once it is ready.
        self.replaces = replaces
        self.retiring = False
        # Consecutive --workers-max-rss checks that found it over the limit.
        self.over_rss = 0
        # When --workers-lifetime next replaces it (moved on at each attempt, so a
        # successor that cannot start is retried a lifetime later, not at once).
        self.expires: float | None = None


class Supervisor:
    """Starts, watches and stops the workers.

    Signal handlers only note the signal; the main loop acts on it, so a signal that
    arrives while a worker is being spawned cannot miss that worker. The loop waits on
    the signal wake-up pipe and the workers' ready pipes, reaps every child (as PID 1
    it also reaps orphans), restarts workers, and kills the ones that outlive their
    stop by the kill timeout.
    """

    def __init__(self, args: argparse.Namespace, config: ConfigSummary, port: int, stats_dir: str,
                 listener: UnixSocket | socket.socket | None = None) -> None:
        self.args = args
        self.address = config.address
        self.port = port
        self.stats_dir = stats_dir
        # --uds: the socket bound here once; --fd: the one inherited. Passed to every
        # worker.
        self.listener = listener
        allowed = sorted(os.sched_getaffinity(0))
        cpus = list(config.cpus) if config.pinned and config.cpus else allowed
        self.workers = args.workers or config.shards or len(cpus)
        # server.placement = "pinned": worker k on the k-th CPU (round robin past the
        # end); "unbound": the kernel schedules the workers.
        self.cpus: list[int | None] = [
            cpus[i % len(cpus)] if config.pinned else None for i in range(self.workers)
        ]
        self.kill_timeout = (
            args.workers_kill_timeout
            if args.workers_kill_timeout is not None
            else config.shutdown_grace + 5.0
        )
        self.children: dict[int, Child] = {}  # pid -> child
        self.restarts: dict[int, tuple[float, int | None]] = {}  # index -> (when, replaces)
        self.signals: list[int] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.failed = False
        # --reload-ignore-worker-failure: workers that could not start the app, started
        # again at the next SIGHUP (a change to the sources).
        self.awaiting_change: set[int] = set()
        # When --workers-max-rss is next checked (None: no limit).
        self.rss_check_at: float | None = (
            time.monotonic() + args.rss_sample_interval if args.workers_max_rss > 0 else None)

    def log(self, message: str) -> None:
        print(f"haywire: {message}", file=sys.stderr, flush=True)

    def spawn(self, index: int, replaces: int | None = None) -> None:
        args = self.args
        ready_r, ready_w = os.pipe()
        overrides, env = handoff.hand_over(
            dict(args.overrides, **{"server.address": self.address, "server.port": self.port}))
        command = [
            sys.executable, "-m", "haywire.worker",
            "--index", str(index),
            "--workers", str(self.workers),
            "--overrides", json.dumps(overrides),
            # asgi2/asgi3 force the ASGI version that `asgi` detects.
            "--interface", "asgi" if args.interface in FORCED_ASGI else args.interface,
            "--asgi-version", FORCED_ASGI.get(args.interface, "auto"),
            "--stats-dir", self.stats_dir,
            "--max-in-flight", str(args.max_in_flight),
            "--loop", args.loop,
            "--lifespan", args.lifespan,
            *(["--ws-max-queue", str(args.ws_max_queue)] if args.ws_max_queue else []),
            *(["--no-ws"] if args.ws == "none" else []),
            *(["--reset-contextvars"] if args.reset_contextvars else []),
            "--lifespan-timeout", str(args.lifespan_timeout),
            "--stall-timeout", str(args.stall_timeout),
            "--forwarded-allow-ips", args.forwarded_allow_ips if args.proxy_headers else "",
            "--root-path", args.root_path,
            "--threads", str(args.threads),
            "--max-requests", str(args.max_requests),
            "--max-requests-jitter", str(args.max_requests_jitter),
            *(["--log-level", args.log_level] if args.log_level else []),
            *(["--log-config", args.log_config] if args.log_config else []),
            *(["--use-colors"] if args.use_colors else []),
            *(["--app-dir", args.app_dir] if args.app_dir else []),
            *(["--factory"] if args.factory else []),
            *(["--process-name", f"{args.process_name}:w{index}"] if args.process_name else []),
            "--parent", str(os.getpid()),
            "--ready-fd", str(ready_w),
        ]
        passed = [ready_w]
        if self.listener is not None:
            command += ["--listen-fd", str(self.listener.fileno())]
            passed.append(self.listener.fileno())
        if self.cpus[index] is not None:
            command += ["--cpu", str(self.cpus[index])]
        if args.config:
            command += ["--config", args.config]
        command.append(args.app)
        try:
            # Its own process group: a terminal's Ctrl-C reaches only the supervisor,
            # which then stops each worker once.
            proc = subprocess.Popen(command, process_group=0, pass_fds=passed, env=env)
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        os.set_blocking(ready_r, False)
        child = Child(index, proc, ready_r, replaces)
        self.children[proc.pid] = child
        self.selector.register(ready_r, selectors.EVENT_READ, child)

    def _close_ready(self, child: Child) -> None:
        if child.ready_fd is not None:
            self.selector.unregister(child.ready_fd)
            os.close(child.ready_fd)
            child.ready_fd = None

    def _on_ready_pipe(self, child: Child) -> None:
        """A worker's pipe: `r` when it is ready, `q<n>;` when it has served its n
        requests of --max-requests (it is then replaced like on SIGHUP), EOF when it
        exits."""
        try:
            data = os.read(child.ready_fd, 16)
        except BlockingIOError:
            return
        if not data:
            self._close_ready(child)
            return  # exited: reaped below
        if b"r" in data and not child.ready:
            child.ready = True
            old = self.children.get(child.replaces) if child.replaces is not None else None
            if old is not None and not self.stopping:
                old.retiring = True
                self.terminate(old)
        served = re.search(rb"q(\d+);", data)
        if served:
            self._replace(child, f"served {int(served[1])} requests (--max-requests)")

    def _replace(self, child: Child, why: str) -> None:
        """Starts a successor for `child`, which is stopped once the successor is ready
        (as on SIGHUP); nothing when one is already coming or the server stops."""
        pid = child.proc.pid
        if self.stopping or child.retiring or any(c.replaces == pid for c in self.children.values()):
            return
        self.log(f"worker {child.index} (pid {pid}) {why}; replacing it")
        self.spawn(child.index, replaces=pid)

    def _check_rss(self) -> None:
        """--workers-max-rss: replaces each ready worker found over the limit
        --rss-samples checks in a row."""
        limit = self.args.workers_max_rss
        for child in list(self.children.values()):
            if not child.ready or child.retiring:
                continue
            rss = resident_mib(child.proc.pid)
            child.over_rss = child.over_rss + 1 if rss is not None and rss > limit else 0
            if child.over_rss >= self.args.rss_samples:
                child.over_rss = 0
                self._replace(child, f"uses {rss:.0f} MiB, over --workers-max-rss {limit}")

    def terminate(self, child: Child) -> None:
        if child.kill_at is None:
            child.kill_at = time.monotonic() + self.kill_timeout
        try:
            os.kill(child.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.restarts.clear()
        if self.listener is not None:
            # --uds: the socket file goes now: new clients are refused (a proxy tries
            # another upstream) while the workers drain what is queued, as a TCP
            # listener closes. --fd: only this process's copy closes.
            self.listener.close()
        for child in list(self.children.values()):
            self.terminate(child)

    def reload(self) -> None:
        """SIGHUP: a new worker for every running one; each old worker is stopped
        gracefully once its successor is ready (the port stays served throughout)."""
        if self.stopping:
            return
        self.log("SIGHUP: restarting the workers")
        for pid, child in list(self.children.items()):
            if not child.retiring and child.replaces is None:
                self.spawn(child.index, replaces=pid)
        for index in sorted(self.awaiting_change):
            self.spawn(index)
        self.awaiting_change.clear()

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.stop()
            elif signum == signal.SIGHUP:
                self.reload()

    def _on_exit(self, pid: int, status: int) -> None:
        child = self.children.pop(pid, None)
        if child is None:
            return  # an orphan reparented to us (PID 1)
        self._close_ready(child)
        code = os.waitstatus_to_exitcode(status)
        child.proc.returncode = code
        if self.stopping or child.retiring:
            return
        if code == FATAL and not child.ready:
            if child.replaces is not None:
                self.log(f"worker {child.index} cannot start the app; keeping the running one")
                return
            if self.args.reload_ignore_worker_failure:
                self.log(f"worker {child.index} cannot start the app; starting it at the next"
                         " change to the sources (--reload-ignore-worker-failure)")
                self.awaiting_change.add(child.index)
                return
            self.log(f"worker {child.index} cannot start the app; stopping")
            self.failed = True
            self.stop()
            return
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        if not self.args.respawn_failed_workers:
            self.log(f"worker {child.index} (pid {pid}) {how}; stopping"
                     " (--no-respawn-failed-workers)")
            self.failed = True
            self.stop()
            return
        self.log(f"worker {child.index} (pid {pid}) {how}; restarting")
        # A worker that keeps dying at once is restarted at most once per interval.
        self.restarts[child.index] = (child.started + self.args.respawn_interval, child.replaces)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._on_exit(pid, status)

    def _timers(self) -> float | None:
        """Runs due restarts, kills, memory checks and lifetime replacements; returns
        seconds until the next."""
        now = time.monotonic()
        lifetime = self.args.workers_lifetime
        for child in list(self.children.values()):
            if lifetime is None or not child.ready or child.retiring:
                continue
            if child.expires is None:
                child.expires = child.started + lifetime
            if child.expires <= now:
                child.expires = now + lifetime
                self._replace(child, f"has run {lifetime:g} s (--workers-lifetime)")
        if self.rss_check_at is not None and self.rss_check_at <= now:
            self.rss_check_at = now + self.args.rss_sample_interval
            if not self.stopping:
                self._check_rss()
        for index, (when, replaces) in list(self.restarts.items()):
            if when <= now:
                del self.restarts[index]
                self.spawn(index, replaces if replaces in self.children else None)
        for pid, child in list(self.children.items()):
            if child.kill_at is not None and child.kill_at <= now:
                self.log(f"worker {child.index} (pid {pid}) did not stop within"
                         f" {self.kill_timeout:g} s; killing it")
                child.kill_at = None
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadlines = [when for when, _ in self.restarts.values()]
        deadlines += [c.kill_at for c in self.children.values() if c.kill_at is not None]
        if self.rss_check_at is not None:
            deadlines.append(self.rss_check_at)
        deadlines += [c.expires for c in self.children.values()
                      if c.expires is not None and c.ready and not c.retiring]
        return max(0.0, min(deadlines) - now) if deadlines else None

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, lambda signum, _frame: self.signals.append(signum))
        if self.args.reload:
            args = self.args
            watched = Watched(args.reload_dir or [os.getcwd()],
                              ["*.py", *(args.reload_include or [])], args.reload_exclude or [],
                              args.reload_ignore_dirs or [], args.reload_ignore_patterns or [],
                              args.reload_ignore_paths or [])
            threading.Thread(target=watch_sources, args=(watched, args.reload_delay),
                             daemon=True).start()
        try:
            for index in range(self.workers):
                self._handle_signals()
                if self.stopping:
                    break
                self.spawn(index)
            while True:
                self._handle_signals()
                self._reap()
                timeout = self._timers()
                if self.stopping and not self.children:
                    break
                for key, _ in self.selector.select(timeout):
                    if key.data is None:
                        try:
                            os.read(wake_r, 4096)
                        except BlockingIOError:
                            pass
                    else:
                        self._on_ready_pipe(key.data)
        finally:
            signal.set_wakeup_fd(-1)
            for fd in (wake_r, wake_w):
                os.close(fd)
        return 1 if self.failed else 0


def resident_mib(pid: int) -> float | None:
    """A process's resident memory (VmRSS) in MiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Watched:
    """What --reload watches: the files under `roots` whose name matches one of
    `include`, skipping files and directories whose name, or path relative to its
    root, matches one of `exclude` (globs), whose name one of `patterns` (regular
    expressions) finds, directories named one of `dirs`, and `paths` and what is under
    them (and always dot directories, __pycache__ and node_modules)."""

    SKIPPED = (".*", "__pycache__", "node_modules")

    def __init__(self, roots: list[str], include: list[str], exclude: list[str],
                 dirs: list[str] = (), patterns: list[re.Pattern] = (),
                 paths: list[str] = ()) -> None:
        self.roots = [os.path.abspath(root) for root in roots]
        self.include = include
        self.exclude = exclude
        self.dirs = set(dirs)
        self.patterns = list(patterns)
        self.paths = [os.path.abspath(path) for path in paths]

    def _excluded(self, root: str, path: str, globs: Any) -> bool:
        relative = os.path.relpath(path, root)
        name = os.path.basename(path)
        return (any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in globs)
                or any(pattern.search(name) for pattern in self.patterns)
                or any(path == p or path.startswith(p + os.sep) for p in self.paths))

    def files(self) -> dict[str, float]:
        """The watched files' modification times."""
        found = {}
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d not in self.dirs and not self._excluded(
                    root, os.path.join(folder, d), (*self.SKIPPED, *self.exclude))]
                for name in files:
                    path = os.path.join(folder, name)
                    if not any(fnmatch.fnmatch(name, p) for p in self.include) or \
                            self._excluded(root, path, self.exclude):
                        continue
                    try:
                        found[path] = os.stat(path).st_mtime
                    except OSError:
                        pass
        return found


def watch_sources(watched: Watched, delay: float) -> None:
    """--reload: polls the watched files every `delay` seconds (--reload-delay); on a
    change, sends this process SIGHUP (a graceful restart of every worker)."""
    seen = watched.files()
    while True:
        time.sleep(delay)
        now = watched.files()
        if now != seen:
            seen = now
            print("haywire: source changed; restarting the workers", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGHUP)


def load_env_file(path: str) -> None:
    """--env-file: sets the file's variables in this process's environment, which the
    workers inherit; a variable already set keeps its value (as uvicorn)."""
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise RuntimeError("needs python-dotenv (pip install 'haywire[dotenv]')") from None
    if not os.path.isfile(path):
        raise RuntimeError("no such file")
    load_dotenv(path, override=False)


def _bad_setup(args: argparse.Namespace) -> str | None:
    """What is wrong with --app-dir, --reload-*, --log-config or --env-file, checked
    here so that a mistake stops the server at once, named, instead of every worker
    failing (or a watcher watching nothing)."""
    if args.app_dir is not None and not os.path.isdir(args.app_dir):
        return f"--app-dir {args.app_dir}: not a directory"
    for flag in ("--reload-dir", "--reload-include", "--reload-exclude", "--reload-ignore-dirs",
                 "--reload-ignore-patterns", "--reload-ignore-paths",
                 "--reload-ignore-worker-failure"):
        if getattr(args, flag[2:].replace("-", "_")) and not args.reload:
            return f"{flag} needs --reload"
    for folder in args.reload_dir or []:
        if not os.path.isdir(folder):
            return f"--reload-dir {folder}: not a directory"
    for flag, path, check in (("--log-config", args.log_config,
                               lambda p: logconfig.configure(args.log_level, p)),
                              *(("--env-file", path, load_env_file) for path in args.env_file or ())):
        if path is None:
            continue
        try:
            check(path)
        except Exception as e:
            return f"{flag} {path}: {e}"
    return None


def inherited_listener(fd: int) -> socket.socket:
    """--fd: the inherited descriptor `fd` as a socket; ValueError (naming the flag)
    unless it is a listening stream socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise ValueError(f"--fd {fd}: {e.strerror or e}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                              socket.SO_ACCEPTCONN):
        sock.detach()
        raise ValueError(f"--fd {fd}: not a listening stream socket")
    return sock


def write_pid_file(path: str) -> str | None:
    """Writes this process's pid to `path`; what is wrong when it cannot, or when the
    file names another process still running (a second server started by mistake)."""
    try:
        with open(path) as f:
            other = int(f.read().strip() or 0)
    except (OSError, ValueError):
        other = 0
    if other > 0 and other != os.getpid():
        try:
            os.kill(other, 0)
            return f"process {other} named there is running"
        except ProcessLookupError:
            pass  # stale: its server died without removing it
        except PermissionError:
            return f"process {other} named there is running"
    try:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as e:
        return e.strerror or str(e)
    return None


def remove_pid_file(path: str) -> None:
    """Removes the pid file if it still names this process."""
    try:
        with open(path) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(path)
    except OSError:
        pass


def _bad_flag(args: argparse.Namespace) -> str | None:
    """What is wrong with the first flag whose value is out of its range (the config's
    integer types bound some: a value past them would fail in a worker, unnamed)."""
    def value(flag: str) -> Any:
        return getattr(args, flag[2:].replace("-", "_"))

    unsigned = {"--port": 2**16, "--metrics-port": 2**16, "--backlog": 2**32,
                "--max-body-size": 2**64, "--static-path-expires": 2**64}
    for flag, limit in unsigned.items():
        if value(flag) is not None and not 0 <= value(flag) < limit:
            return f"{flag} must be 0 to {limit - 1}, not {value(flag)}"
    minimums = (("--workers", 0), ("--threads", 1), ("--max-in-flight", 1),
                ("--max-requests", 0), ("--max-requests-jitter", 0), ("--workers-max-rss", 0),
                ("--rss-samples", 1), ("--workers-kill-timeout", 0), ("--stall-timeout", 0),
                ("--ws-max-queue", 1))
    for flag, least in minimums:
        if value(flag) is not None and not value(flag) >= least:
            return f"{flag} must be at least {least}, not {value(flag)}"
    if args.http == "2":
        return "--http 2: Haywire serves HTTP/1.1 only"
    if args.ssl_ca and args.ssl_ca_certs:
        return "--ssl-ca and --ssl-ca-certs both name the client CAs: give one"
    if args.ssl_client_verify and args.ssl_cert_reqs not in (None, 2):
        return (f"--ssl-client-verify requires a client certificate, --ssl-cert-reqs"
                f" {args.ssl_cert_reqs} does not: give one of them")
    if args.ssl_client_verify and not (args.ssl_ca or args.ssl_ca_certs or _config_file(
            args.config).get("tls", {}).get("client_ca")):
        return "--ssl-client-verify needs --ssl-ca: the CAs that sign client certificates"
    if value("--uds-permissions") is not None and not 0 <= value("--uds-permissions") <= 0o777:
        return f"--uds-permissions must be 0 to 777 (octal), not {value('--uds-permissions'):o}"
    for flag in ("--rss-sample-interval", "--lifespan-timeout", "--workers-lifetime",
                 "--reload-delay", "--respawn-interval"):
        if value(flag) is not None and not value(flag) > 0:
            return f"{flag} must be more than 0, not {value(flag)}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.working_dir is not None:
        try:
            os.chdir(args.working_dir)
        except OSError as e:
            print(f"haywire: --working-dir {args.working_dir}: {e.strerror}", file=sys.stderr)
            return CONFIG_ERROR
    source = args.config or "(defaults)"
    if (bad := _bad_flag(args)) is not None:
        print(f"haywire: {bad}", file=sys.stderr)
        return CONFIG_ERROR
    try:
        if args.max_body_size is None and not args.config:
            args.max_body_size = DEFAULT_MAX_BODY
        args.overrides = config_overrides(args)
        config = check_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"haywire: {_static_flag_error(args, str(e)) or f'config error in {source}: {e}'}",
              file=sys.stderr)
        return CONFIG_ERROR
    allowed = os.sched_getaffinity(0)
    if config.pinned and not set(config.cpus) <= allowed:
        print(f"haywire: config error in {source}: key `server.cpus`: {sorted(set(config.cpus) - allowed)}"
              f" not among the CPUs this process may use ({sorted(allowed)})", file=sys.stderr)
        return CONFIG_ERROR
    if (bad := _bad_setup(args)) is not None:
        print(f"haywire: {bad}", file=sys.stderr)
        return CONFIG_ERROR
    module, _, attribute = args.app.partition(":")
    if not module or not attribute:
        print(f"haywire: app {args.app!r} must look like module:attribute", file=sys.stderr)
        return CONFIG_ERROR
    reserved = None
    listener: UnixSocket | socket.socket | None = None
    port = config.port
    scheme = "https" if config.tls else "http"
    if args.fd is not None:
        if args.uds:
            print("haywire: --fd and --uds both name the socket to serve: give one",
                  file=sys.stderr)
            return CONFIG_ERROR
        try:
            listener = inherited_listener(args.fd)
        except ValueError as e:
            print(f"haywire: {e}", file=sys.stderr)
            return CONFIG_ERROR
        name = listener.getsockname()
        if listener.family == socket.AF_UNIX:
            where = f"{scheme}+unix://{name}"
        else:
            where = f"{scheme}://{name[0]}:{name[1]}"
    elif config.unix:
        # A path cannot be bound twice: bound once here, every worker serves it.
        mode = config.unix_mode if args.uds_permissions is None else args.uds_permissions
        try:
            listener = bind_unix(config.unix, mode, config.backlog)
        except OSError as e:
            print(f"haywire: cannot listen: {e}", file=sys.stderr)
            return 1
        where = f"{scheme}+unix://{config.unix}"
    else:
        if port == 0:
            reserved, port = reserve_port(config.address)
        where = f"{scheme}://{config.address}:{port}"
    if args.process_name:
        set_process_name(args.process_name)
    if args.pid_file is not None and (bad := write_pid_file(args.pid_file)) is not None:
        print(f"haywire: --pid-file {args.pid_file}: {bad}", file=sys.stderr)
        return CONFIG_ERROR
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    stats_dir = tempfile.mkdtemp(prefix="haywire-", dir=shm)
    exporter = None
    try:
        if args.metrics:
            try:
                exporter = Exporter(args.metrics_address, args.metrics_port, stats_dir)
            except OSError as e:
                print(f"haywire: --metrics-address {args.metrics_address} --metrics-port"
                      f" {args.metrics_port}: cannot listen: {e.strerror or e}", file=sys.stderr)
                return 1
        supervisor = Supervisor(args, config, port, stats_dir, listener)
        print(f"haywire: serving {args.app} ({args.interface}) on {where}"
              f" with {supervisor.workers} worker(s)", flush=True)
        if exporter is not None:
            print(f"haywire: metrics on {exporter.url}", flush=True)
        return supervisor.run()
    finally:
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        if args.pid_file is not None:
            remove_pid_file(args.pid_file)
        shutil.rmtree(stats_dir, ignore_errors=True)
        if reserved is not None:
            reserved.close()
        if listener is not None:
            listener.close()


if __name__ == "__main__":
    sys.exit(main())
