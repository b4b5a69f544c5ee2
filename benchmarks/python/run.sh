#!/usr/bin/env bash
# Python servers on one CPU: Haywire's WSGI, ASGI and native interfaces against Granian
# (same interface; RSGI for native; WSGI with --blocking-threads 1 and with its default,
# --http1-pipeline-flush when pipelined), uvicorn (httptools + uvloop) and gunicorn
# (gthread), with wrk's pipe16, ka and mixed scenarios (benchmarks/wrk/*.lua) for a
# hello-world, a JSON, a 1 MiB streamed and a Django endpoint (see bench.py's help).
# Writes benchmarks/python/results/latest.md (+ the raw latest.tsv) and prints it.
#
#   benchmarks/python/run.sh              # server on CPU 1, wrk on CPU 0 (about 30 minutes)
#   benchmarks/python/run.sh --quick      # one 2-second run each (about 5 minutes)
#   benchmarks/python/run.sh --servers haywire-native,granian-rsgi --scenarios ka
#   benchmarks/python/run.sh --before-venv /tmp/old --servers haywire-wsgi,haywire-wsgi-before,granian-wsgi
#       # an older build (pip-installed into the venv /tmp/old) in the same rounds, with a
#       # before-and-after table
#   benchmarks/python/run.sh --workers 1,2 --server-cpus 0-1 --wrk-cpus 2-5 --wrk-threads 4 \
#       --servers haywire-wsgi,haywire-asgi,haywire-native --scenarios ka --endpoints hello
#
# Flags (see bench.py --help): --servers --scenarios --endpoints --server-cpus --wrk-cpus
# --wrk-threads --connections --workers --duration --warmup --runs --port --seed --out --quick
# --before-venv.
# The venv (BENCH_VENV, default benchmarks/python/.venv) gets haywire (./python, built
# in release), granian, uvicorn[standard], gunicorn and Django from PyPI; wrk comes from
# apt-get when missing. BENCH_NO_INSTALL=1 skips the installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv=${BENCH_VENV:-benchmarks/python/.venv}
if ! command -v wrk >/dev/null; then
  echo "installing wrk with apt-get..." >&2
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  echo "installing haywire (./python) and the peers into $venv..." >&2
  "$venv/bin/pip" install -q ./python granian 'uvicorn[standard]' gunicorn django
fi
exec "$venv/bin/python" benchmarks/python/bench.py "$@"
