"""Lifecycle: resources close last-in first-out, and one bad closer stops none of the rest."""

from __future__ import annotations

import asyncio

from cedros_pay.lifecycle import Lifecycle


async def test_closes_in_reverse_order_of_opening() -> None:
    closed: list[str] = []
    lc = Lifecycle()
    for name in ("store", "rpc", "workers"):
        async def close(name: str = name) -> None:
            closed.append(name)
        lc.push(name, close)
    await lc.close()
    assert closed == ["workers", "rpc", "store"]
    assert lc.names == []


async def test_failing_and_hanging_closers_do_not_block_the_rest() -> None:
    closed: list[str] = []
    lc = Lifecycle()

    async def ok() -> None:
        closed.append("store")

    async def hangs() -> None:
        await asyncio.sleep(60)

    async def fails() -> None:
        raise RuntimeError("boom")

    lc.push("store", ok)
    lc.push("hangs", hangs)
    lc.push("fails", fails)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await lc.close(budget=0.3)
    assert closed == ["store"]
    assert loop.time() - started < 5
