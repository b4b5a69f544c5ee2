#!/usr/bin/env bash
# Rolling restart behind nginx with zero failed requests.
#
# Starts nginx (benchmarks/lb/nginx.conf) in front of two haywire instances on loopback
# ports, runs wrk through nginx, restarts one instance (SIGTERM, wait for it to exit,
# start it again, wait until /ready answers 200), then the other, and fails unless wrk
# reports no socket errors and no non-2xx responses. What makes it work: a stopping
# instance closes its listener and idle connections at once and finishes in-flight
# requests (graceful drain), and nginx retries a request that meets a closed or
# refused connection on the other instance (`proxy_next_upstream`).
#
# Usage: benchmarks/lb/rolling-restart.sh   (about 20 s)
# Env:   HAYWIRE_BIN   the binary (default: `cargo build --release --bin haywire`)
#        DURATION      seconds of wrk load (default 14)
#        CONNECTIONS   wrk connections (default 32)
#        NGINX_CONF    the nginx config template (default benchmarks/lb/nginx.conf)
# Installs nginx-light and wrk with apt-get when missing (needs root).
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
cleanup() {
    # nginx runs in the foreground (daemon off): its master is among the pids.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
nginx_port=$(free_port)
a_port=$(free_port)
b_port=$(free_port)

sed -e "s|@NGINX_PORT@|$nginx_port|g" -e "s|@A_PORT@|$a_port|g" -e "s|@B_PORT@|$b_port|g" \
    -e "s|@DIR@|$dir|g" "${NGINX_CONF:-benchmarks/lb/nginx.conf}" >"$dir/nginx.conf"

# One config per instance: 2 shards, the readiness route, a short grace.
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
TOML
done

declare -A pid_of
start() {
    local name=$1 port_var=${1}_port
    "$HAYWIRE_BIN" --config "$dir/$name.toml" >"$dir/$name.out" 2>&1 &
    pid_of[$name]=$!
    pids+=("$!")
    for _ in $(seq 100); do
        if curl -fs "http://127.0.0.1:${!port_var}/ready" >/dev/null 2>&1; then
            return
        fi
        sleep 0.05
    done
    echo "rolling-restart: instance $name did not become ready" >&2
    cat "$dir/$name.out" >&2
    exit 1
}
restart() {
    local name=$1 pid=${pid_of[$1]}
    echo "rolling-restart: SIGTERM $name (pid $pid)" >&2
    kill -TERM "$pid"
    wait "$pid" || { echo "rolling-restart: $name exited with status $?" >&2; exit 1; }
    start "$name"
    echo "rolling-restart: $name is back (pid ${pid_of[$name]})" >&2
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
retried=$(grep -c "upstream" "$dir/nginx-error.log" 2>/dev/null || true)
echo "rolling-restart: nginx logged ${retried:-0} upstream failures (retried on the other instance)"
requests=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
if grep -q "Socket errors" "$dir/wrk.out" || grep -q "Non-2xx" "$dir/wrk.out"; then
    echo "rolling-restart: FAILED: wrk saw errors" >&2
    exit 1
fi
if [ "${requests:-0}" -lt 1000 ]; then
    echo "rolling-restart: FAILED: only ${requests:-0} requests" >&2
    exit 1
fi
echo "rolling-restart: OK: $requests requests, no errors, through two restarts"
