"""A `newsbot sync` stopped at any moment, as operators and machines stop it: killed (SIGKILL, the OOM
killer), SIGTERM (`timeout`, a service manager, to the whole process group) or Ctrl-C. Its worker
processes go with it, it says so in one line, and the next sync ends where a sync never stopped does.

The sync runs as its own process (the CLI, with small batches written slowly so that it can be stopped
halfway, and the story grouper in a process of its own as for a large archive); the processes it
started are found in /proc."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from store.db import Store
from store.search import search

from .conftest import Archive
from .test_merge import write_posts

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

POSTS = 800  # over PARALLEL_THRESHOLD: parsed in worker processes
QUERIES = ["市场", "利润", "报告", "第7号", "号", "香蕉 市场", "正文12"]

SYNC = """
import asyncio, sys
import store.sync
from store.db import Store
store.sync.BATCH = 40  # twenty batches
store.sync.GROUP_APART_AT = 200  # the story grouper in a process of its own
store.sync.BULK_LOAD_AT = int(sys.argv[1])
write_batch = Store.write_batch

async def slowly(self, *args, **kwargs):  # each batch waits 50 ms first: time to stop it halfway
    await asyncio.sleep(0.05)
    return await write_batch(self, *args, **kwargs)

Store.write_batch = slowly
from bot.cli import main
sys.exit(main(sys.argv[2:]))
"""

# how far a sync has come: statements counting what it has written (see `halfway`)
FIRST_SYNC = "SELECT COUNT(*) FROM posts"
FRESH_INDEX = "SELECT COUNT(*) FROM posts_fts_fresh_data"  # (a sync that reads every post again)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie no one has reaped yet)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


async def gone(pids: list[int], seconds: float = 10) -> list[int]:
    """Those of `pids` still running after waiting up to `seconds` for them to exit."""
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


async def start_sync(archive: Archive, db: Path, bulk_at: int = 10**9) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SYNC,
        str(bulk_at),
        "sync",
        "--json",
        "--archive",
        str(archive.root),
        "--db",
        str(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # (its own process group, as a terminal or a service manager gives it)
    )


async def sync_to_the_end(archive: Archive, db: Path, bulk_at: int = 10**9) -> dict:
    proc = await start_sync(archive, db, bulk_at)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def halfway(
    proc: asyncio.subprocess.Process, db: Path, progress: str, at_least: int, processes: int = 4
) -> list[int]:
    """Wait until the sync has started its `processes` (multiprocessing's resource tracker, two parsing
    workers, the story grouper unless its posts are grouped already) and has written `at_least` of what
    `progress` counts; returns its processes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.returncode is None, (await asyncio.wait_for(proc.communicate(), 30))[1].decode()
        spawned = children(proc.pid)
        if len(spawned) >= processes and db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    (done,) = conn.execute(progress).fetchone()
            except sqlite3.Error:  # (not created yet)
                done = 0
            if done >= at_least:
                assert proc.returncode is None
                return children(proc.pid)
        await asyncio.sleep(0.02)
    raise AssertionError("the sync never got halfway")


async def results(db: Path) -> tuple[list, dict[str, list[str]]]:
    """The posts (as the archive gives them) and what searches find, of a synced database; checks its
    integrity on the way."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for table in ("posts_fts", "heads_fts"):
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
        posts = conn.execute("SELECT id, title, url, ts, categories FROM posts ORDER BY id").fetchall()
    async with await Store.open(db) as store:
        assert await store.index_is_current()
        found = {q: [h.post.id for h in (await search(store, q, limit=100)).hits] for q in QUERIES}
    return posts, found


@pytest.fixture
def posts(archive: Archive) -> Archive:
    write_posts(archive, POSTS)
    return archive


@pytest.mark.parametrize("bulk_at", [10**9, 300], ids=["post-by-post", "bulk-load"])
async def test_a_sync_killed_halfway_leaves_no_process_behind_and_the_next_one_finishes_it(
    tmp_path, posts, bulk_at
):
    await sync_to_the_end(posts, tmp_path / "ref.sqlite3", bulk_at)
    expected = await results(tmp_path / "ref.sqlite3")

    db = tmp_path / "killed.sqlite3"
    proc = await start_sync(posts, db, bulk_at)
    spawned = await halfway(proc, db, FIRST_SYNC, 80)
    proc.kill()  # SIGKILL, to the sync's own process only, as the OOM killer does
    await asyncio.wait_for(proc.wait(), 30)
    assert await gone(spawned) == []

    summary = await sync_to_the_end(posts, db, bulk_at)
    assert 0 < summary["added"] < POSTS and summary["added"] + summary["unchanged"] == POSTS
    assert await results(db) == expected


async def test_a_sync_reading_every_post_again_killed_halfway_is_finished_by_the_next(tmp_path, posts):
    # (a sync that writes most stored posts again as a bulk load fills a fresh index beside the old one)
    db = tmp_path / "killed.sqlite3"
    await sync_to_the_end(posts, db, bulk_at=300)
    posts.config("url: https://news.example.org\ntimezone: UTC\n")  # every post is read again
    await sync_to_the_end(posts, tmp_path / "ref.sqlite3", bulk_at=300)
    expected = await results(tmp_path / "ref.sqlite3")

    proc = await start_sync(posts, db, bulk_at=300)
    spawned = await halfway(proc, db, FRESH_INDEX, 10, processes=3)
    proc.kill()
    await asyncio.wait_for(proc.wait(), 30)
    assert await gone(spawned) == []

    await sync_to_the_end(posts, db, bulk_at=300)
    assert await results(db) == expected


@pytest.mark.parametrize(
    "stop, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"]
)
async def test_a_sync_stopped_by_its_process_group_says_so_in_one_line_and_stops_its_workers(
    tmp_path, posts, stop, code
):
    db = tmp_path / "stopped.sqlite3"
    proc = await start_sync(posts, db)
    spawned = await halfway(proc, db, FIRST_SYNC, 80)
    # to the whole process group, as a service manager stopping it and a terminal's Ctrl-C do
    os.killpg(proc.pid, stop)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == code
    assert "Traceback" not in err.decode() and "never retrieved" not in err.decode(), err.decode()
    lines = err.decode().splitlines()
    if stop == signal.SIGTERM:
        assert len(lines) == 1 and "stopped by SIGTERM" in lines[0], lines
    else:
        assert lines == []
    assert out == b""
    assert await gone(spawned) == []

    summary = await sync_to_the_end(posts, db)
    assert 0 < summary["added"] < POSTS
    await sync_to_the_end(posts, tmp_path / "ref.sqlite3")
    assert await results(db) == await results(tmp_path / "ref.sqlite3")
