"""Real servers for the alerting tests, on 127.0.0.1 only, started and stopped by fixtures.

* :class:`HookServer`: an HTTP server that records every request and answers from a script
  (``200``, ``500``, ``429`` with Retry-After, ``400``, or hang), for webhook and Slack sinks.
* :class:`SmtpServer`: aiosmtpd on a free port, recording every message.
* :func:`verify_standard_webhook`: the receiving side of Standard Webhooks, written from the
  specification and independent of ``kpiforge.plugins.sinks.http``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kpiforge.hookspecs import hookimpl

HANG_LIMIT = 10.0  # a hanging handler gives up after this long even if nobody releases it


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when received

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookServer:
    """Answers follow ``script`` per path prefix; once a script is used up, ``default``."""

    httpd: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, *responses: str, default: str = "200") -> None:
        """``responses`` are ``"200"``, ``"500"``, ``"400"``, ``"429:<retry-after>"``, ``"hang"``,
        ``"slow:<seconds>"`` (200 after that long)."""
        with self.lock:
            self.scripts[path] = list(responses)
            self.defaults[path] = default

    def next_answer(self, path: str) -> str:
        with self.lock:
            script = self.scripts.get(path)
            if script:
                return script.pop(0)
            return self.defaults.get(path, "200")

    def received(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


def _handler(server: HookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                              time.monotonic())
            with server.lock:
                server.requests.append(request)
            answer = server.next_answer(self.path)
            if answer == "hang":
                server.release.wait(HANG_LIMIT)
                return
            if answer.startswith("slow:"):
                time.sleep(float(answer[5:]))
                answer = "200"
            code, _, retry_after = answer.partition(":")
            self.send_response(int(code))
            if retry_after:
                self.send_header("Retry-After", retry_after)
            payload = b"ok" if code.startswith("2") else f"error {code}".encode()
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def hook_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = HookServer(httpd)
    httpd.RequestHandlerClass = _handler(server)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes,
                            *, tolerance: int = 300) -> None:
    """Raise AssertionError unless the request carries a valid Standard Webhooks signature."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    assert timestamp.isdigit(), timestamp
    assert abs(time.time() - int(timestamp)) <= tolerance, "timestamp outside tolerance"
    to_sign = (msg_id + "." + timestamp + "." + body.decode("utf-8")).encode("utf-8")
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode("ascii")
    candidates = headers["webhook-signature"].split(" ")
    for candidate in candidates:
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise AssertionError(f"no valid v1 signature in {candidates!r}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _RecordingHandler:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.reject_with: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.reject_with:
            return self.reject_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _RecordingHandler

    @property
    def envelopes(self) -> list[Any]:
        return self.handler.envelopes


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    handler = _RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


# -- KPI definitions and a recording sink, shared by the alerting tests -------------------------
# certified: a draft KPI does not alert unless the project opts in (alerting: {drafts: true})

KPIS_YAML = """\
kpis:
  - id: cpc
    name: Cost per click
    labels: {en: Cost per click, fr: Coût par clic}
    formula: cost / clicks
    inputs: {cost: {unit: currency}, clicks: {unit: count}}
    unit: currency
    currency: EUR
    status: certified
    direction: lower_is_better
    category: acquisition
    owner: growth
    thresholds: {good: 2, warning: 3, critical: 5}
    alerts: {for: 2}
  - id: ctr
    name: Click-through rate
    formula: clicks / impressions * 100
    inputs: {clicks: {unit: count}, impressions: {unit: count}}
    unit: percent
    status: certified
    direction: higher_is_better
    category: awareness
    owner: brand
    thresholds: {good: 3, warning: 1.5, critical: 0.5}
  - id: revenue
    name: Revenue
    formula: amount
    inputs: {amount: {unit: currency}}
    unit: currency
    status: certified
    direction: higher_is_better
    category: retention
    alerts:
      change: {vs: previous, drop_pct: 20}
      labels: {team: finance}
      message: "{{ name }} fell {{ change_text }} to {{ value_text }}"
  - id: quiet
    name: Never alerts
    formula: x
    inputs: {x: {unit: count}}
    unit: count
    status: certified
    direction: higher_is_better
    thresholds: {warning: 10, critical: 5}
    alerts: {enabled: false}
  - id: sticky
    name: Sticky
    formula: x
    inputs: {x: {unit: count}}
    unit: count
    status: certified
    direction: higher_is_better
    thresholds: {warning: 10, critical: 5}
    alerts: {keep_firing_for: 1, severity: critical}
"""


def write_kpis(directory) -> Any:
    path = directory / "kpis.yaml"
    path.write_text(KPIS_YAML, encoding="utf-8")
    return path


def record(kpi: str, period: str, value: float | None, status: str, **extra: Any) -> dict[str, Any]:
    return {"kpi": kpi, "period": period, "slice": extra.pop("slice", {}), "value": value,
            "unit": extra.pop("unit", "currency"), "status": status, "reason": None, **extra}


class RecordingSinks:
    """A plugin adding sink type ``recorder``: keeps what it is sent; ``fail:`` makes it fail.

    ``fail`` is ``none``, ``retryable``, ``permanent``, ``hang`` or ``until:<n>`` (the first n
    calls fail with a retryable error).
    """

    def __init__(self) -> None:
        self.sent: dict[str, list[Any]] = {}
        self.calls: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    @hookimpl
    def kpiforge_register_sink_types(self, register: Any) -> None:
        register("recorder", self.factory)

    def factory(self, name: str, settings: dict[str, Any], context: Any) -> Any:
        plugin = self

        class Sink:
            def send(self, alert: Any) -> None:
                from kpiforge.errors import SinkError

                mode = str(settings.get("fail", "none"))
                with plugin.lock:
                    plugin.calls[name] = plugin.calls.get(name, 0) + 1
                    plugin.times.setdefault(name, []).append(time.monotonic())
                    calls = plugin.calls[name]
                if mode == "retryable" or (mode.startswith("until:") and calls <= int(mode[6:])):
                    raise SinkError("temporarily broken", retryable=True)
                if mode == "permanent":
                    raise SinkError("rejected", retryable=False)
                if mode == "hang":
                    time.sleep(float(settings.get("hang_for", 3)))
                with plugin.lock:
                    plugin.sent.setdefault(name, []).append(alert)

        return Sink()

    def of(self, name: str) -> list[Any]:
        with self.lock:
            return list(self.sent.get(name, []))


def recording_plugins() -> tuple[Any, RecordingSinks]:
    from kpiforge._plugins import load_plugins

    recorder = RecordingSinks()
    return load_plugins(extra=(recorder,)), recorder
