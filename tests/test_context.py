import asyncio
import threading
import time

import costkit
from costkit import propagate


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
    inside, release = threading.Event(), threading.Event()

    def sets_its_own():  # another thread's tags never show in this one (nor ours in it)
        seen["other_before"] = costkit.current_tags().tenant
        with costkit.tags(tenant="other"):
            seen["other"] = costkit.current_tags().tenant
            inside.set()
            release.wait(5)

    def plain():
        seen["plain"] = costkit.current_tags().tenant

    def carried():
        seen["carried"] = costkit.current_tags().tenant

    with costkit.tags(tenant="acme"):
        other = threading.Thread(target=sets_its_own)
        other.start()
        assert inside.wait(5)
        seen["main"] = costkit.current_tags().tenant  # while the other thread is inside its own block
        for target in (plain, propagate(carried)):  # started inside the block
            t = threading.Thread(target=target)
            t.start()
            t.join()
    release.set()
    other.join()
    assert seen == {"other_before": None, "other": "other", "main": "acme", "plain": None, "carried": "acme"}


def test_propagate_runs_each_call_in_a_fresh_copy_across_many_workers():
    """The reported failure: one copied context reused by two workers raised 'cannot enter context'."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        with costkit.tags(user=f"u{i}"):  # a call may set tags of its own: they stay in its copy
            time.sleep(0.001)
            return costkit.current_tags().tenant, costkit.current_tags().user

    with costkit.tags(tenant="acme"):
        task = costkit.propagate(work)
    with ThreadPoolExecutor(max_workers=16) as pool:
        out = list(pool.map(task, range(200)))
    assert out == [("acme", f"u{i}") for i in range(200)]
    assert costkit.current_tags().tenant is None
