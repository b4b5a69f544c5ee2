#!/usr/bin/env bash
# TechEmpower suite, Haywire side by side with its peers. Builds Haywire's techempower
# example and the peers in benchmarks/tfb/peers/ (hyper, actix, may_minihttp, xitca),
# runs benchmarks/tfb/setup.sh --cpus WRK_CPUS (PostgreSQL with the hello_world database,
# pinned to the wrk CPUs: the same place for every server), then for every test, N times
# over, for every server in turn: starts the server under `taskset -c SERVER_CPUS`, waits
# until the test's path answers 200, runs a 2 s warm-up and one measured wrk run under
# `taskset -c WRK_CPUS`, reads the server's CPU time (and PostgreSQL's) and peak RSS from
# /proc, and stops it by PID. A run during which PostgreSQL restarted is measured again
# (after setup.sh pins the new postmaster). Writes benchmarks/tfb/results/<date>-<host>.md (and
# latest.md, latest.png, and the raw figures as latest-raw.tsv) and prints the report.
#
#   benchmarks/tfb/run.sh                 # 2-core defaults: servers on CPU 1, wrk + PostgreSQL on CPU 0
#   benchmarks/tfb/run.sh --quick         # smoke test: one 2-second run per test
#   benchmarks/tfb/run.sh --tests db,fortunes --servers haywire,hyper --runs 5
#
# Flags (defaults in brackets):
#   --servers LIST      haywire,hyper,actix,may_minihttp,xitca [all five]
#   --tests LIST        plaintext,json,db,queries,fortunes,updates,cached-queries [all];
#                       `queries` and `updates` mean N = 1, 5 and 20, `cached-queries` N = 20;
#                       one N alone: queries-5, updates-20, cached-queries-100 (N in 1..500)
#   --runs N            measured runs per test and server, the median is reported [3]
#   --duration S        seconds per measured run [8]
#   --warmup S          seconds of warm-up before each measured run [2]
#   --shards N          Haywire shards, peer threads [1]
#   --server-cpus LIST  taskset CPU list for the servers [1]
#   --wrk-cpus LIST     taskset CPU list for wrk and PostgreSQL [0]
#   --wrk-threads N     wrk threads [1]
#   --connections N     wrk connections [64] (TFB itself uses 256 and 512 on larger hosts)
#   --depth N           pipeline depth of plaintext [16, as TFB]
#   --port N            first port: haywire N, hyper N+1, actix N+2, may_minihttp N+3,
#                       xitca N+4 [19000]
#   --database-url URL  use this database and skip setup.sh [setup.sh's]
#   --haywire-rev REV   build Haywire from commit REV (git archive into target/tfb-haywire/),
#                       not from the working tree, e.g. HEAD while the tree is mid-edit
#   --quick             --runs 1 --duration 2
#   --no-build          use the binaries already built
#   -h, --help          this text
# wrk is installed with apt-get when missing, gnuplot-nox too (for the chart; without it
# the chart is skipped). Everything is on loopback; every server started is stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

shards=1 server_cpus=1 wrk_cpus=0 wrk_threads=1 connections=64 duration=8 runs=3 depth=16
warmup=2 port_base=19000 build=1 quick=0 database_url= haywire_rev=
servers=haywire,hyper,actix,may_minihttp,xitca
tests=plaintext,json,db,queries,fortunes,updates,cached-queries
command_line="benchmarks/tfb/run.sh $*"

die() { echo "tfb/run.sh: $*" >&2; exit 1; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --servers|--tests|--runs|--duration|--warmup|--shards|--server-cpus|--wrk-cpus|--wrk-threads|--connections|--depth|--port|--database-url|--haywire-rev)
      need_value "$@"
      case "$1" in
        --servers) servers=$2 ;; --tests) tests=$2 ;; --runs) runs=$2 ;;
        --duration) duration=$2 ;; --warmup) warmup=$2 ;; --shards) shards=$2 ;;
        --server-cpus) server_cpus=$2 ;; --wrk-cpus) wrk_cpus=$2 ;;
        --wrk-threads) wrk_threads=$2 ;; --connections) connections=$2 ;;
        --depth) depth=$2 ;; --port) port_base=$2 ;; --database-url) database_url=$2 ;;
        --haywire-rev) haywire_rev=$2 ;;
      esac
      shift 2 ;;
    --quick) quick=1 runs=1 duration=2; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done

for pair in "shards:$shards" "wrk-threads:$wrk_threads" "connections:$connections" \
            "duration:$duration" "runs:$runs" "port:$port_base" "depth:$depth" "warmup:$warmup"; do
  [[ ${pair#*:} =~ ^[1-9][0-9]*$ ]] || die "--${pair%%:*} wants a positive integer, not '${pair#*:}'"
done
for list in "$server_cpus" "$wrk_cpus"; do
  [[ $list =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "bad CPU list '$list' (like 1 or 0-3,8)"
done
[ "$connections" -ge "$wrk_threads" ] || die "--connections must be at least --wrk-threads"
[ "$port_base" -le 65530 ] || die "--port must leave room for five ports"

# Tests: plaintext, json, db, fortunes, queries-N, updates-N, cached-queries-N.
test_list=()
add_test() { [[ " ${test_list[*]} " == *" $1 "* ]] || test_list+=("$1"); }
for t in ${tests//,/ }; do
  case "$t" in
    plaintext|json|db|fortunes) add_test "$t" ;;
    queries|updates) for n in 1 5 20; do add_test "$t-$n"; done ;;
    cached-queries) add_test cached-queries-20 ;;
    queries-*|updates-*|cached-queries-*)
      n=${t##*-}
      [[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 500 ] || die "bad count in $t (1..500)"
      add_test "$t" ;;
    *) die "unknown test $t (see --help)" ;;
  esac
done
[ ${#test_list[@]} -gt 0 ] || die "no tests"

server_list=()
for s in ${servers//,/ }; do
  case "$s" in haywire|hyper|actix|may_minihttp|xitca) ;; *) die "unknown server $s" ;; esac
  [[ " ${server_list[*]} " == *" $s "* ]] || server_list+=("$s")
done
[ ${#server_list[@]} -gt 0 ] || die "no servers"

command -v taskset >/dev/null || die "taskset (util-linux) is missing"
command -v python3 >/dev/null || die "python3 is missing"
command -v curl >/dev/null || die "curl is missing"

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
work=$(mktemp -d /tmp/haywire-tfb.XXXXXX)
pids=()
forget_pid() {
  local rest=() p
  for p in ${pids[@]+"${pids[@]}"}; do [ "$p" = "$1" ] || rest+=("$p"); done
  pids=(${rest[@]+"${rest[@]}"})
}
stop_pid() { # $1 PID: SIGTERM, up to 10 s to exit, then SIGKILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "PID $pid did not stop on SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}
cleanup() {
  trap - EXIT
  trap '' INT TERM HUP # let the cleanup finish
  local p
  for p in ${pids[@]+"${pids[@]}"}; do stop_pid "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "tfb/run.sh: interrupted" >&2; exit 130' INT TERM HUP

peers=benchmarks/tfb/peers
haywire_src=. haywire_target=target
if [ -n "$haywire_rev" ]; then
  haywire_rev=$(git rev-parse --short "$haywire_rev^{commit}") || die "--haywire-rev: no such commit"
  haywire_src=target/tfb-haywire/src haywire_target=target/tfb-haywire/target
fi
bin_of() {
  case "$1" in
    haywire) echo $haywire_target/release/examples/techempower ;;
    hyper) echo $peers/hyper/target/release/tfb-hyper ;;
    actix) echo $peers/actix/target/release/tfb-actix ;;
    may_minihttp) echo $peers/may_minihttp/target/release/tfb-may-minihttp ;;
    xitca) echo $peers/xitca/target/release/tfb-xitca ;;
  esac
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
  if has_server haywire; then
    if [ -n "$haywire_rev" ]; then
      echo "extracting haywire at $haywire_rev into $haywire_src..." >&2
      rm -rf "$haywire_src" && mkdir -p "$haywire_src"
      git archive "$haywire_rev" | tar -x -C "$haywire_src"
    fi
    if [ -f "$haywire_src/examples/techempower.rs" ]; then
      echo "building haywire's techempower example (--features pg)..." >&2
      CARGO_TARGET_DIR=$PWD/$haywire_target cargo build --release --quiet --example techempower \
        --features pg --manifest-path "$haywire_src/Cargo.toml" \
        || drop_server haywire "examples/techempower.rs does not build (see the cargo output above)"
    else
      drop_server haywire "examples/techempower.rs does not exist yet"
    fi
  fi
  for s in hyper actix may_minihttp xitca; do
    has_server $s || continue
    echo "building the $s peer..." >&2
    # Each peer is its own workspace with its own target/; --locked keeps the committed
    # versions (xitca's lock pins releases that build on this toolchain).
    cargo build --release --quiet --locked --manifest-path "$peers/$s/Cargo.toml" \
      || drop_server $s "the $s peer does not build on $(rustc --version) (see the cargo output above)"
  done
fi
for s in ${server_list[@]+"${server_list[@]}"}; do
  [ -x "$(bin_of "$s")" ] || drop_server "$s" "$(bin_of "$s") is missing (run without --no-build)"
done
[ ${#server_list[@]} -gt 0 ] || die "no server left to benchmark"

# PostgreSQL on the wrk CPUs, the same for every server.
own_db=0
if [ -z "$database_url" ]; then
  own_db=1
  echo "setting up PostgreSQL (benchmarks/tfb/setup.sh --cpus $wrk_cpus)..." >&2
  benchmarks/tfb/setup.sh --cpus "$wrk_cpus" >"$work/setup.log" 2>&1 \
    || { sed 's/^/  | /' "$work/setup.log" >&2; die "setup.sh failed"; }
  database_url=$(sed -n 's/^setup\.sh: url: //p' "$work/setup.log" | tail -1)
  [ -n "$database_url" ] || database_url=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world
fi
# The postmaster, to count the database's CPU time (its backends are its children). Looked
# up for every run: if it changes during one (someone restarted PostgreSQL), the run is
# measured again.
postmaster_pid() { pgrep -o -x postgres 2>/dev/null || true; }
pinned_postmaster=$(postmaster_pid)
ensure_db() { # before each run: a PostgreSQL restarted by someone else is set up and pinned again
  [ $own_db = 1 ] || return 0
  local pm
  pm=$(postmaster_pid)
  [ -n "$pm" ] && [ "$pm" = "$pinned_postmaster" ] && return 0
  echo "tfb/run.sh: PostgreSQL restarted (postmaster ${pinned_postmaster:-none} -> ${pm:-none}): setup.sh --cpus $wrk_cpus again" >&2
  benchmarks/tfb/setup.sh --cpus "$wrk_cpus" >"$work/setup.log" 2>&1 || sed 's/^/  | /' "$work/setup.log" >&2
  pinned_postmaster=$(postmaster_pid)
  printf 'note\t%s\n' "PostgreSQL was restarted by something else during the benchmark; setup.sh --cpus $wrk_cpus ran again before $1" >>"$raw"
}
pg_version=$(psql --version 2>/dev/null | head -1 || echo unknown)

port_of() {
  case "$1" in haywire) echo $port_base ;; hyper) echo $((port_base + 1)) ;;
    actix) echo $((port_base + 2)) ;; may_minihttp) echo $((port_base + 3)) ;;
    xitca) echo $((port_base + 4)) ;; esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_pid=
start_server() { # $1 server, $2 port, $3 log file; sets server_pid
  local cmd=("$(bin_of "$1")" --port "$2" --database-url "$database_url")
  if [ "$1" = haywire ]; then cmd+=(--shards "$shards"); else cmd+=(--threads "$shards"); fi
  local waited=0
  while port_open "$2" && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  if port_open "$2"; then
    ss -ltnp "sport = :$2" >&2 2>/dev/null || true
    die "port $2 (for $1) is already in use by another process: pick other ports with --port"
  fi
  taskset -c "$server_cpus" "${cmd[@]}" >"$3" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 150); do # up to 15 s (the servers connect to the database first)
    port_open "$2" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "tfb/run.sh: $1 did not start (PID $server_pid, port $2): ${cmd[*]}" >&2
  sed 's/^/  | /' "$3" >&2
  stop_pid "$server_pid"
  return 1
}

# CPU ticks (utime + stime of all threads) of a process and its children.
tree_ticks() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo $total
}
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
db_ticks() { if [ -n "$1" ]; then tree_ticks "$1"; else echo 0; fi; }

path_of() { # $1 test
  case "$1" in
    plaintext) echo /plaintext ;; json) echo /json ;; db) echo /db ;; fortunes) echo /fortunes ;;
    queries-*) echo "/queries?queries=${1##*-}" ;; updates-*) echo "/updates?queries=${1##*-}" ;;
    cached-queries-*) echo "/cached-queries?count=${1##*-}" ;;
  esac
}
describe() {
  case "$1" in
    plaintext) echo "GET /plaintext, $depth requests pipelined per round trip (as TFB); latency is per batch" ;;
    json) echo "GET /json: {\"message\":\"Hello, World!\"} serialized per request" ;;
    db) echo "GET /db: one random World row" ;;
    fortunes) echo "GET /fortunes: every Fortune row plus one added at request time, sorted, HTML-escaped" ;;
    queries-*) echo "GET $(path_of "$1"): ${1##*-} random World rows, one SELECT each" ;;
    updates-*) echo "GET $(path_of "$1"): ${1##*-} World rows read, given new numbers and written back" ;;
    cached-queries-*) echo "GET $(path_of "$1"): ${1##*-} World rows from an in-memory cache" ;;
  esac
}
wrk_args() { # $1 test, $2 base URL: wrk arguments, one per line
  printf '%s\n' "-c$connections" -s benchmarks/tfb/get.lua "$2$(path_of "$1")"
  [ "$1" = plaintext ] && printf '%s\n' -- "$depth"
  return 0
}
uses_db() { case "$1" in plaintext|json|cached-queries-*) return 1 ;; esac; }
wait_ready() { # $1 server, $2 test, $3 base URL: up to 10 s for the test's path to answer
  local out="$work/check" status=000 # 200 with a body (a server may listen before its
  for _ in $(seq 100); do # database connection is up, and answer 503 meanwhile)
    status=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 "$3$(path_of "$2")" || echo 000)
    [ "$status" = 200 ] && [ -s "$out" ] && return 0
    sleep 0.1
  done
  echo "tfb/run.sh: $1 still answers $status to $(path_of "$2") after 10 s" >&2
  printf 'note\t%s\n' "$1 $2: answered HTTP $status to $(path_of "$2") for 10 s after starting; measured anyway" >>"$raw"
}

wrk_pid=
run_wrk() { # $1 seconds, $2 output file, rest: wrk arguments. In the background, so a
  local seconds=$1 out=$2; shift 2 # signal is handled at once.
  WRK_CONNECTIONS=$connections timeout $((seconds + 30)) taskset -c "$wrk_cpus" \
    wrk -t"$wrk_threads" -d"${seconds}s" --timeout 4s "$@" >"$out" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  local rc=0
  wait "$wrk_pid" || rc=$?
  forget_pid "$wrk_pid"
  return $rc
}

peer_versions() { # the framework and database crates each peer's Cargo.lock pins
  local s
  for s in ${server_list[@]+"${server_list[@]}"}; do
    [ "$s" = haywire ] && continue
    awk -v peer="$s" '/^name = / {name = $3; gsub(/"/, "", name)}
      /^version = / && name ~ /^(hyper|actix-web|may_minihttp|may|xitca-web|xitca-postgres|tokio-postgres|postgres|tokio)$/ {
        v = $3; gsub(/"/, "", v); out = out (out ? " " : "") name "@" v }
      END {printf "%s: %s; ", peer, out}' "$peers/$s/Cargo.lock"
  done
}
clk_tck=$(getconf CLK_TCK)
raw="$work/raw.tsv"
: >"$raw"
{
  printf 'flag\tcommand\t%s\n' "$command_line"
  printf 'flag\tshards/threads\t%s\n' "$shards"
  printf 'flag\tserver-cpus\t%s\n' "$server_cpus"
  printf 'flag\twrk-cpus (and PostgreSQL)\t%s\n' "$wrk_cpus"
  printf 'flag\twrk-threads\t%s\n' "$wrk_threads"
  printf 'flag\tconnections\t%s\n' "$connections"
  printf 'flag\tduration\t%ss\n' "$duration"
  printf 'flag\truns\t%s per server, interleaved, each on a fresh server after a %s s warm-up\n' "$runs" "$warmup"
  printf 'flag\tplaintext depth\t%s\n' "$depth"
  printf 'flag\ttests\t%s\n' "$(IFS=,; echo "${test_list[*]}")"
  printf 'flag\tservers\t%s\n' "$(IFS=,; echo "${server_list[*]}")"
  printf 'flag\tdatabase\t%s, %s\n' "$pg_version" "${database_url//benchmarkdbpass/***}"
  if [ -n "$haywire_rev" ]; then
    printf 'flag\thaywire\t%s (--haywire-rev)\n' "$haywire_rev"
  else
    printf 'flag\thaywire\t%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes in the working tree')"
  fi
  printf 'flag\tpeer crates\t%s\n' "$(peer_versions)"
  printf 'flag\tquick\t%s\n' "$([ $quick = 1 ] && echo yes || echo no)"
  printf 'flag\tload average at start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  for t in "${test_list[@]}"; do printf 'desc\t%s\t%s\n' "$t" "$(describe "$t")"; done
} >>"$raw"
for n in ${notes[@]+"${notes[@]}"}; do printf 'note\t%s\n' "$n" >>"$raw"; done
[ -n "$(postmaster_pid)" ] || printf 'note\t%s\n' "no postgres process found: database CPU is not counted" >>"$raw"
if has_server may_minihttp; then
  printf 'note\t%s\n' "may_minihttp uses the synchronous postgres crate (may_postgres is not on crates.io): its queries block its worker thread and are not pipelined." >>"$raw"
fi

measure() { # $1 server, $2 test, $3 run: one measured run on a fresh server. Returns 2
  local server=$1 test=$2 run=$3 port base log pid rc # when PostgreSQL restarted meanwhile.
  port=$(port_of "$server")
  base="http://127.0.0.1:$port"
  mapfile -t args < <(wrk_args "$test" "$base")
  log="$work/$server-$test.log"
  ensure_db "$server $test run $run"
  if ! start_server "$server" "$port" "$log"; then
    printf 'note\t%s\n' "$server $test run $run: the server did not start: $(tail -1 "$log" | cut -c1-200)" >>"$raw"
    return 0
  fi
  pid=$server_pid
  echo "[$step/$total] $test run $run: $server (PID $pid, port $port): warm-up ${warmup}s, ${duration}s" >&2
  wait_ready "$server" "$test" "$base"
  run_wrk "$warmup" "$work/wrk.out" "${args[@]}" || true
  local pm_before pm_after before after db_before db_after
  pm_before=$(postmaster_pid)
  before=$(tree_ticks "$pid") db_before=$(db_ticks "$pm_before")
  rc=0
  run_wrk "$duration" "$work/wrk.out" "${args[@]}" || rc=$?
  pm_after=$(postmaster_pid)
  after=$(tree_ticks "$pid") db_after=$(db_ticks "$pm_after")
  if uses_db "$test" && [ "$pm_before" != "$pm_after" ]; then
    echo "tfb/run.sh: PostgreSQL restarted during $server $test run $run (postmaster $pm_before -> $pm_after)" >&2
    stop_pid "$pid"
    return 2
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "tfb/run.sh: $server died during $test:" >&2
    sed 's/^/  | /' "$log" >&2
    printf 'note\t%s\n' "$server $test run $run: the server died: $(tail -1 "$log" | cut -c1-200)" >>"$raw"
    stop_pid "$pid"
    return 0
  fi
  local result requests errors
  result=$(grep -m1 '^RESULT ' "$work/wrk.out" || true)
  if [ $rc != 0 ] || [ -z "$result" ]; then
    echo "tfb/run.sh: wrk failed (status $rc) for $server $test run $run:" >&2
    sed 's/^/  | /' "$work/wrk.out" >&2
    printf 'note\t%s\n' "$server $test run $run: wrk gave no result" >>"$raw"
  else
    printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$test" "$run" "$((after - before))" \
      "$(uses_db "$test" && echo $((db_after - db_before)) || echo -)" "$clk_tck" "${result#RESULT }" >>"$raw"
    requests=$(grep -o 'requests=[0-9]*' <<<"$result" | cut -d= -f2)
    errors=$(grep -o 'non2xx=[0-9]*' <<<"$result" | head -1 | cut -d= -f2)
    echo "    $requests requests, $(awk -v r="$requests" -v d="$duration" 'BEGIN {printf "%.0f", r / d}') req/s, non-2xx $errors" >&2
  fi
  printf 'rss\t%s\t%s\t%s\n' "$server" "$test" "$(hwm_kib "$pid")" >>"$raw"
  stop_pid "$pid"
  if grep -qiE 'panick|error' "$log"; then
    printf 'note\t%s\n' "$server $test run $run logged: $(grep -iE -m1 'panick|error' "$log" | cut -c1-200)" >>"$raw"
  fi
  return 0
}

# Runs are interleaved: run 1 of every server, then run 2 of every server, and so on, so a
# slow spell of a shared machine lands on every server alike.
total=$(( ${#server_list[@]} * ${#test_list[@]} * runs ))
step=0
for test in "${test_list[@]}"; do
  for run in $(seq "$runs"); do
    for server in "${server_list[@]}"; do
      step=$((step + 1))
      rc=0
      measure "$server" "$test" "$run" || rc=$?
      if [ $rc = 2 ]; then # once more; a second restart is kept, with a note
        rc=0
        measure "$server" "$test" "$run" || rc=$?
        if [ $rc = 2 ]; then
          printf 'note\t%s\n' "$server $test run $run: PostgreSQL restarted during the run twice: not measured" >>"$raw"
        else
          printf 'note\t%s\n' "$server $test run $run: measured again, PostgreSQL restarted during the first try" >>"$raw"
        fi
      fi
    done
  done
done

echo >&2
mkdir -p benchmarks/tfb/results
cp "$raw" benchmarks/tfb/results/latest-raw.tsv # to redraw: python3 benchmarks/tfb/report.py FILE
python3 benchmarks/tfb/report.py "$raw" $([ $quick = 1 ] && echo --quick)
