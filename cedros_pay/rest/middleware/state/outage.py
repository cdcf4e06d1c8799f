"""An outage of a shared-state backend (Redis) as the middleware see it.

While the backend is down, every request would otherwise pay a failed round trip (a
connect timeout, when the host is unreachable rather than refusing) and write a log
line. `Outage` logs a warning when the backend first fails and once when it answers
again, and between failures lets one request per `probe` seconds try the backend; the
others are told to skip it (rate limits fail open, idempotency refuses at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Outage:
    def __init__(self, log: logging.Logger, what: str, *, meanwhile: str = "",
                 probe: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._what = what
        self._meanwhile = f" ({meanwhile})" if meanwhile else ""  # said in the warning
        self._probe = probe
        self._clock = clock
        self._retry_at = 0.0
        self.down = False

    def skip(self) -> bool:
        """True while down and no probe is due: do not try the backend for this request."""
        if not self.down:
            return False
        now = self._clock()
        if now < self._retry_at:
            return True
        self._retry_at = now + self._probe  # this request is the probe
        return False

    def failed(self, exc: BaseException) -> None:
        if not self.down:  # a failed probe keeps the retry time `skip` set
            self.down = True
            self._retry_at = self._clock() + self._probe
            self._log.warning("%s unreachable%s: %s", self._what, self._meanwhile, exc,
                              extra={"error": repr(exc)})

    def ok(self) -> None:
        if self.down:
            self.down = False
            self._log.warning("%s reachable again", self._what)
