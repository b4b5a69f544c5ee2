# Shared by benchmarks/run.sh and benchmarks/tfb/run.sh (sourced, never run): argument
# checks, tool installs, process bookkeeping, CPU and memory readings from /proc, the
# server order of a round, Haywire's wake-up counters, and the wrk runner. The caller
# sets `me` (its name in messages) and `work` (a scratch directory) before sourcing.

die() { echo "$me: $*" >&2; exit 1; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
check_positive() { # NAME:VALUE ...: each VALUE a positive integer
  local pair
  for pair in "$@"; do
    [[ ${pair#*:} =~ ^[1-9][0-9]*$ ]] || die "--${pair%%:*} wants a positive integer, not '${pair#*:}'"
  done
}
check_cpu_list() { # LIST ...: taskset CPU lists
  local list
  for list in "$@"; do
    [[ $list =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "bad CPU list '$list' (like 1 or 0-3,8)"
  done
}
cpu_count() { # $1 a CPU list: how many CPUs it names
  python3 - "$1" <<'PY'
import sys
cpus = set()
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    cpus.update(range(int(a), int(b or a) + 1))
print(len(cpus))
PY
}
in_list() { # $1 word, rest: list
  local w=$1 x
  shift
  for x in "$@"; do [ "$x" = "$w" ] && return 0; done
  return 1
}

apt_install() { # $1 package: install it, running apt-get update once if the first try fails
  echo "installing $1 with apt-get..." >&2
  apt-get install -y -qq "$1" >/dev/null 2>&1 && return 0
  { apt-get update -qq && apt-get install -y -qq "$1"; } >/dev/null 2>&1
}
# wrk is required; gnuplot draws the chart (a note says when it is missing).
need_tools() {
  command -v taskset >/dev/null || die "taskset (util-linux) is missing"
  command -v python3 >/dev/null || die "python3 is missing"
  command -v curl >/dev/null || die "curl is missing"
  if ! command -v wrk >/dev/null; then
    apt_install wrk && command -v wrk >/dev/null || die "wrk is missing and apt-get could not install it"
  fi
  if ! command -v gnuplot >/dev/null; then
    apt_install gnuplot-nox || true
    command -v gnuplot >/dev/null || notes+=("gnuplot could not be installed: no chart")
  fi
}

# Everything the caller starts goes in `pids`; the EXIT trap stops what is left, by PID.
pids=()
notes=()
forget_pid() {
  local rest=() p
  for p in ${pids[@]+"${pids[@]}"}; do [ "$p" = "$1" ] || rest+=("$p"); done
  pids=(${rest[@]+"${rest[@]}"})
}
stop_pid() { # $1 PID: SIGTERM, up to 10 s to exit, then SIGKILL (and its children)
  local pid=$1 children child
  children=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "PID $pid did not stop on SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for child in $children; do kill -KILL "$child" 2>/dev/null || true; done
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
trap 'echo "$me: interrupted" >&2; exit 130' INT TERM HUP

has_server() { in_list "$1" ${server_list[@]+"${server_list[@]}"}; }
drop_server() { # $1 server, $2 why
  local rest=() s
  for s in ${server_list[@]+"${server_list[@]}"}; do [ "$s" = "$1" ] || rest+=("$s"); done
  server_list=(${rest[@]+"${rest[@]}"})
  notes+=("$1 skipped: $2")
  echo "$1 skipped: $2" >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A server that just exited may leave its listener behind for a moment (io_uring tears
# down asynchronously): up to 5 s for port $1 to close, then fail.
wait_port_free() { # $1 port, $2 server
  local waited=0
  while port_open "$1" && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  if port_open "$1"; then
    ss -ltnp "sport = :$1" >&2 2>/dev/null || true
    die "port $1 (for $2) is already in use by another process: pick other ports with --port"
  fi
  [ $waited = 0 ] || echo "    (port $1 took $((waited * 100)) ms to close)" >&2
}
server_pid=
launch() { # $1 port, $2 log file, $3 seconds to wait for the port, rest: command. Starts it
  local port=$1 log=$2 tries=$(($3 * 10)) # under taskset on the server CPUs; sets server_pid.
  shift 3
  wait_port_free "$port" "$1"
  taskset -c "$server_cpus" "$@" >"$log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq "$tries"); do
    port_open "$port" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$me: did not start (PID $server_pid, port $port): $*" >&2
  sed 's/^/  | /' "$log" >&2
  stop_pid "$server_pid"
  return 1
}

# CPU ticks (utime + stime of all threads) of processes, and of a process and its children
# (nginx's workers).
ticks_of() {
  local total=0 p t
  for p in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo $total
}
tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }
tree_ticks() { ticks_of $(tree_pids "$1"); }
tree_hwm_kib() { # peak RSS (VmHWM), summed over the process and its children
  local total=0 p h
  for p in $(tree_pids "$1"); do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null) || h=0
    total=$((total + ${h:-0}))
  done
  echo $total
}

# The order servers run in within round $2 of scenario $1: shuffled, reproducibly from
# `seed`, so no server always runs right after (or before) the same neighbour.
round_order() { # $1 scenario, $2 round, rest: servers
  python3 - "$seed:$1:$2" "${@:3}" <<'PY'
import random, sys
servers = sys.argv[2:]
random.Random(sys.argv[1]).shuffle(servers)
print(" ".join(servers))
PY
}

# Haywire's event-loop counters from /metrics (shard="total"): "PARKS TURNS", or "- -"
# when the server does not expose them.
loop_counters() { # $1 base URL
  curl -sk --max-time 2 "$1/metrics" 2>/dev/null | awk '
    /^haywire_loop_parks_total\{.*shard="total"/ {parks = $NF}
    /^haywire_loop_turns_total\{.*shard="total"/ {turns = $NF}
    END {print (parks == "" ? "-" : parks), (turns == "" ? "-" : turns)}'
}

commit_of() { # the working tree's commit, and whether it has uncommitted changes
  echo "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
}

# wrk under taskset on the wrk CPUs, in the background so a signal is handled at once, with
# a hard timeout. Its CPU seconds (user + system) go to $work/wrk.cpu.
run_wrk() { # $1 seconds, $2 output file, $3 connections, rest: wrk arguments
  local seconds=$1 out=$2 conns=$3
  shift 3
  # WRK_CONNECTIONS lets wrk/report.lua undo wrk's latency correction (see there).
  WRK_CONNECTIONS=$conns python3 benchmarks/lib/cpu_time.py "$work/wrk.cpu" $((seconds + 30)) \
    taskset -c "$wrk_cpus" wrk -t"$wrk_threads" -d"${seconds}s" --timeout 4s "$@" >"$out" 2>&1 &
  local wrk_pid=$!
  pids+=("$wrk_pid")
  local rc=0
  wait "$wrk_pid" || rc=$?
  forget_pid "$wrk_pid"
  return $rc
}
