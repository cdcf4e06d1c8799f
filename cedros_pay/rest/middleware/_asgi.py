"""Small ASGI helpers the middleware share: headers, per-request state, error responses.

The middleware are plain ASGI classes (no Request objects) because they run on every
request; these helpers keep them short without hiding what they do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError
from cedros_pay.rest.errors import render_error

Headers = list[tuple[bytes, bytes]]

# A Solana address as a wallet header may carry it; anything else is not a wallet.
_WALLET = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_WALLET_HEADERS = (b"x-wallet", b"x-signer")
_WALLET_PARAMS = ("wallet", "userWallet", "user_wallet")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def header_values(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]


def state(scope: Scope) -> dict[str, Any]:
    """The request's state dict (`request.state` in handlers), created if missing."""
    st: dict[str, Any] = scope.setdefault("state", {})
    return st


def route_path(scope: Scope) -> str:
    """The path the app's router sees: without the root path of a parent mount."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def request_wallet(scope: Scope) -> str | None:
    """The wallet a request names: X-Wallet, X-Signer, or a `wallet` query parameter.

    Only a well-formed address counts, so junk cannot mint endless rate-limit buckets.
    """
    for name in _WALLET_HEADERS:
        value = header(scope, name)
        if value and _WALLET.fullmatch(value.strip()):
            return value.strip()
    query: bytes = scope.get("query_string", b"")
    if query:
        for key, param in parse_qsl(query.decode("latin-1")):
            if key in _WALLET_PARAMS and _WALLET.fullmatch(param.strip()):
                return param.strip()
    return None


def set_headers(message: Message, extra: Iterable[tuple[bytes, bytes]],
                *, replace: bool = False) -> None:
    """Add headers to an `http.response.start` message; existing names win unless
    `replace`."""
    headers: Headers = list(message.get("headers", ()))
    merge_headers(headers, extra, replace=replace)
    message["headers"] = headers


def merge_headers(headers: Headers, extra: Iterable[tuple[bytes, bytes]],
                  *, replace: bool = False, present: set[bytes] | None = None) -> None:
    """`set_headers` on a header list, in place; `present`, the lower-cased names in
    `headers` when the caller keeps them, is kept up to date."""
    if present is None:
        present = {k.lower() for k, _ in headers}
    for name, value in extra:
        if name in present:
            if not replace:
                continue
            headers[:] = [(k, v) for k, v in headers if k.lower() != name]
        headers.append((name, value))
        present.add(name)


# Response edits: the header-only layers change the response's headers and nothing else.
# Each used to wrap `send`, so a response start crossed a closure per layer and copied its
# header list each time. The outermost of them (request id) now keeps a per-request list
# of edits; each inner layer appends its edit instead of wrapping `send`, and the edits are
# applied innermost first, as the wrappers did, to one copy of the headers. A layer used
# without that outer one (a test's tiny app) wraps `send` itself.
HeaderEdit = Callable[[Headers, set[bytes]], None]  # headers, their lower-cased names
RESPONSE_EDITS = "cedros.response_edits"


def edit_response(scope: Scope, send: Send, edit: HeaderEdit) -> Send:
    """`send` with `edit` applied to the response's headers; registered with the outer
    collector when there is one, so `send` itself comes back unchanged."""
    edits: list[HeaderEdit] | None = scope.get(RESPONSE_EDITS)
    if edits is not None:
        edits.append(edit)
        return send

    async def send_edited(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: Headers = list(message.get("headers", ()))
            edit(headers, {k.lower() for k, _ in headers})
            message["headers"] = headers
        await send(message)

    return send_edited


def collect_edits(scope: Scope, send: Send, last: HeaderEdit) -> Send:
    """Open the per-request edit list; `send` applying every edit, then `last`."""
    edits: list[HeaderEdit] = []
    scope[RESPONSE_EDITS] = edits

    async def send_edited(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: Headers = list(message.get("headers", ()))
            present = {k.lower() for k, _ in headers}
            for edit in reversed(edits):  # innermost layer first, as nested wrappers did
                edit(headers, present)
            last(headers, present)
            message["headers"] = headers
        await send(message)

    return send_edited


async def send_error(scope: Scope, receive: Receive, send: Send, err: CedrosError, *,
                     status: int | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> None:
    """Answer with spec 15's error envelope (the same renderer the handlers use)."""
    response = render_error(err, status)
    for name, value in headers:
        response.headers[name] = value
    await response(scope, receive, send)


def add_vary(message: Message, names: Iterable[str]) -> None:
    """Extend the response's Vary header with `names` (case-insensitive, no repeats)."""
    headers: Headers = list(message.get("headers", ()))
    merge_vary(headers, names)
    message["headers"] = headers


def merge_vary(headers: Headers, names: Iterable[str],
               present: set[bytes] | None = None) -> None:
    """`add_vary` on a header list, in place (`present` as for `merge_headers`)."""
    if present is not None and b"vary" not in present:  # the usual case: nothing to merge
        first: dict[str, str] = {}
        for name in names:
            name = name.strip()
            if name:
                first.setdefault(name.lower(), name)
        headers.append((b"vary", ", ".join(first.values()).encode("latin-1")))
        present.add(b"vary")
        return
    current = [v.decode("latin-1") for k, v in headers if k.lower() == b"vary"]
    tokens = [t.strip() for v in current for t in v.split(",") if t.strip()]
    seen = {t.lower() for t in tokens}
    for name in names:
        name = name.strip()
        if name and name.lower() not in seen:
            tokens.append(name)
            seen.add(name.lower())
    if current:
        headers[:] = [(k, v) for k, v in headers if k.lower() != b"vary"]
    headers.append((b"vary", ", ".join(tokens).encode("latin-1")))
    if present is not None:
        present.add(b"vary")
