#!/usr/bin/env bash
# The Python package's CI: build and install ./python into a venv (maturin), run its
# pytest suite against real servers on loopback, then the Rust unit tests of the
# extension (python/src), linked against the venv interpreter's libpython.
#   HAYWIRE_VENV         venv to use or create [/tmp/haywire-venv]
#   MATURIN_PEP517_ARGS  cargo flags for the build [--profile dev: CI checks behaviour,
#                        and a debug build compiles faster; set it empty for
#                        the release build that a plain `pip install ./python` makes]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HAYWIRE_VENV:-/tmp/haywire-venv}
# The tests use openssl (certificates), ss (listen backlog) and unshare (PID 1).
for tool in openssl:openssl ss:iproute2 unshare:util-linux; do
    if ! command -v "${tool%%:*}" >/dev/null && command -v apt-get >/dev/null; then
        apt-get install -y -q "${tool#*:}" >/dev/null
    fi
done
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
export MATURIN_PEP517_ARGS=${MATURIN_PEP517_ARGS---profile dev}
"$venv/bin/pip" install -q ./python pytest flask fastapi httpx django websockets python-dotenv
"$venv/bin/python" -m pytest python/tests -q
libdir=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
ldlib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LDLIBRARY"))')
if [ ! -e "$libdir/$ldlib" ] && command -v apt-get >/dev/null; then
    apt-get install -y -q python3-dev >/dev/null   # libpython for linking the test binary
fi
PYO3_PYTHON="$venv/bin/python" LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    cargo test -q --manifest-path python/Cargo.toml
