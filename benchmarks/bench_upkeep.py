"""Upkeep of an indexed archive, with how long the event loop (the bot's replies) is held at a time:
- a full sync of the archive into a fresh database;
- an index rebuild (what an upgrade that changes the index format triggers at the next sync);
- a sync after many posts were edited (their old index entries are deleted with their old texts).

    python benchmarks/gen_real.py /tmp/arch --posts 100000 --shape finews
    python benchmarks/bench_upkeep.py /tmp/arch [--edit 6000]

The archive is copied (the edits are made to the copy); the event loop is sampled by a task that
sleeps 20 ms at a time: a longer gap is time the loop was held.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_store import cpu_check, rss_mb  # noqa: E402

from store.db import Store  # noqa: E402
from store.jekyll import open_archive  # noqa: E402
from store.sync import SyncResult, sync_archive  # noqa: E402

TICK = 0.02


async def timed(what: str, work: Awaitable[SyncResult | int]) -> SyncResult | int:
    """Run `work`, printing its time and the longest the event loop was held meanwhile."""
    held = 0.0

    async def ticker() -> None:
        nonlocal held
        while True:
            t = time.perf_counter()
            await asyncio.sleep(TICK)
            held = max(held, time.perf_counter() - t - TICK)

    sampler = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        result = await work
    finally:
        sampler.cancel()
    counts = (
        f"   (added {result.added}, updated {result.updated}, unchanged {result.unchanged})"
        if isinstance(result, SyncResult)
        else f"   ({result} steps)"
    )
    print(
        f"{what:40s} {time.perf_counter() - started:7.1f} s   event loop held at most {held * 1000:5.0f} ms"
        + counts
    )
    return result


async def run(archive: Path, db: Path, edit: int) -> None:
    cfg = open_archive(archive)
    # as the bot starts: the segmenter loaded beforehand (its first load holds the event loop ~90 ms)
    from store.search import warm_up

    await asyncio.to_thread(warm_up)
    async with await Store.open(db) as store:
        # as the bot runs them: syncs leave a bulk load's index merge to merge_index
        await timed("full sync", sync_archive(store, cfg, merge=False))
        await timed("its index merge (merge_index)", store.merge_index())
        await store.set_meta("index_format", "an older index format")
        await timed("index rebuild (+ a sync, nothing new)", sync_archive(store, cfg, merge=False))
        await timed("its index merge (merge_index)", store.merge_index())
        files = sorted((archive / "_posts").rglob("*.md"))[:edit]
        edited = time.time() - 5  # (edited before the sync: a file changed in its last 2 s is waited for)
        for path in files:
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n\n补充一句更新的内容。\n")
            os.utime(path, (edited, edited))
        await timed(f"sync of {len(files)} edited posts", sync_archive(store, cfg, merge=False))
        await timed("its index merge (merge_index)", store.merge_index())
    print(f"peak RSS of this process: {rss_mb()[0]:.0f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive", type=Path, help="an archive folder (benchmarks/gen_real.py makes one)")
    p.add_argument("--edit", type=int, default=6000, help="posts to edit for the last step")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsbot-upkeep-", ignore_cleanup_errors=True) as tmp:
        copy = Path(tmp) / "archive"
        shutil.copytree(a.archive, copy)
        print(f"speed check {cpu_check():.2f} s (quiet VM: ~0.5 s)")
        asyncio.run(run(copy, Path(tmp) / "bench.sqlite3", a.edit))


if __name__ == "__main__":
    main()
