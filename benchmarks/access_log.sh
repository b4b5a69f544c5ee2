#!/usr/bin/env bash
# What the access log costs: server CPU time per keep-alive request with the log off,
# on in the combined format, and on as JSON lines (both to a file), interleaved over
# several rounds. One shard pinned to SERVER_CPU, wrk pinned to WRK_CPU.
#
#   benchmarks/access_log.sh            # 5 rounds of 8 s each per setting
#   PIPELINE=16 benchmarks/access_log.sh   # pipelined (benchmarks/pipelined_get.lua)
# Env: HAYWIRE_BIN (default: cargo build --release), ROUNDS [5], DURATION [8],
#      CONNECTIONS [64], SERVER_CPU [1], WRK_CPU [0], PORT [18090], PIPELINE [off]
# Prints per-run lines and the median ns of server CPU per request for each setting.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5} duration=${DURATION:-8} connections=${CONNECTIONS:-64}
server_cpu=${SERVER_CPU:-1} wrk_cpu=${WRK_CPU:-0} port=${PORT:-18090}
if [ -z "${HAYWIRE_BIN:-}" ]; then
    cargo build --release --bin haywire >&2
    HAYWIRE_BIN=${CARGO_TARGET_DIR:-target}/release/haywire
fi
dir=$(mktemp -d /tmp/haywire-logcost.XXXXXX)
trap 'rm -rf "$dir"' EXIT
tick=$(getconf CLK_TCK)
script=()
[ -n "${PIPELINE:-}" ] && script=(-s benchmarks/pipelined_get.lua)
args=()
[ -n "${PIPELINE:-}" ] && args=(-- "$PIPELINE")

run() { # setting access format -> "ns_per_request requests"
    local access=$1 format=$2
    cat >"$dir/c.toml" <<TOML
[server]
address = "127.0.0.1"
port = $port
shards = 1
placement = "unbound"
[log]
access = "$access"
format = "$format"
[[route]]
handler = "text"
path = "/"
body = "hello world"
TOML
    taskset -c "$server_cpu" "$HAYWIRE_BIN" --config "$dir/c.toml" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
    taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d2s "${script[@]}" "http://127.0.0.1:$port/" "${args[@]}" >/dev/null
    local before after
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    local out
    out=$(taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d"${duration}s" "${script[@]}" "http://127.0.0.1:$port/" "${args[@]}")
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill -TERM "$pid"; wait "$pid" || true
    local requests
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "errors in run" >&2; fi
    echo "$(( (after - before) * 1000000000 / tick / requests )) $requests"
    rm -f "$dir/access.log"
}

declare -A results
for round in $(seq "$rounds"); do
    for setting in off combined json; do
        case $setting in
            off) line=$(run off combined) ;;
            combined) line=$(run "$dir/access.log" combined) ;;
            json) line=$(run "$dir/access.log" json) ;;
        esac
        echo "round $round $setting: ${line% *} ns CPU/request, ${line#* } requests"
        results[$setting]+="${line% *} "
    done
done
for setting in off combined json; do
    median=$(echo "${results[$setting]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "median $setting: $median ns CPU/request"
done
