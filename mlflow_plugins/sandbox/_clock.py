"""Simulated time for the sandbox: a scaled clock, a timer thread, and resumable processes.

AWS operations take minutes; the sandbox runs them with every duration multiplied by
``time_scale`` (0.01 turns a 4-minute endpoint creation into 2.4 s). Long-running operations
are written as generators (:class:`Process`) that yield :class:`Wait` steps, so a rollout reads
top to bottom like the AWS documentation describes it.

The timer thread sleeps on a condition until the next due time: nothing polls.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

log = logging.getLogger(__name__)


class Scheduler:
    """Runs callbacks at simulated times on one daemon thread, under the sandbox lock."""

    def __init__(self, lock: threading.RLock, time_scale: float) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale={time_scale!r} must be >= 0")
        self.lock = lock
        self.time_scale = time_scale
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cancelled: set[int] = set()
        self._wake = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-clock", daemon=True)
        self._thread.start()

    def call_later(self, simulated_seconds: float, fn: Callable[[], None]) -> int:
        """Schedule ``fn``; returns a handle for :meth:`cancel`."""
        due = time.monotonic() + max(simulated_seconds, 0) * self.time_scale
        with self._wake:
            handle = next(self._seq)
            heapq.heappush(self._heap, (due, handle, fn))
            self._wake.notify()
        return handle

    def cancel(self, handle: int) -> None:
        with self._wake:
            self._cancelled.add(handle)

    def clear(self) -> None:
        """Drop every pending callback (sandbox reset)."""
        with self._wake:
            self._heap.clear()
            self._cancelled.clear()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _next_due(self) -> Callable[[], None] | None:
        with self._wake:
            while not self._stopped:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, handle, fn = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
                heapq.heappop(self._heap)
                if handle in self._cancelled:
                    self._cancelled.discard(handle)
                    continue
                return fn
            return None

    def _run(self) -> None:
        while (fn := self._next_due()) is not None:
            with self.lock:
                try:
                    fn()
                except Exception:  # a bug in one simulated operation must not stop the clock
                    log.exception("sandbox: scheduled step failed")


@dataclass
class Wait:
    """Yielded by a process: resume after ``seconds`` of simulated time.

    While waiting, the process can be interrupted: :meth:`Process.interrupt` throws an
    exception into it at the ``yield``.
    """

    seconds: float
    label: str = ""


class ProcessCancelled(Exception):
    """Thrown into a process that is cancelled (endpoint deleted, sandbox reset)."""


class Process:
    """A generator of :class:`Wait` steps driven by a :class:`Scheduler`.

    Every step runs on the scheduler thread under the sandbox lock; :meth:`interrupt` (also
    called under the lock) throws an exception into the generator at its current ``yield``.
    """

    def __init__(self, scheduler: Scheduler, body: Generator[Wait, None, None]) -> None:
        self.scheduler = scheduler
        self.body = body
        self.done = False
        self._timer: int | None = None

    def start(self) -> Process:
        """Run the first step now (the caller holds the lock), so its effects are visible to
        the request that started the process."""
        self._advance()
        return self

    def interrupt(self, error: BaseException) -> None:
        if self.done:
            return
        if self._timer is not None:
            self.scheduler.cancel(self._timer)
        self._advance(error)

    def cancel(self) -> None:
        self.interrupt(ProcessCancelled())

    def _advance(self, error: BaseException | None = None) -> None:
        self._timer = None
        try:
            step = self.body.throw(error) if error is not None else next(self.body)
        except (StopIteration, ProcessCancelled):
            self.done = True
            return
        except BaseException:
            self.done = True
            raise
        self._timer = self.scheduler.call_later(step.seconds, self._advance)
