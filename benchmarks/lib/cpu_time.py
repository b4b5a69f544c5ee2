#!/usr/bin/env python3
"""Runs a command and writes the CPU seconds (user + system) it and its children used to
OUT: how benchmarks/lib/harness.sh measures wrk's own CPU. The command is killed after
TIMEOUT seconds; SIGINT/SIGTERM are passed on to it. Exits with the command's status.

    cpu_time.py OUT TIMEOUT COMMAND [ARG...]
"""
import os
import signal
import subprocess
import sys


def main():
    out, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    child = subprocess.Popen(command)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _: child.send_signal(s))
    try:
        status = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        status = child.wait()
    usage = os.times()
    with open(out, "w") as f:
        f.write(f"{usage.children_user + usage.children_system:.3f}\n")
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
