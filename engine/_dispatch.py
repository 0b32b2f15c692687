""":class:`DispatchSummary`: what one :meth:`kpiforge.Project.dispatch` did, typed and frozen.

Kept apart from the alerts package so that ``import kpiforge`` does not import the template
sandbox: alerting is loaded only when something is dispatched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from ._format import plural

if TYPE_CHECKING:
    from .alerts import Notification

__all__ = ["DispatchSummary"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class DispatchSummary:
    """Notifications (what alerts said) and deliveries (what sinks got), counted apart.

    ``notifications`` are the alerts this dispatch created, silenced ones included (their
    ``silenced`` is true and they were not queued). ``sent``/``failed`` count deliveries in
    this call over every sink (older outbox messages that came due included), and ``pending``
    is what the outbox still holds afterwards, waiting for a retry. ``errors`` has each
    failing sink's messages. A dry run sends and records nothing: only ``notifications``.
    """

    notifications: tuple["Notification", ...] = ()
    sent: int = 0
    failed: int = 0
    pending: int = 0
    silenced: int = 0
    unrouted: int = 0
    sent_by_sink: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    failed_by_sink: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    dry_run: bool = False
    state_path: str = ""

    @property
    def created(self) -> int:
        """Notifications that were queued for delivery (not silenced)."""
        return sum(1 for n in self.notifications if not n.silenced)

    @classmethod
    def from_report(cls, report: Any) -> "DispatchSummary":
        """From the alerts package's mutable ``DispatchReport``."""
        return cls(
            notifications=tuple(report.notifications),
            sent=sum(report.sent.values()),
            failed=sum(report.failed.values()),
            pending=report.pending,
            silenced=report.silenced,
            unrouted=report.unrouted,
            sent_by_sink=MappingProxyType(dict(report.sent)),
            failed_by_sink=MappingProxyType(dict(report.failed)),
            errors=MappingProxyType({k: tuple(v) for k, v in report.errors.items()}),
            dry_run=report.dry_run,
            state_path=report.state_path,
        )

    def text(self) -> str:
        """One line, as ``kpiforge run`` prints it on stderr."""
        if self.dry_run:
            return f"alerts (dry run): {plural(self.created, 'notification')} would be sent"
        if not (self.sent or self.failed or self.pending):
            deliveries = "no deliveries"
        else:
            deliveries = f"{plural(self.sent, 'delivery', 'deliveries')} sent"
            if self.failed:
                deliveries += f", {self.failed} failed"
            if self.pending:
                # the outbox as a whole: what this run left plus older messages still waiting
                deliveries += f", {self.pending} pending retry"
        summary = f"alerts: {plural(self.created, 'notification')}; {deliveries}"
        if self.silenced:
            summary += f"; {self.silenced} silenced"
        if self.unrouted:
            summary += f"; {plural(self.unrouted, 'notification')} matched no route"
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "notifications": [n.to_dict() for n in self.notifications],
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "silenced": self.silenced,
            "unrouted": self.unrouted,
            "sent_by_sink": dict(self.sent_by_sink),
            "failed_by_sink": dict(self.failed_by_sink),
            "errors": {k: list(v) for k, v in self.errors.items()},
            "dry_run": self.dry_run,
            "state_path": self.state_path,
        }
