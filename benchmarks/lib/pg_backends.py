#!/usr/bin/env python3
"""Prints the PIDs of the PostgreSQL backends that serve one process's TCP connections,
one per line: the backends whose socket's peer is a socket that process holds. How
benchmarks/tfb/run.sh counts PostgreSQL's CPU for the server under test alone (not the
checkpointer, the autovacuum workers or another client's backends).

    pg_backends.py SERVER_PID PG_PORT
"""
import os
import sys


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def tcp_sockets():
    """(local port, remote port, inode) of every TCP socket in this network namespace."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, remote, inode = fields[1], fields[2], fields[9]
                    out.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), inode))
        except OSError:
            pass
    return out


def backends(server_pid, pg_port):
    mine = socket_inodes(server_pid)
    sockets = tcp_sockets()
    # The server's ends of its database connections: their local ports.
    client_ports = {local for local, remote, inode in sockets if inode in mine and remote == pg_port}
    # PostgreSQL's ends of the same connections.
    theirs = {inode for local, remote, inode in sockets if local == pg_port and remote in client_ports}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != str(server_pid) and socket_inodes(entry) & theirs:
            found.append(int(entry))
    return sorted(found)


if __name__ == "__main__":
    for pid in backends(int(sys.argv[1]), int(sys.argv[2])):
        print(pid)
