#!/usr/bin/env bash
# Rolling restart behind nginx that loses nothing, with nginx's retries turned off.
#
# Starts nginx (benchmarks/lb/nginx.conf, with `proxy_next_upstream off`, so a failure
# reaches the client instead of being retried) in front of two haywire instances on
# loopback ports, runs wrk through nginx, and restarts each instance in turn: the
# replacement starts on the same port (both hold SO_REUSEPORT listeners, so the kernel
# spreads new connections over the two), and once it serves, the old one gets SIGTERM and
# drains: its listeners close (with net.ipv4.tcp_migrate_req = 1 the connections still in
# their accept queues move to the replacement's listeners), requests in flight finish with
# `Connection: close`, and a connection accepted before the stop gets its first request
# answered. A slow upload (POST /echo at 32 KiB/s, sent straight to the instance) is in
# flight across each restart and must come back whole. Fails on any wrk socket error or
# non-2xx answer, any upstream failure in nginx's error log, a lost slow upload, or an
# instance that does not exit cleanly.
#
# Usage: benchmarks/lb/rolling-restart.sh   (about 20 s)
# Env:   HAYWIRE_BIN   the binary (default: `cargo build --release --bin haywire`)
#        DURATION      seconds of wrk load (default 14)
#        CONNECTIONS   wrk connections (default 32)
#        NGINX_CONF    the nginx config template (default benchmarks/lb/nginx.conf)
# Installs nginx-light and wrk with apt-get when missing; sets net.ipv4.tcp_migrate_req
# for the run and puts it back (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
duration=${DURATION:-14}
connections=${CONNECTIONS:-32}

need() {
    command -v "$1" >/dev/null && return
    [ -x "/usr/sbin/$1" ] && return
    echo "rolling-restart: installing $2" >&2
    apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}
need nginx nginx-light
need wrk wrk
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${HAYWIRE_BIN:-}" ]; then
    cargo build --release --bin haywire >&2
    HAYWIRE_BIN=${CARGO_TARGET_DIR:-$root/target}/release/haywire
fi

dir=$(mktemp -d /tmp/haywire-lb.XXXXXX)
pids=()
migrate=/proc/sys/net/ipv4/tcp_migrate_req
migrate_was=$(cat "$migrate" 2>/dev/null || true)
cleanup() {
    # nginx runs in the foreground (daemon off): its master is among the pids.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -z "$migrate_was" ] || echo "$migrate_was" >"$migrate" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
if [ -n "$migrate_was" ] && echo 1 >"$migrate" 2>/dev/null; then
    echo "rolling-restart: net.ipv4.tcp_migrate_req = 1 for the run" >&2
else
    echo "rolling-restart: cannot set net.ipv4.tcp_migrate_req: a connection that arrives as a listener closes may be reset" >&2
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
nginx_port=$(free_port)
a_port=$(free_port)
b_port=$(free_port)

# The template with nginx's retry turned off: every failure counts.
sed -e "s|@NGINX_PORT@|$nginx_port|g" -e "s|@A_PORT@|$a_port|g" -e "s|@B_PORT@|$b_port|g" \
    -e "s|@DIR@|$dir|g" -e 's|^\( *\)proxy_next_upstream .*;|\1proxy_next_upstream off;|' \
    "${NGINX_CONF:-benchmarks/lb/nginx.conf}" >"$dir/nginx.conf"
grep -q 'proxy_next_upstream off;' "$dir/nginx.conf" || { echo "rolling-restart: no proxy_next_upstream line to turn off" >&2; exit 1; }

# One config per instance: 2 shards, the readiness route, the echo route, a short grace.
for name in a b; do
    port_var=${name}_port
    cat >"$dir/$name.toml" <<TOML
[server]
address = "127.0.0.1"
port = ${!port_var}
shards = 2
placement = "unbound"
shutdown_grace = 5.0

[[route]]
handler = "text"
path = "/"
body = "hello from $name"

[[route]]
handler = "ready"
path = "/ready"

[[route]]
handler = "echo"
path = "/echo"
TOML
done

head -c 49152 /dev/urandom | base64 -w0 >"$dir/body" # 64 KiB of text for the slow uploads
declare -A pid_of
generation=0
start() { # $1 instance; sets pid_of[$1] to the new process once it serves
    local name=$1 port_var=${1}_port out
    generation=$((generation + 1))
    out="$dir/$name-$generation.out"
    "$HAYWIRE_BIN" --config "$dir/$name.toml" >"$out" 2>&1 &
    local pid=$!
    pids+=("$pid")
    # Started once its banner (`haywire VERSION`) is out: it binds and starts every shard
    # first. The port may be answered by the old instance meanwhile, so /ready alone
    # proves nothing.
    for _ in $(seq 200); do
        if grep -q "^haywire " "$out" && curl -fs "http://127.0.0.1:${!port_var}/ready" >/dev/null 2>&1; then
            pid_of[$name]=$pid
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "rolling-restart: instance $name did not start" >&2
    cat "$out" >&2
    exit 1
}
slow_upload() { # $1 port, $2 output file: a 64 KiB POST /echo sent at 32 KiB/s
    curl -s --limit-rate 32k --max-time 20 -o "$2" -w '%{http_code}' -H 'Content-Type: text/plain' \
        --data-binary @"$dir/body" "http://127.0.0.1:$1/echo" >"$2.status" 2>/dev/null || true
}
restart() {
    local name=$1 old=${pid_of[$1]} port_var=${1}_port
    slow_upload "${!port_var}" "$dir/slow-$name" &
    local slow=$!
    sleep 0.5 # the upload is under way on the old instance
    start "$name"
    echo "rolling-restart: $name's replacement serves (pid ${pid_of[$name]}); SIGTERM the old one (pid $old)" >&2
    kill -TERM "$old"
    wait "$old" || { echo "rolling-restart: $name (pid $old) exited with status $?" >&2; exit 1; }
    wait "$slow" || true
    if [ "$(cat "$dir/slow-$name.status")" != 200 ] || ! cmp -s "$dir/body" "$dir/slow-$name"; then
        echo "rolling-restart: FAILED: the slow upload in flight across $name's restart was lost (HTTP $(cat "$dir/slow-$name.status"))" >&2
        exit 1
    fi
    echo "rolling-restart: the slow upload across $name's restart came back whole" >&2
}

start a
start b
"$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/nginx.stderr" &
pids+=("$!")
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$nginx_port/" >/dev/null 2>&1 && break
    sleep 0.05
done

wrk -t2 -c"$connections" -d"${duration}s" "http://127.0.0.1:$nginx_port/" >"$dir/wrk.out" 2>&1 &
wrk_pid=$!
third=$((duration / 4))
sleep "$third"
restart a
sleep "$third"
restart b
wait "$wrk_pid"

cat "$dir/wrk.out"
failures=$(grep -c "upstream" "$dir/nginx-error.log" 2>/dev/null || true)
requests=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
if [ "${failures:-0}" != 0 ]; then
    echo "rolling-restart: FAILED: nginx logged ${failures} upstream failures:" >&2
    grep "upstream" "$dir/nginx-error.log" | head -5 >&2
    exit 1
fi
if grep -q "Socket errors" "$dir/wrk.out" || grep -q "Non-2xx" "$dir/wrk.out"; then
    echo "rolling-restart: FAILED: wrk saw errors" >&2
    exit 1
fi
if [ "${requests:-0}" -lt 1000 ]; then
    echo "rolling-restart: FAILED: only ${requests:-0} requests" >&2
    exit 1
fi
echo "rolling-restart: OK: $requests requests, no errors, 0 upstream failures (nginx retries off), two slow uploads kept, through two restarts"
