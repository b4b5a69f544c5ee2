#!/usr/bin/env bash
# TechEmpower suite, Haywire side by side with its peers. Builds Haywire's techempower
# example and the peers in benchmarks/tfb/peers/ (hyper, actix, may_minihttp, xitca),
# runs benchmarks/tfb/setup.sh --cpus WRK_CPUS (PostgreSQL with the hello_world database,
# pinned to the wrk CPUs: the same place for every server), then for every test, N rounds
# over, for every server in a shuffled order: VACUUM and CHECKPOINT (database tests),
# starts the server under `taskset -c SERVER_CPUS`, waits until the test's path answers
# 200, runs a 2 s warm-up and one measured wrk run under `taskset -c WRK_CPUS`, reads the
# server's CPU time, its own PostgreSQL backends' CPU time, wrk's, the server's peak RSS
# and (Haywire) its event-loop wake-ups, and stops it by PID. A run during which PostgreSQL
# restarted is measured again (after setup.sh pins the new postmaster). Writes
# benchmarks/tfb/results/<date>-<host>.md (and latest.md, latest.png, and the raw figures
# as latest-raw.tsv) and prints the report. The shared parts are in benchmarks/lib/.
#
# The peers are built as their TechEmpower entries are, with the allocator and codegen
# flags made the same for every server (Haywire included): the system allocator, fat LTO,
# one codegen unit. may_minihttp sits out the database tests: its TechEmpower entry's
# client, may_postgres, is not on crates.io, and a blocking client would measure something
# else.
#
#   benchmarks/tfb/run.sh                 # 2-core defaults: servers on CPU 1, wrk + PostgreSQL on CPU 0
#   benchmarks/tfb/run.sh --quick         # smoke test: one 2-second run per test
#   benchmarks/tfb/run.sh --tests db,fortunes --servers haywire,hyper --runs 5
#
# Flags (defaults in brackets):
#   --servers LIST      haywire,hyper,actix,may_minihttp,xitca [all five]; also
#                       haywire-before: the techempower binary --before-bin names (an
#                       older commit's build, e.g. from --haywire-rev), for before/after
#                       in one interleaved run; the report divides by it as by a peer
#   --tests LIST        plaintext,json,db,queries,fortunes,updates,cached-queries [all];
#                       `queries` and `updates` mean N = 1, 5 and 20, `cached-queries` N = 20;
#                       one N alone: queries-5, updates-20, cached-queries-100 (N in 1..500)
#   --runs N            measured runs per test and server, the median of the clean ones
#                       is reported [5]
#   --seed S            the shuffle of the server order [random, written in the report]
#   --duration S        seconds per measured run [8]
#   --warmup S          seconds of warm-up before each measured run [2]
#   --shards N          Haywire shards, peer threads [1]
#   --server-cpus LIST  taskset CPU list for the servers [1]
#   --wrk-cpus LIST     taskset CPU list for wrk and PostgreSQL [0]
#   --wrk-threads N     wrk threads [1]
#   --connections N     wrk connections [64] (TFB itself uses 256 and 512 on larger hosts)
#   --depth N           pipeline depth of plaintext [16, as TFB]
#   --port N            first port: haywire N, hyper N+1, actix N+2, may_minihttp N+3,
#                       xitca N+4, haywire-before N+5 [19000]
#   --before-bin PATH   the binary haywire-before runs (required with it)
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

shards=1 server_cpus=1 wrk_cpus=0 wrk_threads=1 connections=64 duration=8 runs=5 depth=16
warmup=2 port_base=19000 build=1 quick=0 database_url= haywire_rev= before_bin= seed=$RANDOM
servers=haywire,hyper,actix,may_minihttp,xitca
tests=plaintext,json,db,queries,fortunes,updates,cached-queries
command_line="benchmarks/tfb/run.sh $*"
me=tfb/run.sh
work=$(mktemp -d /tmp/haywire-tfb.XXXXXX)
source benchmarks/lib/harness.sh

while [ $# -gt 0 ]; do
  case "$1" in
    --servers|--tests|--runs|--duration|--warmup|--shards|--server-cpus|--wrk-cpus|--wrk-threads|--connections|--depth|--port|--database-url|--haywire-rev|--seed)
      need_value "$@"
      case "$1" in
        --servers) servers=$2 ;; --tests) tests=$2 ;; --runs) runs=$2 ;;
        --duration) duration=$2 ;; --warmup) warmup=$2 ;; --shards) shards=$2 ;;
        --server-cpus) server_cpus=$2 ;; --wrk-cpus) wrk_cpus=$2 ;;
        --wrk-threads) wrk_threads=$2 ;; --connections) connections=$2 ;;
        --depth) depth=$2 ;; --port) port_base=$2 ;; --database-url) database_url=$2 ;;
        --haywire-rev) haywire_rev=$2 ;; --seed) seed=$2 ;;
      esac
      shift 2 ;;
    --quick) quick=1 runs=1 duration=2; shift ;;
    --no-build) build=0; shift ;;
    --before-bin) need_value "$@"; before_bin=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done

check_positive "shards:$shards" "wrk-threads:$wrk_threads" "connections:$connections" \
  "duration:$duration" "runs:$runs" "port:$port_base" "depth:$depth" "warmup:$warmup"
check_cpu_list "$server_cpus" "$wrk_cpus"
[ "$connections" -ge "$wrk_threads" ] || die "--connections must be at least --wrk-threads"
[ "$port_base" -le 65529 ] || die "--port must leave room for six ports"

# Tests: plaintext, json, db, fortunes, queries-N, updates-N, cached-queries-N.
test_list=()
add_test() { in_list "$1" ${test_list[@]+"${test_list[@]}"} || test_list+=("$1"); }
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
  case "$s" in haywire|haywire-before|hyper|actix|may_minihttp|xitca) ;; *) die "unknown server $s" ;; esac
  has_server "$s" || server_list+=("$s")
done
[ ${#server_list[@]} -gt 0 ] || die "no servers"
! has_server haywire-before || [ -n "$before_bin" ] || die "haywire-before needs --before-bin PATH"
need_tools

peers=benchmarks/tfb/peers
haywire_src=. haywire_target=target
if [ -n "$haywire_rev" ]; then
  haywire_rev=$(git rev-parse --short "$haywire_rev^{commit}") || die "--haywire-rev: no such commit"
  haywire_src=target/tfb-haywire/src haywire_target=target/tfb-haywire/target
fi
bin_of() {
  case "$1" in
    haywire) echo $haywire_target/release/examples/techempower ;;
    haywire-before) echo "$before_bin" ;;
    hyper) echo $peers/hyper/target/release/tfb-hyper ;;
    actix) echo $peers/actix/target/release/tfb-actix ;;
    may_minihttp) echo $peers/may_minihttp/target/release/tfb-may-minihttp ;;
    xitca) echo $peers/xitca/target/release/tfb-xitca ;;
  esac
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
server_cpu_count=$(cpu_count "$server_cpus")

uses_db() { case "$1" in plaintext|json|cached-queries-*) return 1 ;; esac; }
# Which servers sit a test out, and why (empty: it runs).
sits_out() { # $1 server, $2 test
  [ "$1" = may_minihttp ] && uses_db "$2" && echo "its TechEmpower entry's database client, may_postgres, is not on crates.io"
  return 0
}

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
pg_port=$(sed -n 's|.*@[^/:]*:\([0-9][0-9]*\)/.*|\1|p' <<<"$database_url")
pg_port=${pg_port:-5432}
# The postmaster: a change of it during a run (someone restarted PostgreSQL) means the run
# is measured again.
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
# Before every database run: the dead rows earlier updates left are vacuumed and the dirty
# pages written out, so no run pays for the one before it.
settle_db() {
  if [ $own_db = 1 ]; then
    runuser -u postgres -- psql -p "$pg_port" -d hello_world -qAt -v ON_ERROR_STOP=1 \
      -c 'VACUUM ANALYZE world' -c 'VACUUM ANALYZE fortune' -c CHECKPOINT >/dev/null 2>&1 && return 0
  else
    psql "$database_url" -qAt -c 'VACUUM ANALYZE world' -c 'VACUUM ANALYZE fortune' -c CHECKPOINT \
      >/dev/null 2>&1 && return 0
  fi
  [ -n "${settle_noted:-}" ] || printf 'note\t%s\n' "VACUUM/CHECKPOINT between runs failed (needs the database's superuser)" >>"$raw"
  settle_noted=1
}
pg_version=$(psql --version 2>/dev/null | head -1 || echo unknown)

port_of() {
  case "$1" in haywire) echo $port_base ;; hyper) echo $((port_base + 1)) ;;
    actix) echo $((port_base + 2)) ;; may_minihttp) echo $((port_base + 3)) ;;
    xitca) echo $((port_base + 4)) ;; haywire-before) echo $((port_base + 5)) ;; esac
}

start_server() { # $1 server, $2 port, $3 log file; sets server_pid
  local cmd=("$(bin_of "$1")" --port "$2" --database-url "$database_url")
  case "$1" in haywire*) cmd+=(--shards "$shards") ;; *) cmd+=(--threads "$shards") ;; esac
  launch "$2" "$3" 15 "${cmd[@]}" # up to 15 s: the servers connect to the database first
}

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
  printf '%s\n' -s benchmarks/tfb/get.lua "$2$(path_of "$1")"
  [ "$1" = plaintext ] && printf '%s\n' -- "$depth"
  return 0
}
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

peer_versions() { # the framework and database crates each peer's Cargo.lock pins
  local s
  for s in ${server_list[@]+"${server_list[@]}"}; do
    case "$s" in haywire*) continue ;; esac
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
  if [ -n "$haywire_rev" ]; then
    printf 'flag\tcommit\t%s (--haywire-rev; the harness at %s)\n' "$haywire_rev" "$(commit_of)"
  else
    printf 'flag\tcommit\t%s\n' "$(commit_of)"
  fi
  printf 'flag\tshards/threads\t%s\n' "$shards"
  printf 'flag\tserver-cpus\t%s\n' "$server_cpus"
  printf 'flag\twrk-cpus (and PostgreSQL)\t%s\n' "$wrk_cpus"
  printf 'flag\twrk-threads\t%s\n' "$wrk_threads"
  printf 'flag\tconnections\t%s\n' "$connections"
  printf 'flag\tduration\t%ss\n' "$duration"
  printf 'flag\truns\t%s per server, in rounds, servers shuffled each round (seed %s), each on a fresh server after a %s s warm-up\n' "$runs" "$seed" "$warmup"
  printf 'flag\tplaintext depth\t%s\n' "$depth"
  printf 'flag\ttests\t%s\n' "$(IFS=,; echo "${test_list[*]}")"
  printf 'flag\tservers\t%s\n' "$(IFS=,; echo "${server_list[*]}")"
  printf 'flag\tdatabase\t%s, %s\n' "$pg_version" "${database_url//benchmarkdbpass/***}"
  printf 'flag\tpeer crates\t%s\n' "$(peer_versions)"
  printf 'flag\tquick\t%s\n' "$([ $quick = 1 ] && echo yes || echo no)"
  printf 'flag\tload average at start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  for t in "${test_list[@]}"; do printf 'desc\t%s\t%s\n' "$t" "$(describe "$t")"; done
} >>"$raw"
for n in ${notes[@]+"${notes[@]}"}; do printf 'note\t%s\n' "$n" >>"$raw"; done
[ -n "$(postmaster_pid)" ] || printf 'note\t%s\n' "no postgres process found: database CPU is not counted" >>"$raw"
if has_server may_minihttp; then
  for t in "${test_list[@]}"; do
    uses_db "$t" || continue
    printf 'note\t%s\n' "may_minihttp sits out the database tests: $(sits_out may_minihttp db)." >>"$raw"
    break
  done
fi

measure() { # $1 server, $2 test, $3 run: one measured run on a fresh server. Returns 2
  local server=$1 test=$2 run=$3 port base log pid rc # when PostgreSQL restarted meanwhile.
  port=$(port_of "$server")
  base="http://127.0.0.1:$port"
  mapfile -t args < <(wrk_args "$test" "$base")
  log="$work/$server-$test.log"
  ensure_db "$server $test run $run"
  ! uses_db "$test" || settle_db
  if ! start_server "$server" "$port" "$log"; then
    printf 'note\t%s\n' "$server $test run $run: the server did not start: $(tail -1 "$log" | cut -c1-200)" >>"$raw"
    return 0
  fi
  pid=$server_pid
  echo "[$step/$total] $test run $run: $server (PID $pid, port $port): warm-up ${warmup}s, ${duration}s" >&2
  wait_ready "$server" "$test" "$base"
  run_wrk "$warmup" "$work/wrk.out" "$connections" -c"$connections" "${args[@]}" || true
  # PostgreSQL's CPU is counted for the backends of this server's own connections.
  local backends=() pm_before pm_after before after db_before=- db_after=- parks_before turns_before parks_after turns_after
  uses_db "$test" && mapfile -t backends < <(python3 benchmarks/lib/pg_backends.py "$pid" "$pg_port")
  pm_before=$(postmaster_pid)
  read -r parks_before turns_before < <(loop_counters "$base")
  before=$(tree_ticks "$pid")
  [ ${#backends[@]} = 0 ] || db_before=$(ticks_of "${backends[@]}")
  rc=0
  run_wrk "$duration" "$work/wrk.out" "$connections" -c"$connections" "${args[@]}" || rc=$?
  after=$(tree_ticks "$pid")
  [ ${#backends[@]} = 0 ] || db_after=$(ticks_of "${backends[@]}")
  read -r parks_after turns_after < <(loop_counters "$base")
  pm_after=$(postmaster_pid)
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
  if uses_db "$test" && [ ${#backends[@]} = 0 ]; then
    printf 'note\t%s\n' "$server $test run $run: no PostgreSQL backend of its own found: database CPU not counted" >>"$raw"
  fi
  local result requests errors db=- parks=- turns=-
  [ "$db_before" = - ] || db=$((db_after - db_before))
  [ "$parks_before" = - ] || [ "$parks_after" = - ] || parks=$((parks_after - parks_before))
  [ "$turns_before" = - ] || [ "$turns_after" = - ] || turns=$((turns_after - turns_before))
  result=$(grep -m1 '^RESULT ' "$work/wrk.out" || true)
  if [ $rc != 0 ] || [ -z "$result" ]; then
    echo "tfb/run.sh: wrk failed (status $rc) for $server $test run $run:" >&2
    sed 's/^/  | /' "$work/wrk.out" >&2
    printf 'note\t%s\n' "$server $test run $run: wrk gave no result" >>"$raw"
  else
    printf 'run\t%s\t%s\t%s\tserver_ticks=%s db_ticks=%s db_backends=%s clk_tck=%s server_cpus=%s wrk_cpu_s=%s rss_kib=%s parks=%s turns=%s %s\n' \
      "$server" "$test" "$run" "$((after - before))" "$db" "${#backends[@]}" "$clk_tck" "$server_cpu_count" \
      "$(cat "$work/wrk.cpu" 2>/dev/null || echo -)" "$(tree_hwm_kib "$pid")" "$parks" "$turns" \
      "${result#RESULT }" >>"$raw"
    requests=$(grep -o 'requests=[0-9]*' <<<"$result" | cut -d= -f2)
    errors=$(grep -o 'non2xx=[0-9]*' <<<"$result" | head -1 | cut -d= -f2)
    echo "    $requests requests, $(awk -v r="$requests" -v d="$duration" 'BEGIN {printf "%.0f", r / d}') req/s, non-2xx $errors, server CPU $(( (after - before) * 100 / clk_tck / duration ))%" >&2
  fi
  stop_pid "$pid"
  if grep -qiE 'panick|error' "$log"; then
    printf 'note\t%s\n' "$server $test run $run logged: $(grep -iE -m1 'panick|error' "$log" | cut -c1-200)" >>"$raw"
  fi
  return 0
}

total=0
for test in "${test_list[@]}"; do
  for server in "${server_list[@]}"; do [ -n "$(sits_out "$server" "$test")" ] || total=$((total + runs)); done
done
step=0
for test in "${test_list[@]}"; do
  for run in $(seq "$runs"); do
    for server in $(round_order "$test" "$run" "${server_list[@]}"); do
      [ -z "$(sits_out "$server" "$test")" ] || continue
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
