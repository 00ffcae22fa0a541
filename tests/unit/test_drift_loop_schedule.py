"""The controller's drift-loop scheduling with stand-ins for its store and loop: a round that
outlasts its period neither overlaps the next one nor makes the loop spin, and deploy passes go on
meanwhile; and the capture window's arithmetic (UTC offsets, units, the cap)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from projects import capture
from registry_hooks import policy
from registry_hooks.controller import Controller, Timing

POLICY = """version: 1
deployments:
  d1:
    model: m
    stage: Production
    config:
      execution_role_arn: arn:aws:iam::123456789012:role/SageMakerExecutionRole
      data_capture_config:
        {EnableCapture: true, InitialSamplingPercentage: 100, DestinationS3Uri: "s3://b/c", CaptureOptions: [{CaptureMode: Input}]}
    monitor: {every: 1s}
"""


class Store:
    def __init__(self) -> None:
        self.reads = 0

    def last_event_id(self) -> int:
        return 0

    def events_after(self, cursor: int) -> list:
        self.reads += 1
        return []

    def log(self, *args, **kwargs) -> None:
        pass


class Leases:
    owner = "test"

    def heartbeat(self) -> None:
        pass


class SlowLoop:
    """A round of 2.5 s, three times its 1 s period."""

    def __init__(self) -> None:
        self.running, self.overlaps, self.rounds = 0, 0, 0
        self.lock = threading.Lock()

    def run(self, rule) -> None:
        with self.lock:
            self.running += 1
            self.overlaps += self.running > 1
            self.rounds += 1
        time.sleep(2.5)
        with self.lock:
            self.running -= 1


class Passes:
    def __init__(self) -> None:
        self.count = 0

    def run(self, rule) -> None:
        self.count += 1


def test_a_round_longer_than_its_period_neither_overlaps_nor_spins_and_deploys_go_on(tmp_path):
    (tmp_path / "MLproject").write_text("name: x\nentry_points: {}\n")
    rules = policy.parse(POLICY.replace("{every: 1s}", f"{{every: 1s, project: {tmp_path}}}"), str(tmp_path / "p.yaml"))
    store, loop, passes = Store(), SlowLoop(), Passes()
    controller = Controller(rules, store, passes, Leases(), Timing(0.5, 0.0, 30), 2, lambda line: None, loop)
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    time.sleep(7)
    controller.stop()
    assert loop.rounds >= 2 and loop.overlaps == 0
    assert store.reads < 60  # a wake-up a period and a poll every 0.5 s: not thousands (a spin)
    assert passes.count >= 8  # the 0.5 s polls ran deploy passes while rounds were busy


def test_windows_are_read_in_utc_with_a_unit_and_a_cap():
    span = capture.window("2026-12-01T08:30+02:00/2026-12-01T09:30+02:00")
    assert (span.start.hour, span.end.hour, span.start.tzinfo) == (6, 7, timezone.utc)
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    assert capture.window("90m", now).start == datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc)
    for bad, why in (
        ("0s", "is empty"),
        ("60d", "up to 31 days"),
        ("3600", "is not a window"),
        ("b/a", "not a window"),
    ):
        with pytest.raises(capture.CaptureError, match=why):
            capture.window(bad, now)


def test_a_round_reads_the_traffic_since_the_round_before(tmp_path):
    from registry_hooks.loop import DriftLoop

    (tmp_path / "MLproject").write_text("name: x\nentry_points: {}\n")
    text = POLICY.replace("{every: 1s}", f"{{every: 10s, window: 1h, project: {tmp_path}}}")
    rule = policy.parse(text, str(tmp_path / "p.yaml")).rules[0]
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc).timestamp()
    assert DriftLoop._window(rule, 0.0, now) == "2026-12-01T11:00:00Z/2026-12-01T12:00:00Z"  # the first: window back
    # later: from the last round, however late this one comes (here 95 s after it, for a period of 10 s)
    assert DriftLoop._window(rule, now - 95, now) == "2026-12-01T11:58:25Z/2026-12-01T12:00:00Z"
    assert DriftLoop._window(rule, now - 90 * 86400, now).startswith("2026-10-31T12:00:00Z/")  # at most 31 days
