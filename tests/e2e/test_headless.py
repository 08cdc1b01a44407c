"""`loadmaster run --headless` as a subprocess: JSON lines, reload on SIGHUP/edit, clean SIGTERM."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time

from .served import ServedFleet


class Lines:
    """Reads a process's stdout in a thread so the test can wait for an event with a timeout."""

    def __init__(self, stream):
        self.q: queue.Queue[dict] = queue.Queue()
        self.all: list[dict] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.q.put(json.loads(line))  # every line must be JSON: a bad one fails the test here

    def wait_for(self, predicate, timeout=30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            self.all.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"event not seen; got {[e['event'] for e in self.all]}")


def test_headless_logs_json_reloads_and_stops_cleanly(tmp_path):
    with ServedFleet(tmp_path) as fleet:
        daemon = fleet.popen("run", "--headless", "--auto-apply")
        lines = Lines(daemon.stdout)
        try:
            started = lines.wait_for(lambda e: e["event"] == "daemon.started")
            assert started["auto_apply"] is True and started["cluster"] == f"e2e{fleet.tag}"
            lines.wait_for(lambda e: e["event"] == "host.up")
            lines.wait_for(lambda e: e["event"] == "apply.finished")
            fleet.wait_processes(web=4, db=2)

            good = fleet.config.read_text()
            fleet.config.write_text(good.replace('cpu = "500m"', 'cpu = "lots"'))
            daemon.send_signal(signal.SIGHUP)
            bad = lines.wait_for(lambda e: e["event"] == "config.invalid")
            assert any('services "web": cpu' in err for err in bad["errors"])
            time.sleep(1.5)
            assert daemon.poll() is None
            fleet.wait_processes(web=4, db=2, timeout=5)  # the old configuration still holds

            fleet.config.write_text(good.replace("replicas = 4", "replicas = 5"))
            lines.wait_for(lambda e: e["event"] == "config.reloaded")  # noticed by the file watch
            fleet.wait_processes(web=5, db=2)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        assert daemon.returncode == 0
        lines.wait_for(lambda e: e["event"] == "daemon.stopped", timeout=5)
        kinds = [e["event"] for e in lines.all]
        assert "daemon.stopping" in kinds
        assert all({"at", "event", "message"} <= e.keys() for e in lines.all)
