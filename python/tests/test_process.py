"""The process model: supervisor, workers, restarts, signals, config, stats."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import Server, read_response, request, run_cli, worker_pids


def test_sigkilled_worker_is_replaced(serve):
    server = serve("wsgi_app:app", workers=2)
    pids = worker_pids(server)
    os.kill(pids[0], signal.SIGKILL)
    server.wait_for(r"worker \d+ ready", 3)
    new = worker_pids(server)[2]
    assert new not in pids
    for _ in range(20):
        assert request(server, "GET", "/hello")[2] == b"hello world"


def test_a_worker_that_keeps_dying_is_restarted_once_per_respawn_interval():
    # It dies 0.2 s after each start: with the default interval (1 s) it would be
    # restarted four or five times in 4.5 s; with 3 s, at 3 s only.
    server = Server("crash_app:app", extra=["--respawn-interval", "3"])
    try:
        server.wait_for(r"exited with status 1; restarting", stderr=True)
        time.sleep(4.5)
        deaths = [line for line in server.errors if "exited with status 1; restarting" in line]
        assert 1 <= len(deaths) <= 2, server.errors
    finally:
        server.stop()


def test_stats_and_metrics_sum_workers(serve, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[[route]]\nhandler = "stats"\npath = "/stats"\n'
        '[[route]]\nhandler = "metrics"\npath = "/metrics"\n'
        '[[route]]\nhandler = "text"\npath = "/text"\nbody = "stock"\n'
    )
    server = serve("wsgi_app:app", workers=2, config=str(config))
    # New connections spread over both workers' listeners.
    for _ in range(40):
        assert request(server, "GET", "/hello")[0] == 200
    assert request(server, "GET", "/text")[2] == b"stock"  # answered in Rust
    time.sleep(0.6)  # two publication periods
    report = json.loads(request(server, "GET", "/stats")[2])
    assert len(report["shards"]) == 2
    assert sorted(s["shard"] for s in report["shards"]) == [0, 1]
    assert report["total"]["requests"] == sum(s["requests"] for s in report["shards"])
    assert report["total"]["requests"] >= 41
    assert all(s["requests"] > 0 for s in report["shards"])
    metrics = request(server, "GET", "/metrics")[2].decode()
    assert 'shard="total"' in metrics and 'shard="1"' in metrics


def test_metrics_exporter_serves_every_workers_counters_on_its_own_port(serve):
    import urllib.error
    import urllib.request

    from conftest import free_port

    port = free_port()
    server = serve("wsgi_app:app", workers=2, extra=["--metrics", "--metrics-port", str(port)])
    server.wait_for(rf"metrics on http://127\.0\.0\.1:{port}/metrics$")
    for _ in range(40):
        assert request(server, "GET", "/hello")[0] == 200
    assert request(server, "GET", "/metrics")[2] != b""  # the app's port: the app's path

    def total() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = reply.read().decode()
        assert 'shard="0"' in text and 'shard="1"' in text
        found = re.search(r'^haywire_requests_total\{shard="total",method="GET"\} (\d+)$', text,
                          re.M)
        return int(found[1])

    deadline = time.monotonic() + 10
    while total() < 40:  # the workers publish every 250 ms
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    assert elsewhere.value.code == 404


def test_idle_connections_to_the_metrics_port_hold_a_bounded_number_of_threads(serve):
    import socket
    import urllib.request

    from conftest import free_port
    from haywire.exporter import MAX_CONNECTIONS

    port = free_port()
    server = serve("wsgi_app:app", extra=["--metrics", "--metrics-port", str(port)])
    server.wait_for("metrics on")

    def threads() -> int:
        with open(f"/proc/{server.proc.pid}/status") as status:
            return int(next(l for l in status if l.startswith("Threads:")).split()[1])

    before = threads()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        time.sleep(1.0)
        assert threads() <= before + MAX_CONNECTIONS
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 15  # the held slots come back as their reads end
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                assert reply.status == 200
                break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_a_metrics_port_taken_stops_the_server_naming_the_flag():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", "0", "--metrics", "--metrics-port", str(port), "wsgi_app:app")
    assert result.returncode == 1
    assert f"--metrics-port {port}: cannot listen" in result.stderr
    elsewhere = run_cli("--port", "0", "--metrics", "--metrics-address", "192.0.2.1",
                        "wsgi_app:app")
    assert elsewhere.returncode == 1 and "--metrics-address 192.0.2.1" in elsewhere.stderr


def test_sigterm_exits_zero_after_draining(serve):
    server = serve("wsgi_app:app", workers=2)
    assert request(server, "GET", "/hello")[0] == 200
    assert server.stop() == 0


def test_port_zero_is_shared_by_all_workers():
    server = Server("wsgi_app:app", workers=2, port=0)
    try:
        server.ready()
        line = server.wait_for(r"serving")[0]
        port = int(line.rsplit(":", 1)[1].split()[0])
        assert port != 0
        server.port = port
        ports = {line.split("port ")[1].rstrip(")\n") for line in server.lines if "ready" in line}
        assert ports == {str(port)}
        assert request(server, "GET", "/hello")[0] == 200
    finally:
        assert server.stop() == 0


def test_config_error_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nport = "x"\n')
    result = run_cli("--config", str(config), "wsgi_app:app")
    assert result.returncode == 2
    assert "server.port" in result.stderr
    config.write_text('[server]\nbogus = 1\n')
    result = run_cli("--config", str(config), "wsgi_app:app")
    assert result.returncode == 2 and "bogus" in result.stderr


def test_unimportable_app_stops_the_supervisor():
    result = run_cli("--port", "0", "--workers", "1", "no_such_module:app")
    assert result.returncode == 1
    assert "cannot start the app" in result.stderr


def test_no_respawn_failed_workers_stops_the_server_when_one_dies(serve):
    server = serve("wsgi_app:app", workers=2, extra=["--no-respawn-failed-workers"])
    pids = worker_pids(server)
    os.kill(pids[0], signal.SIGKILL)
    assert server.proc.wait(20) == 1
    server.wait_for(r"killed by SIGKILL; stopping \(--no-respawn-failed-workers\)", stderr=True)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[1], 0)  # the other worker was stopped too


def test_reload_ignore_worker_failure_waits_for_a_fixed_app(tmp_path):
    module = tmp_path / "broken_app.py"
    module.write_text("raise RuntimeError('not yet')\n")
    server = Server("broken_app:app", cwd=tmp_path,
                    extra=["--reload", "--reload-tick", "100", "--reload-ignore-worker-failure"])
    try:
        server.wait_for(r"starting it at the next change", stderr=True)
        time.sleep(0.5)
        assert server.proc.poll() is None  # still watching, not stopped
        module.write_text('def app(environ, start_response):\n'
                          '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
                          '    return [b"fixed"]\n')
        os.utime(module, (time.time() + 5, time.time() + 5))
        server.ready()
        assert request(server, "GET", "/")[2] == b"fixed"
    finally:
        server.stop()


def test_full_queue_answers_503_at_once(serve):
    server = serve("wsgi_app:app", extra=["--max-in-flight", "1"])
    with server.connect() as slow:
        slow.sendall(b"GET /sleep?1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # the worker's only slot is taken
        started = time.monotonic()
        status, headers, _ = request(server, "GET", "/hello")
        assert status == 503 and headers["retry-after"] == "1"
        assert time.monotonic() - started < 0.5
        status, _, body, _ = read_response(slow)
        assert (status, body) == (200, b"slept")
    assert request(server, "GET", "/hello")[0] == 200


def test_rust_routes_answer_while_python_is_busy(serve, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[route]]\nhandler = "text"\npath = "/text"\nbody = "stock"\n'
                      '[[route]]\nhandler = "stats"\npath = "/stats"\n')
    server = serve("wsgi_app:app", config=str(config))
    with server.connect() as slow:
        slow.sendall(b"GET /sleep?1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # the Python thread is asleep in the app, holding the GIL
        started = time.monotonic()
        assert request(server, "GET", "/text")[2] == b"stock"
        assert request(server, "GET", "/stats")[0] == 200
        assert time.monotonic() - started < 0.5
        assert read_response(slow)[2] == b"slept"


def policies(pid: int) -> dict[int, tuple[str, int]]:
    """Each thread of `pid`: its name and scheduling policy."""
    threads = {}
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        with open(f"/proc/{pid}/task/{tid}/comm") as comm:
            threads[tid] = (comm.read().strip(), os.sched_getscheduler(tid))
    return threads


def as_policy(policy: str) -> list[str] | None:
    """A `wrap` running the server under `policy` (`chrt -o`: the default one)."""
    if policy == "-o":
        if os.sched_getscheduler(0) == os.SCHED_OTHER:
            return None
        if os.geteuid() != 0:  # leaving SCHED_IDLE (a run under `chrt -i 0`) needs root
            pytest.skip("the tests run under another policy, which only root can leave")
    return ["chrt", policy, "0"]


def test_shard_thread_is_a_batch_thread(serve):
    # Its wake-ups must not preempt the Python thread on their shared core (worker.py's
    # _batch_shard); the Python thread keeps the default policy.
    for interface, app in (("wsgi", "wsgi_app:app"), ("asgi", "asgi_app:app")):
        server = serve(app, interface=interface, workers=2, wrap=as_policy("-o"))
        for pid in worker_pids(server):
            threads = policies(pid)
            batch = [name for name, policy in threads.values() if policy == os.SCHED_BATCH]
            assert batch == ["haywire-0"], (interface, threads)
            assert threads[pid][1] == os.SCHED_OTHER
        assert request(server, "GET", "/hello")[0] == 200
        server.stop()


def test_a_policy_the_operator_chose_is_kept(serve):
    server = serve("wsgi_app:app", wrap=as_policy("-i"))
    for pid in worker_pids(server):
        assert {policy for _, policy in policies(pid).values()} == {os.SCHED_IDLE}
    assert request(server, "GET", "/hello")[0] == 200


def test_sigterm_lets_in_flight_requests_finish(serve):
    server = serve("wsgi_app:app")
    with server.connect() as slow:
        slow.sendall(b"GET /sleep?0.8 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        status, headers, body, _ = read_response(slow)
        assert (status, body) == (200, b"slept")
        assert headers.get("connection") == "close"
    assert server.proc.wait(15) == 0


def test_config_cpus_outside_the_allowed_set_is_a_config_error(tmp_path):
    config = tmp_path / "cpus.toml"
    config.write_text("[server]\ncpus = [4096]\n")
    result = run_cli("--config", str(config), "wsgi_app:app")
    assert result.returncode == 2 and "server.cpus" in result.stderr


def test_config_shards_sets_the_worker_count(serve, tmp_path):
    config = tmp_path / "shards.toml"
    config.write_text('[server]\nshards = 2\nplacement = "unbound"\n')
    server = Server("wsgi_app:app", workers=0, config=str(config))
    try:
        server.wait_for(r"worker \d+ ready", 2)
        assert all("cpu -" in line for line in server.lines if "ready" in line)
        assert request(server, "GET", "/hello")[2] == b"hello world"
    finally:
        assert server.stop() == 0


def test_port_taken_by_another_process_stops_the_server():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: the workers cannot share it
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--address", "127.0.0.1", "--port", str(port), "--workers", "1", "wsgi_app:app")
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_factory(serve):
    server = serve("wsgi_app:create_app", extra=["--factory"])
    assert request(server, "GET", "/hello")[2] == b"hello world"


def test_max_requests_replaces_the_worker_without_a_gap(serve):
    server = serve("wsgi_app:app", extra=["--max-requests", "5"])
    pids = set()
    deadline = time.monotonic() + 20
    while len(pids) < 2:  # requests keep coming while the successor starts
        assert time.monotonic() < deadline, pids
        status, _, body = request(server, "GET", "/pid")
        assert status == 200  # never refused: the successor is ready before the old stops
        pids.add(body)
    server.wait_for(re.escape("served 5 requests (--max-requests); replacing it"), stderr=True)


def test_max_requests_jitter_spreads_the_replacements(serve):
    # Each worker asks to be replaced after 2 + 0..50 requests: three in a row all at
    # exactly 2 (what no jitter gives) has a chance of 1 in 51^3.
    server = serve("wsgi_app:app", extra=["--max-requests", "2", "--max-requests-jitter", "50"])
    pattern = re.compile(r"served (\d+) requests \(--max-requests\); replacing it")

    def limits() -> list[int]:
        return [int(m[1]) for line in list(server.errors) if (m := pattern.search(line))]

    deadline = time.monotonic() + 60
    while len(limits()) < 3:
        assert time.monotonic() < deadline
        assert request(server, "GET", "/pid")[0] == 200
    limits = limits()
    assert all(2 <= n <= 52 for n in limits), limits
    assert any(n != 2 for n in limits), limits


def test_a_worker_over_the_memory_limit_is_replaced(serve):
    server = serve("wsgi_app:app", extra=["--workers-max-rss", "150",
                                          "--rss-sample-interval", "0.2"])
    first = request(server, "GET", "/pid")[2]
    time.sleep(1.0)  # checked five times, under the limit: kept
    assert request(server, "GET", "/pid")[2] == first
    assert request(server, "GET", "/grow")[2] == first  # now 200 MiB more
    deadline = time.monotonic() + 20
    while request(server, "GET", "/pid")[2] == first:  # served throughout
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.wait_for("over --workers-max-rss 150; replacing it", stderr=True)


def test_a_worker_is_replaced_after_its_lifetime(serve):
    server = serve("wsgi_app:app", extra=["--workers-lifetime", "1.5"])
    pids = {request(server, "GET", "/pid")[2]}
    deadline = time.monotonic() + 30
    while len(pids) < 3:  # two lifetimes: the successor gets one too
        assert time.monotonic() < deadline, pids
        status, _, pid = request(server, "GET", "/pid")
        assert status == 200  # served throughout (old and new overlap meanwhile)
        pids.add(pid)
        time.sleep(0.05)
    lines = [line for line in server.errors if "(--workers-lifetime); replacing it" in line]
    assert len(lines) >= 2 and "has run 1.5 s" in lines[0], server.errors


def test_bad_flag_values_are_refused_naming_the_flag():
    for flags in (["--max-requests-jitter", "-1"], ["--workers-max-rss", "-5"],
                  ["--rss-sample-interval", "0"], ["--rss-samples", "0"],
                  ["--port", "70000"], ["--backlog", "-1"], ["--max-body-size", "-1"],
                  ["--max-in-flight", "0"], ["--workers-kill-timeout", "-1"],
                  ["--lifespan-timeout", "0"], ["--threads", "0"],
                  ["--workers-lifetime", "0"], ["--ws-max-queue", "0"], ["--reload-delay", "0"],
                  ["--http", "2"], ["--reload-tick", "10"], ["--ssl-client-verify"],
                  ["--workers-lifetime", "1x"], ["--static-path-expires", "1.5"],
                  ["--metrics-port", "70000"], ["--ssl-ciphers", "DHE-RSA-AES128-GCM-SHA256"],
                  ["--ssl-ciphers", "nonsense"], ["--ssl-ciphers", ":"],
                  ["--ssl-version", "5"],
                  ["--ssl-ca", "a.pem", "--ssl-ca-certs", "b.pem"],
                  ["--ssl-client-verify", "--ssl-ca", "a.pem", "--ssl-cert-reqs", "1"]):
        result = run_cli(*flags, "wsgi_app:app")
        assert result.returncode == 2 and flags[0] in result.stderr, (flags, result.stderr)


# Other servers' spellings of the same flags: a uvicorn or Granian command line runs
# unchanged.
SPELLINGS = [
    (["--host", "0.0.0.0"], ["--address", "0.0.0.0"]),
    (["--limit-concurrency", "7"], ["--max-in-flight", "7"]),
    (["--backpressure", "7"], ["--max-in-flight", "7"]),
    (["--limit-max-requests", "9", "--limit-max-requests-jitter", "3"],
     ["--max-requests", "9", "--max-requests-jitter", "3"]),
    (["--url-path-prefix", "/api"], ["--root-path", "/api"]),
    (["--ssl-certificate", "c.pem"], ["--ssl-certfile", "c.pem"]),
    (["--reload-paths", "src"], ["--reload-dir", "src"]),
    (["--blocking-threads", "4"], ["--threads", "4"]),
    (["--timeout-worker-healthcheck", "5"], ["--stall-timeout", "5"]),
    (["--reload-tick", "250"], ["--reload-delay", "0.25"]),
    # Granian's durations.
    (["--workers-lifetime", "1h30m", "--workers-kill-timeout", "2m"],
     ["--workers-lifetime", "5400", "--workers-kill-timeout", "120"]),
    (["--rss-sample-interval", "1d", "--static-path-expires", "1h"],
     ["--rss-sample-interval", "86400", "--static-path-expires", "3600"]),
    (["--timeout-keep-alive", "1m30s", "--respawn-interval", "5s"],
     ["--timeout-keep-alive", "90", "--respawn-interval", "5"]),
]


@pytest.mark.parametrize("theirs, ours", SPELLINGS)
def test_uvicorn_and_granian_spellings_mean_ours(theirs, ours):
    from haywire.__main__ import parse_args

    assert vars(parse_args([*theirs, "m:app"])) == vars(parse_args([*ours, "m:app"]))


def test_flags_that_set_config_keys(capsys):
    from haywire.__main__ import config_overrides, parse_args

    def keys(*flags: str) -> dict:
        return config_overrides(parse_args(["m:app", *flags]))

    assert parse_args(["--respawn-failed-workers", "m:app"]).respawn_failed_workers  # Granian's
    assert not parse_args(["--no-respawn-failed-workers", "m:app"]).respawn_failed_workers
    assert not parse_args(["--factory", "--no-factory", "m:app"]).factory
    assert not parse_args(["--no-reload", "m:app"]).reload
    assert parse_args(["--http1-pipeline-flush", "m:app"]).http1_pipeline_flush  # Granian's
    # Granian's client CAs: a certificate verified when presented, required with
    # --ssl-client-verify; uvicorn's --ssl-ca-certs leaves it to tls.client_auth.
    ca = {"tls.client_ca": "ca.pem", "tls.client_auth": "optional"}
    assert ca.items() <= keys("--ssl-ca", "ca.pem").items()
    assert dict(ca, **{"tls.client_auth": "required"}).items() <= keys(
        "--ssl-ca", "ca.pem", "--ssl-client-verify").items()
    assert "tls.client_auth" not in keys("--ssl-ca-certs", "ca.pem")
    assert keys("--ssl-ca-certs", "ca.pem", "--ssl-client-verify")["tls.client_auth"] == "required"
    assert keys("--no-access-log")["log.access"] == "off"
    assert keys("--access-log")["log.access"] == "stdout"
    assert keys("--ws-max-size", "4096")["websocket.max_message_size"] == 4096
    assert keys("--ssl-crl", "revoked.pem")["tls.client_crl"] == "revoked.pem"
    assert keys("--no-http1-keep-alive")["server.keep_alive"] is False
    # uvicorn's --ssl-ciphers: an OpenSSL cipher string, selection syntax and all, as
    # the suites it selects that Haywire has (TLS 1.3 names first); every one: none set.
    assert keys("--ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384")[
        "tls.ciphers"] == ["TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]
    assert keys("--ssl-ciphers", "ECDHE+AESGCM:!aNULL:!AES256")["tls.ciphers"] == [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
    assert keys("--ssl-ciphers", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:DHE-RSA-AES128-GCM-SHA256")[
        "tls.ciphers"] == ["ECDHE-RSA-AES128-GCM-SHA256"]  # IANA's name; one it lacks
    mozilla_intermediate = (
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
    for every in ("TLSv1", "HIGH", "DEFAULT", mozilla_intermediate):
        assert keys("--ssl-ciphers", every)["tls.ciphers"] == [], every
    capsys.readouterr()
    # A rule that selects nothing (a typo?) is ignored, as OpenSSL does, but said.
    assert len(keys("--ssl-ciphers", "ECDHE+AESGCM:AESGCMX")["tls.ciphers"]) == 4
    assert "'AESGCMX' selects no cipher; ignored" in capsys.readouterr().err
    assert "tls.ciphers" not in keys()
    assert "server.keep_alive" not in keys()
    assert "log.access" not in keys()


def test_version():
    from haywire import __version__

    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"haywire {__version__}")


def test_reload_looks_every_reload_delay(monkeypatch, tmp_path):
    from haywire import __main__ as cli

    slept = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 3:
            raise StopIteration

    monkeypatch.setattr(cli.time, "sleep", sleep)
    with pytest.raises(StopIteration):
        cli.watch_sources(cli.Watched([str(tmp_path)], ["*.py"], []), 0.25)
    assert slept == [0.25] * 3


def test_reload_ignores_granians_dirs_patterns_and_paths(tmp_path):
    from haywire.__main__ import Watched, parse_args

    for path in ("app.py", "build/gen.py", "pkg/build/x.py", "pkg/mod.py", "pkg/mod_test.py",
                 "vendor/lib.py", "vendor/keep/not.py", "tests/t.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    args = parse_args(["--reload", "--reload-ignore-dirs", "build", "--reload-ignore-patterns",
                       r"_test\.py$", "--reload-ignore-paths", str(tmp_path / "vendor"),
                       "--reload-ignore-paths", str(tmp_path / "tests" / "t.py"), "m:app"])
    watched = Watched([str(tmp_path)], ["*.py"], [], args.reload_ignore_dirs,
                      args.reload_ignore_patterns, args.reload_ignore_paths)
    found = sorted(os.path.relpath(path, tmp_path) for path in watched.files())
    assert found == ["app.py", "pkg/mod.py"]


def test_reload_restarts_on_a_source_change(serve, tmp_path):
    module = tmp_path / "reload_app.py"
    source = ('def app(environ, start_response):\n'
              '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
              '    return [b"VERSION"]\n')
    module.write_text(source.replace("VERSION", "one"))
    server = serve("reload_app:app", cwd=tmp_path, extra=["--reload"])
    assert request(server, "GET", "/")[2] == b"one"
    module.write_text(source.replace("VERSION", "two"))
    os.utime(module, (time.time() + 5, time.time() + 5))  # a new mtime even within a tick
    server.wait_for(r"worker 0 ready", 2)
    deadline = time.monotonic() + 20
    while request(server, "GET", "/")[2] != b"two":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_reload_dirs_and_patterns_choose_what_is_watched(serve, tmp_path):
    module = tmp_path / "reload_app.py"
    module.write_text('def app(environ, start_response):\n'
                      '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
                      '    return [open("templates/page.html", "rb").read()]\n')
    templates = tmp_path / "templates"
    templates.mkdir()
    page = templates / "page.html"
    page.write_text("one")
    (templates / "notes.txt").write_text("x")
    (templates / "skip.html").write_text("x")
    server = serve("reload_app:app", cwd=tmp_path,
                   extra=["--reload", "--reload-dir", str(templates), "--reload-include", "*.html",
                          "--reload-exclude", "skip.*"])
    assert request(server, "GET", "/")[2] == b"one"

    def touch(path):
        os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime within a tick

    # Not watched: a .py outside the watched directory, a name no pattern includes,
    # an excluded one. Two ticks of the poll pass without a restart.
    for path in (module, templates / "notes.txt", templates / "skip.html"):
        touch(path)
    time.sleep(2.5)
    assert len(server.wait_for(r"worker 0 ready")) == 1, server.lines
    page.write_text("two")
    touch(page)
    server.wait_for(r"worker 0 ready", 2)
    deadline = time.monotonic() + 20
    while request(server, "GET", "/")[2] != b"two":
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("extra, problem", [
    (["--reload-dir", "."], "--reload-dir needs --reload"),
    (["--reload", "--reload-dir", "/nonexistent"], "--reload-dir /nonexistent: not a directory"),
])
def test_bad_reload_flags_are_refused(extra, problem):
    server = Server("wsgi_app:app", extra=extra)
    assert server.proc.wait(20) == 2
    server.wait_for(re.escape(problem), stderr=True)


def test_access_log_and_log_level(serve):
    server = serve("wsgi_app:app", extra=["--access-log", "--log-level", "warning"])
    assert request(server, "GET", "/log?x=1")[0] == 200
    assert server.wait_for(r'"GET /log\?x=1 HTTP/1.1" 200')  # the core's access log
    deadline = time.monotonic() + 10
    while not any("app-warning-line" in line for line in server.errors):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not any("app-info-line" in line for line in server.errors)


def test_use_colors_colors_the_level_names_of_the_default_format(serve):
    server = serve("wsgi_app:app", extra=["--use-colors"])
    assert request(server, "GET", "/log")[0] == 200
    server.wait_for(re.escape("\x1b[33mWARNING\x1b[0m testapp: app-warning-line"), stderr=True)
    plain = serve("wsgi_app:app", extra=["--no-use-colors"])
    assert request(plain, "GET", "/log")[0] == 200
    plain.wait_for(r"^WARNING testapp: app-warning-line$", stderr=True)
    from haywire.__main__ import parse_args

    assert parse_args(["--ssl-version", "17", "m:app"]).ssl_version == 17  # uvicorn's default


def test_access_log_format_json(serve):
    server = serve("wsgi_app:app", extra=["--access-log", "--access-log-format", "json"])
    assert request(server, "GET", "/hello?x=1")[0] == 200
    line = server.wait_for(r'"status":200')[0]
    entry = json.loads(line)
    assert entry["status"] == 200 and "/hello?x=1" in json.dumps(entry), entry


def test_access_log_format_template(serve):
    server = serve("wsgi_app:app", extra=["--access-log", "--access-log-format",
                                          "<{method} {target}> {status} {bytes}B"])
    assert request(server, "GET", "/hello?x=1")[0] == 200
    # wsgiref's validator wraps the app's list: streamed (chunked), logged once it has
    # ended with the body bytes sent.
    server.wait_for(re.escape("<GET /hello?x=1> 200 11B"))
    bad = run_cli("--access-log-format", "{status} {latency}", "wsgi_app:app")
    assert bad.returncode == 2 and "log.template" in bad.stderr and "{latency}" in bad.stderr


def test_granians_access_log_fmt_is_written_by_the_template_it_makes(serve):
    server = serve("wsgi_app:app", extra=[
        "--access-log", "--access-log-fmt",
        '[%(time)s] %(addr)s "%(method)s %(path)s %(protocol)s" [%(query_string)s] %(scheme)s'
        ' %(status)d %(dt_ms).3f %(header{X-Request-Id})s 100%% {x}'])
    assert request(server, "GET", "/hello?x=1", headers={"X-Request-Id": "r-9"})[0] == 200
    server.wait_for(r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] 127\.0\.0\.1 "GET /hello HTTP/1\.1"'
                    r' \[x=1\] http 200 \d+\.\d{3} r-9 100% \{x\}$')
    bad = run_cli("--access-log-fmt", "%(addr)s %(latency)s", "wsgi_app:app")
    assert bad.returncode == 2 and "--access-log-fmt" in bad.stderr and "%(latency)" in bad.stderr


def test_backlog(serve):
    import shutil

    assert shutil.which("ss"), "ss (iproute2) is needed"
    server = serve("wsgi_app:app", extra=["--backlog", "77"])
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert listing[2] == "77", listing  # Send-Q of a listener is its backlog


def test_pid_file_names_the_supervisor_and_goes_at_exit(serve, tmp_path):
    pid_file = tmp_path / "haywire.pid"
    server = serve("wsgi_app:app", extra=["--pid-file", str(pid_file)])
    assert pid_file.read_text() == f"{server.proc.pid}\n"
    # A second server given the same file while the first runs is refused: two
    # servers must not take turns owning it.
    second = Server("wsgi_app:app", extra=["--pid-file", str(pid_file)])
    assert second.proc.wait(20) == 2
    second.wait_for(f"--pid-file {pid_file}: process {server.proc.pid}", stderr=True)
    assert pid_file.read_text() == f"{server.proc.pid}\n"
    assert server.stop() == 0
    assert not pid_file.exists()


def test_a_stale_pid_file_is_replaced(serve, tmp_path):
    pid_file = tmp_path / "haywire.pid"
    gone = subprocess.Popen(["true"])
    gone.wait()
    pid_file.write_text(f"{gone.pid}\n")
    server = serve("wsgi_app:app", extra=["--pid-file", str(pid_file)])
    assert pid_file.read_text() == f"{server.proc.pid}\n"


def test_process_name_names_the_supervisor_and_each_worker(serve):
    server = serve("wsgi_app:app", workers=2, extra=["--process-name", "shop-api"])
    comm = lambda pid: open(f"/proc/{pid}/comm").read().strip()  # noqa: E731
    assert comm(server.proc.pid) == "shop-api"
    assert sorted(comm(pid) for pid in worker_pids(server)) == ["shop-api:w0", "shop-api:w1"]


def test_uvicorn_and_granian_timeout_and_size_flags(serve):
    server = serve("wsgi_app:app", extra=["--timeout-keep-alive", "0.5",
                                          "--http1-header-read-timeout", "500",
                                          "--h11-max-incomplete-event-size", "1024"])
    with server.connect() as sock:  # idle after a response: closed
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 5
    with server.connect() as sock:  # a head too slow: 408
        sock.sendall(b"GET /hello HTTP/1.1\r\n")
        started = time.monotonic()
        assert read_response(sock)[0] == 408
        assert time.monotonic() - started < 5
    status, _, _ = request(server, "GET", "/hello", headers={"X-Big": "a" * 2000})
    assert status == 431


def test_timeout_graceful_shutdown_bounds_what_a_stop_waits_for(serve):
    server = serve("wsgi_app:app", extra=["--timeout-graceful-shutdown", "0.5"])
    with server.connect() as sock:
        sock.sendall(b"GET /sleep?4 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)  # the app is sleeping on it
        server.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        # Answered 503 and closed once the grace is over, not when the app wakes at 4 s.
        status, headers, body, _ = read_response(sock)
        assert (status, body, headers["connection"]) == (503, b"server stopping\n", "close")
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 2.5
