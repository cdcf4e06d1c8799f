"""Why a catalog source refuses a call or cannot be built."""

from __future__ import annotations

from cedros_pay.storage.open import UnsupportedBackend
from cedros_pay.storage.repos import StorageError


class ReadOnlySource(StorageError):
    """A write reached a source the API cannot change (the YAML file, disabled coupons).

    A `StorageError`, so resolvers report it as a configuration problem, not a crash.
    """


class UnsupportedSource(UnsupportedBackend):
    """The configured product or coupon source cannot be served by this build or store."""
