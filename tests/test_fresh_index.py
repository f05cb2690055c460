"""A sync that writes most stored posts again (every one, when the archive is read otherwise) fills a
fresh index beside the one searches read and puts it in its place at the end (PostsStore.
begin_fresh_index): it finds what the post-by-post way finds, searches meanwhile still find every post,
and a sync stopped halfway leaves nothing behind that the next one does not clean up."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store.posts as posts_module
import store.sync as sync_module
from store.db import Store
from store.jekyll import open_archive
from store.search import search
from store.sync import sync_archive
from store.sync_lock import SyncLock

from .conftest import Archive
from .test_merge import many_batches, nothing_left_to_merge, write_posts  # noqa: F401 (a fixture)

# 40 posts make a bulk load written in batches of 5 (test_merge.many_batches)
pytestmark = pytest.mark.usefixtures("many_batches")
FRESH_SHARE = sync_module.FRESH_SHARE  # (as shipped: tests patch it)

QUERIES = [
    "橙子",
    "市场",
    "利润",
    "香蕉 市场",
    "报告",
    "季度",
    "号",
    "改写",
    "新闻",
    "第35号",
    "第28号",
    "新来的",
]


async def results(store: Store) -> dict[str, list[str]]:
    return {q: [h.post.id for h in (await search(store, q, limit=100)).hits] for q in QUERIES}


async def index_tables(store: Store) -> set[str]:
    rows = await store._fetch("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE '%fts%'")
    return {r[0] for r in rows if not r[0].endswith(("_data", "_idx", "_config"))}


def count_remade(monkeypatch) -> list[int]:
    """Counts the stored posts whose index texts are made again from their stored text (what deleting
    their old entries needs)."""
    remade = [0]
    real = posts_module.index_entries

    def counting(rows, pair_chars):
        remade[0] += len(rows)
        return real(rows, pair_chars)

    monkeypatch.setattr(posts_module, "index_entries", counting)
    return remade


async def sync(store: Store, archive: Archive, **kwargs):
    return await sync_archive(store, open_archive(archive.root), workers=0, **kwargs)


async def test_a_sync_that_reads_every_post_again_fills_a_fresh_index(tmp_path, archive, monkeypatch):
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync(store, archive)
        expected = await results(store)
        assert sum(map(len, expected.values())) > 100
        remade = count_remade(monkeypatch)
        seen_during: list[dict[str, list[str]]] = []
        real_write = Store.write_batch

        async def write_and_search(self, *args, **kwargs):
            await real_write(self, *args, **kwargs)
            seen_during.append(await results(self))

        monkeypatch.setattr(Store, "write_batch", write_and_search)
        for zone in ("UTC", "Asia/Tokyo"):  # twice: the second replaces an index the first put in place
            archive.config(f"url: https://news.example.org\ntimezone: {zone}\n")
            result = await sync(store, archive)
            assert (result.updated, result.unchanged) == (40, 0)
            assert await results(store) == expected
            assert await index_tables(store) == {"posts_fts", "heads_fts"}
            assert await store.index_is_current()
        # no post's old index texts were made again, and searches found every post all along
        assert remade[0] == 0
        assert len(seen_during) >= 8 and all(seen == expected for seen in seen_during)
        await store.merge_index()
        assert await nothing_left_to_merge(store) and await nothing_left_to_merge(store, "heads_fts")
        await store.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")


async def both_ways(tmp_path, archive: Archive, monkeypatch, change) -> tuple[dict, dict]:
    """The search results after `change(archive)` and a sync, with a fresh index and post by post."""
    got = []
    began = count_fresh(monkeypatch)
    for share in (FRESH_SHARE, 2.0):  # (2.0: never a fresh index)
        monkeypatch.setattr(sync_module, "FRESH_SHARE", share)
        root = tmp_path / f"site-{share}"
        site = Archive(root)
        site.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
        write_posts(site, 40)
        async with await Store.open(tmp_path / f"{share}.sqlite3") as store:
            await sync(store, site)
            change(site)
            result = await sync(store, site)
            assert await index_tables(store) == {"posts_fts", "heads_fts"}
            got.append((await results(store), result.updated, result.deleted, len(result.errors)))
            assert len(began) == 1
    return got[0], got[1]


async def test_a_fresh_index_finds_what_writing_post_by_post_finds(tmp_path, archive, monkeypatch):
    def change(site: Archive) -> None:
        posts = sorted(site.posts.iterdir())
        for i, path in enumerate(posts[:30]):  # 30 of 40 written again, 24 of them changed
            if i % 5:
                site.post(
                    path.name,
                    f"改写{i}号新闻",
                    f"新的正文{i}：市场与香蕉。",
                    date="2024-07-01 10:00:00 +0800",
                )
            site.touch(path)
        for path in posts[30:33]:
            path.unlink()
        for path in posts[33:35]:  # broken now: their stored version stays, and is found
            path.write_text("---\ntitle: [坏\n---\n", encoding="utf-8")
            site.touch(path)
        site.post("2024-08-01-new.md", "新来的橙子报告", "全新的一篇。")
        broken.extend(path.stem.split("-")[-1] for path in posts[33:35])

    broken: list[str] = []
    fresh, by_post = await both_ways(tmp_path, archive, monkeypatch, change)
    assert fresh == by_post
    # 24 written again (6 touched are unchanged: their entries are made again for the fresh index, as
    # those of the 5 not touched and the 2 broken), 3 deleted, 2 broken
    assert fresh[1:] == (24, 3, 2)
    assert fresh[0]["改写"] and fresh[0]["新来的"] == ["2024-08-01-new"]
    assert all(any(name.endswith(b) for name in fresh[0]["报告"]) for b in broken)


async def test_a_sync_stopped_while_filling_a_fresh_index_is_tidied_by_the_next(
    tmp_path, archive, monkeypatch
):
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync(store, archive)
        expected = await results(store)
        archive.config("url: https://news.example.org\ntimezone: UTC\n")
        real_write, writes = Store.write_batch, [0]

        async def stop_after_three(self, *args, **kwargs):
            writes[0] += 1
            if writes[0] == 4:
                raise asyncio.CancelledError  # the bot stopping
            await real_write(self, *args, **kwargs)

        monkeypatch.setattr(Store, "write_batch", stop_after_three)
        with pytest.raises(asyncio.CancelledError):
            await sync(store, archive)
        monkeypatch.setattr(Store, "write_batch", real_write)
        # searches still read the old index, which still has every post; it is marked stale
        assert await results(store) == expected
        assert "posts_fts_fresh" in await index_tables(store)
        assert not await store.index_is_current()
        # this store writes the index searches read again (an edit, as the bot's next small sync)
        edited = sorted(archive.posts.iterdir())[0]
        archive.post(edited.name, "第0号橙子报告", "正文改了。", date="2024-06-01 10:00:00 +0800")
        archive.touch(edited)
        await sync(store, archive)
        assert await index_tables(store) == {"posts_fts", "heads_fts"}
        assert await store.index_is_current()
        got = await results(store)
        await store.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")
    async with await Store.open(tmp_path / "from-scratch.sqlite3") as store:
        await sync(store, archive)
        assert got == await results(store) != expected


async def test_an_index_left_behind_by_a_swap_is_dropped_by_the_next_sync(tmp_path, archive, monkeypatch):
    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync(store, archive)
        expected = await results(store)
        archive.config("url: https://news.example.org\ntimezone: UTC\n")
        real_drop = Store._drop_tables

        async def stop_before_dropping(self, suffix):
            if suffix == posts_module.OLD:
                raise asyncio.CancelledError  # stopped right after the swap
            await real_drop(self, suffix)

        monkeypatch.setattr(Store, "_drop_tables", stop_before_dropping)
        with pytest.raises(asyncio.CancelledError):
            await sync(store, archive)
        assert await index_tables(store) == {"posts_fts", "heads_fts", "posts_fts_old", "heads_fts_old"}
        assert await results(store) == expected  # the fresh index is in place
        monkeypatch.setattr(Store, "_drop_tables", real_drop)
        await sync(store, archive)
        assert await index_tables(store) == {"posts_fts", "heads_fts"}
        assert await results(store) == expected


def pause_writes_of(store: Store, monkeypatch, after: int) -> tuple[asyncio.Event, asyncio.Event]:
    """`store`'s sync stops before its write number `after` + 1 until `go` is set (`paused` says so)."""
    paused, go = asyncio.Event(), asyncio.Event()
    real_write, writes = Store.write_batch, [0]

    async def write(self, *args, **kwargs):
        if self is store:
            writes[0] += 1
            if writes[0] == after + 1:
                paused.set()
                await go.wait()
        await real_write(self, *args, **kwargs)

    monkeypatch.setattr(Store, "write_batch", write)
    return paused, go


def count_fresh(monkeypatch) -> list[Store]:
    began: list[Store] = []
    real_begin = Store.begin_fresh_index

    async def begin(self):
        began.append(self)
        await real_begin(self)

    monkeypatch.setattr(Store, "begin_fresh_index", begin)
    return began


async def test_syncs_in_two_processes_never_write_the_index_two_ways_at_once(
    tmp_path, archive, monkeypatch, caplog
):
    # (two stores in one process hold the lock file as two processes do: flock locks an open file)
    write_posts(archive, 40)
    path = tmp_path / "s.sqlite3"
    async with await Store.open(path) as first, await Store.open(path) as other:
        await sync(first, archive)
        began = count_fresh(monkeypatch)
        # a sync that reads every post again while another process syncs: post by post
        archive.config("url: https://news.example.org\ntimezone: UTC\n")
        syncing = SyncLock(str(path))  # (the lock another process's sync holds)
        await syncing.share()
        assert (await sync(first, archive)).updated == 40
        assert began == []
        syncing.release()

        # while a sync fills a fresh index, one in another process waits for it
        archive.config("url: https://news.example.org\ntimezone: Asia/Tokyo\n")
        paused, go = pause_writes_of(first, monkeypatch, after=2)
        running = asyncio.ensure_future(sync(first, archive))
        await paused.wait()
        assert began == [first]
        edited = sorted(archive.posts.iterdir())[0]
        archive.post(edited.name, "第0号橙子报告", "正文改了。", date="2024-06-01 10:00:00 +0800")
        archive.touch(edited)
        waiting = asyncio.ensure_future(sync(other, archive))
        await asyncio.sleep(1)
        assert not waiting.done()
        assert "waiting for another process's sync, which writes the index anew" in caplog.text
        go.set()
        assert (await running).updated == 40
        assert (await waiting).updated == 1
        got = await results(other)
        await other.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")
    async with await Store.open(tmp_path / "from-scratch.sqlite3") as store:
        await sync(store, archive)
        assert got == await results(store)


CHANGES = st.lists(st.sampled_from(["edit", "touch", "delete", "break", "same"]), min_size=12, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES, added=st.integers(0, 3), zone=st.booleans())
def test_any_mix_of_changes_indexes_the_same_with_a_fresh_index_and_post_by_post(
    tmp_path_factory, monkeypatch, changes, added, zone
):
    """For any mix of edited, touched, deleted and broken posts (a fresh index whenever at least half
    the stored posts are written again), the index finds what writing post by post finds."""
    monkeypatch.setattr(sync_module, "BULK_LOAD_AT", 4)
    monkeypatch.setattr(posts_module, "BULK_LOAD_AT", 4)
    monkeypatch.setattr(sync_module, "BATCH", 3)
    monkeypatch.setattr(sync_module, "CHUNK", 3)
    began = count_fresh(monkeypatch)
    tmp = tmp_path_factory.mktemp("mix")

    async def run(share: float) -> tuple:
        monkeypatch.setattr(sync_module, "FRESH_SHARE", share)
        site = Archive(tmp / f"site-{share}")
        site.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
        write_posts(site, len(changes))
        async with await Store.open(tmp / f"{share}.sqlite3") as store:
            await sync(store, site)
            if zone:
                site.config("url: https://news.example.org\ntimezone: UTC\n")
            for i, (change, path) in enumerate(zip(changes, sorted(site.posts.iterdir()), strict=True)):
                if change == "edit":
                    site.post(
                        path.name, f"改写{i}号新闻", f"新的正文{i}：市场。", date="2024-07-01 10:00:00 +0800"
                    )
                if change in ("edit", "touch", "break"):
                    if change == "break":
                        path.write_text("---\ntitle: [坏\n---\n", encoding="utf-8")
                    site.touch(path)
                elif change == "delete":
                    path.unlink()
            for i in range(added):
                site.post(f"2024-08-0{i + 1}-new{i}.md", f"新来的{i}号橙子报告", "全新的一篇。")
            result = await sync(store, site)
            await store.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")
            assert await index_tables(store) == {"posts_fts", "heads_fts"} and await store.index_is_current()
            return await results(store), result.updated, result.deleted, result.added

    began.clear()
    fresh = asyncio.run(run(FRESH_SHARE))
    went_fresh = bool(began)
    by_post = asyncio.run(run(2.0))
    assert fresh == by_post
    # (the stored files the sync reads again: the changed ones, or every one left when the zone changed)
    deleted = changes.count("delete")
    read_again = len(changes) - deleted if zone else sum(c in ("edit", "touch", "break") for c in changes)
    assert went_fresh == (read_again + added + deleted >= 4 and read_again >= len(changes) / 2)


async def test_a_file_system_without_locks_syncs_post_by_post(tmp_path, archive, monkeypatch, caplog):
    import errno

    import store.sync_lock as sync_lock_module

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    write_posts(archive, 40)
    async with await Store.open(tmp_path / "s.sqlite3") as store:
        await sync(store, archive)
        expected = await results(store)
        began = count_fresh(monkeypatch)
        monkeypatch.setattr(sync_lock_module.fcntl, "flock", no_locks)
        archive.config("url: https://news.example.org\ntimezone: UTC\n")
        assert (await sync(store, archive)).updated == 40
        assert began == [] and await results(store) == expected
        assert caplog.text.count("No locks available): this sync writes post by post") == 1
        archive.config("url: https://news.example.org\ntimezone: Asia/Tokyo\n")
        assert (await sync(store, archive)).updated == 40  # (said once a process, not at every sync)
        assert caplog.text.count("No locks available): this sync writes post by post") == 1
