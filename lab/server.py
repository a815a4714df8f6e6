#!/usr/bin/env python3
"""synrst lab server: a tiny TCP listener on several ports, IPv4 and IPv6.

Runs inside the lab's server network namespace. For every accepted connection
it reads what the client sends until EOF (bounded in time and size), answers
with one short line and closes. It exits by itself after --lifetime seconds,
so a forgotten instance can never run for long. Python 3 standard library only.
"""
import argparse
import selectors
import socket
import sys
import threading
import time


def handle(conn: socket.socket) -> None:
    try:
        conn.settimeout(2.0)
        for _ in range(16):  # bounded: the client sends one short line
            if not conn.recv(4096):
                break
        conn.sendall(b"hello from synrst-lab server\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", required=True, help="comma-separated TCP ports")
    ap.add_argument("--lifetime", type=float, default=300.0,
                    help="exit after this many seconds (hard bound)")
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    for port in (int(p) for p in args.ports.split(",") if p):
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            s.listen(16)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)

    deadline = time.monotonic() + args.lifetime
    while (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(timeout=min(left, 1.0)):
            try:
                conn, _ = key.fileobj.accept()
            except OSError:
                continue
            conn.setblocking(True)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
