"""Built-in ``email`` sink: SMTP with STARTTLS, implicit TLS, or plain (loopback only).

Messages are ``multipart/alternative`` with a plain-text and an HTML part. ``tls`` defaults to
``starttls``, or to ``none`` when the host is a loopback address (a local relay or a test
server). Credentials are never sent over an unencrypted connection to another host.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import SinkTypeRegister, hookimpl
from kpiforge.sinks import SinkContext, SinkError, render_template

if TYPE_CHECKING:
    import smtplib
    from email.message import EmailMessage

    from kpiforge.sinks import Alert

_DEFAULT_PORT = {"starttls": 587, "ssl": 465, "none": 25}
# local@domain, the plain form SMTP's MAIL FROM / RCPT TO take (no display name, no spaces).
_ADDRESS = re.compile(r'^[^\s@<>()\[\],;:"\\]+@[^\s@<>()\[\],;:"\\.]+(?:\.[^\s@<>()\[\],;:"\\.]+)*\Z')
_COLOR = {"critical": "#b91c1c", "warning": "#b45309", "info": "#1d4ed8"}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress  # here and below, imported when needed: every command loads this plugin

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(value: Any, key: str, required: bool) -> list[str]:
    if value in (None, "", []):
        if required:
            raise SinkError(f"missing '{key}' (an address or a list of addresses)", setting=key)
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(a, str) for a in items):
        raise SinkError(f"'{key}' must be an e-mail address or a list of addresses", setting=key)
    for address in items:
        if any(c in address for c in "\r\n"):
            raise SinkError(f"'{key}' contains a line break", setting=key)
        if not _ADDRESS.match(address):
            hint = " (several addresses go in a list: [a@x.com, b@x.com])" if "," in address else ""
            raise SinkError(f"'{key}' must be an e-mail address or a list of addresses: "
                            f"{address!r} is not one{hint}", setting=key)
    return list(items)


def default_subject(alert: Alert) -> str:
    if alert.state == "resolved":
        return f"[RESOLVED] {alert.name}"
    return f"[{alert.severity.upper()}] {alert.name}: {alert.status}"


def html_body(alert: Alert) -> str:
    from markupsafe import Markup, escape

    resolved = alert.state == "resolved"
    color = "#15803d" if resolved else _COLOR.get(alert.severity, "#374151")
    rows = [("KPI", alert.kpi), ("Value", alert.value_text), ("Status", alert.status),
            ("Severity", alert.severity), ("Period", alert.period or "—")]
    if alert.slice:
        rows.append(("Slice", alert.slice_text))
    if alert.owner:
        rows.append(("Owner", alert.owner))
    table = Markup("").join(
        Markup('<tr><th align="left" style="padding:2px 12px 2px 0">{}</th><td>{}</td></tr>').format(k, str(v))
        for k, v in rows)
    # The message is text, whatever its template wrote: markup in it (even a template's own
    # literal HTML, which KPI files from third parties may carry) is shown, never rendered.
    message = escape(str(alert.message))
    return str(Markup(
        '<!doctype html><html><body style="font-family:sans-serif">'
        '<h2 style="color:{color}">{title}</h2><p style="white-space:pre-wrap">{message}</p>'
        '<table>{table}</table>'
        '<p style="color:#6b7280;font-size:12px">fingerprint {fp}</p></body></html>'
    ).format(color=color, title=str(default_subject(alert)), message=message, table=table,
             fp=alert.fingerprint))


def text_body(alert: Alert) -> str:
    lines = [alert.message, "", f"KPI: {alert.kpi}", f"Value: {alert.value_text}",
             f"Status: {alert.status}", f"Severity: {alert.severity}",
             f"Period: {alert.period or '—'}"]
    if alert.slice:
        lines.append(f"Slice: {alert.slice_text}")
    lines.append(f"Fingerprint: {alert.fingerprint}")
    return "\n".join(lines) + "\n"


class EmailSink:
    def __init__(self, name: str, settings: Mapping[str, Any]):
        self.name = name
        host = settings.get("host")
        if not isinstance(host, str) or not host:
            raise SinkError("missing 'host' (the SMTP server)", setting="host")
        if "://" in host or any(c.isspace() or c in "/@" for c in host):
            raise SinkError(f"host must be a host name or address, like smtp.example.com; got "
                            f"{host!r}", setting="host")
        self.host = host
        tls = settings.get("tls", "none" if _is_loopback(host) else "starttls")
        if tls not in _DEFAULT_PORT:
            raise SinkError(f"tls must be one of starttls, ssl, none; got {tls!r}", setting="tls")
        self.tls = tls
        port = settings.get("port", _DEFAULT_PORT[tls])
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise SinkError(f"port must be an integer from 1 to 65535, got {port!r}", setting="port")
        self.port = port
        self.sender = _addresses(settings.get("from"), "from", True)[0]
        self.to = _addresses(settings.get("to"), "to", True)
        self.cc = _addresses(settings.get("cc"), "cc", False)
        self.username = settings.get("username")
        self.password = settings.get("password")
        if (self.username is None) != (self.password is None):
            raise SinkError("give both 'username' and 'password', or neither",
                            setting="password" if self.password is None else "username")
        if self.username is not None and tls == "none" and not _is_loopback(host):
            raise SinkError("refusing to send SMTP credentials without TLS to a non-loopback host",
                            setting="tls")
        self.subject = settings.get("subject")
        timeout = settings.get("timeout", 10.0)
        self.timeout = float(timeout) if isinstance(timeout, (int, float)) else 10.0

    def _subject(self, alert: Alert) -> str:
        if not self.subject:
            subject = default_subject(alert)
        else:
            try:
                subject = render_template(str(self.subject),
                                          {**alert.to_dict(), "value_text": alert.value_text},
                                          max_chars=250)
            except Exception as exc:  # noqa: BLE001 - a bad subject must not stop the mail
                subject = f"{default_subject(alert)} [subject template error: {type(exc).__name__}]"
        return " ".join(subject.split())[:250]

    def message(self, alert: Alert) -> EmailMessage:
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        msg = EmailMessage()
        msg["Subject"] = self._subject(alert)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=alert.id or None, domain="kpiforge.local")
        # The same id on every attempt lets a mailbox rule or the receiver spot duplicates.
        msg["X-Kpiforge-Message-Id"] = alert.id
        msg["X-Kpiforge-Fingerprint"] = alert.fingerprint
        msg.set_content(text_body(alert))
        msg.add_alternative(html_body(alert), subtype="html")
        return msg

    def _connect(self) -> smtplib.SMTP:
        import smtplib  # with ssl, imported on sending: loading the plugin stays cheap
        import ssl

        context = ssl.create_default_context()
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        return smtp

    def send(self, alert: Alert) -> None:
        import smtplib
        import socket
        import ssl

        msg = self.message(alert)
        recipients = self.to + self.cc
        try:
            with self._connect() as smtp:
                if self.username is not None:
                    smtp.login(str(self.username), str(self.password))
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise SinkError(f"all recipients refused: {', '.join(exc.recipients)}",
                            retryable=any(400 <= c < 500 for c in codes)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SinkError(f"SMTP server {self.host}: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise SinkError(f"SMTP server {self.host} answered {exc.smtp_code}: {text}",
                            retryable=400 <= exc.smtp_code < 500) from exc
        except ssl.SSLError as exc:
            raise SinkError(f"TLS with {self.host}:{self.port} failed: {exc}") from exc
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise SinkError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}",
                            retryable=True) from exc
        if refused:
            raise SinkError(f"recipients refused: {', '.join(sorted(refused))}")


def email_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> EmailSink:
    return EmailSink(name, settings)


# Values are checked by the factory (its messages name the setting); the schema names them.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "host": {"description": "The SMTP server."},
        "port": {"description": "Default: 587 (starttls), 465 (ssl), 25 (none)."},
        "tls": {"description": "starttls (default), ssl, or none (loopback only with credentials)."},
        "from": {"description": "The sender address."},
        "to": {"description": "An address or a list of them."},
        "cc": {"description": "An address or a list of them."},
        "username": {"description": "SMTP login (with password)."},
        "password": {"description": "SMTP password; write it as ${VAR}."},
        "subject": {"description": "The subject line (default: severity, KPI and period)."},
    },
}


@hookimpl
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    register("email", email_sink, settings_schema=SETTINGS_SCHEMA, secrets=("password",), doc="Send alerts by SMTP (STARTTLS, TLS, or plain on loopback).")
