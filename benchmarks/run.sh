#!/usr/bin/env bash
# Haywire's benchmark harness. Builds Haywire and its peers, then for every scenario, N
# rounds over, for every server in a shuffled order: starts the server under
# `taskset -c SERVER_CPUS`, waits for its port, runs a 2 s warm-up and one measured run of
# wrk under `taskset -c WRK_CPUS`, reads the server's and wrk's CPU time, the server's peak
# RSS and (Haywire) its event-loop wake-ups, and stops it by PID. Writes
# benchmarks/results/<date>-<host>.md (and latest.md, latest.png) and prints the report
# (benchmarks/report.py; the shared parts are in benchmarks/lib/).
#
#   benchmarks/run.sh                  # defaults for a 2-core machine (about 25 minutes)
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
#   --runs N            measured runs per scenario and server, the median of the clean
#                       ones is reported [5]
#   --seed S            the shuffle of the server order [random, written in the report]
#   --depth N           pipeline depth for every pipeN scenario [N from the name]
#   --scenarios LIST    pipe16,pipe32,ka,close,mixed (any pipeN works) [all five]; also
#                       tls-ka and tls-pipeN: the same over HTTPS (TLS 1.3, a P-256
#                       certificate made for the run; may_minihttp has no TLS and sits out);
#                       static-1k and static-1m: keep-alive GETs of a 1 KiB / 1 MiB file
#                       (Haywire's static route, nginx with sendfile; the peers sit out)
#   --servers LIST      haywire,hyper,may_minihttp,nginx,floor; also haywire-handoff, and
#                       haywire-before (the binary --before-bin names, e.g. an older
#                       commit's build, run on the same config: before/after in one run)
#                       [all but haywire-handoff and haywire-before]. floor
#                       (benchmarks/peers/floor) answers every `\r\n\r\n` with a canned
#                       200 without parsing: the least a server can do, the yardstick
#                       the report divides by
#   --port N            first port: haywire N, hyper N+1, may_minihttp N+2, nginx N+3,
#                       haywire-handoff N+4, floor N+5, haywire-before N+6 [18000]
#   --before-bin PATH   the haywire binary haywire-before runs (required with it)
#   --quick             --runs 1 --duration 2
#   --no-build          use the binaries already built
#   --raw-out FILE      also keep the raw results (the TSV report.py reads) in FILE
#   --no-report         no Markdown report or chart (with --raw-out: benchmarks/scale.sh)
# nginx is used only when it is installed; wrk is installed with apt-get when missing,
# gnuplot-nox too (for the chart; without it the chart is skipped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shards=1 server_cpus=1 wrk_cpus=0 wrk_threads=1 connections=64 duration=8 runs=5 depth=
scenarios=pipe16,pipe32,ka,close,mixed
servers=haywire,hyper,may_minihttp,nginx,floor
port_base=18000 before_bin= build=1 quick=0 warmup=2 raw_out= report=1 seed=$RANDOM
command_line="benchmarks/run.sh $*"
me=run.sh
work=$(mktemp -d /tmp/haywire-bench.XXXXXX)
chmod 755 "$work" # nginx workers may run as another user
source benchmarks/lib/harness.sh

while [ $# -gt 0 ]; do
  case "$1" in
    --shards|--server-cpus|--wrk-cpus|--wrk-threads|--connections|--duration|--runs|--depth|--scenarios|--servers|--port|--seed)
      need_value "$@"
      case "$1" in
        --shards) shards=$2 ;; --server-cpus) server_cpus=$2 ;; --wrk-cpus) wrk_cpus=$2 ;;
        --wrk-threads) wrk_threads=$2 ;; --connections) connections=$2 ;;
        --duration) duration=$2 ;; --runs) runs=$2 ;; --depth) depth=$2 ;;
        --scenarios) scenarios=$2 ;; --servers) servers=$2 ;; --port) port_base=$2 ;;
        --seed) seed=$2 ;;
      esac
      shift 2 ;;
    --quick) quick=1 runs=1 duration=2; shift ;;
    --no-build) build=0; shift ;;
    --raw-out) need_value "$@"; raw_out=$2; shift 2 ;;
    --before-bin) need_value "$@"; before_bin=$2; shift 2 ;;
    --no-report) report=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done

check_positive "shards:$shards" "wrk-threads:$wrk_threads" "connections:$connections" \
  "duration:$duration" "runs:$runs" "port:$port_base" ${depth:+"depth:$depth"}
check_cpu_list "$server_cpus" "$wrk_cpus"
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
  in_list "$s" ${scenario_list[@]+"${scenario_list[@]}"} || scenario_list+=("$s")
done
[ ${#scenario_list[@]} -gt 0 ] || die "no scenarios"
close_connections=$(( connections / 4 > wrk_threads ? connections / 4 : wrk_threads ))

server_list=()
for s in ${servers//,/ }; do
  case "$s" in haywire|haywire-handoff|haywire-before|hyper|may_minihttp|nginx|floor) ;; *) die "unknown server $s" ;; esac
  has_server "$s" || server_list+=("$s")
done
[ ${#server_list[@]} -gt 0 ] || die "no servers"
! has_server haywire-before || [ -n "$before_bin" ] || die "haywire-before needs --before-bin PATH"
need_tools

peers=benchmarks/peers
build_peer() { # $1 crate dir under benchmarks/peers
  CARGO_TARGET_DIR=$peers/target cargo build --release --quiet --manifest-path "$peers/$1/Cargo.toml"
}
if [ $build = 1 ]; then
  if has_server haywire || has_server haywire-handoff; then
    echo "building haywire (cargo build --release)..." >&2
    cargo build --release --quiet --bin haywire || die "haywire does not build"
  fi
  for s in hyper may_minihttp floor; do
    has_server $s || continue
    echo "building the $s peer..." >&2
    build_peer $s || drop_server $s "the $s peer does not build on $(rustc --version) (see the cargo output above)"
  done
fi
if has_server nginx && ! command -v nginx >/dev/null; then
  drop_server nginx "nginx is not installed"
fi
bin_of() {
  case "$1" in haywire-before) echo "$before_bin" ;; haywire*) echo target/release/haywire ;; hyper) echo $peers/target/release/peer-hyper ;;
    may_minihttp) echo $peers/target/release/peer-may-minihttp ;; floor) echo $peers/target/release/peer-floor ;; esac
}
for s in haywire haywire-handoff haywire-before hyper may_minihttp floor; do
  has_server $s || continue
  [ -x "$(bin_of $s)" ] || die "$(bin_of $s) is missing (run without --no-build)"
done
[ ${#server_list[@]} -gt 0 ] || die "no server left to benchmark"
server_cpu_count=$(cpu_count "$server_cpus")

port_of() {
  case "$1" in haywire) echo $port_base ;; hyper) echo $((port_base + 1)) ;;
    may_minihttp) echo $((port_base + 2)) ;; nginx) echo $((port_base + 3)) ;;
    haywire-handoff) echo $((port_base + 4)) ;; floor) echo $((port_base + 5)) ;;
    haywire-before) echo $((port_base + 6)) ;; esac
}

# TLS scenarios: one certificate for every server; `tls` is 1 while one runs.
tls=0
if in_list tls "${scenario_list[@]%%-*}"; then
  command -v openssl >/dev/null || die "the tls-* scenarios need openssl to make a certificate"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null \
    || die "openssl could not make a certificate"
fi

# Static scenarios: the files every server serves at /static/.
if in_list static "${scenario_list[@]%%-*}"; then
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
[[route]]
handler = "metrics"
path = "/metrics"
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
    default_type text/plain;
    location = / { return 200 "hello world"; }
    location /users/ { return 200 "hello world"; }
    location /static/ { alias $work/www/; sendfile on; }
    # nginx cannot echo without a module: /echo reads and drops the body, answers 200.
    location = /echo { return 200 "hello world"; }
    location / { return 404; }
  }
}
CONF
  echo "$work/nginx/nginx.conf"
}

start_server() { # $1 server, $2 port, $3 log file, $4 scenario; sets server_pid
  local cmd
  case "$1" in
    haywire) cmd=(target/release/haywire --config "$(haywire_config "$2" reuseport)") ;;
    haywire-handoff) cmd=(target/release/haywire --config "$(haywire_config "$2" handoff)") ;;
    haywire-before) cmd=("$before_bin" --config "$(haywire_config "$2" reuseport)") ;;
    hyper) cmd=("$(bin_of hyper)" --port "$2" --threads "$shards")
           [ $tls = 0 ] || cmd+=(--tls "$work/cert.pem" "$work/key.pem") ;;
    may_minihttp) cmd=("$(bin_of may_minihttp)" --port "$2" --threads "$shards") ;;
    floor) cmd=("$(bin_of floor)" --port "$2" --threads "$shards")
           [ "$4" != close ] || cmd+=(--close) ;;
    nginx) cmd=(nginx -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$(nginx_config "$2")") ;;
  esac
  launch "$2" "$3" 10 "${cmd[@]}" && return 0
  [ "$1" = nginx ] && sed 's/^/  | /' "$work/nginx/logs/error.log" >&2 2>/dev/null
  exit 1
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
    static-1m) echo "$connections connections, keep-alive, GET of a 1 MiB file (Haywire and nginx: sendfile)" ;;
    close) echo "$close_connections connections, GET / with Connection: close: one TCP connection per request" ;;
    mixed) echo "$connections connections, keep-alive, in turn GET /users/<n> (:param route), GET /nope (404, not an error), POST /echo with 1 KiB" ;;
  esac
}
# Which servers sit a scenario out, and why (empty: it runs).
sits_out() { # $1 server, $2 scenario
  case "$2:$1" in
    tls-*:may_minihttp|tls-*:floor) echo "no TLS" ;;
    static-*:hyper|static-*:may_minihttp|static-*:floor) echo "no file serving" ;;
  esac
}

clk_tck=$(getconf CLK_TCK)
raw="$work/raw.tsv"
: >"$raw"
{
  printf 'flag\tcommand\t%s\n' "$command_line"
  printf 'flag\tcommit\t%s\n' "$(commit_of)"
  printf 'flag\tshards\t%s\n' "$shards"
  printf 'flag\tserver-cpus\t%s\n' "$server_cpus"
  printf 'flag\twrk-cpus\t%s\n' "$wrk_cpus"
  printf 'flag\twrk-threads\t%s\n' "$wrk_threads"
  printf 'flag\tconnections\t%s\n' "$connections"
  printf 'flag\tduration\t%ss\n' "$duration"
  printf 'flag\truns\t%s per server, in rounds, servers shuffled each round (seed %s), each after a %s s warm-up\n' "$runs" "$seed" "$warmup"
  printf 'flag\tdepth\t%s\n' "${depth:-from the scenario name}"
  printf 'flag\tscenarios\t%s\n' "$(IFS=,; echo "${scenario_list[*]}")"
  printf 'flag\tservers\t%s\n' "$(IFS=,; echo "${server_list[*]}")"
  printf 'flag\tquick\t%s\n' "$([ $quick = 1 ] && echo yes || echo no)"
  printf 'flag\tload average at start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  for s in "${scenario_list[@]}"; do printf 'desc\t%s\t%s\n' "$s" "$(describe "$s")"; done
} >>"$raw"
for n in ${notes[@]+"${notes[@]}"}; do printf 'note\t%s\n' "$n" >>"$raw"; done
if has_server may_minihttp && in_list close "${scenario_list[@]}"; then
  printf 'note\t%s\n' "may_minihttp cannot close a connection itself: in close, its peer answers Connection: close and wrk closes the connection." >>"$raw"
fi
if in_list mixed "${scenario_list[@]}"; then
  has_server nginx && printf 'note\t%s\n' "nginx does not echo: in mixed, its POST /echo answers 200 hello world." >>"$raw"
  has_server floor && printf 'note\t%s\n' "floor does not route: in mixed, it answers every request 200 hello world (no 404s, no echo)." >>"$raw"
fi
for server in "${server_list[@]}"; do
  for scenario in "${scenario_list[@]}"; do
    why=$(sits_out "$server" "$scenario")
    [ -z "$why" ] || printf 'note\t%s\n' "$server sits out $scenario: $why." >>"$raw"
  done
done

total=0
for scenario in "${scenario_list[@]}"; do
  for server in "${server_list[@]}"; do [ -n "$(sits_out "$server" "$scenario")" ] || total=$((total + runs)); done
done
step=0
for scenario in "${scenario_list[@]}"; do
  conns=$(scenario_connections "$scenario")
  scheme=http tls=0
  [[ $scenario != tls-* ]] || scheme=https tls=1
  for run in $(seq "$runs"); do
    for server in $(round_order "$scenario" "$run" "${server_list[@]}"); do
      [ -z "$(sits_out "$server" "$scenario")" ] || continue
      step=$((step + 1))
      port=$(port_of "$server")
      base="$scheme://127.0.0.1:$port"
      mapfile -t args < <(wrk_args "$scenario" "$base")
      log="$work/$server-$scenario.log"
      start_server "$server" "$port" "$log" "$scenario"
      pid=$server_pid
      echo "[$step/$total] $scenario run $run: $server (PID $pid, port $port): warm-up ${warmup}s, ${duration}s" >&2
      run_wrk "$warmup" "$work/wrk.out" "$conns" "${args[@]}" || true
      read -r parks_before turns_before < <(loop_counters "$base")
      before=$(tree_ticks "$pid")
      rc=0
      run_wrk "$duration" "$work/wrk.out" "$conns" "${args[@]}" || rc=$?
      after=$(tree_ticks "$pid")
      read -r parks_after turns_after < <(loop_counters "$base")
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: $server died during $scenario:" >&2
        sed 's/^/  | /' "$log" >&2
        exit 1
      fi
      parks=- turns=-
      [ "$parks_before" = - ] || [ "$parks_after" = - ] || parks=$((parks_after - parks_before))
      [ "$turns_before" = - ] || [ "$turns_after" = - ] || turns=$((turns_after - turns_before))
      result=$(grep -m1 '^RESULT ' "$work/wrk.out" || true)
      if [ $rc != 0 ] || [ -z "$result" ]; then
        echo "run.sh: wrk failed (status $rc) for $server $scenario run $run:" >&2
        sed 's/^/  | /' "$work/wrk.out" >&2
        printf 'note\t%s\n' "$server $scenario run $run: wrk gave no result" >>"$raw"
      else
        printf 'run\t%s\t%s\t%s\tserver_ticks=%s clk_tck=%s server_cpus=%s wrk_cpu_s=%s rss_kib=%s parks=%s turns=%s %s\n' \
          "$server" "$scenario" "$run" "$((after - before))" "$clk_tck" "$server_cpu_count" \
          "$(cat "$work/wrk.cpu" 2>/dev/null || echo -)" "$(tree_hwm_kib "$pid")" "$parks" "$turns" \
          "${result#RESULT }" >>"$raw"
        requests=$(grep -o 'requests=[0-9]*' <<<"$result" | cut -d= -f2)
        echo "    $requests requests, $(awk -v r="$requests" -v d="$duration" 'BEGIN {printf "%.0f", r / d}') req/s, server CPU $(( (after - before) * 100 / clk_tck / duration ))%" >&2
      fi
      stop_pid "$pid"
    done
  done
done

echo >&2
[ -z "$raw_out" ] || cp "$raw" "$raw_out"
[ $report = 0 ] || python3 benchmarks/report.py "$raw" $([ $quick = 1 ] && echo --quick)
