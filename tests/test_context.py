import asyncio
import threading

import costkit
from costkit._context import propagate


def test_nested_blocks_merge_and_restore():
    assert costkit.current_tags().as_dict() == {}
    with costkit.tags(tenant="acme", feature="faq"):
        with costkit.tags(feature="search", prompt_version="v2") as inner:
            assert inner.as_dict() == {"tenant": "acme", "feature": "search", "prompt_version": "v2"}
        assert costkit.current_tags().as_dict() == {"tenant": "acme", "feature": "faq"}
    assert costkit.current_tags().as_dict() == {}


def test_asyncio_tasks_keep_their_own_tags():
    async def one(tenant):
        with costkit.tags(tenant=tenant):
            await asyncio.sleep(0.01)
            return costkit.current_tags().tenant

    async def main():
        return await asyncio.gather(*(one(f"t{i}") for i in range(20)))

    assert asyncio.run(main()) == [f"t{i}" for i in range(20)]


def test_threads_are_isolated_and_propagate_carries_tags():
    seen = {}

    def plain():
        seen["plain"] = costkit.current_tags().tenant

    def carried():
        seen["carried"] = costkit.current_tags().tenant

    with costkit.tags(tenant="acme"):
        t1 = threading.Thread(target=plain)
        t2 = threading.Thread(target=propagate(carried))
    for t in (t1, t2):
        t.start()
        t.join()
    assert seen == {"plain": None, "carried": "acme"}
