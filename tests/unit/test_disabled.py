"""A process's view of the shared disabled marks: its own writes at once, others' within recheck_s."""

from __future__ import annotations

import asyncio

from parjanya.resilience.disabled import MemoryDisabledDeployments, RecheckedDisabledDeployments


def test_the_view_rereads_the_shared_store_only_after_recheck_s() -> None:
    now = [0.0]
    shared = MemoryDisabledDeployments(ttl_s=600, clock=lambda: now[0])
    mine = RecheckedDisabledDeployments(shared, 1.0, clock=lambda: now[0])
    other = RecheckedDisabledDeployments(shared, 1.0, clock=lambda: now[0])

    async def scenario() -> None:
        assert await other.reason("d1") is None  # read and remembered for 1 s
        await mine.disable("d1", "401 from vendor")
        assert await mine.reason("d1") == "401 from vendor"  # its own mark: at once
        now[0] = 0.5
        assert await other.reason("d1") is None  # not re-read yet
        now[0] = 1.01
        assert await other.reason("d1") == "401 from vendor"
        assert await mine.clear("d1")
        assert await mine.reason("d1") is None

    asyncio.run(scenario())


def test_a_zero_recheck_reads_every_time() -> None:
    shared = MemoryDisabledDeployments()
    view = RecheckedDisabledDeployments(shared, 0.0)

    async def scenario() -> None:
        assert await view.reason("d1") is None
        await shared.disable("d1", "403")
        assert await view.reason("d1") == "403"

    asyncio.run(scenario())
