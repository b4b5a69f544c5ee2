#!/usr/bin/env bash
# Instructions per request under callgrind: a figure machine noise does not move.
#
#   benchmarks/callgrind.sh                      # haywire, hyper, may_minihttp
#   benchmarks/callgrind.sh haywire --batches 500
#   benchmarks/callgrind.sh --depth 1            # keep-alive: one request at a time
#   benchmarks/callgrind.sh techempower-json     # examples/techempower.rs GET /json
#   benchmarks/callgrind.sh techempower-db techempower-queries   # /db, /queries?queries=20
#   HAYWIRE_BIN=/tmp/old benchmarks/callgrind.sh haywire   # binaries from another build
#
# Each server runs under `valgrind --tool=callgrind` with one shard/thread; a Python
# client sends pipelined GET / batches (--depth, 16 by default) on 8 connections and reads every
# answer. A warm-up of 20 batches runs first and its counts are dumped apart; the
# figure is the user-space instructions (the kernel is not seen) of the measured
# batches alone, divided by the requests answered.
# Needs valgrind (installed with apt-get when missing) and the release binaries that
# benchmarks/run.sh builds.
set -euo pipefail
cd "$(dirname "$0")/.."

batches=300
depth=16
servers=()
while [ $# -gt 0 ]; do
  case $1 in
    --batches) batches=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) servers+=("$1"); shift ;;
  esac
done
[ ${#servers[@]} -gt 0 ] || servers=(haywire hyper may_minihttp)
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

peers=benchmarks/peers/target/release
bin=${HAYWIRE_BIN:-target/release}
work=$(mktemp -d)
pid=
# A client that fails (exits under `set -e`) must not leave its server listening: a later
# run on the same port would share its connections with it (SO_REUSEPORT).
trap '[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT

cat > "$work/client.py" <<'PY'
import socket, sys, time
port, batches, depth = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
path, marker = sys.argv[4].encode(), sys.argv[5].encode()
conns = 8
wire = (b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n") * depth
deadline = time.time() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", port)).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)
# Ready means answering 200 (a database route answers 503 until its connection is up).
while True:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if s.recv(65536).startswith(b"HTTP/1.1 200"):
            break
    if time.time() > deadline:
        sys.exit("server never answered 200")
    time.sleep(0.2)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
for _ in range(batches):
    for s in socks:
        s.sendall(wire)
    for s in socks:
        got = b""
        while got.count(marker) < depth:
            chunk = s.recv(65536)
            if not chunk:
                statuses = [l for l in got.split(b"\r\n") if l.startswith(b"HTTP/1.1 ")]
                sys.exit(f"server closed after {len(statuses)} answers: {set(statuses)}")
            got += chunk
print(batches * depth * conns)
PY

port=18900
for server in "${servers[@]}"; do
  path=/ marker="hello world"
  case $server in
    haywire) cmd=("$bin/haywire" --config config.toml --port $port --shards 1) ;;
    techempower-*)
      cmd=("$bin/examples/techempower" --port $port --shards 1)
      [ -x "${cmd[0]}" ] || cmd=("$bin/techempower" --port $port --shards 1)
      case ${server#techempower-} in
        json) path=/json marker="Hello, World!" ;;
        # The database tests need benchmarks/tfb/setup.sh's PostgreSQL; one answer, one
        # status line.
        db) path=/db marker="HTTP/1.1 200" ;;
        queries) path="/queries?queries=20" marker="HTTP/1.1 200" ;;
        *) echo "unknown server $server" >&2; exit 2 ;;
      esac ;;
    hyper) cmd=("$peers/peer-hyper" --port $port --threads 1) ;;
    may_minihttp) cmd=("$peers/peer-may-minihttp" --port $port --threads 1) ;;
    *) echo "unknown server $server" >&2; exit 2 ;;
  esac
  [ -x "${cmd[0]}" ] || { echo "${cmd[0]} is not built: run benchmarks/run.sh first" >&2; exit 2; }
  out="$work/callgrind.$server"
  valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >"$work/$server.log" 2>&1 &
  pid=$!
  python3 "$work/client.py" $port 20 "$depth" "$path" "$marker" >/dev/null
  # Dumps are written on request (and reset the counts); the servers do not exit here.
  callgrind_control -d "$pid" >/dev/null 2>&1
  requests=$(python3 "$work/client.py" $port "$batches" "$depth" "$path" "$marker")
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 2
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  total=$(awk '/^summary:|^totals:/ {s = $2} END {print s}' "$out.2")
  echo "$server: $((total / requests)) instructions per request ($requests requests)"
  port=$((port + 1))
done
