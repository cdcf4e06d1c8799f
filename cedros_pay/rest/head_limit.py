"""uvicorn's httptools protocol with a cap on each request's head (request line + headers).

uvicorn bounds a request head only under h11 (`h11_max_incomplete_event_size`). Under
httptools, which `serve` uses, the parser buffers a header of any size (1 MB was measured)
before the app sees it. This protocol answers 431 `invalid_field` and closes the
connection once a head passes MAX_HEAD_BYTES. While the head is still incomplete, the
count runs over the reads that carry it, so memory stays within the cap plus one read.
When the head completes, it is measured exactly: the request target, names and values.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cedros_pay.core.errors import CedrosError, ErrorCode

# Room for every header a valid request may carry at its documented maximum: X-PAYMENT
# and PAYMENT-SIGNATURE 16 KiB each (x402/http.py), a tenant JWT 4 KiB, and the rest.
MAX_HEAD_BYTES = 64 * 1024
_LINE_OVERHEAD = 4  # ": " and CRLF per header


class _HeadTooLarge(Exception):
    """Raised in the parser's callback; uvicorn turns parser errors into one answer."""


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=...)`: HTTP/1.1 as uvicorn serves it, heads capped (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the bytes being read belong to a request head
        self._head_bytes = 0  # read so far of the current, incomplete head
        self._heads = 0  # heads completed on this connection
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        heads = self._heads
        super().data_received(data)
        if self._too_large or self.transport.is_closing():
            return
        if self._heads != heads:  # a head ended in this read: a next one starts afresh
            self._head_bytes = 0
        elif self._in_head:  # the whole read was head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + _LINE_OVERHEAD
                                   for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge
        self._in_head = False
        self._heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # the parser error was ours
            self._refuse()
            return
        super().send_400_response(msg)

    def _refuse(self) -> None:
        self._too_large = True
        error = CedrosError(ErrorCode.INVALID_FIELD,
                            f"request headers exceed {MAX_HEAD_BYTES} bytes",
                            {"field": "headers"})
        body = orjson.dumps(error.to_envelope())
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()
