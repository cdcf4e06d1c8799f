"""DataLoaders, made per request in `get_context` so caches never outlive a request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.resolvers.catalog import Catalog, ProductView


class ProductByIdLoader(DataLoader[str, ProductView]):
    """Active products with catalog prices, by id, in key order.

    A missing or inactive product comes back as its `product_not_found` error, which
    `load` raises for that key only. Keys are deduplicated and fetched concurrently, so a
    query naming a product many times (aliases, cart lines, coupon scopes) prices it once.
    """

    def __init__(self, catalog: Catalog, tenant: str) -> None:
        self._catalog = catalog
        self._tenant = tenant
        super().__init__(load_fn=self._load)

    async def _load(self, ids: Sequence[str]) -> list[ProductView | BaseException]:
        return await asyncio.gather(*(self._catalog.get(self._tenant, i) for i in ids),
                                    return_exceptions=True)

    async def load_found(self, ids: Sequence[str]) -> list[ProductView]:
        """The products that exist and are on sale, in order; the others are left out."""
        results = await asyncio.gather(*(self.load(i) for i in ids), return_exceptions=True)
        found: list[ProductView] = []
        for result in results:
            if isinstance(result, CedrosError) and result.code is ErrorCode.PRODUCT_NOT_FOUND:
                continue
            if isinstance(result, BaseException):
                raise result
            found.append(result)
        return found


@dataclass(frozen=True, slots=True)
class Loaders:
    product: ProductByIdLoader

    @classmethod
    def create(cls, catalog: Catalog, tenant: str) -> Loaders:
        return cls(product=ProductByIdLoader(catalog, tenant))
