"""``--process-name``: the supervisor's and workers' names as ``ps -o comm``, top and
pgrep show them."""

from __future__ import annotations


def set_process_name(name: str) -> None:
    """Names this process (its main thread: the kernel keeps 15 bytes of the name)."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name.encode()[:15].decode(errors="ignore"))
    except OSError:
        pass  # not Linux, or /proc hidden: the name stays
