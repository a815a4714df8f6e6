#!/usr/bin/env python3
"""synrst lab client: one TCP connection attempt from a fixed source port.

Runs inside the lab's client network namespace. It binds to a fixed
(source address, source port) before connecting, so the ground truth can name
the exact 4-tuple, and prints one machine-readable line:

    RESULT errno=<NAME|-> elapsed=<seconds>

errno is the symbolic errno the kernel reported for connect() (ECONNREFUSED,
EHOSTUNREACH, ENETUNREACH, EACCES, ETIMEDOUT, ...), `-` on success, or TIMEOUT
if this program's own safety timer fired first (which the lab treats as a
failure: with TCP_SYNCNT the kernel gives up on its own before that).

On success it sends a few bytes, half-closes, reads the server's reply until
EOF and closes normally, so the capture shows a complete, clean connection.
Python 3 standard library only.
"""
import argparse
import errno
import socket
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="source address to bind")
    ap.add_argument("--sport", type=int, required=True, help="source port to bind")
    ap.add_argument("--dst", required=True, help="destination address")
    ap.add_argument("--dport", type=int, required=True, help="destination port")
    ap.add_argument("--syncnt", type=int, default=2,
                    help="TCP_SYNCNT: SYN retransmissions before the kernel "
                         "gives up with ETIMEDOUT (2 -> SYN at 0, 1, 3 s; "
                         "ETIMEDOUT at 7 s)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="safety timer for connect() in seconds (hard bound)")
    args = ap.parse_args()

    fam = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, args.syncnt)
    s.bind((args.src, args.sport))
    s.settimeout(args.timeout)
    t0 = time.monotonic()
    result = "-"
    try:
        s.connect((args.dst, args.dport))
    except OSError as e:  # socket.timeout is an OSError whose errno is None
        if e.errno is None:
            result = "TIMEOUT"
        else:
            result = errno.errorcode.get(e.errno, str(e.errno))
    elapsed = time.monotonic() - t0

    if result == "-":
        try:
            s.settimeout(3.0)
            s.sendall(b"synrst-lab hello\r\n")
            s.shutdown(socket.SHUT_WR)
            for _ in range(16):  # bounded: the reply is one short line
                if not s.recv(4096):
                    break
        except OSError as e:
            print(f"client: data exchange failed: {e}", file=sys.stderr)
    s.close()
    print(f"RESULT errno={result} elapsed={elapsed:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
