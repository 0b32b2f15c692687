"""Built-in HTTP sinks: ``webhook`` (Standard Webhooks signed JSON) and ``slack``.

Both need httpx, a core dependency of kpiforge, imported when a sink is created so that
importing kpiforge stays fast. Failures map onto :class:`SinkError`: timeouts, connection errors,
5xx and 429 are retryable (``Retry-After`` honoured), any other 4xx and 3xx are not.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from kpiforge.hookspecs import SinkTypeRegister, hookimpl
from kpiforge.sinks import SinkContext, SinkError, redact_url

if TYPE_CHECKING:
    from kpiforge.sinks import Alert

SECRET_PREFIX = "whsec_"
_LABEL = re.compile(r"\w(?:[\w-]*\w)?\Z")


def _well_formed_host(host: str) -> bool:
    """A DNS name (internationalised too), an IPv4 address or an IPv6 one (brackets stripped)."""
    if ":" in host:
        import ipaddress  # here and below, imported when needed: every command loads this plugin

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return all(_LABEL.match(label) for label in host.removesuffix(".").split("."))
_MAX_RETRY_AFTER = 86400.0


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        # httpx is a core dependency and 'http' an empty extra: installing it brings httpx back
        raise SinkError("HTTP sinks need httpx: pip install 'kpiforge[http]'") from None
    return httpx


def _url(settings: Mapping[str, Any]) -> str:
    url = settings.get("url")
    if not isinstance(url, str) or not url:
        raise SinkError("missing 'url'", setting="url")
    shown = redact_url(url, mask_path=True)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a bracketed host that is no IPv6 address, a port out of range
        raise SinkError(f"url is not a well-formed URL (host and port), got {shown!r}",
                        setting="url") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SinkError(f"url must be an http:// or https:// URL, got {shown!r}", setting="url")
    if (not parts.hostname or port == 0 or any(c.isspace() for c in url)
            or not _well_formed_host(parts.hostname)):
        raise SinkError(f"url is not a well-formed URL (host and port), got {shown!r}",
                        setting="url")
    return url


def _host(url: str) -> str:
    # hostname:port only: the netloc may carry a user name and password
    parts = urlsplit(url)
    host = parts.hostname or ""  # checked well-formed when the sink was built
    return host if parts.port is None else f"{host}:{parts.port}"


def _timeout(settings: Mapping[str, Any]) -> float:
    value = settings.get("timeout", 10.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise SinkError(f"timeout must be a positive number of seconds, got {value!r}",
                        setting="timeout")
    return float(value)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), _MAX_RETRY_AFTER)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float, what: str) -> None:
    """POST and map the outcome to success or a :class:`SinkError`."""
    httpx = _httpx()
    host = _host(url)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise SinkError(f"{what} to {host} timed out after {timeout:g}s ({type(exc).__name__})",
                        retryable=True) from exc
    except httpx.TransportError as exc:
        raise SinkError(f"{what} to {host} failed: {type(exc).__name__}: {exc}",
                        retryable=True) from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = response.text[:200].strip()
    message = f"{what} to {host} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        raise SinkError(message, retryable=True,
                        retry_after=parse_retry_after(response.headers.get("retry-after")))
    raise SinkError(message, retryable=False)


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>``."""
    if not secret.startswith(SECRET_PREFIX):
        raise SinkError("secret must be a Standard Webhooks secret: 'whsec_' followed by base64",
                        setting="secret")
    import base64
    import binascii

    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SinkError("secret: the part after 'whsec_' is not valid base64",
                        setting="secret") from None
    if len(key) < 16:
        raise SinkError("secret: the key must be at least 16 bytes (24+ base64 characters)",
                        setting="secret")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    import base64
    import hashlib
    import hmac

    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookSink:
    def __init__(self, name: str, settings: Mapping[str, Any]):
        _httpx()
        self.name = name
        self.url = _url(settings)
        self.timeout = _timeout(settings)
        secret = settings.get("secret")
        if secret in (None, ""):
            self.key = None
        elif isinstance(secret, str):
            self.key = decode_secret(secret)
        else:
            raise SinkError("secret must be a string 'whsec_<base64>'", setting="secret")
        headers = settings.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise SinkError("headers must be a mapping of header name to value", setting="headers")
        self.headers = {str(k): str(v) for k, v in headers.items()}

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.payload(), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {**self.headers, "content-type": "application/json",
                   "user-agent": "kpiforge-webhook/1",
                   "webhook-id": alert.id, "webhook-timestamp": str(timestamp)}
        if self.key is not None:
            headers["webhook-signature"] = sign(self.key, alert.id, timestamp, body)
        post(self.url, body, headers, self.timeout, "webhook")


_SLACK_ICON = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}
# Slack has no escape for its formatting characters, and a zero-width space next to one is a
# word boundary that *enables* formatting; so in text that comes from KPI files and data,
# each is replaced by a look-alike character. Inside a word (signup_rate, a*b) they never
# format and are kept.
_LOOK_ALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_FORMATTING = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def _entities(text: Any) -> str:
    # Slack's control characters: < and > would start a link or a mention (<!channel>).
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_text(text: Any) -> str:
    """``text`` shown as is in a Slack mrkdwn field: no link, no mention, no formatting."""
    return _FORMATTING.sub(lambda m: _LOOK_ALIKES[m.group(0)], _entities(text))


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def _field(label: str, value: Any) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(f"*{label}*\n{mrkdwn_text(value)}", 2000),
            "verbatim": True}


def slack_message(alert: Alert) -> dict[str, Any]:
    """The Slack payload. Every text from the alert is escaped for its field: entities for
    ``& < >`` everywhere (plain_text too), look-alikes for formatting characters in mrkdwn,
    and ``verbatim`` so that Slack does not turn names or URLs into links."""
    resolved = alert.state == "resolved"
    icon = ":white_check_mark:" if resolved else _SLACK_ICON.get(alert.severity, "")
    label = "Resolved" if resolved else str(alert.severity).capitalize()
    fields = [_field("KPI", alert.kpi), _field("Value", alert.value_text),
              _field("Status", alert.status), _field("Period", alert.period or "—")]
    if alert.slice:
        fields.append(_field("Slice", alert.slice_text))
    context = f"fingerprint {mrkdwn_text(alert.fingerprint)}"
    if alert.owner:
        context = f"owner {mrkdwn_text(alert.owner)} · {context}"
    return {
        "text": _cut(f"{mrkdwn_text(label)}: {mrkdwn_text(alert.name)}: {mrkdwn_text(alert.message)}", 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                        "text": _cut(f"{label}: {_entities(alert.name)}", 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                         "text": _cut(f"{icon} {mrkdwn_text(alert.message)}", 3000)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context, "verbatim": True}]},
        ],
    }


class SlackSink:
    def __init__(self, name: str, settings: Mapping[str, Any]):
        _httpx()
        self.name = name
        self.url = _url(settings)
        self.timeout = _timeout(settings)

    def send(self, alert: Alert) -> None:
        body = json.dumps(slack_message(alert), ensure_ascii=False).encode("utf-8")
        post(self.url, body, {"content-type": "application/json"}, self.timeout, "slack")


def webhook_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> WebhookSink:
    return WebhookSink(name, settings)


def slack_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> SlackSink:
    return SlackSink(name, settings)


# Values are checked by the factories (their messages name the setting); the schemas name them.
WEBHOOK_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"description": "Where to POST; write credentials as ${VAR}."},
        "secret": {"description": "Standard Webhooks signing secret 'whsec_<base64>'."},
        "headers": {"description": "Extra HTTP headers (name: value)."},
    },
}
SLACK_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"url": {"description": "The Slack incoming-webhook URL (its path is the token)."}},
}


@hookimpl
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    # Never printed or stored (the core masks what secrets= names): a webhook URL's userinfo and
    # query, its signing secret and header values (Authorization); a Slack URL's path is its token.
    register("webhook", webhook_sink, settings_schema=WEBHOOK_SETTINGS_SCHEMA,
             secrets={"url": "url", "secret": "value", "headers": "value"},
             doc="POST a signed JSON alert (Standard Webhooks; schema alert.schema.json).")
    register("slack", slack_sink, settings_schema=SLACK_SETTINGS_SCHEMA,
             secrets={"url": "token_url"}, doc="Post to a Slack incoming webhook (blocks).")
