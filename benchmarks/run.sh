#!/usr/bin/env bash
# Haywire's benchmark harness: builds Haywire and its peers, starts each server pinned
# to the server CPUs, runs every scenario with wrk pinned to the wrk CPUs, stops what it
# started, and writes a Markdown report (benchmarks/results/) and a chart.
#
#   benchmarks/run.sh                       # defaults for a 2-core machine
#   benchmarks/run.sh --quick               # one 2-second run per scenario
#   benchmarks/run.sh --shards 16 --server-cpus 0-15 --wrk-cpus 16-31 --wrk-threads 16 \
#                     --connections 1024 --duration 15      # a many-core host
#
# Flags: --shards N (haywire shards and peer threads, default 1) --server-cpus LIST (1)
# --wrk-cpus LIST (0) --wrk-threads N (1) --connections N (64; `close` uses a quarter)
# --duration S (8) --runs N (3) --scenarios LIST (pipe16,pipe32,ka,close,mixed)
# --servers LIST (haywire,haywire-handoff,hyper,may_minihttp,nginx) --quick
set -euo pipefail
cd "$(dirname "$0")/.."

shards=1 server_cpus=1 wrk_cpus=0 wrk_threads=1 connections=64 duration=8 runs=3
scenarios=pipe16,pipe32,ka,close,mixed
servers=haywire,haywire-handoff,hyper,may_minihttp,nginx
while [ $# -gt 0 ]; do
  case "$1" in
    --shards) shards=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --wrk-cpus) wrk_cpus=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --quick) runs=1 duration=2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building..." >&2
cargo build --release --quiet
peers=benchmarks/peers
if [[ ",$servers," == *",hyper,"* ]]; then
  CARGO_TARGET_DIR=$peers/target cargo build --release --quiet --manifest-path $peers/hyper/Cargo.toml
fi
if [[ ",$servers," == *",may_minihttp,"* ]]; then
  CARGO_TARGET_DIR=$peers/target cargo build --release --quiet --manifest-path $peers/may_minihttp/Cargo.toml \
    || { echo "may_minihttp does not build here: skipped" >&2; servers=${servers//may_minihttp/}; }
fi
if [[ ",$servers," == *",nginx,"* ]] && ! command -v nginx >/dev/null; then
  echo "nginx is not installed: skipped (apt-get install nginx to include it)" >&2
  servers=${servers//nginx/}
fi

cpu_list() { python3 -c "import sys; from itertools import chain; print(len(list(chain.from_iterable(range(int(a), int(b or a) + 1) for a, _, b in (p.partition('-') for p in sys.argv[1].split(','))))))" "$1"; }
server_cpu_count=$(cpu_list "$server_cpus")

haywire_config() { # $1 port, $2 balancer
  cat > "$work/haywire-$1.toml" <<TOML
[server]
address = "127.0.0.1"
port = $1
shards = $shards
placement = "pinned"
balancer = "$2"
max_connections = 100000
[[route]]
handler = "text"
path = "/"
body = "hello world"
[[route]]
handler = "text"
path = "/users/:id"
body = "hello world"
[[route]]
handler = "echo"
path = "/echo"
TOML
  echo "$work/haywire-$1.toml"
}

nginx_config() { # $1 port
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $server_cpu_count;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 65536; }
http {
  access_log off;
  keepalive_requests 1000000000;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$1 reuseport backlog=1024;
    location / { default_type text/plain; return 200 "hello world"; }
    location /users/ { default_type text/plain; return 200 "hello world"; }
    location = /nope { return 404; }
    location = /echo { default_type text/plain; return 200 "hello world"; }
  }
}
CONF
  echo "$work/nginx/nginx.conf"
}

start_server() { # $1 name, $2 port; echoes the PID
  local cmd
  case "$1" in
    haywire) cmd=(target/release/haywire --config "$(haywire_config "$2" reuseport)") ;;
    haywire-handoff) cmd=(target/release/haywire --config "$(haywire_config "$2" handoff)") ;;
    hyper) cmd=("$peers/target/release/peer-hyper" "$2" "$shards") ;;
    may_minihttp) cmd=("$peers/target/release/peer-may-minihttp" "$2" "$shards") ;;
    nginx) cmd=(nginx -c "$(nginx_config "$2")" -p "$work/nginx") ;;
  esac
  taskset -c "$server_cpus" "${cmd[@]}" >"$work/$1.log" 2>&1 &
  echo $!
}

wait_port() { # $1 port
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

cpu_ticks() { # utime+stime of a process and its threads
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# nginx forks workers: measure the master's children too.
tree_ticks() {
  local total
  total=$(cpu_ticks "$1")
  for child in $(pgrep -P "$1" || true); do total=$((total + $(cpu_ticks "$child"))); done
  echo "$total"
}

tree_hwm() { # peak RSS in KiB, summed over the process and its children
  local total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

wrk_args() { # $1 scenario, $2 url base
  local c=$connections
  case "$1" in
    pipe16) echo "-c$c -s benchmarks/pipelined_get.lua $2/ -- 16" ;;
    pipe32) echo "-c$c -s benchmarks/pipelined_get.lua $2/ -- 32" ;;
    ka) echo "-c$c -s benchmarks/wrk/keepalive.lua $2/" ;;
    close) echo "-c$(( c / 4 > wrk_threads ? c / 4 : wrk_threads )) -s benchmarks/wrk/close.lua $2/" ;;
    mixed) echo "-c$c -s benchmarks/wrk/mixed.lua $2/" ;;
  esac
}

clk_tck=$(getconf CLK_TCK)
results="$work/results.tsv"
port=18000
for server in ${servers//,/ }; do
  [ -n "$server" ] || continue
  port=$((port + 1))
  pid=$(start_server "$server" "$port")
  pids+=("$pid")
  wait_port "$port" || { echo "$server did not start:" >&2; cat "$work/$server.log" >&2; exit 1; }
  for scenario in ${scenarios//,/ }; do
    read -r -a args <<<"$(wrk_args "$scenario" "http://127.0.0.1:$port")"
    taskset -c "$wrk_cpus" wrk -t"$wrk_threads" -d2s "${args[@]}" >/dev/null 2>&1 || true # warm-up
    for run in $(seq "$runs"); do
      before=$(tree_ticks "$pid")
      out=$(taskset -c "$wrk_cpus" wrk -t"$wrk_threads" -d"${duration}s" "${args[@]}" 2>&1)
      after=$(tree_ticks "$pid")
      line=$(grep '^RESULT' <<<"$out" || true)
      if [ -z "$line" ]; then echo "wrk gave no result for $server/$scenario:" >&2; echo "$out" >&2; continue; fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$scenario" "$run" "$line" \
        "$(( (after - before) ))" "$clk_tck" >>"$results"
      echo "$server $scenario run $run: $(grep -o 'requests=[0-9]*' <<<"$line")" >&2
    done
  done
  printf '%s\tpeak_rss_kib\t%s\n' "$server" "$(tree_hwm "$pid")" >>"$results"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pids=("${pids[@]/$pid}")
done

python3 benchmarks/report.py "$results" \
  --flags "shards=$shards server-cpus=$server_cpus wrk-cpus=$wrk_cpus wrk-threads=$wrk_threads connections=$connections duration=${duration}s runs=$runs"
