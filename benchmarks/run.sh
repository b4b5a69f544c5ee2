#!/usr/bin/env bash
# Haywire's benchmark harness. Builds Haywire and its peers, then for every scenario, N
# times over, for every server in turn: starts the server under `taskset -c SERVER_CPUS`,
# waits for its port, runs a 2 s warm-up and one measured run of wrk under
# `taskset -c WRK_CPUS`, reads the server's CPU time and peak RSS from /proc, and stops
# it by PID. Writes
# benchmarks/results/<date>-<host>.md (and latest.md, latest.png) and prints the report.
#
#   benchmarks/run.sh                  # defaults for a 2-core machine (about 12 minutes)
#   benchmarks/run.sh --quick          # smoke test: one 2-second run per scenario
#   benchmarks/run.sh --shards 16 --server-cpus 0-15 --wrk-cpus 16-31 --wrk-threads 16 \
#                     --connections 1024 --duration 15      # a many-core host
#
# Flags (defaults in brackets):
#   --shards N          Haywire shards, peer threads [1]; nginx gets one worker per server CPU
#   --server-cpus LIST  taskset CPU list for the servers [1]
#   --wrk-cpus LIST     taskset CPU list for wrk [0]
#   --wrk-threads N     wrk threads [1]
#   --connections N     wrk connections [64]; `close` uses a quarter of them (16)
#   --duration S        seconds per measured run [8]
#   --runs N            measured runs per scenario, the median is reported [3]
#   --depth N           pipeline depth for every pipeN scenario [N from the name]
#   --scenarios LIST    pipe16,pipe32,ka,close,mixed (any pipeN works) [all five]; also
#                       tls-ka and tls-pipeN: the same over HTTPS (TLS 1.3, a P-256
#                       certificate made for the run; may_minihttp has no TLS and sits out);
#                       static-1k and static-1m: keep-alive GETs of a 1 KiB / 1 MiB file
#                       (Haywire's static route, nginx with sendfile; the peers sit out)
#   --servers LIST      haywire,hyper,may_minihttp,nginx; also haywire-handoff [first four]
#   --port N            first port: haywire N, hyper N+1, may_minihttp N+2, nginx N+3,
#                       haywire-handoff N+4 [18000]
#   --quick             --runs 1 --duration 2
#   --no-build          use the binaries already built
#   --raw-out FILE      also keep the raw results (the TSV report.py reads) in FILE
#   --no-report         no Markdown report or chart (with --raw-out: benchmarks/scale.sh)
# nginx is used only when it is installed; wrk is installed with apt-get when missing,
# gnuplot-nox too (for the chart; without it the chart is skipped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shards=1 server_cpus=1 wrk_cpus=0 wrk_threads=1 connections=64 duration=8 runs=3 depth=
scenarios=pipe16,pipe32,ka,close,mixed
servers=haywire,hyper,may_minihttp,nginx
port_base=18000 build=1 quick=0 warmup=2 raw_out= report=1
command_line="benchmarks/run.sh $*"

die() { echo "run.sh: $*" >&2; exit 1; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --shards|--server-cpus|--wrk-cpus|--wrk-threads|--connections|--duration|--runs|--depth|--scenarios|--servers|--port)
      need_value "$@"
      case "$1" in
        --shards) shards=$2 ;; --server-cpus) server_cpus=$2 ;; --wrk-cpus) wrk_cpus=$2 ;;
        --wrk-threads) wrk_threads=$2 ;; --connections) connections=$2 ;;
        --duration) duration=$2 ;; --runs) runs=$2 ;; --depth) depth=$2 ;;
        --scenarios) scenarios=$2 ;; --servers) servers=$2 ;; --port) port_base=$2 ;;
      esac
      shift 2 ;;
    --quick) quick=1 runs=1 duration=2; shift ;;
    --no-build) build=0; shift ;;
    --raw-out) need_value "$@"; raw_out=$2; shift 2 ;;
    --no-report) report=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done

for pair in "shards:$shards" "wrk-threads:$wrk_threads" "connections:$connections" \
            "duration:$duration" "runs:$runs" "port:$port_base" ${depth:+"depth:$depth"}; do
  [[ ${pair#*:} =~ ^[1-9][0-9]*$ ]] || die "--${pair%%:*} wants a positive integer, not '${pair#*:}'"
done
for list in "$server_cpus" "$wrk_cpus"; do
  [[ $list =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "bad CPU list '$list' (like 1 or 0-3,8)"
done
[ "$connections" -ge "$wrk_threads" ] || die "--connections must be at least --wrk-threads"

# Scenarios: name -> wrk arguments (after the URL's host part is known).
scenario_list=()
for s in ${scenarios//,/ }; do
  case "$s" in
    pipe[1-9]*) [[ $s =~ ^pipe[0-9]+$ ]] || die "unknown scenario $s"
                [ -n "$depth" ] && s=pipe$depth ;;
    ka|close|mixed|tls-ka|static-1k|static-1m) ;;
    tls-pipe[1-9]*) [[ $s =~ ^tls-pipe[0-9]+$ ]] || die "unknown scenario $s" ;;
    *) die "unknown scenario $s (pipe16, pipe32, pipeN, ka, close, mixed, tls-ka, tls-pipeN, static-1k, static-1m)" ;;
  esac
  [[ " ${scenario_list[*]} " == *" $s "* ]] || scenario_list+=("$s")
done
[ ${#scenario_list[@]} -gt 0 ] || die "no scenarios"
close_connections=$(( connections / 4 > wrk_threads ? connections / 4 : wrk_threads ))

server_list=()
for s in ${servers//,/ }; do
  case "$s" in haywire|haywire-handoff|hyper|may_minihttp|nginx) ;; *) die "unknown server $s" ;; esac
  [[ " ${server_list[*]} " == *" $s "* ]] || server_list+=("$s")
done
[ ${#server_list[@]} -gt 0 ] || die "no servers"

command -v taskset >/dev/null || die "taskset (util-linux) is missing"
command -v python3 >/dev/null || die "python3 is missing"

apt_install() { # $1 package: install it, running apt-get update once if the first try fails
  echo "installing $1 with apt-get..." >&2
  apt-get install -y -qq "$1" >/dev/null 2>&1 && return 0
  { apt-get update -qq && apt-get install -y -qq "$1"; } >/dev/null 2>&1
}

notes=()
if ! command -v wrk >/dev/null; then
  apt_install wrk && command -v wrk >/dev/null || die "wrk is missing and apt-get could not install it"
fi
if ! command -v gnuplot >/dev/null; then
  apt_install gnuplot-nox || true
  command -v gnuplot >/dev/null || notes+=("gnuplot could not be installed: no chart")
fi

# Everything this script starts is in `pids`; the EXIT trap stops what is left, by PID.
work=$(mktemp -d /tmp/haywire-bench.XXXXXX)
chmod 755 "$work" # nginx workers may run as another user
pids=()
stop_pid() { # $1 PID: SIGTERM, up to 10 s to exit, then SIGKILL (and its children)
  local pid=$1 children
  children=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "PID $pid did not stop on SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for child in $children; do kill -KILL "$child" 2>/dev/null || true; done
  fi
  wait "$pid" 2>/dev/null || true
  local rest=()
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
  pids=(${rest[@]+"${rest[@]}"})
}
cleanup() {
  trap - EXIT
  trap '' INT TERM HUP # let the cleanup finish
  local p
  for p in ${pids[@]+"${pids[@]}"}; do stop_pid "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP

peers=benchmarks/peers
build_peer() { # $1 crate dir under benchmarks/peers
  CARGO_TARGET_DIR=$peers/target cargo build --release --quiet --manifest-path "$peers/$1/Cargo.toml"
}
has_server() { [[ " ${server_list[*]} " == *" $1 "* ]]; }
drop_server() { # $1 server, $2 why
  local rest=() s
  for s in "${server_list[@]}"; do [ "$s" = "$1" ] || rest+=("$s"); done
  server_list=(${rest[@]+"${rest[@]}"})
  notes+=("$1 skipped: $2")
  echo "$1 skipped: $2" >&2
}

if [ $build = 1 ]; then
  if has_server haywire || has_server haywire-handoff; then
    echo "building haywire (cargo build --release)..." >&2
    cargo build --release --quiet --bin haywire || die "haywire does not build"
  fi
  if has_server hyper; then
    echo "building the hyper peer..." >&2
    build_peer hyper || drop_server hyper "the hyper peer does not build (see the cargo output above)"
  fi
  if has_server may_minihttp; then
    echo "building the may_minihttp peer..." >&2
    build_peer may_minihttp || drop_server may_minihttp "the may_minihttp peer does not build on $(rustc --version) (see the cargo output above)"
  fi
fi
if has_server nginx && ! command -v nginx >/dev/null; then
  drop_server nginx "nginx is not installed"
fi
for s in haywire haywire-handoff hyper may_minihttp; do
  has_server $s || continue
  case $s in haywire*) bin=target/release/haywire ;; hyper) bin=$peers/target/release/peer-hyper ;;
              may_minihttp) bin=$peers/target/release/peer-may-minihttp ;; esac
  [ -x "$bin" ] || die "$bin is missing (run without --no-build)"
done
[ ${#server_list[@]} -gt 0 ] || die "no server left to benchmark"

server_cpu_count=$(python3 - "$server_cpus" <<'PY'
import sys
cpus = set()
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    cpus.update(range(int(a), int(b or a) + 1))
print(len(cpus))
PY
)

port_of() {
  case "$1" in haywire) echo $port_base ;; hyper) echo $((port_base + 1)) ;;
    may_minihttp) echo $((port_base + 2)) ;; nginx) echo $((port_base + 3)) ;;
    haywire-handoff) echo $((port_base + 4)) ;; esac
}

# TLS scenarios: one certificate for every server; `tls` is 1 while one runs.
tls=0
if [[ " ${scenario_list[*]} " == *" tls-"* ]]; then
  command -v openssl >/dev/null || die "the tls-* scenarios need openssl to make a certificate"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null \
    || die "openssl could not make a certificate"
fi

# Static scenarios: the files every server serves at /static/.
if [[ " ${scenario_list[*]} " == *" static-"* ]]; then
  mkdir -p "$work/www"
  head -c 1024 /dev/urandom >"$work/www/1k.bin"
  head -c 1048576 /dev/urandom >"$work/www/1m.bin"
  chmod -R 755 "$work/www"
fi

haywire_config() { # $1 port, $2 balancer; prints the file's path
  local file="$work/haywire-$2.toml"
  cat > "$file" <<TOML
[server]
address = "127.0.0.1"
port = $1
shards = $shards
placement = "pinned"   # shard k on the k-th CPU that taskset allows
balancer = "$2"
max_connections = 100000
shutdown_grace = 2.0
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
  [ $tls = 0 ] || printf '[tls]\ncert = "%s"\nkey = "%s"\n' "$work/cert.pem" "$work/key.pem" >>"$file"
  [ ! -d "$work/www" ] || printf '[[route]]\nhandler = "static"\npath = "/static"\ndir = "%s"\n' "$work/www" >>"$file"
  echo "$file"
}

nginx_config() { # $1 port; prints the file's path
  mkdir -p "$work/nginx/logs"
  chmod -R 755 "$work/nginx"
  local user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  local ssl="" ssl_conf=""
  if [ $tls = 1 ]; then
    ssl=" ssl"
    ssl_conf="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;"
  fi
  cat > "$work/nginx/nginx.conf" <<CONF
$user
worker_processes $server_cpu_count;
daemon off;
master_process on;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections $(( connections * 2 > 1024 ? connections * 2 : 1024 )); multi_accept on; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 60s;
  client_body_temp_path $work/nginx/client_body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$1$ssl reuseport backlog=1024;
    $ssl_conf
    location / { default_type text/plain; return 200 "hello world"; }
    location = /nope { return 404; }
    location /static/ { alias $work/www/; sendfile on; }
    # nginx cannot echo without a module: /echo reads and drops the body, answers 200.
    location = /echo { default_type text/plain; return 200 "hello world"; }
  }
}
CONF
  echo "$work/nginx/nginx.conf"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_pid=
start_server() { # $1 server, $2 port, $3 log file; sets server_pid
  local cmd
  case "$1" in
    haywire) cmd=(target/release/haywire --config "$(haywire_config "$2" reuseport)") ;;
    haywire-handoff) cmd=(target/release/haywire --config "$(haywire_config "$2" handoff)") ;;
    hyper) cmd=("$peers/target/release/peer-hyper" --port "$2" --threads "$shards")
           [ $tls = 0 ] || cmd+=(--tls "$work/cert.pem" "$work/key.pem") ;;
    may_minihttp) cmd=("$peers/target/release/peer-may-minihttp" --port "$2" --threads "$shards") ;;
    nginx) cmd=(nginx -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$(nginx_config "$2")") ;;
  esac
  # A server that just exited may leave its listener behind for a moment (io_uring tears
  # down asynchronously): give the port up to 5 s to close.
  local waited=0
  while port_open "$2" && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  if port_open "$2"; then
    ss -ltnp "sport = :$2" >&2 2>/dev/null || true
    die "port $2 (for $1) is already in use by another process: pick other ports with --port"
  fi
  [ $waited = 0 ] || echo "    (port $2 took $((waited * 100)) ms to close)" >&2
  taskset -c "$server_cpus" "${cmd[@]}" >"$3" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do # up to 10 s
    port_open "$2" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: $1 did not start (PID $server_pid, port $2): ${cmd[*]}" >&2
  sed 's/^/  | /' "$3" >&2
  [ "$1" = nginx ] && sed 's/^/  | /' "$work/nginx/logs/error.log" >&2 2>/dev/null
  exit 1
}

# CPU ticks (utime + stime of all threads) of a process and its children (nginx workers).
tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }
tree_ticks() {
  local total=0 p t
  for p in $(tree_pids "$1"); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo $total
}
tree_hwm_kib() { # peak RSS (VmHWM), summed over the process and its children
  local total=0 p h
  for p in $(tree_pids "$1"); do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null) || h=0
    total=$((total + ${h:-0}))
  done
  echo $total
}

scenario_connections() { # $1 scenario
  if [ "$1" = close ]; then echo "$close_connections"; else echo "$connections"; fi
}
wrk_args() { # $1 scenario, $2 base URL: the scenario's wrk arguments, one per line
  echo "-c$(scenario_connections "$1")"
  case "${1#tls-}" in
    pipe*) printf '%s\n' -s benchmarks/pipelined_get.lua "$2/" -- "${1#*pipe}" ;;
    ka) printf '%s\n' -s benchmarks/wrk/keepalive.lua "$2/" ;;
    static-*) printf '%s\n' -s benchmarks/wrk/keepalive.lua "$2/static/${1#static-}.bin" ;;
    close) printf '%s\n' -s benchmarks/wrk/close.lua "$2/" ;;
    mixed) printf '%s\n' -s benchmarks/wrk/mixed.lua "$2/" ;;
  esac
}
describe() {
  case "$1" in
    tls-*) echo "$(describe "${1#tls-}"), over HTTPS (TLS 1.3 as wrk's OpenSSL and the servers agree: TLS_AES_256_GCM_SHA384, X25519; one handshake per connection)" ;;
    pipe*) echo "$connections connections, pipelined GET /, depth ${1#pipe} (latency is per batch of ${1#pipe})" ;;
    ka) echo "$connections connections, keep-alive, GET /, one request at a time" ;;
    static-1k) echo "$connections connections, keep-alive, GET of a 1 KiB file (Haywire: handler = \"static\"; nginx: sendfile)" ;;
    static-1m) echo "$connections connections, keep-alive, GET of a 1 MiB file (Haywire: streamed in 64 KiB reads; nginx: sendfile)" ;;
    close) echo "$close_connections connections, GET / with Connection: close: one TCP connection per request" ;;
    mixed) echo "$connections connections, keep-alive, in turn GET /users/<n> (:param route), GET /nope (404, not an error), POST /echo with 1 KiB" ;;
  esac
}

wrk_pid=
run_wrk() { # $1 seconds, $2 output file, $3 connections, rest: wrk arguments. In the
  local seconds=$1 out=$2 conns=$3; shift 3 # background: a signal is handled at once.
  # WRK_CONNECTIONS lets wrk/report.lua undo wrk's latency correction (see there).
  WRK_CONNECTIONS=$conns taskset -c "$wrk_cpus" wrk -t"$wrk_threads" -d"${seconds}s" --timeout 4s "$@" >"$out" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  local rc=0
  wait "$wrk_pid" || rc=$?
  local rest=() p
  for p in "${pids[@]}"; do [ "$p" = "$wrk_pid" ] || rest+=("$p"); done
  pids=(${rest[@]+"${rest[@]}"})
  return $rc
}

clk_tck=$(getconf CLK_TCK)
raw="$work/raw.tsv"
: >"$raw"
{
  printf 'flag\tcommand\t%s\n' "$command_line"
  printf 'flag\tshards\t%s\n' "$shards"
  printf 'flag\tserver-cpus\t%s\n' "$server_cpus"
  printf 'flag\twrk-cpus\t%s\n' "$wrk_cpus"
  printf 'flag\twrk-threads\t%s\n' "$wrk_threads"
  printf 'flag\tconnections\t%s\n' "$connections"
  printf 'flag\tduration\t%ss\n' "$duration"
  printf 'flag\truns\t%s per server, interleaved, each after a %s s warm-up\n' "$runs" "$warmup"
  printf 'flag\tdepth\t%s\n' "${depth:-from the scenario name}"
  printf 'flag\tscenarios\t%s\n' "$(IFS=,; echo "${scenario_list[*]}")"
  printf 'flag\tservers\t%s\n' "$(IFS=,; echo "${server_list[*]}")"
  printf 'flag\tquick\t%s\n' "$([ $quick = 1 ] && echo yes || echo no)"
  printf 'flag\tload average at start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  for s in "${scenario_list[@]}"; do printf 'desc\t%s\t%s\n' "$s" "$(describe "$s")"; done
} >>"$raw"
for n in ${notes[@]+"${notes[@]}"}; do printf 'note\t%s\n' "$n" >>"$raw"; done
if has_server may_minihttp && [[ " ${scenario_list[*]} " == *" close "* ]]; then
  printf 'note\t%s\n' "may_minihttp cannot close a connection itself: in close, its peer answers Connection: close and wrk closes the connection." >>"$raw"
fi
if has_server nginx && [[ " ${scenario_list[*]} " == *" mixed "* ]]; then
  printf 'note\t%s\n' "nginx does not echo: in mixed, its POST /echo answers 200 hello world." >>"$raw"
fi
if has_server hyper || has_server may_minihttp; then
  if [[ " ${scenario_list[*]} " == *" mixed "* ]]; then
    printf 'note\t%s\n' "hyper and may_minihttp have no router: in mixed, GET /nope answers 200 hello world rather than 404." >>"$raw"
  fi
fi

# Runs are interleaved: run 1 of every server, then run 2 of every server, and so on.
# A slow spell of a shared or throttled machine then lands on every server alike
# instead of on whichever server's runs it happened to cover.
total=$(( ${#server_list[@]} * ${#scenario_list[@]} * runs ))
step=0
for scenario in "${scenario_list[@]}"; do
  conns=$(scenario_connections "$scenario")
  for run in $(seq "$runs"); do
    for server in "${server_list[@]}"; do
      step=$((step + 1))
      port=$(port_of "$server")
      scheme=http tls=0
      if [[ $scenario == tls-* ]]; then
        [ "$server" = may_minihttp ] && continue # no TLS
        scheme=https tls=1
      fi
      if [[ $scenario == static-* ]]; then
        [ "$server" = hyper ] || [ "$server" = may_minihttp ] && continue # no file serving
      fi
      mapfile -t args < <(wrk_args "$scenario" "$scheme://127.0.0.1:$port")
      log="$work/$server-$scenario.log"
      start_server "$server" "$port" "$log"
      pid=$server_pid
      echo "[$step/$total] $scenario run $run: $server (PID $pid, port $port): warm-up ${warmup}s, ${duration}s" >&2
      run_wrk "$warmup" "$work/wrk.out" "$conns" "${args[@]}" || true
      before=$(tree_ticks "$pid")
      rc=0
      run_wrk "$duration" "$work/wrk.out" "$conns" "${args[@]}" || rc=$?
      after=$(tree_ticks "$pid")
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: $server died during $scenario:" >&2
        sed 's/^/  | /' "$log" >&2
        exit 1
      fi
      result=$(grep -m1 '^RESULT ' "$work/wrk.out" || true)
      if [ $rc != 0 ] || [ -z "$result" ]; then
        echo "run.sh: wrk failed (status $rc) for $server $scenario run $run:" >&2
        sed 's/^/  | /' "$work/wrk.out" >&2
        printf 'note\t%s\n' "$server $scenario run $run: wrk gave no result" >>"$raw"
      else
        printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$scenario" "$run" "$((after - before))" "$clk_tck" "${result#RESULT }" >>"$raw"
        requests=$(grep -o 'requests=[0-9]*' <<<"$result" | cut -d= -f2)
        echo "    $requests requests, $(awk -v r="$requests" -v d="$duration" 'BEGIN {printf "%.0f", r / d}') req/s" >&2
      fi
      printf 'rss\t%s\t%s\t%s\n' "$server" "$scenario" "$(tree_hwm_kib "$pid")" >>"$raw"
      stop_pid "$pid"
    done
  done
done

echo >&2
[ -z "$raw_out" ] || cp "$raw" "$raw_out"
[ $report = 0 ] || python3 benchmarks/report.py "$raw" $([ $quick = 1 ] && echo --quick)
