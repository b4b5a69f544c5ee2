"""What the server-process benchmarks (idle_memory.py, idle_cpu.py, amplification.py)
share: room for many sockets, waiting for the server to listen, its memory from /proc."""
import resource
import socket
import time


def status_kib(pid, field="VmRSS"):
    """A KiB figure from /proc/PID/status: VmRSS (resident now), VmHWM (its peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def raise_fd_limit(want):
    """Raises this process's open-file limit toward `want` (up to the hard limit), so
    it and the server it starts (which inherits it) can hold that many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def wait_listening(port, seconds=30):
    """Returns once 127.0.0.1:`port` accepts a connection; raises after `seconds`."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)


def open_used_connections(port, count, request=b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n",
                          answer=b"hello world"):
    """Opens `count` keep-alive connections, each answered once, and returns them: what an
    idle connection looks like after a request (the benchmarks measure those)."""
    conns = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        data = b""
        while not data.endswith(answer):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError(f"connection {i} closed")
            data += chunk
        conns.append(s)
    return conns
