"""A bulk load's index merge left for later (sync_archive(merge=False), store.merge_index): the posts are
searchable at once, small writes meanwhile do not merge the load's segments, the merge goes in steps
and goes on after a stop, and a sync that merges (the CLI's) finishes what was left."""

from __future__ import annotations

import asyncio

import pytest

import store.sync as sync_module
from store.db import Store
from store.jekyll import open_archive
from store.search import search
from store.sync import sync_archive

from .conftest import Archive

QUERIES = ["橙子", "市场", "利润", "香蕉 市场", "报告", "季度", "号"]
WORDS = ["橙子", "香蕉", "市场", "报告", "季度", "利润"]


@pytest.fixture
def many_batches(monkeypatch):
    """40 posts make a bulk load written in batches of 5 to 10: one index segment each."""
    monkeypatch.setattr(sync_module, "BULK_LOAD_AT", 20)
    monkeypatch.setattr(sync_module, "BATCH", 5)
    monkeypatch.setattr(sync_module, "CHUNK", 5)


def write_posts(archive: Archive, n: int, start: int = 0) -> None:
    """Posts with some words in common and a few hundred other characters each (the index then spans
    many pages: a merge step of one page does not finish it)."""
    for i in range(start, start + n):
        words = "，".join(WORDS[(i + k) % len(WORDS)] for k in range(3))
        archive.post(
            f"2024-06-{i % 28 + 1:02d}-p{i:03d}.md",
            f"第{i}号{WORDS[i % len(WORDS)]}报告",
            f"正文{i}：{words}。" + "".join(chr(0x4E00 + (i * 37 + k * 11) % 3000) for k in range(300)),
            date=f"2024-06-{i % 28 + 1:02d} 10:{i % 60:02d}:00 +0800",
        )


async def results(store: Store) -> dict[str, list[str]]:
    return {q: [h.post.id for h in (await search(store, q, limit=100)).hits] for q in QUERIES}


async def fts_settings(store: Store) -> dict[str, int]:
    rows = await store._fetch("SELECT k, v FROM posts_fts_config WHERE k IN ('automerge', 'crisismerge')")
    return {k: int(v) for k, v in rows}


async def nothing_left_to_merge(store: Store, table: str = "posts_fts") -> bool:
    """Whether the index (or the titles' index, heads_fts) is one segment: FTS5's `optimize` then finds
    nothing to do."""
    before = store.conn.total_changes
    await store.conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    return store.conn.total_changes - before <= 1


async def test_an_unmerged_bulk_load_is_searchable_and_merges_in_steps(tmp_path, archive, many_batches):
    write_posts(archive, 40)
    cfg = open_archive(archive.root)
    async with await Store.open(tmp_path / "merged.sqlite3") as merged:
        await sync_archive(merged, cfg, workers=0)
        assert not await merged.merge_pending()
        assert await fts_settings(merged) == {"automerge": 4, "crisismerge": 16}
        assert await nothing_left_to_merge(merged, "heads_fts")
        expected = await results(merged)
    assert all(expected.values())
    async with await Store.open(tmp_path / "later.sqlite3") as store:
        r = await sync_archive(store, cfg, workers=0, merge=False)
        assert r.added == 40
        assert await store.merge_pending()
        assert await fts_settings(store) == {"automerge": 0, "crisismerge": 1000}
        assert await results(store) == expected  # searchable before the merge
        assert not await nothing_left_to_merge(store)  # (the probe merges: from here on a fresh store)
        assert not await nothing_left_to_merge(store, "heads_fts")  # the titles' too: left for later
    async with await Store.open(tmp_path / "steps.sqlite3") as store:
        await sync_archive(store, cfg, workers=0, merge=False)
        steps = await store.merge_index(pages=1)
        assert steps > 1
        assert not await store.merge_pending()
        assert await fts_settings(store) == {"automerge": 4, "crisismerge": 16}
        assert await nothing_left_to_merge(store)
        assert await nothing_left_to_merge(store, "heads_fts")  # the titles' index merged with it
        assert await results(store) == expected
        assert await store.merge_index() == 0


async def test_a_merge_stops_where_it_is_told_and_goes_on_later(tmp_path, archive, many_batches):
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        expected = await results(store)
        asked = []
        assert await store.merge_index(pages=1, until=lambda: asked.append(1) or len(asked) > 2) == 2
        assert await store.merge_pending()
        assert await store.merge_index(pages=1, until=lambda: True) == 0
        assert await store.merge_pending()
        assert await store.merge_index(pages=1) > 0
        assert not await store.merge_pending()
        assert await nothing_left_to_merge(store)
        assert await results(store) == expected


async def test_small_writes_while_a_merge_is_pending_leave_the_segments_to_it(
    tmp_path, archive, many_batches
):
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        write_posts(archive, 2, start=40)
        r = await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        assert r.added == 2
        # no crisis merge of the load's segments inside this small write: they still await merge_index
        assert await store.merge_pending()
        assert await fts_settings(store) == {"automerge": 0, "crisismerge": 1000}
        assert not await nothing_left_to_merge(store)
    async with await Store.open(tmp_path / "t.sqlite3") as store:
        write_posts(archive, 0)
        await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        archive.post("2024-07-01-late.md", "迟到的橙子报告", "正文：橙子。", date="2024-07-01")
        # a sync that merges (the command line's) finishes what an earlier one left
        r = await sync_archive(store, open_archive(archive.root), workers=0)
        assert r.added == 1
        assert not await store.merge_pending()
        assert await fts_settings(store) == {"automerge": 4, "crisismerge": 16}
        assert await nothing_left_to_merge(store)
        hits = (await search(store, "迟到", limit=10)).hits
        assert [h.post.title for h in hits] == ["迟到的橙子报告"]


async def test_a_merge_stopped_halfway_goes_on_later(tmp_path, archive, many_batches):
    write_posts(archive, 40)
    path = tmp_path / "m.sqlite3"
    async with await Store.open(path) as store:
        await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        expected = await results(store)
        steps = 0
        real_step = store._merge_step

        async def counted(pages: int) -> bool:
            nonlocal steps
            steps += 1
            return await real_step(pages)

        store._merge_step = counted  # type: ignore[method-assign]
        task = asyncio.ensure_future(store.merge_index(pages=1))
        while steps < 2:
            await asyncio.sleep(0)
        task.cancel()  # the bot stopping: the step in flight rolls back
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await store.merge_pending()
        assert await results(store) == expected
    async with await Store.open(path) as store:
        assert await store.merge_pending()
        assert await store.merge_index() >= 1
        assert not await store.merge_pending()
        assert await nothing_left_to_merge(store)
        assert await results(store) == expected


async def test_an_index_rebuild_can_leave_its_merge_for_later(tmp_path, archive, many_batches, monkeypatch):
    import store.posts as posts_module

    monkeypatch.setattr(posts_module, "BULK_LOAD_AT", 20)
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "r.sqlite3") as store:
        await sync_archive(store, open_archive(archive.root), workers=0)
        expected = await results(store)
        await store.set_meta("index_format", "some older segmenter")
        await sync_archive(store, open_archive(archive.root), workers=0, merge=False)
        assert await store.merge_pending()
        assert await results(store) == expected
        await store.merge_index()
        assert not await store.merge_pending()
        assert await results(store) == expected
