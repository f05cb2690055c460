"""What story grouping costs a full sync: the same archive synced into fresh databases with grouping on
(STORY_WINDOW_HOURS=48) and off (0), alternately, in one run; plus one incremental sync of a few new
posts with grouping on. With grouping off a sync still writes every post's story row; `--before DIR`
(a checkout of a version without stories, e.g. `git worktree add /tmp/before 488bdde`) also times that
version's full sync in each round: the cost of everything stories added.

    python benchmarks/gen_real.py /tmp/arch --posts 100000 --shape finews
    python benchmarks/bench_stories.py /tmp/arch --rounds 2 [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
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


_BEFORE = """
import asyncio, sys, time
from store.db import Store
from store.jekyll import open_archive
from store.sync import sync_archive

async def main():
    async with await Store.open(sys.argv[2]) as store:
        started = time.perf_counter()
        await sync_archive(store, open_archive(sys.argv[1]))
        print(time.perf_counter() - started)

if __name__ == "__main__":
    asyncio.run(main())
"""


def full_sync_before(src: Path, archive: Path, db: Path) -> float:
    """A full sync by the version checked out at `src`, in a process of its own."""
    script = db.with_suffix(".py")
    script.write_text(_BEFORE, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), str(archive), str(db)],
        cwd=src,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


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
    p.add_argument("--before", type=Path, help="a checkout of a version without stories, timed too")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stories-"))
    try:
        times: dict[int, list[float]] = {48: [], 0: []}
        before: list[float] = []
        for r in range(args.rounds):
            for hours in (48, 0) if r % 2 == 0 else (0, 48):
                db = work / f"r{r}-{hours}.sqlite3"
                seconds, stories = await full_sync(args.archive, db, hours)
                times[hours].append(seconds)
                print(
                    f"round {r + 1}: window {hours:2d} h: full sync {seconds:.1f} s, {stories:,} stories",
                    flush=True,
                )
            if args.before:
                before.append(
                    full_sync_before(args.before.resolve(), args.archive, work / f"r{r}-before.sqlite3")
                )
                print(f"round {r + 1}: the version without stories: full sync {before[-1]:.1f} s", flush=True)
        on, off = min(times[48]), min(times[0])
        print(
            f"full sync, best of {args.rounds}: grouping on {on:.1f} s, off {off:.1f} s: {(on / off - 1) * 100:+.1f}%"
        )
        if before:
            base = min(before)
            print(f"  the version without stories: {base:.1f} s: grouping on {(on / base - 1) * 100:+.1f}%")
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
