"""Optional ``apprise`` sink: any of Apprise's 100+ services (``pip install 'kpiforge[apprise]'``).

The apprise package is imported when a sink is created, never at plugin load, so the sink type
is always listed and a missing dependency is an error naming the extra to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import SinkTypeRegister, hookimpl
from kpiforge.sinks import SinkContext, SinkError

if TYPE_CHECKING:
    from kpiforge.sinks import Alert

# Apprise URLs carry the service's tokens and passwords: never printed or stored whole.


class AppriseSink:
    def __init__(self, name: str, settings: Mapping[str, Any]):
        try:
            import apprise
        except ImportError:
            raise SinkError("the apprise sink needs the apprise package: "
                            "pip install 'kpiforge[apprise]'") from None
        urls = settings.get("urls", settings.get("url"))
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, (list, tuple)) or not urls or not all(isinstance(u, str) for u in urls):
            raise SinkError("missing 'urls' (an Apprise URL or a list of them)",
                            setting="url" if "url" in settings else "urls")
        self.name = name
        self.client = apprise.Apprise()
        for url in urls:
            if not self.client.add(url):
                raise SinkError(f"apprise does not understand the URL scheme of {url.split(':', 1)[0]!r}",
                                setting="url" if "url" in settings else "urls")
        self._types = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING,
                       "info": apprise.NotifyType.INFO}
        self._success = apprise.NotifyType.SUCCESS

    def send(self, alert: Alert) -> None:
        resolved = alert.state == "resolved"
        title = f"{'Resolved' if resolved else alert.severity.capitalize()}: {alert.name}"
        kind = self._success if resolved else self._types.get(alert.severity, self._types["info"])
        # Apprise reports only a boolean: the cause is in its log, so the failure is retried.
        if not self.client.notify(body=alert.message, title=title, notify_type=kind):
            raise SinkError("apprise could not deliver to every URL", retryable=True)


def apprise_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> AppriseSink:
    return AppriseSink(name, settings)


SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "urls": {"description": "An Apprise URL or a list of them; write tokens as ${VAR}."},
        "url": {"description": "One Apprise URL (same as urls)."},
    },
}


@hookimpl
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    register("apprise", apprise_sink, settings_schema=SETTINGS_SCHEMA,
             secrets={"urls": "token_url", "url": "token_url"}, doc="Notify through Apprise URLs (optional extra 'apprise').")
