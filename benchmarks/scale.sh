#!/usr/bin/env bash
# How Haywire scales with shards: the pipelined and keep-alive scenarios at 1, 2, 4, ...
# shards, for both balancers (reuseport and handoff), each point a benchmarks/run.sh run
# with disjoint CPUs: the server on CPUs 0..n-1, wrk on the next CPUs (as many as the
# server has, when the machine has them), wrk threads = wrk CPUs, 64 connections per
# shard. Prints req/s, server CPU per request and scaling efficiency (req/s at n shards
# ÷ (n × req/s at 1 shard)) and writes benchmarks/results/scale-<date>-<host>.md.
#
#   benchmarks/scale.sh                       # every point this machine can hold
#   benchmarks/scale.sh --points 1,2,4,8,16 --duration 10 --runs 3
#   benchmarks/scale.sh --quick               # one 2-second run per point
#
# Flags (defaults in brackets):
#   --points LIST     shard counts [1,2,4,... up to half the CPUs, at least 1]
#   --scenarios LIST  [pipe16,ka]
#   --servers LIST    [haywire,haywire-handoff]
#   --connections N   wrk connections per shard [64]
#   --duration S      seconds per measured run [8]
#   --runs N          runs per point, median reported [3]
#   --quick           --runs 1 --duration 2
# A point needs n + 1 CPUs at least (n for the server, one or more for wrk); points the
# machine cannot hold are skipped and named in the report. On a 2-CPU machine only the
# 1-shard point runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cpus=$(nproc)
points= scenarios=pipe16,ka servers=haywire,haywire-handoff per_shard=64 duration=8 runs=3
die() { echo "scale.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --points) points=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --connections) per_shard=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --quick) runs=1 duration=2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done
if [ -z "$points" ]; then
  points=1
  n=2
  while [ $((2 * n)) -le "$cpus" ]; do points="$points,$n"; n=$((2 * n)); done
fi
[[ $points =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "bad --points '$points'"

work=$(mktemp -d /tmp/haywire-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
skipped=()
build=
for n in ${points//,/ }; do
  if [ $((n + 1)) -gt "$cpus" ]; then
    skipped+=("$n")
    continue
  fi
  wrk_count=$(( cpus - n < n ? cpus - n : n ))
  server_cpus=0-$((n - 1))
  wrk_cpus=$n-$((n + wrk_count - 1))
  echo "== $n shard(s): server CPUs $server_cpus, wrk CPUs $wrk_cpus ($wrk_count threads)" >&2
  benchmarks/run.sh $build --no-report --raw-out "$work/raw-$n.tsv" \
    --shards "$n" --server-cpus "$server_cpus" --wrk-cpus "$wrk_cpus" \
    --wrk-threads "$wrk_count" --connections $((per_shard * n)) \
    --scenarios "$scenarios" --servers "$servers" --runs "$runs" --duration "$duration"
  build=--no-build
done
ls "$work"/raw-*.tsv >/dev/null 2>&1 || die "no point fits on $cpus CPUs"
python3 benchmarks/scale_report.py --cpus "$cpus" --skipped "${skipped[*]:-}" "$work"/raw-*.tsv
