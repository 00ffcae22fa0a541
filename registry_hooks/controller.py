"""The controller's loop: wake on events, poll as the safety net, run passes on a worker pool.

Events (the app plugin's wake-ups, webhooks) only bring a pass forward; every ``poll_seconds`` a
full pass over every rule runs anyway. After a wake-up the loop waits ``settle_seconds`` so that a
burst of registry changes becomes one pass. A deployment is never run by two threads at once:
one that is asked for while running is run once more when it finishes (and across replicas the
lease serializes it).

The policy can be replaced while the controller runs (:meth:`Controller.reload`: on SIGHUP, or
when :meth:`Controller.watch` sees the file change). A new policy that does not load is refused
with the reason, and the last good one keeps running; a rule that is gone leaves its endpoint as
it is (delete it by hand, or set ``on_leave: delete`` and move the version out before removing it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from registry_hooks.loop import DriftLoop
from registry_hooks.policy import Policy, Rule
from registry_hooks.reconcile import Leases, Reconciler
from registry_hooks.store import Store

WATCH_SECONDS = 1.0  # how often the policy file's size and time are compared (a stat, no read)
FIRST_ROUND_SECONDS = 5.0  # a drift loop's first round after start (the lease row spaces the rest)


@dataclass(frozen=True)
class Timing:
    poll_seconds: float = 30.0
    settle_seconds: float = 0.2
    lease_seconds: float = 30.0


class Controller:
    def __init__(
        self,
        policy: Policy,
        store: Store,
        reconciler: Reconciler,
        leases: Leases,
        timing: Timing,
        workers: int = 4,
        say: Callable[[str], None] = print,
        loop: DriftLoop | None = None,
    ) -> None:
        self.policy, self.store, self.reconciler, self.leases, self.timing = policy, store, reconciler, leases, timing
        self.loop = loop  # the drift loops of rules with a `monitor` section
        self._monitor_due: dict[str, float] = {}  # rule name -> when its next drift-loop round is due
        self._looping: set[str] = set()
        # drift-loop rounds run steps of minutes on threads of their own: deploys never wait for them
        self.loops = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hooks-drift-loop")
        self.say = say
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hooks-pass")
        self.stopping = threading.Event()
        self._woken = threading.Event()
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._wanted: set[str] | None = set()  # model names to look at; None: every rule
        self._retries: dict[str, float] = {}
        self._cursor = store.last_event_id()
        self._reload_asked = threading.Event()

    # ---- the policy ------------------------------------------------------------------------
    def reload(self, load: Callable[[], Policy], why: str) -> bool:
        """Replace the policy with ``load()``; when that fails, keep the current one and say why."""
        current = self.policy
        try:
            fresh = load()
        except Exception as error:  # noqa: BLE001 - whatever is wrong with the file, the last good policy runs on
            message = (
                f"policy {current.file} not reloaded ({why}): {error}; still running the last good policy "
                f"({len(current.rules)} deployment(s)). Fix the file; it is read again when it changes or "
                "on SIGHUP."
            )
            self.say(message)
            self._audit("reload-refused", message)
            return False
        old, new = {r.name: r for r in current.rules}, {r.name: r for r in fresh.rules}
        if old == new:
            self.say(f"policy {fresh.file} reloaded ({why}): no deployment changed")
            self.wake(None)  # a reload is also a full pass
            return True
        changed = sorted(n for n in old.keys() & new.keys() if old[n] != new[n])
        changes = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("added", sorted(new.keys() - old.keys())),
                ("changed", changed),
                ("removed (their endpoints are left as they are)", sorted(old.keys() - new.keys())),
            )
            if names
        ]
        with self._lock:
            self.policy = fresh
        message = f"policy {fresh.file} reloaded ({why}): {len(fresh.rules)} deployment(s); {'; '.join(changes)}"
        self.say(message)
        self._audit("reloaded", message)
        self.wake(None)
        return True

    def ask_reload(self) -> None:
        """Reload at once (from a signal handler: it only sets an event)."""
        self._reload_asked.set()

    def watch(self, path: str, load: Callable[[], Policy]) -> threading.Thread:
        """Reload the policy on :meth:`ask_reload` (SIGHUP) and when the file's content changes."""
        thread = threading.Thread(target=self._watch, args=(Path(path), load), name="hooks-policy-watch", daemon=True)
        thread.start()
        return thread

    def _watch(self, path: Path, load: Callable[[], Policy]) -> None:
        seen, digest = _stat(path), _digest(path)
        while not self.stopping.is_set():
            asked = self._reload_asked.wait(WATCH_SECONDS)
            if asked:  # cleared only when seen: a SIGHUP just after a timed-out wait waits for the next turn
                self._reload_asked.clear()
            if self.stopping.is_set():
                return
            now = _stat(path)
            if not asked and now == seen:
                continue
            seen, content = now, _digest(path)
            if asked or content != digest:
                digest = content
                self.reload(load, "SIGHUP" if asked else "the file changed")

    def _audit(self, result: str, message: str) -> None:
        try:
            self.store.log("policy", result, message=message, replica=self.leases.owner)
        except Exception:  # noqa: BLE001 - the database is away; the line the controller said is the record
            pass

    # ---- wake-ups --------------------------------------------------------------------------
    def wake(self, models: set[str] | None = None) -> None:
        with self._lock:
            if models is None or self._wanted is None:
                self._wanted = None
            else:
                self._wanted |= models
        self._woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self._reload_asked.set()  # the watcher, if any, sees the stop at once
        self._woken.set()
        self.pool.shutdown(wait=True)
        self.loops.shutdown(wait=False, cancel_futures=True)  # a round's step process ends with its run

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        next_poll = 0.0  # a full pass at start: whatever happened while the controller was down
        beat = threading.Thread(target=self._heartbeat, name="hooks-lease-heartbeat", daemon=True)
        beat.start()
        while not self.stopping.is_set():
            now = time.time()
            with self._lock:
                due = min([next_poll, *self._retries.values(), *self._monitor_due.values()])
            if self._woken.wait(timeout=max(due - now, 0)) and not self.stopping.is_set():
                self.stopping.wait(self.timing.settle_seconds)  # let a burst finish
            self._woken.clear()
            if self.stopping.is_set():
                break
            now = time.time()
            try:
                rules = self._from_events()
            except Exception as error:  # the database is away: every rule, and the passes say why
                self.say(f"could not read the events: {type(error).__name__}: {error}")
                rules = list(self.policy.rules)
            if now >= next_poll:
                rules = list(self.policy.rules)
                next_poll = now + self.timing.poll_seconds
            with self._lock:
                rules += [r for r in self.policy.rules if self._retries.get(r.name, float("inf")) <= now]
            for rule in {r.name: r for r in rules}.values():
                self._submit(rule)
            self._monitors(now)

    def _from_events(self) -> list[Rule]:
        with self._lock:
            wanted, self._wanted = self._wanted, set()
        fresh = self.store.events_after(self._cursor)
        if fresh:
            self._cursor = fresh[-1]["id"]
        if wanted is None:
            return list(self.policy.rules)
        models = wanted | {e["model"] for e in fresh if e["model"]}
        return [r for r in self.policy.rules if r.model in models]

    def _submit(self, rule: Rule) -> None:
        with self._lock:
            if rule.name in self._running:
                self._again.add(rule.name)
                return
            self._running.add(rule.name)
            self._retries.pop(rule.name, None)
        self.pool.submit(self._pass, rule)

    def _pass(self, rule: Rule) -> None:
        retry_at = None
        try:
            retry_at = self.reconciler.run(rule)
        except Exception as error:  # a pass never kills the loop; the next poll tries again
            self.say(f"{rule.name}: pass failed: {type(error).__name__}: {error}")
            try:
                self.store.log(
                    "pass", "error", rule.name, message=f"{type(error).__name__}: {error}", replica=self.leases.owner
                )
            except Exception:
                pass  # the database is what failed; the line above said it
        with self._lock:
            self._running.discard(rule.name)
            again = rule.name in self._again
            self._again.discard(rule.name)
            if retry_at is not None:
                self._retries[rule.name] = retry_at
        if again and not self.stopping.is_set():
            self._submit(rule)
        elif retry_at is not None:
            self._woken.set()  # recompute the wait with the new retry time

    # ---- drift loops -----------------------------------------------------------------------
    def _monitors(self, now: float) -> None:
        """Start the drift-loop rounds that are due (a rule's first one period after it appears)."""
        if self.loop is None:
            return
        with self._lock:
            rules = [r for r in self.policy.rules if r.monitor is not None]
            for name in set(self._monitor_due) - {r.name for r in rules}:
                del self._monitor_due[name]  # the rule is gone, or lost its monitor section
            due = []
            for rule in rules:
                assert rule.monitor is not None
                # the first round soon after start: the lease row says when the last one ran
                at = self._monitor_due.setdefault(rule.name, now + min(rule.monitor.every, FIRST_ROUND_SECONDS))
                if at > now:
                    continue
                self._monitor_due[rule.name] = now + rule.monitor.every  # busy or not: no spinning
                if rule.name not in self._looping:
                    self._looping.add(rule.name)
                    due.append(rule)
        for rule in due:
            self.loops.submit(self._round, rule)

    def _round(self, rule: Rule) -> None:
        assert self.loop is not None
        try:
            self.loop.run(rule)
        except Exception as error:  # a round never kills the loop; the next period tries again
            self.say(f"{rule.name}: drift loop failed: {type(error).__name__}: {error}")
        finally:
            with self._lock:
                self._looping.discard(rule.name)

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.timing.lease_seconds / 3):
            try:
                self.leases.heartbeat()
            except Exception as error:  # the database is away: the leases expire, fencing stops us
                self.say(f"lease heartbeat failed: {error}")


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size, found.st_ino


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
