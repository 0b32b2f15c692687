"""Delivery from the outbox: one worker thread per sink, each call with a timeout, bounded retries.

A message is an outbox row: one alert for one sink, with an id that is sent as ``webhook-id``
on every attempt so receivers can drop duplicates. A sender claims each message (a lease, see
``Store.claim``) right before sending it, so concurrent senders never send one message twice.
Delivery is at-least-once: a crash after a send and before its row is marked delivered sends
that message again, with the same id.

Sinks never wait for one another: each runs in its own thread, and a sink whose first message
exhausts its in-process retries is considered down for this round (its other messages are
left in the outbox untried), so one dead endpoint costs one bounded retry cycle, not one per
message. What is left is retried by the next dispatch once due, or by ``kpiforge alerts retry``.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from ..errors import AlertConfigError, KpiforgeError, SinkError, StateError
from ._rules import parse_duration
from ._leases import new_owner
from ._state import Store

__all__ = ["FAILPOINT_ENV", "DeliveryResult", "RetryPolicy", "deliver", "failpoint", "send_with_retries"]

FAILPOINT_ENV = "KPIFORGE_FAILPOINT"
# Outbox rows that keep failing are retried at most this far apart.
OUTBOX_MAX_DELAY = 3600.0
_GRACE = 1.0
# Added to a claim's lease beyond the longest a send can take, for slow disks and clock skew.
LEASE_MARGIN = 60.0


def failpoint(name: str) -> None:
    """Crash-test hook: ``KPIFORGE_FAILPOINT=<name>`` kills the process right here (SIGKILL).

    Names: ``after-outbox-write`` (outbox committed, nothing sent) and ``after-send`` (a sink
    accepted the message, the outbox row not yet marked delivered).
    """
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 30.0
    max_total_delay: float = 10.0
    timeout: float = 10.0
    jitter: bool = True

    @classmethod
    def from_alerting(cls, alerting: Mapping[str, Any] | None) -> "RetryPolicy":
        alerting = alerting or {}
        return cls().override(alerting.get("retry"), alerting.get("timeout"), key="alerting")

    def override(self, retry: Any, timeout: Any, *, key: str) -> "RetryPolicy":
        policy = self
        if timeout is not None:
            seconds = parse_duration(timeout, field_name=f"{key}.timeout")
            if seconds <= 0:
                raise AlertConfigError(f"{key}.timeout must be more than 0", field=f"{key}.timeout")
            policy = replace(policy, timeout=seconds)
        if retry is None:
            return policy
        if not isinstance(retry, Mapping):
            raise AlertConfigError(f"{key}.retry: expected a mapping", field=f"{key}.retry")
        changes: dict[str, Any] = {}
        for name, value in retry.items():
            if name == "max_attempts":
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 20:
                    raise AlertConfigError(f"{key}.retry.max_attempts: expected an integer from 1 to 20",
                                           field=f"{key}.retry.max_attempts")
                changes[name] = value
            elif name in ("initial_delay", "max_delay", "max_total_delay"):
                changes[name] = parse_duration(value, field_name=f"{key}.retry.{name}")
            elif name == "jitter":
                changes[name] = bool(value)
            else:
                raise AlertConfigError(
                    f"{key}.retry.{name}: unknown setting (expected max_attempts, initial_delay,"
                    " max_delay, max_total_delay, jitter)", field=f"{key}.retry.{name}")
        return replace(policy, **changes)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_delay)
        delay = min(self.max_delay, self.initial_delay * (2 ** max(0, attempt - 1)))
        # "equal jitter": never less than half the backoff, so retries spread out but still wait.
        return random.uniform(delay / 2, delay) if self.jitter else delay

    def outbox_delay(self, attempts: int, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), OUTBOX_MAX_DELAY)
        return min(OUTBOX_MAX_DELAY, max(self.initial_delay, 0.001) * (2 ** max(0, attempts - 1)))


def call_with_timeout(func: Callable[[Any], None], arg: Any, timeout: float) -> None:
    """Run ``func(arg)`` in a daemon thread; a call still running after ``timeout`` is abandoned.

    Sinks enforce their own timeouts (httpx, smtplib); this guards against one that does not.
    An abandoned call may still complete later, which at-least-once delivery allows.
    """
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            func(arg)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="kpiforge-sink-call", daemon=True)
    thread.start()
    thread.join(timeout + _GRACE)
    if thread.is_alive():
        raise SinkError(f"timed out after {timeout:g}s", retryable=True)
    if "error" in outcome:
        raise outcome["error"]


def _as_sink_error(exc: BaseException) -> SinkError:
    if isinstance(exc, SinkError):
        return exc
    # Timeouts, connection errors, or anything unexpected from a third-party sink: maybe
    # transient, so the message is kept and retried rather than dropped.
    return SinkError(f"{type(exc).__name__}: {exc}", retryable=True)


@dataclass
class Attempt:
    ok: bool
    error: SinkError | None
    attempts: int
    deferred: bool = False  # still retryable, left in the outbox


def send_with_retries(send: Callable[[Any], None], make_alert: Callable[[], Any],
                      policy: RetryPolicy, *, previous_attempts: int = 0,
                      on_attempt: Callable[[int, bool, SinkError | None, float, float | None], None] | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> Attempt:
    """Send one message with in-process retries bounded by attempts and by total delay."""
    waited = 0.0
    attempt = previous_attempts
    error: SinkError | None = None
    for i in range(policy.max_attempts):
        attempt += 1
        started = time.monotonic()
        try:
            call_with_timeout(send, make_alert(), policy.timeout)
        except BaseException as exc:  # noqa: BLE001 - every failure is recorded, none escapes
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            error = _as_sink_error(exc)
        else:
            if on_attempt:
                on_attempt(attempt, True, None, (time.monotonic() - started) * 1000, None)
            return Attempt(True, None, attempt)
        duration = (time.monotonic() - started) * 1000
        if not error.retryable:
            if on_attempt:
                on_attempt(attempt, False, error, duration, None)
            return Attempt(False, error, attempt)
        delay = policy.delay(i + 1, error.retry_after)
        last = i + 1 >= policy.max_attempts or waited + delay > policy.max_total_delay
        if on_attempt:
            on_attempt(attempt, False, error, duration,
                       policy.outbox_delay(attempt, error.retry_after) if last else delay)
        if last:
            break
        sleep(delay)
        waited += delay
    return Attempt(False, error, attempt, deferred=True)


@dataclass
class SinkResult:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0  # claimed by another sender, or delivered by one meanwhile
    errors: list[str] = field(default_factory=list)


@dataclass
class DeliveryResult:
    by_sink: dict[str, SinkResult] = field(default_factory=dict)

    def sink(self, name: str) -> SinkResult:
        return self.by_sink.setdefault(name, SinkResult())


def lease_for(policy: RetryPolicy) -> float:
    """How long a claim on one message lasts: its whole in-process retry cycle, and a margin."""
    return policy.max_attempts * (policy.timeout + _GRACE) + policy.max_total_delay + LEASE_MARGIN


def _worker(db_path: str, name: str, sink: Any, build_error: SinkError | None,
            policy: RetryPolicy, rows: list[dict[str, Any]], make_alert: Callable[[dict], Any],
            clock: Callable[[], float], result: SinkResult, statuses: tuple[str, ...],
            owner: str) -> None:
    try:
        store = Store(db_path, verify=False)
    except KpiforgeError as exc:
        result.failed += len(rows)
        result.errors.append(str(exc))
        return
    done = 0
    try:
        down = False
        for row in rows:
            if down:
                result.deferred += 1
                done += 1
                continue
            if build_error is not None:
                store.record_attempt(row["id"], name, attempt=row["attempts"] + 1, now=clock(),
                                     ok=False, error=str(build_error), duration_ms=0.0,
                                     status="pending" if build_error.retryable else "failed",
                                     next_attempt_at=clock() + policy.outbox_delay(row["attempts"] + 1))
                result.failed += 1
                result.errors.append(str(build_error))
                done += 1
                continue
            claimed = store.claim(row["id"], owner, lease=lease_for(policy), statuses=statuses)
            if claimed is None:
                result.skipped += 1
                done += 1
                continue
            sent = False

            def on_attempt(attempt: int, ok: bool, error: SinkError | None, duration: float,
                           retry_in: float | None, _row: dict = claimed) -> None:
                nonlocal sent
                if ok:
                    sent = True
                    failpoint("after-send")
                now = clock()
                status = "delivered" if ok else ("pending" if error and error.retryable else "failed")
                store.record_attempt(_row["id"], name, attempt=attempt, now=now, ok=ok,
                                     error=None if error is None else str(error),
                                     duration_ms=duration, status=status,
                                     next_attempt_at=None if retry_in is None else now + retry_in)

            try:
                outcome = send_with_retries(sink.send, functools.partial(make_alert, claimed),
                                            policy, previous_attempts=claimed["attempts"],
                                            on_attempt=on_attempt)
                store.release(claimed["id"], owner)
            except StateError as exc:
                # The outbox row keeps its claim until the lease ends (or this process does),
                # then another sender takes it: sent again, with the same id, if it was sent.
                done += 1
                result.failed += 1
                what = ("sent, but not recorded as delivered (it may be sent again, with the "
                        "same id)" if sent else "not sent")
                result.errors.append(f"{what}: {exc}")
                down = True
                continue
            done += 1
            if outcome.ok:
                result.sent += 1
            else:
                result.failed += 1
                result.errors.append(str(outcome.error))
                down = outcome.deferred
    except Exception as exc:  # noqa: BLE001 - a dead worker must not pass for "0 failed"
        left = len(rows) - done
        result.failed += left
        result.errors.append(f"delivery stopped with {left} message(s) not sent: "
                             f"{exc if isinstance(exc, KpiforgeError) else type(exc).__name__}")
    finally:
        store.close()


def worker_bound(policy: RetryPolicy, messages: int) -> float:
    """The longest a sink worker can take: one full retry cycle, then one call per message."""
    per_call = policy.timeout + _GRACE
    return policy.max_attempts * per_call + policy.max_total_delay + messages * per_call + _GRACE


def deliver(db_path: str, rows: list[dict[str, Any]], sinks: Mapping[str, tuple[Any, SinkError | None, RetryPolicy]],
            *, make_alert: Callable[[dict], Any], clock: Callable[[], float],
            statuses: tuple[str, ...] = ("pending",)) -> DeliveryResult:
    """Deliver outbox ``rows``; ``sinks`` maps a sink name to (sink, build error, policy).

    Each message is claimed just before it is sent and only while still in one of
    ``statuses``, so a message another sender holds or has delivered is skipped. Rows for a
    sink no longer configured are marked failed with an error naming it.
    """
    owner = new_owner()
    result = DeliveryResult()
    by_sink: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_sink.setdefault(row["sink"], []).append(row)
    threads: list[tuple[str, threading.Thread, float]] = []
    orphan_store: Store | None = None
    try:
        for name, sink_rows in by_sink.items():
            sink_result = result.sink(name)
            if name not in sinks:
                orphan_store = orphan_store or Store(db_path, verify=False)
                message = f"sink '{name}' is not defined under sinks in kpiforge.yaml any more"
                for row in sink_rows:
                    orphan_store.record_attempt(row["id"], name, attempt=row["attempts"] + 1,
                                                now=clock(), ok=False, error=message,
                                                duration_ms=0.0, status="failed")
                sink_result.failed += len(sink_rows)
                sink_result.errors.append(message)
                continue
            sink, build_error, policy = sinks[name]
            thread = threading.Thread(
                target=_worker, name=f"kpiforge-sink-{name}", daemon=True,
                args=(db_path, name, sink, build_error, policy, sink_rows, make_alert, clock,
                      sink_result, statuses, owner))
            thread.start()
            threads.append((name, thread, time.monotonic() + worker_bound(policy, len(sink_rows))))
    finally:
        if orphan_store is not None:
            orphan_store.close()
    for name, thread, deadline in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            result.sink(name).errors.append("delivery still running when its time bound expired")
    return result
