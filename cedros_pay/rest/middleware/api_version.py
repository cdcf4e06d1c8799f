"""API version negotiation (spec 10).

A request asks for a version with `X-API-Version: 1`, `Accept:
application/vnd.cedros.v1+json` or `Accept: application/json; version=1` (the header
wins over Accept); one that asks for none gets the current version. The response says
which version served it (`X-API-Version`), that the answer varies with those headers
(`Vary`), and, for a deprecated version, `Deprecation` (RFC 9745) and `Sunset` (RFC 8594).
A version the server does not serve is a 400: answering in another shape than the one a
client asked for would fail later and more confusingly.

Only the `application/json` media range's `version` parameter counts: Prometheus, for
one, sends `text/plain;version=0.0.4`, which is not a request for API version 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from starlette.types import Scope

from cedros_pay.core.bounded import BoundedMemo
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import (
    HeaderBlock,
    Headers,
    header_index,
    merge_headers,
    merge_vary,
    state,
)
from cedros_pay.rest.middleware.gate import Refusal

_VENDOR = re.compile(r"application/vnd\.cedros\.v(\d{1,4})\+json", re.IGNORECASE)
_HEADER_VALUE = re.compile(r"v?(\d{1,4})", re.IGNORECASE)
VARY = ("Accept", "X-API-Version")
_DECIDED_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Deprecation:
    since: datetime | None = None
    sunset: datetime | None = None
    link: str = ""


class UnreadableVersion(ValueError):
    pass


def version_asked(explicit: str | None, accept: str) -> int | None:
    """The version a request asks for with these X-API-Version and Accept values, None
    if it asks for none (UnreadableVersion if unreadable)."""
    if explicit is not None and explicit.strip():
        m = _HEADER_VALUE.fullmatch(explicit.strip())
        if m is None:
            raise UnreadableVersion(explicit)
        return int(m.group(1))
    m = _VENDOR.search(accept)
    if m:
        return int(m.group(1))
    for media_range in accept.split(","):
        media, *params = (p.strip() for p in media_range.split(";"))
        if media.lower() != "application/json":
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "version":
                value = value.strip().strip('"')
                if not value.isdigit():
                    raise UnreadableVersion(value)
                return int(value)
    return None


def _versioned(extra: Headers) -> HeaderBlock:
    """The response edit for one version, made once: its headers, and Vary. Usually the
    response has none of them yet and they are simply added; otherwise the version's
    headers replace what is there and Vary is merged."""
    def merge(headers: Headers, present: set[bytes]) -> None:
        merge_headers(headers, extra, replace=True, present=present)
        merge_vary(headers, VARY, present)

    return HeaderBlock([*extra, (b"vary", ", ".join(VARY).encode("latin-1"))],
                       otherwise=merge)


class APIVersion:
    """The check (gate.py): the version asked for, served or refused."""

    websocket = False

    def __init__(self, *, current: int = 1, supported: Sequence[int] = (1,),
                 deprecated: Mapping[int, Deprecation] | None = None) -> None:
        self.current = current
        self.supported = tuple(sorted(set(supported)))
        self.deprecated = dict(deprecated or {})
        self._edits = {v: _versioned(self._response_headers(v)) for v in self.supported}
        # Clients send the same few header values over and over: the decision is kept.
        self._decided: BoundedMemo[tuple[bytes | None, bytes | None],
                                   tuple[int, HeaderBlock] | tuple[str, None]] = \
            BoundedMemo(_DECIDED_LIMIT)

    def _response_headers(self, version: int) -> Headers:
        out: Headers = [(b"x-api-version", str(version).encode())]
        dep = self.deprecated.get(version)
        if dep is not None:
            since = f"@{int(dep.since.timestamp())}" if dep.since else "true"
            out.append((b"deprecation", since.encode()))
            if dep.sunset:
                out.append((b"sunset", format_datetime(dep.sunset, usegmt=True).encode()))
            if dep.link:
                out.append((b"link", f'<{dep.link}>; rel="deprecation"'.encode("latin-1")))
        return out

    def __call__(self, scope: Scope) -> HeaderBlock | Refusal:
        index = header_index(scope)
        asked = (index.get(b"x-api-version"), index.get(b"accept"))
        decided = self._decided.get(asked)
        if decided is None:
            decided = self._decided.put(asked, self._decide(*asked))
        version, edit = decided
        if edit is None:  # the reason it is refused
            return self._refusal(version)  # type: ignore[arg-type]
        state(scope)["api_version"] = version
        return edit

    def _decide(self, explicit: bytes | None,
                accept: bytes | None) -> tuple[int, HeaderBlock] | tuple[str, None]:
        """The version served for these header values and its edit, or why none is."""
        try:
            asked = version_asked(None if explicit is None else explicit.decode("latin-1"),
                                  "" if accept is None else accept.decode("latin-1"))
        except UnreadableVersion as exc:
            return f"unreadable API version {str(exc)!r}", None
        version = self.current if asked is None else asked
        edit = self._edits.get(version)
        if edit is None:
            return f"API version {version} is not supported", None
        return version, edit

    def _refusal(self, why: str) -> Refusal:
        return Refusal(CedrosError(ErrorCode.INVALID_FIELD, why, {
            "field": "X-API-Version", "supported": list(self.supported)}),
            headers=[("Vary", ", ".join(VARY))])
