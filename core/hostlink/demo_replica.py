"""The process a demo replica runs: `python3 "$LOADMASTER_DEMO_REPLICA" PORT [--cpu SHARE]` (stdlib only).

Demo hosts set LOADMASTER_DEMO_REPLICA to this file, so the demo's cluster file can run it with the
system's python3. It serves HTTP on 127.0.0.1:PORT (GET / answers 200, so an `http` check passes) and
spends a little cpu — SHARE of one core on average, varying slowly — so the console's CPU% column and
sparklines move. SIGUSR1 wedges it: from then on it answers 503 (`http-5xx` to a check) until it is
restarted, as a server stuck on a dead backend would (`loadmaster demo --wedge web/0`, or the console's
demo key). Nothing here is imported by loadmaster itself.
"""

from __future__ import annotations

import argparse
import http.server
import math
import os
import signal
import threading
import time

MARK = "loadmaster-demo-replica"  # in the command line: how `--wedge` tells this process from any other
wedged = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (503, b"wedged\n") if wedged.is_set() else (200, f"ok {os.getpid()}\n".encode())
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a check every second would fill the replica's log


def spend(share: float) -> None:
    """Busy for about `share` of each 100 ms slice, the share drifting ±50% over a minute."""
    start = time.monotonic()
    while True:
        now = time.monotonic()
        busy = 0.1 * share * (1 + 0.5 * math.sin((now - start) / 60 * 2 * math.pi))
        until = now + busy
        while time.monotonic() < until:
            pass
        time.sleep(max(0.0, 0.1 - busy))


def main() -> None:
    parser = argparse.ArgumentParser(prog=MARK)
    parser.add_argument("port", type=int)
    parser.add_argument("--cpu", type=float, default=0.02, help="share of one core to spend (default 0.02)")
    args = parser.parse_args()
    signal.signal(signal.SIGUSR1, lambda *_: wedged.set())
    if args.cpu > 0:
        threading.Thread(target=spend, args=(args.cpu,), daemon=True).start()
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
