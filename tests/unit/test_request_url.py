"""`request_url` puts the usual request's URL together itself: it must be, character for
character, what Starlette's `str(request.url)` makes of the same scope, for the usual
requests and for the odd ones it leaves to Starlette (checked over random scopes)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from starlette.requests import Request

from cedros_pay.rest.context import request_url


def scope(scheme: str | None, host: bytes | None, path: str, query: bytes = b"",
          server: tuple[str, int] | None = ("10.0.0.1", 8080)) -> dict[str, Any]:
    headers = [(b"accept", b"*/*")]
    if host is not None:
        headers.append((b"host", host))
    s: dict[str, Any] = {"type": "http", "method": "GET", "path": path,
                         "query_string": query, "headers": headers, "server": server}
    if scheme is not None:
        s["scheme"] = scheme
    return s


def starlette_url(s: dict[str, Any]) -> str:
    return str(Request(s).url)


@pytest.mark.parametrize("s", [
    scope("http", b"127.0.0.1:8080", "/paywall/v1/quote"),
    scope("https", b"Pay.Example.COM", "/paywall/v1/quote", b"a=1&b=%20"),
    scope(None, b"shop.test:443", "/x"),
    scope("http", b"host:080", "/x"),  # a port with a leading zero is kept as written
    scope("http", b"host:99999", "/x"),  # out of range: Starlette falls back to server
    scope("http", b"[::1]:8000", "/x"),
    scope("http", b"bad host", "/x"),
    scope("http", None, "/x"),
    scope("http", None, "//x", server=None),
    scope("ws", b"host", "/x"),
    scope("http", b"host", "/a?b#c\\d"),
    scope("http", b"host", "/caf\u00e9/\u2603"),
    scope("http", b"host", ""),
])
def test_same_url_as_starlette(s: dict[str, Any]) -> None:
    assert request_url(Request(s)) == starlette_url(s)


def test_same_url_as_starlette_for_random_scopes() -> None:
    rng = random.Random(808)
    names = ["localhost", "127.0.0.1", "Pay.Example.com", "a-b.c", "x_y", "h%41", "[::1]",
             "[fe80::1%25eth0]", "[v1.x]", "", "ho st", "ex.com.", "1.2.3.4"]
    ports = ["", ":80", ":8080", ":0", ":65535", ":65536", ":007", ":123456", ":", ":x"]
    paths = ["/", "/paywall/v1/quote", "//double", "/a b", "/q?x", "/h#f", "/b\\s", "",
             "rel", "/%41", "/\u00e9"]
    for _ in range(2000):
        host = None if rng.random() < 0.1 else \
            (rng.choice(names) + rng.choice(ports)).encode("latin-1")
        s = scope(rng.choice(["http", "https", "ws", "wss", None]), host,
                  rng.choice(paths) + rng.choice(["", "/x", "/"]),
                  rng.choice([b"", b"a=1", b"q=%20&r", b"x=\xc3\xa9"]),
                  rng.choice([("10.0.0.1", 80), ("10.0.0.1", 8080), ("::1", 443), None]))
        assert request_url(Request(s)) == starlette_url(s), s
