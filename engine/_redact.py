"""Secrets kept out of everything kpiforge prints or stores (stderr, command output, state.db).

* :func:`redact_url` masks a URL's password (``http://user:***@host/``), a user name given
  alone (often a token), query values, and with ``mask_path`` the whole path (Slack and other
  webhook URLs whose path *is* the token: scheme and host are kept).
* Each source and sink type declares which of its settings are secret in its register call
  (``secrets={"<setting>": "<kind>"}`` or a list of names, kind ``value``), where kind is
  ``value`` (the whole value, or each item or mapping value), ``url`` (the URL's userinfo and
  query values) or ``token_url`` (the whole URL, its path and each long path segment). A type
  that declares nothing gets ``url`` for ``url``/``urls`` and ``value`` for every setting
  whose name says password, secret, token, key, auth or credential.
* Every value a ``${VAR}`` put into a setting is a secret too (:func:`secret_values`).
* :func:`redact_text` replaces those values in a message, and any URL userinfo it finds.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["MASK", "redact_text", "redact_url", "redact_source_error", "secret_values", "RedactingSource"]

MASK = "***"
_SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@?#]+)@")
# Shorter values would mask ordinary words in messages; no real secret is this short.
_MIN_SECRET = 4


def redact_url(url: str, *, mask_path: bool = False) -> str:
    """``url`` with its password (or lone user name), query values and optionally path masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        # Not a URL (a malformed ${SLACK_URL}): keep what looks like a host, mask the rest.
        head, sep, _ = url.partition("/")
        return f"{head}/{MASK}" if sep else MASK
    netloc = host if port is None else f"{host}:{port}"
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc}"
    elif parts.username:
        netloc = f"{MASK}@{netloc}"
    path = parts.path
    if mask_path and path not in ("", "/"):
        path = "/" + MASK
    query = "&".join(f"{k}={MASK}" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def _userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else f"{match.group('scheme')}{MASK}@"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value, and the userinfo of any URL in it, masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _USERINFO.sub(_userinfo, text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _url_secrets(url: str, kind: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return [url]
    if kind == "token_url" or not parts.scheme or not parts.netloc:
        segments = parts.path.split("/")
        if not parts.netloc:
            segments = segments[1:]  # a URL without its scheme: the first segment is the host
        found.append(url)
        found.append("/".join(segments))
        found.extend(segment for segment in segments if len(segment) >= 8)
    if password:
        found.append(password)
    elif username:
        found.append(username)
    found.extend(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
    return found


def secret_values(declared: Mapping[str, str] | None, settings: Mapping[str, Any],
                  expanded: Iterable[str] = ()) -> list[str]:
    """The secret values among one source's or sink's (expanded) settings.

    ``declared`` is the type registration's ``secrets`` (None: guessed from the setting
    names); ``expanded`` are the values ``${VAR}`` references were replaced by.
    """
    if declared is None:
        declared = {name: "value" for name in settings if _SECRET_NAME.search(str(name))}
        declared.update({name: "url" for name in ("url", "urls") if name in settings})
    secrets: list[str] = list(expanded)
    for name, kind in declared.items():
        for value in _strings(settings.get(name)):
            if kind in ("url", "token_url"):
                secrets.extend(_url_secrets(value, kind))
            else:
                secrets.append(value)
    return [s for s in secrets if s]


def redact_source_error(exc: Any, secrets: Iterable[str]) -> Any:
    """``exc`` (a SourceError) itself when it holds none of ``secrets``, else a redacted copy."""
    from .errors import SourceError

    secrets = tuple(secrets)
    problems = getattr(exc, "problems", None) or ()
    texts = [str(exc), exc.debug or ""] + [str(t) for _, t in problems]
    if all(redact_text(t, secrets) == t for t in texts):
        return exc  # nothing to hide: keep the error as it is (its class, its fields)
    clean = SourceError(redact_text(str(exc), secrets), field=exc.field,
                        debug=redact_text(exc.debug, secrets) if exc.debug else None)
    if problems:
        clean.problems = [(f, redact_text(str(t), secrets)) for f, t in problems]  # type: ignore[attr-defined]
    return clean


class RedactingSource:
    """A source whose errors carry none of its secrets (they are printed and stored)."""

    def __init__(self, name: str, source: Any, secrets: Iterable[str]):
        self._name = name
        self._source = source
        self._secrets = tuple(secrets)

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._source, attribute)
        if attribute in ("fetch", "latest", "aggregate_sql") and callable(value):
            return self._guarded(value, attribute)
        return value

    def _guarded(self, method: Any, what: str) -> Any:
        from .errors import KpiforgeError, SourceError

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except SourceError as exc:
                clean = redact_source_error(exc, self._secrets)
                if clean is exc:
                    raise
                raise clean from None
            except KpiforgeError:
                raise
            except Exception as exc:  # a plugin's own error: its text may quote a setting
                raise SourceError(redact_text(f"source '{self._name}': {what} failed: "
                                              f"{type(exc).__name__}: {exc}", self._secrets)) from None
        return call
