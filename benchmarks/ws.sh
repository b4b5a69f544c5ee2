#!/usr/bin/env bash
# WebSocket echo: Haywire (examples/websocket.rs, /ws) against tokio-tungstenite
# (benchmarks/peers/tokio-tungstenite), in the same run, interleaved. For each message
# size and run, each server in turn: started under `taskset -c SERVER_CPU` with one
# shard / one runtime thread, loaded by benchmarks/ws_load (CONNECTIONS connections, one
# message in flight each) under `taskset -c LOAD_CPUS`, its CPU time read from /proc.
# Prints one line per run and a Markdown table of the medians.
#
#   benchmarks/ws.sh [--runs 3] [--seconds 5] [--connections 64] [--sizes 64,16384]
#                    [--server-cpu 1] [--load-cpus 0] [--port 19000] [--no-build]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=3 seconds=5 connections=64 sizes=64,16384 server_cpu=1 load_cpus=0 port=19000 build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --server-cpu) server_cpu=$2; shift 2 ;;
        --load-cpus) load_cpus=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "unknown flag $1" >&2; exit 2 ;;
    esac
done

peers_target=target/peers
if [ "$build" = 1 ]; then
    cargo build --release --example websocket
    CARGO_TARGET_DIR="$PWD/$peers_target" cargo build --release \
        --manifest-path benchmarks/peers/tokio-tungstenite/Cargo.toml
    CARGO_TARGET_DIR="$PWD/$peers_target" cargo build --release \
        --manifest-path benchmarks/ws_load/Cargo.toml
fi
load=$peers_target/release/ws-load

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

start() { # server port -> pid
    case "$1" in
        haywire) taskset -c "$server_cpu" target/release/examples/websocket \
                     --port "$2" --shards 1 >/dev/null 2>&1 & ;;
        tokio-tungstenite) taskset -c "$server_cpu" \
                     "$peers_target/release/peer-tokio-tungstenite" --port "$2" --threads 1 \
                     >/dev/null 2>&1 & ;;
    esac
    echo $!
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for size in ${sizes//,/ }; do
    for run in $(seq "$runs"); do
        for server in haywire tokio-tungstenite; do
            pid=$(start "$server" "$port")
            wait_port "$port"
            line=$(taskset -c "$load_cpus" "$load" --addr "127.0.0.1:$port" \
                       --connections "$connections" --size "$size" --seconds "$seconds" --pid "$pid")
            kill "$pid"; wait "$pid" 2>/dev/null || true
            echo "size=$size run=$run server=$server $line"
            echo "$size $server $line" >> "$results"
            port=$((port + 1))
        done
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| message | server | msgs/s | server CPU µs/msg |"
echo "|---|---|---:|---:|"
for size in ${sizes//,/ }; do
    for server in haywire tokio-tungstenite; do
        rate=$(awk -v s="$size" -v n="$server" '$1==s && $2==n {print $6}' "$results" | median)
        cpu=$(awk -v s="$size" -v n="$server" '$1==s && $2==n {print $10}' "$results" | median)
        echo "| $size B | $server | $rate | $cpu |"
    done
done
