#!/usr/bin/env bash
# The Python package's CI: build and install ./python into a venv (maturin, release),
# then run its pytest suite against real servers on loopback.
#   HAYWIRE_VENV   venv to use or create [/tmp/haywire-venv]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HAYWIRE_VENV:-/tmp/haywire-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q ./python pytest flask fastapi httpx
"$venv/bin/python" -m pytest python/tests -q
