"""What story grouping costs a full sync: the same archive synced into fresh databases with grouping on
(STORY_WINDOW_HOURS=48) and off (0), alternately, in one run; plus one incremental sync of a few new
posts with grouping on.

    python benchmarks/gen_real.py /tmp/arch --posts 100000 --shape finews
    python benchmarks/bench_stories.py /tmp/arch --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.db import Store  # noqa: E402
from store.jekyll import open_archive  # noqa: E402
from store.sync import sync_archive  # noqa: E402


async def full_sync(archive: Path, db: Path, hours: int) -> tuple[float, int]:
    async with await Store.open(db) as store:
        started = time.perf_counter()
        await sync_archive(store, open_archive(archive, story_window_hours=hours))
        seconds = time.perf_counter() - started
        rows = await store._fetch("SELECT COUNT(DISTINCT story) FROM post_story")
        return seconds, int(rows[0][0])


async def incremental(archive: Path, db: Path, new: int) -> float:
    posts = sorted((archive / "_posts").rglob("*.md"))[-new:]
    extra = []
    for i, path in enumerate(posts):
        copy = path.with_name(f"{path.stem}-again{i}.md")
        copy.write_bytes(path.read_bytes())
        extra.append(copy)
    try:
        async with await Store.open(db) as store:
            started = time.perf_counter()
            result = await sync_archive(store, open_archive(archive))
            assert result.added == new, result.to_json()
            return time.perf_counter() - started
    finally:
        for copy in extra:
            copy.unlink()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive", type=Path)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stories-"))
    try:
        times: dict[int, list[float]] = {48: [], 0: []}
        for r in range(args.rounds):
            for hours in (48, 0) if r % 2 == 0 else (0, 48):
                db = work / f"r{r}-{hours}.sqlite3"
                seconds, stories = await full_sync(args.archive, db, hours)
                times[hours].append(seconds)
                print(
                    f"round {r + 1}: window {hours:2d} h: full sync {seconds:.1f} s, {stories:,} stories",
                    flush=True,
                )
        on, off = min(times[48]), min(times[0])
        print(
            f"full sync, best of {args.rounds}: grouping on {on:.1f} s, off {off:.1f} s: +{(on / off - 1) * 100:.1f}%"
        )
        db = work / "r0-48.sqlite3"
        for new in (1, 5):
            seconds = await incremental(args.archive, db, new)
            print(
                f"incremental sync of {new} new posts (copies: each joins a story): {seconds * 1000:.0f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
