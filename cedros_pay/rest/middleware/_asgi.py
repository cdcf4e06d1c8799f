"""Small ASGI helpers the middleware share: headers, per-request state, error responses.

The middleware are plain ASGI classes (no Request objects) because they run on every
request; these helpers keep them short without hiding what they do.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError
from cedros_pay.rest.errors import render_error

Headers = list[tuple[bytes, bytes]]

# A Solana address as a wallet header may carry it; anything else is not a wallet.
_WALLET = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_WALLET_PARAMS = ("wallet", "userWallet", "user_wallet")


_HEADER_INDEX = "cedros.header_index"


def header_index(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by (lower-case) name, the first value of each.

    A dozen readers look up a header on every request (request id, API version, tenant,
    wallet, payment headers...); one pass builds this index and each lookup is a dict
    probe instead of a scan. Kept with the header list it was built from, so a scope
    given new headers gets a new index.
    """
    raw = scope.get("headers", ())
    found: tuple[object, dict[bytes, bytes]] | None = scope.get(_HEADER_INDEX)
    if found is not None and found[0] is raw:
        return found[1]
    # dict() keeps the last value of a repeated name: reversed, that is the first one.
    index: dict[bytes, bytes] = dict(reversed(raw if type(raw) is list else list(raw)))
    scope[_HEADER_INDEX] = (raw, index)
    return index


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    value = header_index(scope).get(name)
    return None if value is None else value.decode("latin-1")


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
    index = header_index(scope)
    if b"x-wallet" in index or b"x-signer" in index:
        for found in (index.get(b"x-wallet"), index.get(b"x-signer")):
            if found:
                value: str = found.decode("latin-1").strip()
                if _WALLET.fullmatch(value):
                    return value
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
    `headers` when the caller keeps them, is kept up to date. The names in `extra` are
    distinct and lower-case."""
    if present is None:
        present = {k.lower() for k, _ in headers}
    if type(extra) is list or type(extra) is tuple:  # exact types: cheaper than a union
        for name, _ in extra:
            if name in present:
                break
        else:  # the usual case: none of the names is there yet
            headers.extend(extra)
            for name, _ in extra:
                present.add(name)
            return
    for name, value in extra:
        if name in present:
            if not replace:
                continue
            headers[:] = [(k, v) for k, v in headers if k.lower() != name]
        headers.append((name, value))
        present.add(name)


# The response side of the chain. Each layer used to wrap `send` (to add headers, to see
# the status, to know the response had started), so every response message crossed a
# closure per layer. Now the outermost layer opens one `Exchange` per request and passes
# it down as `send`; the layers inside register header edits on it and read its state.
# A layer used without an outer one (a test's tiny app) opens its own.
HeaderEdit = Callable[[Headers, set[bytes]], None]  # headers, their lower-cased names
EXCHANGE = "cedros.exchange"
# An edit is a HeaderEdit, a HeaderBlock, or a plain header list: the commonest edit of
# all, "add these headers, existing names win", which then costs no object at all.


class HeaderBlock(NamedTuple):
    """An edit as data: add these headers (names distinct, lower-case); an existing name
    wins unless `replace`. The Exchange applies it without a call. With `otherwise`, the
    block is only the usual case: when any of its names is already there, `otherwise`
    is applied instead (a merge a plain add or replace would get wrong, such as Vary)."""

    headers: Headers
    replace: bool = False
    otherwise: HeaderEdit | None = None


class Exchange:
    """One request's response as it leaves the chain: the single `send` wrapper.

    On `http.response.start` it applies the registered header edits, innermost layer
    first (as nested wrappers did), to one copy of the headers, and notes the status; it
    notes when the last body chunk went out. Everything else passes through untouched.
    """

    __slots__ = ("edits", "finished", "send", "started", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.edits: list[HeaderEdit | HeaderBlock | Headers] = []
        self.status = 0
        self.started = False
        self.finished = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            edits = self.edits
            if edits:
                original: Headers = message.get("headers", ())
                # The usual case first: plain blocks whose names are all new, so applying
                # them is concatenating them; checked at the end by counting the names.
                merged = list(original)
                for edit in reversed(edits):
                    kind = type(edit)
                    if kind is list:
                        merged += edit  # type: ignore[arg-type]
                    elif kind is HeaderBlock:
                        merged += edit[0]  # type: ignore[index, arg-type]
                    else:
                        break
                else:
                    if len({name.lower() for name, _ in merged}) == len(merged):
                        message["headers"] = merged
                        await self.send(message)
                        return
                headers: Headers = list(original)
                present: set[bytes] = set()
                for name, _ in headers:
                    present.add(name.lower())
                block: Headers
                replace: bool
                otherwise: HeaderEdit | None
                for edit in reversed(edits):
                    if isinstance(edit, list):  # add these, existing names win
                        block, replace, otherwise = edit, False, None
                    elif isinstance(edit, HeaderBlock):
                        block, replace, otherwise = edit
                    else:
                        edit(headers, present)
                        continue
                    for name, _ in block:
                        if name in present:
                            if otherwise is not None:
                                otherwise(headers, present)
                            else:
                                merge_headers(headers, block, replace=replace,
                                              present=present)
                            break
                    else:  # the usual case, inline: none of the names is there yet
                        headers.extend(block)
                        for name, _ in block:
                            present.add(name)
                message["headers"] = headers
        elif kind == "http.response.body" and not message.get("more_body"):
            self.finished = True
        await self.send(message)


def exchange(scope: Scope, send: Send) -> tuple[Exchange, Send]:
    """The request's Exchange and the `send` to pass down: the outer layer's, with `send`
    unchanged, or a new one, which is then the `send` to pass down."""
    found: Exchange | None = scope.get(EXCHANGE)
    if found is not None:
        return found, send
    opened = scope[EXCHANGE] = Exchange(send)
    return opened, opened


def edit_response(scope: Scope, send: Send,
                  edit: HeaderEdit | HeaderBlock | Headers) -> Send:
    """`send` with `edit` applied to the response's headers (registered on the request's
    Exchange, so `send` itself usually comes back unchanged)."""
    ex, send = exchange(scope, send)
    ex.edits.append(edit)
    return send


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


@functools.lru_cache(maxsize=64)
def _vary_value(names: tuple[str, ...]) -> bytes:
    """A fresh Vary value for `names`: trimmed, first spelling of each name, no repeats."""
    first: dict[str, str] = {}
    for name in names:
        name = name.strip()
        if name:
            first.setdefault(name.lower(), name)
    return ", ".join(first.values()).encode("latin-1")


def merge_vary(headers: Headers, names: Iterable[str],
               present: set[bytes] | None = None) -> None:
    """`add_vary` on a header list, in place (`present` as for `merge_headers`)."""
    if present is not None and b"vary" not in present:  # the usual case: nothing to merge
        headers.append((b"vary", _vary_value(tuple(names))))
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
