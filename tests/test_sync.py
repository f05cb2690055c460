"""Incremental sync: add, edit, delete, rename, unchanged, broken posts, nested folders."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from store import jekyll as jekyll_module
from store import sync as sync_module
from store.db import Store
from store.jekyll import open_archive
from store.search import search
from store.sync import sync_archive

from .conftest import sync


def counts(r):
    return (r.added, r.updated, r.deleted, r.unchanged, r.skipped)


async def titles(store, q):
    return [h.post.title for h in (await search(store, q)).hits]


async def test_add_edit_delete_rename(store, archive):
    a = archive.post("2024-01-01-a.md", "第一篇", "苹果发布新品。")
    archive.post("2024-01-02-b.md", "第二篇", "香蕉价格上涨。")
    assert counts(await sync(store, archive)) == (2, 0, 0, 0, 0)
    assert counts(await sync(store, archive)) == (0, 0, 0, 2, 0)

    archive.post("2024-01-01-a.md", "第一篇改", "橙子发布新品。")
    archive.touch(a)
    assert counts(await sync(store, archive)) == (0, 1, 0, 1, 0)
    assert await titles(store, "橙子") == ["第一篇改"]
    assert await titles(store, "苹果") == []

    before = (await store.get_post("2024-01-02-b")).rowid
    (archive.posts / "2024-01-02-b.md").rename(archive.posts / "2024-01-03-b.md")
    r = await sync(store, archive)
    assert counts(r) == (0, 1, 0, 1, 0) and r.moved == 1  # renamed: the same post under its new name
    got = (await search(store, "香蕉")).hits
    assert [(h.post.id, h.post.rowid) for h in got] == [("2024-01-03-b", before)]

    (archive.posts / "2024-01-03-b.md").unlink()
    assert counts(await sync(store, archive)) == (0, 0, 1, 1, 0)
    assert await titles(store, "香蕉") == []
    assert await store.count_posts() == 1


async def index_tokens(store) -> set[tuple[int, str, str]]:
    """(rowid, column, token) of everything the main FTS index holds, read from the index itself."""
    await store.conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, posts_fts, instance)"
    )
    return {tuple(row) for row in await store._fetch("SELECT doc, col, term FROM temp.v")}


async def test_index_texts_reach_sqlite_as_utf8_bytes_and_are_indexed_as_their_text(store, archive):
    """The index texts cross from the sync's worker to SQLite as UTF-8 bytes (no decoding and encoding
    again in the writing process); FTS5 takes a blob's bytes as text: the index holds exactly the
    tokens of the texts, and an edit removes the old ones (the contentless index's `delete` is given
    the same bytes)."""
    from store.segment import analyse

    post = archive.post("2024-01-01-a.md", "银行 Café", "人民币汇率，今天上涨。", tags="[财经]")
    await sync(store, archive)
    rowid = (await store._fetch("SELECT rowid FROM posts"))[0][0]
    pair_chars = await store.pair_chars()

    def expected(title, body, tags):
        a = analyse(title, body, ["news"], tags, pair_chars)
        assert all(isinstance(text, bytes) for text in (*a.fts, *a.heads))
        return {(rowid, col, tok) for col, text in a.fts._asdict().items() for tok in text.decode().split()}

    assert await index_tokens(store) == expected("银行 Café", "人民币汇率，今天上涨。", ["财经"])
    archive.post("2024-01-01-a.md", "保险 Cafe", "黄金价格下跌。", tags="[市场]")
    archive.touch(post)
    await sync(store, archive)
    assert await index_tokens(store) == expected("保险 Cafe", "黄金价格下跌。", ["市场"])


async def test_touched_but_identical_file_is_unchanged_and_not_reparsed(store, archive):
    p = archive.post("2024-01-01-a.md", "标题", "正文。")
    await sync(store, archive)
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5 * 10**9))
    r = await sync(store, archive)
    assert counts(r) == (0, 0, 0, 1, 0)
    # its new mtime was recorded: the next sync does not even hash it
    states = await store.file_states()
    assert states["_posts/2024-01-01-a.md"][1] == p.stat().st_mtime_ns


async def test_broken_post_is_reported_and_others_indexed(store, archive):
    archive.post("2024-01-01-ok.md", "好的", "正常的文章。")
    archive.write("2024-01-02-bad.md", "---\ntitle: [oops\n---\nbody\n", dedent=False)
    archive.write("nodate.md", "---\ntitle: x\n---\nbody\n", dedent=False)
    archive.write("2024-01-03-bin.md", b"---\ntitle: \xff\n---\n")
    r = await sync(store, archive)
    assert counts(r) == (1, 0, 0, 0, 3)
    reasons = {e["path"]: e["reason"] for e in r.errors}
    assert set(reasons) == {"_posts/2024-01-02-bad.md", "_posts/nodate.md", "_posts/2024-01-03-bin.md"}
    assert "bad front matter" in reasons["_posts/2024-01-02-bad.md"]
    assert "no usable date" in reasons["_posts/nodate.md"]
    assert "not UTF-8" in reasons["_posts/2024-01-03-bin.md"]
    # reported again next time (still broken), never silently dropped
    r2 = await sync(store, archive)
    assert counts(r2) == (0, 0, 0, 1, 3)


async def test_post_broken_by_an_edit_keeps_its_last_good_version(store, archive):
    p = archive.post("2024-01-01-a.md", "好的", "正常的文章。")
    await sync(store, archive)
    p.write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    archive.touch(p)
    r = await sync(store, archive)
    assert counts(r) == (0, 0, 0, 0, 1)
    assert await titles(store, "正常") == ["好的"]


async def test_nested_folders_and_extensions(store, archive):
    archive.post("2024/05/2024-05-01-nested.md", "嵌套", "子目录里的文章。")
    archive.post("2024-05-02-page.html", "网页", "<p>HTML 文章。</p>")
    archive.post("2024-05-03-long.markdown", "长扩展名", "markdown 文章。")
    archive.write("notes.txt", "not a post")
    archive.write(".hidden.md", "---\ntitle: h\n---\nx\n", dedent=False)
    r = await sync(store, archive)
    assert counts(r) == (3, 0, 0, 0, 0)
    assert await titles(store, "子目录") == ["嵌套"]


async def test_sync_accepts_posts_folder_and_parallel_workers(tmp_path, archive):
    for i in range(30):
        archive.post(f"2024-03-{i % 28 + 1:02d}-p{i}.md", f"标题{i}", f"第{i}篇正文，关于市场。")
    async with await Store.open(tmp_path / "par.sqlite3") as store:
        import store.sync as sync_mod

        old = sync_mod.PARALLEL_THRESHOLD, sync_mod.CHUNK
        sync_mod.PARALLEL_THRESHOLD, sync_mod.CHUNK = 10, 7
        try:
            r = await sync_archive(store, open_archive(archive.posts), workers=2)
        finally:
            sync_mod.PARALLEL_THRESHOLD, sync_mod.CHUNK = old
        assert counts(r) == (30, 0, 0, 0, 0)
        assert len((await search(store, "市场", limit=100)).hits) == 30


def test_chunks_are_bounded_by_files_and_bytes(monkeypatch):
    import store.sync as sync_mod

    monkeypatch.setattr(sync_mod, "CHUNK", 4)
    monkeypatch.setattr(sync_mod, "CHUNK_BYTES", 1000)
    todo = [(f"p{i}", f"/a/p{i}", 0, size, None) for i, size in enumerate([100] * 6 + [600, 600, 2500, 10])]
    chunks = list(sync_mod._chunks(todo))
    assert [x for c in chunks for x in c] == todo  # every file once, in order
    assert [len(c) for c in chunks] == [4, 3, 1, 1, 1]  # 4 files; 200 + 600 bytes; 600; one over the bound
    assert all(sum(x[3] for x in c) <= 1000 or len(c) == 1 for c in chunks)


async def test_large_posts_are_written_in_batches_bounded_by_bytes(tmp_path, archive, monkeypatch):
    import store.sync as sync_mod
    from store.posts import PostsStore

    for i in range(40):
        body = f"第{i}篇正文，关于市场。" + ("长文。" * 400 if i % 2 else "")  # ~1.2 KB or short
        archive.post(f"2024-03-{i % 28 + 1:02d}-p{i:02d}.md", f"标题{i}", body)
    monkeypatch.setattr(sync_mod, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(sync_mod, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(sync_mod, "BATCH_BYTES", 6000)
    batches: list[int] = []
    write_batch = PostsStore.write_batch

    async def counted(self, posts, *args, **kwargs):
        batches.append(sum(p.size for p, _, _ in posts))
        return await write_batch(self, posts, *args, **kwargs)

    monkeypatch.setattr(PostsStore, "write_batch", counted)
    async with await Store.open(tmp_path / "bytes.sqlite3") as store:
        r = await sync_archive(store, open_archive(archive.posts), workers=2)
        assert counts(r) == (40, 0, 0, 0, 0)
        assert len((await search(store, "市场", limit=100)).hits) == 40
    largest = max(p.stat().st_size for p in archive.posts.rglob("*.md"))
    assert len(batches) > 5 and sum(batches) == sum(p.stat().st_size for p in archive.posts.rglob("*.md"))
    # a batch waits for at most twice BATCH_BYTES while the one before it is written, plus one chunk
    assert max(batches) <= 2 * 6000 + 3000 + largest


async def test_rowids_are_never_reused(store, archive):
    archive.post("2024-01-01-a.md", "甲", "一。")
    archive.post("2024-01-02-b.md", "乙", "二。")
    await sync(store, archive)
    before = {p: s[0] for p, s in (await store.file_states()).items()}
    (archive.posts / "2024-01-02-b.md").unlink()
    await sync(store, archive)
    archive.post("2024-01-03-c.md", "丙", "三。")
    r = await sync(store, archive)
    after = await store.file_states()
    assert after["_posts/2024-01-03-c.md"][0] > max(before.values())
    assert r.new_rowids == [after["_posts/2024-01-03-c.md"][0]]


async def test_latest_and_categories(store, archive):
    archive.post("2024-01-01-a.md", "甲", "一。", categories="Markets", date="2024-01-01")
    archive.post("2024-01-02-b.md", "乙", "二。", categories="markets tech", date="2024-01-02")
    archive.post("2024-01-03-c.md", "丙", "三。", categories="tech", date="2024-01-03")
    await sync(store, archive)
    assert [p.id for p in await store.latest(limit=2)] == ["2024-01-03-c", "2024-01-02-b"]
    assert [p.id for p in await store.latest(category_key="markets")] == ["2024-01-02-b", "2024-01-01-a"]
    rows, total = await store.terms("c")
    assert total == 2 and sorted(n for _, _, n in rows) == [2, 2]
    rows, total = await store.terms("c", "tec")
    assert total == 1 and rows[0][1:] == ("tech", 2)


async def test_state_cache_is_not_trusted_after_another_process_synced(tmp_path, archive):
    archive.post("2024-01-01-a.md", "甲", "一。")
    archive.post("2024-01-02-b.md", "乙", "二。")
    cfg = open_archive(archive.root)
    db = tmp_path / "shared.sqlite3"
    async with await Store.open(db) as a, await Store.open(db) as b:
        assert counts(await sync_archive(a, cfg, workers=0)) == (2, 0, 0, 0, 0)
        (archive.posts / "2024-01-01-a.md").unlink()
        assert counts(await sync_archive(b, cfg, workers=0)) == (0, 0, 1, 1, 0)
        archive.post("2024-01-03-c.md", "丙", "三。")
        assert counts(await sync_archive(a, cfg, workers=0)) == (1, 0, 0, 1, 0)
        assert counts(await sync_archive(a, cfg, workers=0)) == (0, 0, 0, 2, 0)
        assert await a.count_posts() == 2


async def test_index_rebuilt_when_segmenter_version_changes(store, archive):
    archive.post("2024-01-01-a.md", "苹果", "香蕉和橙子。")
    await sync(store, archive)
    await store.set_meta("index_format", "some older segmenter")
    assert not await store.index_is_current()
    r = await sync(store, archive)
    assert counts(r) == (0, 0, 0, 1, 0)
    assert await store.index_is_current()
    assert await titles(store, "香蕉") == ["苹果"]
    # the rebuilt index still deletes cleanly
    (archive.posts / "2024-01-01-a.md").unlink()
    await sync(store, archive)
    assert await titles(store, "香蕉") == []


async def test_writes_during_a_sync_take_turns_with_its_transactions(store, archive):
    import asyncio

    import store.sync as sync_mod

    for i in range(60):
        archive.post(f"2024-02-{i % 28 + 1:02d}-w{i}.md", f"标题{i}", f"正文{i}。")
    old = sync_mod.BATCH
    sync_mod.BATCH = 5  # many small transactions
    try:

        async def chatter():
            for i in range(40):
                await store.set_chat_language(i, "en")
                await store.save_query(7, f"query {i}")
                await store.enqueue([], 0)  # a transaction of its own (the sender's ledger writes)
                await asyncio.sleep(0)

        result, _ = await asyncio.gather(sync(store, archive), chatter())
    finally:
        sync_mod.BATCH = old
    assert result.added == 60
    assert await store.chat_language(39) == "en" and await store.saved_query(
        7, await store.save_query(7, "query 39")
    )
    assert await store.count_posts() == 60


async def test_two_processes_opening_a_new_database_at_once(tmp_path):
    import asyncio

    path = tmp_path / "race.sqlite3"
    a, b = await asyncio.gather(Store.open(path), Store.open(path))
    try:
        assert await a.get_meta("schema_version") == await b.get_meta("schema_version")
        assert await a.count_posts() == await b.count_posts() == 0
    finally:
        await a.close()
        await b.close()


async def test_a_newer_schema_is_refused(tmp_path):
    import pytest

    path = tmp_path / "future.sqlite3"
    async with await Store.open(path) as s:
        await s.set_meta("schema_version", "999")
    with pytest.raises(RuntimeError, match="newer than this newsbot"):
        await Store.open(path)


async def test_a_version_1_database_is_migrated_and_reindexed(tmp_path, archive):
    import sqlite3

    from store.schema import MIGRATIONS, SCHEMA_VERSION, _statements

    archive.post("2024-01-01-a.md", "迁移测试", "旧版本数据库里的文章。")
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as conn:  # a database as the first release left it
        for statement in _statements(MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    async with await Store.open(path) as s:
        assert await s.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert not await s.index_is_current()
        assert counts(await sync(s, archive)) == (1, 0, 0, 0, 0)
        assert await s.index_is_current()
        assert await titles(s, "迁移") == ["迁移测试"]


async def test_a_version_15_database_gets_its_titles_index_again_with_pairs(tmp_path, archive):
    import sqlite3

    # an older report with the words in its title, newer ones with them in the body only
    archive.post("2024-01-01-a.md", "谈谈房源价值", "正文没有那几个字。", date="2024-01-01 10:00:00 +0800")
    topics = {2: "天气晴朗股市上涨", 3: "足球比赛结束", 4: "新款手机发布", 5: "电影票房创新高"}
    for day, topic in topics.items():  # (other events: not one story with each other)
        when = f"2024-01-0{day} 10:00:00 +0800"
        archive.post(f"2024-01-0{day}-b.md", topic, f"{topic}。我们谈谈房源价值。", date=when)
    path = tmp_path / "v15.sqlite3"
    async with await Store.open(path) as s:
        assert counts(await sync(s, archive)) == (5, 0, 0, 0, 0)
    with sqlite3.connect(path) as conn:  # the titles' index as version 15 had it (two columns), emptied
        conn.execute("DROP TABLE heads_fts")
        conn.execute(
            "CREATE VIRTUAL TABLE heads_fts USING fts5(title, chars, content='', columnsize=0, tokenize='ascii')"
        )
        conn.execute("UPDATE meta SET value = '15' WHERE key = 'schema_version'")
    async with await Store.open(path) as s:
        assert await s.get_meta("schema_version") == "16"
        in_titles = await s._fetch(
            "SELECT rowid FROM heads_fts WHERE heads_fts MATCH 'pairs : \"房源 源价\"'"
        )
        assert len(in_titles) == 1  # filled again from the stored titles, pairs included
        for query in ("房源价", "谈谈", "房源 价值"):
            page = await search(s, query)
            assert [h.tier for h in page.hits][:1] == ["title"], query
            assert page.hits[0].post.title == "谈谈房源价值" and page.total == 5
        # the index needs no rebuild, and later edits delete and add the same title texts
        assert await s.index_is_current()
        archive.post("2024-01-01-a.md", "房源价值再谈", "正文。", date="2024-01-01 10:00:00 +0800")
        assert counts(await sync(s, archive)) == (0, 1, 0, 4, 0)
        assert "title" not in {h.tier for h in (await search(s, "谈谈")).hits}  # its old title left the index
        assert [h.post.title for h in (await search(s, "再谈")).hits] == ["房源价值再谈"]


async def test_category_counts_follow_changes_and_survive_unchanged_syncs(store, archive):
    archive.post("2024-01-01-a.md", "甲", "一。", categories="markets")
    archive.post("2024-01-02-b.md", "乙", "二。", categories="markets")
    await sync(store, archive)
    assert await store.term_count("c", "markets") == ("markets", 2)
    await sync(store, archive)  # nothing changed: counts are kept, not recomputed
    assert await store.term_count("c", "markets") == ("markets", 2)
    (archive.posts / "2024-01-02-b.md").unlink()
    await sync(store, archive)
    assert await store.term_count("c", "markets") == ("markets", 1)


def merging_modes(store, monkeypatch) -> list[bool]:
    """The FTS merging modes the store sets from now on, in order (True: a bulk load's)."""
    modes: list[bool] = []
    fts_merging = store._fts_merging

    async def recording(bulk: bool) -> None:
        modes.append(bulk)
        await fts_merging(bulk)

    monkeypatch.setattr(store, "_fts_merging", recording)
    return modes


async def test_a_bulk_load_is_merged_once_and_leaves_incremental_settings(store, archive, monkeypatch):
    monkeypatch.setattr(sync_module, "BULK_LOAD_AT", 4)
    modes = merging_modes(store, monkeypatch)
    for i in range(1, 7):
        archive.post(f"2024-01-0{i}-p{i}.md", f"水果{i}", f"第{i}篇：苹果和香蕉的价格。")
    assert counts(await sync(store, archive)) == (6, 0, 0, 0, 0)
    assert modes == [True, False]
    assert store._states_cache is None  # a bulk load keeps no file states in memory: the next sync reads them
    config = dict(await store.conn.execute_fetchall("SELECT k, v FROM posts_fts_config"))
    assert (config["automerge"], config["crisismerge"], config["hashsize"]) == (4, 16, 1 << 20)
    await store.conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('integrity-check')")
    assert len(await titles(store, "香蕉")) == 6

    modes.clear()
    archive.post("2024-01-09-p9.md", "水果9", "第9篇：橙子。")
    assert counts(await sync(store, archive)) == (1, 0, 0, 6, 0)
    assert modes == [False]  # a small sync writes with FTS5's incremental merging
    assert store._states_cache is not None and len(store._states_cache[1]) == 7  # … and remembers them
    assert await titles(store, "橙子") == ["水果9"]
    modes.clear()
    assert counts(await sync(store, archive)) == (0, 0, 0, 7, 0)
    assert modes == []  # nothing to write: the settings are not touched


async def test_a_new_database_uses_wal_and_8k_pages_and_an_old_one_keeps_its_pages(tmp_path):
    import sqlite3

    async with await Store.open(tmp_path / "new.sqlite3") as s:
        assert (await s.conn.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await s.conn.execute_fetchall("PRAGMA page_size"))[0][0] == 8192
        # freed pages are not all overwritten with zeros, whatever the SQLite build's default (2: FAST)
        assert (await s.conn.execute_fetchall("PRAGMA secure_delete"))[0][0] == 2
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE t (x)")
    async with await Store.open(old) as s:
        assert (await s.conn.execute_fetchall("PRAGMA page_size"))[0][0] == 4096
        assert await s.count_posts() == 0


def test_parsing_workers_run_below_the_main_process():
    """The sync's critical path is the main process writing the index: its workers yield to it."""
    import store.sync as sync_mod

    workers = sync_mod._Workers(1)
    try:
        theirs = workers.start().submit(os.nice, 0).result(timeout=60)
    finally:
        workers.close()
    assert theirs == min(os.nice(0) + sync_mod.WORKER_NICE, 19)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_story_grouper_process_only_uses_idle_cpu():
    import store.sync as sync_mod

    workers = sync_mod._Workers(1)
    try:
        policy = workers.grouping(48 * 3600, 1).submit(os.sched_getscheduler, 0).result(timeout=60)
    finally:
        workers.close()
    assert policy == os.SCHED_IDLE


async def test_a_large_index_rebuild_runs_in_the_workers_as_a_bulk_load(tmp_path, archive, monkeypatch):
    import store.posts as posts_module

    for i in range(40):
        cats = "markets" if i % 3 else "tech"
        archive.post(
            f"2024-03-{i % 28 + 1:02d}-r{i:02d}.md",
            f"标题{i}号",
            f"第{i}篇：苹果和香蕉的价格。",
            categories=cats,
        )
    queries = ["香蕉", "苹果 价格", "果和", "标题1", "cat:tech 价格", "篇"]
    monkeypatch.setattr(sync_module, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(posts_module, "BULK_LOAD_AT", 10)
    monkeypatch.setattr(posts_module, "REBUILD_CHUNK", 7)  # 6 chunks, up to 4 ahead
    async with await Store.open(tmp_path / "rebuild.sqlite3") as store:
        cfg = open_archive(archive.posts)
        await sync_archive(store, cfg, workers=2)
        before = {q: [h.post.id for h in (await search(store, q, limit=100)).hits] for q in queries}
        assert all(before.values())
        modes = merging_modes(store, monkeypatch)
        await store.set_meta("index_format", "some older segmenter")
        seen: list[int] = []
        r = await sync_archive(store, cfg, workers=2, progress=lambda done, total: seen.append(done))
        assert counts(r) == (0, 0, 0, 40, 0) and await store.index_is_current()
        assert modes[:2] == [True, False]  # the rebuild wrote as a bulk load
        assert seen[:6] == [7, 14, 21, 28, 35, 40]  # its progress, a chunk at a time (then the sync's)
        assert {q: [h.post.id for h in (await search(store, q, limit=100)).hits] for q in queries} == before
        config = dict(await store.conn.execute_fetchall("SELECT k, v FROM posts_fts_config"))
        assert (config["automerge"], config["crisismerge"], config["hashsize"]) == (4, 16, 1 << 20)
        await store.conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('integrity-check')")
        (archive.posts / "2024-03-01-r00.md").unlink()  # the rebuilt entries delete cleanly
        assert counts(await sync_archive(store, cfg, workers=2)) == (0, 0, 1, 39, 0)
        assert len((await search(store, "香蕉", limit=100)).hits) == 39


async def test_the_rebuild_hands_its_texts_to_the_workers(tmp_path, archive, monkeypatch):
    import store.posts as posts_module

    for i in range(30):
        archive.post(f"2024-04-{i % 28 + 1:02d}-w{i:02d}.md", f"标题{i}", f"正文{i}：橙子。")
    monkeypatch.setattr(sync_module, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(posts_module, "REBUILD_CHUNK", 4)
    async with await Store.open(tmp_path / "w.sqlite3") as store:
        cfg = open_archive(archive.posts)
        await sync_archive(store, cfg, workers=0)
        calls: list[int] = []
        rebuild = store.rebuild_index

        async def watching(progress=None, index_texts=None, merge=True):
            assert index_texts is not None  # the sync gives its worker processes the texts to make

            async def counted(rows):
                calls.append(len(rows))
                return await index_texts(rows)

            return await rebuild(progress, counted, merge)

        monkeypatch.setattr(store, "rebuild_index", watching)
        await store.set_meta("index_format", "some older segmenter")
        await sync_archive(store, cfg, workers=2)
        assert sum(calls) == 30 and max(calls) == 4
        assert len((await search(store, "橙子", limit=100)).hits) == 30


async def test_an_edited_posts_old_texts_are_made_off_the_event_loop(store, archive, monkeypatch):
    import threading

    import store.posts as posts_module

    archive.post("2024-05-01-e.md", "旧标题", "旧的正文：苹果。")
    await sync(store, archive)
    threads: list[int] = []
    index_entries = posts_module.index_entries

    def recording(rows, pair_chars):
        threads.append(threading.get_ident())
        return index_entries(rows, pair_chars)

    monkeypatch.setattr(posts_module, "index_entries", recording)
    archive.post("2024-05-01-e.md", "新标题", "新的正文：香蕉。")
    assert counts(await sync(store, archive)) == (0, 1, 0, 0, 0)
    assert threads and threading.get_ident() not in threads  # the bot's replies do not wait for them
    assert await titles(store, "苹果") == [] and await titles(store, "香蕉") == ["新标题"]
    assert await titles(store, "旧标题") == []


def _fresh(path, text: str) -> None:
    """Write `text` to `path` now (the Archive helper dates its files a minute back)."""
    path.write_text(text, encoding="utf-8")


HEAD = '---\ntitle: "写到一半的文章"\ndate: 2024-05-01 10:00:00 +0800\ncategories: news\n---\n\n'


async def test_a_post_still_being_written_is_left_for_the_next_sync(store, archive):
    # a scraper writes its front matter, fetches the body, writes it: the sync that looks in between must
    # not index (and so push) the post cut short
    path = archive.posts / "2024-05-01-half.md"
    _fresh(path, HEAD + "第一段。")
    task = asyncio.ensure_future(sync(store, archive))
    await asyncio.sleep(0.5)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("第二段，写完了。\n")
    result = await task
    assert (result.added, result.unsettled) == (0, 1)
    assert await store.count_posts() == 0
    os.utime(path, ns=(time.time_ns() - 10**10,) * 2)  # no longer written to
    result = await sync(store, archive)
    assert (result.added, result.unsettled) == (1, 0)
    (post,) = await store.latest(5)
    assert post.body.endswith("第二段，写完了。")


async def test_a_post_written_just_before_the_sync_is_read_once_it_has_settled(store, archive):
    path = archive.posts / "2024-05-01-new.md"
    _fresh(path, HEAD + "完整的正文。\n")
    written = time.time()
    result = await sync(store, archive)
    assert (result.added, result.unsettled) == (1, 0)
    assert time.time() - written >= sync_module.SETTLE_SECONDS - 0.05  # it waited for the file to settle
    # an edit of an indexed post is waited for too; a file dated in the future is read at once
    _fresh(path, HEAD + "改过的正文。\n")
    future = archive.posts / "2024-05-02-future-mtime.md"
    _fresh(future, HEAD.replace("写到一半的文章", "时钟超前") + "正文。\n")
    ahead = time.time_ns() + 3600 * 10**9
    os.utime(future, ns=(ahead, ahead))
    result = await sync(store, archive)
    assert (result.added, result.updated, result.unsettled) == (1, 1, 0)
    assert {p.body for p in await store.latest(5)} == {"改过的正文。", "正文。"}


async def test_a_large_syncs_workers_say_which_file_each_is_parsing(store, archive, monkeypatch):
    # (what the bot's watchdog names, and skips from the next start, when a large sync stalls on a file)
    monkeypatch.setattr(sync_module, "PARALLEL_THRESHOLD", 2)
    sentence = "央行宣布下调存款准备金率，市场流动性保持合理充裕。"
    archive.post("2024-05-01-big.md", "很长的文章", sentence * 20_000)  # ~1.5 MB: parsed for a while
    for i in range(5):
        archive.post(f"2024-05-0{i + 2}-small{i}.md", f"短文{i}", sentence)
    parsing = sync_module.Parsing()
    seen: set[tuple[str, int, int]] = set()
    task = asyncio.ensure_future(
        sync_archive(store, open_archive(archive.root), parsing=parsing, workers=2, settle=0)
    )
    while not task.done():
        seen.update(parsing.files())
        await asyncio.sleep(0.005)
    assert (await task).added == 6
    big = (archive.posts / "2024-05-01-big.md").stat()
    assert ("_posts/2024-05-01-big.md", big.st_mtime_ns, big.st_size) in seen
    assert parsing.files() == []  # (the workers are gone with the sync)


def _in(hours: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=hours)


def _dated(when: datetime) -> dict:
    return {"name": f"{when:%Y-%m-%d}-scheduled.md", "date": f"{when:%Y-%m-%d %H:%M:%S} +0000"}


async def test_a_post_dated_in_the_future_is_held_until_its_date_as_jekyll_does(store, archive, monkeypatch):
    # Jekyll (`future: false`, its default) does not publish it before then: its link would be a 404, and
    # it would sit at the top of /latest (a typo of next year for this one: for months)
    soon = _in(2)
    archive.post("2024-05-01-now.md", "今天的新闻", "正文。")
    archive.post(_dated(soon)["name"], "预定的文章", "定时发布的内容。", date=_dated(soon)["date"])
    result = await sync(store, archive)
    assert (result.added, result.held, result.errors) == (1, 1, [])
    assert result.to_json()["held"] == 1
    assert [p.title for p in await store.latest(5)] == ["今天的新闻"]
    assert await titles(store, "定时发布") == []
    result = await sync(store, archive)  # looked at again at every sync
    assert (result.added, result.unchanged, result.held, result.skipped) == (0, 1, 1, 0)
    monkeypatch.setattr(jekyll_module, "now_utc", lambda: soon + timedelta(minutes=1))
    result = await sync(store, archive)
    assert (result.added, result.held) == (1, 0)
    assert [p.title for p in await store.latest(5)] == ["预定的文章", "今天的新闻"]


async def test_an_indexed_post_dated_again_into_the_future_keeps_its_indexed_version_until_then(
    store, archive
):
    archive.post("2024-05-01-a.md", "原来的标题", "正文。")
    await sync(store, archive)
    archive.post("2024-05-01-a.md", "改期后的标题", "改过的正文。", date=_dated(_in(5))["date"])
    result = await sync(store, archive)
    assert (result.updated, result.held, result.skipped) == (0, 1, 0)
    assert [p.title for p in await store.latest(5)] == ["原来的标题"]


@pytest.mark.parametrize("value", ["true", "yes", "1", "'false'"])
async def test_future_true_in_the_config_publishes_future_posts_at_once(store, archive, value):
    # read as Jekyll (Ruby) reads it: anything but null or false is true ('false', a string, too)
    archive.config(f"url: https://news.example.org\ntimezone: Asia/Shanghai\nfuture: {value}\n")
    archive.post(_dated(_in(2))["name"], "预定的文章", "正文。", date=_dated(_in(2))["date"])
    archive.post("2024-05-01-typo.md", "来自未来", "正文。", date="9999-12-31 10:00:00")
    result = await sync(store, archive)
    assert (result.added, result.held) == (1, 0)
    # a date more than a year ahead is still taken for a typo, and reported
    assert [e["path"] for e in result.errors] == ["_posts/2024-05-01-typo.md"]


@pytest.mark.parametrize("value", ["false", "no", "null", "~"])
async def test_future_false_or_empty_in_the_config_holds_future_posts(store, archive, value):
    archive.config(f"url: https://news.example.org\ntimezone: Asia/Shanghai\nfuture: {value}\n")
    archive.post(_dated(_in(2))["name"], "预定的文章", "正文。", date=_dated(_in(2))["date"])
    result = await sync(store, archive)
    assert (result.added, result.held) == (0, 1)


async def test_a_post_dated_ahead_is_not_read_again_before_its_date_unless_it_changes(
    store, archive, monkeypatch
):
    # remembered with its date: an archive of many scheduled posts costs no parsing at every sync
    soon, far = _in(2), _in(24 * 400)
    held = archive.post(_dated(soon)["name"], "预定的文章", "正文。", date=_dated(soon)["date"])
    archive.post("2024-05-01-typo.md", "来自未来", "正文。", date=f"{far:%Y-%m-%d %H:%M:%S} +0000")
    await sync(store, archive)
    parsed: list[str] = []
    real = sync_module.parse_post

    def counting(cfg, rel, raw, *args, **kwargs):
        parsed.append(rel)
        return real(cfg, rel, raw, *args, **kwargs)

    monkeypatch.setattr(sync_module, "parse_post", counting)
    result = await sync(store, archive)
    assert (result.held, result.skipped, parsed) == (1, 1, [])
    assert "more than a year" in result.errors[0]["reason"]
    monkeypatch.setattr(jekyll_module, "now_utc", lambda: soon + timedelta(seconds=1))
    result = await sync(store, archive)
    assert (result.added, result.held, result.skipped) == (1, 0, 1)
    assert parsed == [f"_posts/{held.name}"]  # (the typo's time to look again is a year before its date)
    monkeypatch.setattr(jekyll_module, "now_utc", lambda: far - timedelta(days=300))
    result = await sync(store, archive)
    # within a year now: no longer taken for a typo, held as any post dated ahead
    assert (result.held, result.skipped) == (1, 0) and parsed[-1] == "_posts/2024-05-01-typo.md"


async def test_a_held_post_whose_date_is_corrected_is_indexed_at_once(store, archive):
    archive.post(_dated(_in(8))["name"], "时区写错的文章", "正文。", date=_dated(_in(8))["date"])
    assert (await sync(store, archive)).held == 1
    path = archive.post(_dated(_in(8))["name"], "时区写错的文章", "正文。", date=_dated(_in(-0.1))["date"])
    archive.touch(path)
    result = await sync(store, archive)
    assert (result.added, result.held) == (1, 0)


async def test_a_post_marked_unpublished_is_not_served_and_one_indexed_before_is_taken_out(store, archive):
    # `published: false` is the editors' decision, not a broken file: a withdrawn story must not stay
    # searchable (its page is gone from the site), and a draft is not an error to alert the admins about
    archive.post("2024-05-01-draft.md", "草稿", "未完成。", extra="published: false")
    path = archive.post("2024-05-02-a.md", "要撤回的文章", "撤回的内容。")
    result = await sync(store, archive)
    assert (result.added, result.unpublished, result.skipped, result.errors) == (1, 1, 0, [])
    archive.post("2024-05-02-a.md", "要撤回的文章", "撤回的内容。", extra="published: false")
    archive.touch(path)
    result = await sync(store, archive)
    assert (result.deleted, result.unpublished, result.skipped) == (1, 2, 0)
    assert await store.latest(5) == [] and (await search(store, "撤回")).total == 0
    result = await sync(store, archive)  # remembered: not read again until they change
    assert (result.deleted, result.unchanged, result.unpublished) == (0, 0, 2)
    archive.post("2024-05-02-a.md", "要撤回的文章", "改过后重新发布。")
    archive.touch(path)
    result = await sync(store, archive)
    assert (result.added, result.unpublished) == (1, 1)
    assert await titles(store, "重新发布") == ["要撤回的文章"]


async def test_held_posts_are_looked_at_again_when_the_archive_time_zone_changes(store, archive):
    # a date without offset is read in the archive's time zone: set right, the post is not ahead after all
    archive.config("url: https://news.example.org\ntimezone: UTC\n")
    ahead = _in(4)
    archive.post(f"{ahead:%Y-%m-%d}-naive.md", "没有时差的日期", "正文。", date=f"{ahead:%Y-%m-%d %H:%M:%S}")
    assert (await sync(store, archive)).held == 1
    archive.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
    result = await sync(store, archive)
    assert (result.added, result.held) == (1, 0)


async def test_a_changed_archive_time_zone_reads_every_post_again(store, archive):
    # the zone a date without offset is read in, and the one local dates and archive URLs are in
    archive.config("url: https://news.example.org\ntimezone: UTC\n")
    archive.post("2024-05-01-naive.md", "没有时差", "正文。", date="2024-05-01 20:00:00")
    archive.post("2024-05-02-offset.md", "有时差", "正文。", date="2024-05-02 02:00:00 +0800")
    await sync(store, archive)
    naive, offset = await store.get_post("2024-05-01-naive"), await store.get_post("2024-05-02-offset")
    assert "/2024/05/01/" in offset.archive_url
    archive.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
    result = await sync(store, archive)
    assert (result.updated, result.unchanged) == (2, 0)
    assert (await store.get_post("2024-05-01-naive")).ts == naive.ts - 8 * 3600
    assert "/2024/05/02/" in (await store.get_post("2024-05-02-offset")).archive_url
    result = await sync(store, archive)
    assert (result.updated, result.unchanged) == (0, 2)


async def test_a_changed_site_url_permalink_or_future_setting_applies_to_the_stored_posts(store, archive):
    archive.post("2024-05-01-a.md", "已收录", "正文。")
    soon = _in(2)
    archive.post(_dated(soon)["name"], "预定的文章", "正文。", date=_dated(soon)["date"])
    result = await sync(store, archive)
    assert (result.added, result.held) == (1, 1)
    archive.config(
        "url: https://archive.example.com\ntimezone: Asia/Shanghai\npermalink: /:year/:title/\nfuture: true\n"
    )
    result = await sync(store, archive)
    assert (result.updated, result.added, result.held) == (1, 1, 0)
    assert (await store.get_post("2024-05-01-a")).archive_url == "https://archive.example.com/2024/a/"
    result = await sync(store, archive)
    assert (result.updated, result.unchanged) == (0, 2)


async def test_a_new_reader_version_reads_every_post_again(store, archive, monkeypatch):
    archive.post("2024-05-01-a.md", "已收录", "正文。")
    await sync(store, archive)
    assert (await sync(store, archive)).unchanged == 1
    monkeypatch.setattr(jekyll_module, "READER_VERSION", jekyll_module.READER_VERSION + 1)
    assert (await sync(store, archive)).updated == 1


async def test_changed_front_matter_defaults_apply_to_the_stored_posts(store, archive):
    archive.write(
        "2024-05-01-a.md", '---\ntitle: "没有分类"\ndate: 2024-05-01\n---\n\n正文。\n', dedent=False
    )
    await sync(store, archive)
    assert (await store.get_post("2024-05-01-a")).categories == []
    archive.config(
        "url: https://news.example.org\ntimezone: Asia/Shanghai\n"
        "defaults: [{scope: {path: ''}, values: {categories: [archive]}}]\n"
    )
    assert (await sync(store, archive)).updated == 1
    assert (await store.get_post("2024-05-01-a")).categories == ["archive"]


async def test_a_post_moved_into_another_folder_stays_the_same_post(store, archive):
    """A scraper sorting posts into dated folders, or a site moving them under a category folder: the
    same bytes at a new path are the same post (rowid, first-seen sync, story), its folders read again."""
    path = archive.post("2024-05-01-a.md", "搬家的文章", "正文。", categories="markets")
    archive.post("2024-05-01-b.md", "留下的文章", "正文。")
    await sync(store, archive)
    before = await store.get_post("2024-05-01-a")
    seq = await store.current_seq()
    (archive.root / "news/_posts/2024").mkdir(parents=True)
    path.rename(archive.root / "news/_posts/2024/2024-05-01-a.md")
    result = await sync(store, archive)
    assert (result.added, result.updated, result.deleted, result.moved) == (0, 1, 0, 1)
    after = await store.get_post("2024-05-01-a")
    assert after.rowid == before.rowid and after.path == "news/_posts/2024/2024-05-01-a.md"
    assert after.categories == ["news", "markets"]  # its new folder is read
    assert await store.new_posts_since(seq) == []  # not new: nothing to push again


async def test_an_archive_reorganized_into_folders_is_not_a_mass_deletion(store, archive):
    from store.sync import MASS_DELETE_MIN

    paths = [
        archive.post(f"2024-05-{i + 1:02d}-p{i}.md", f"文章{i}", f"正文{i}。")
        for i in range(MASS_DELETE_MIN + 5)
    ]
    await sync(store, archive)
    rowids = {p.id: p.rowid for p in await store.latest(100)}
    for path in paths:
        (archive.posts / "2024" / "05").mkdir(parents=True, exist_ok=True)
        path.rename(archive.posts / "2024" / "05" / path.name)
    result = await sync(store, archive)
    assert (result.moved, result.deleted, result.added, result.refused_deletes) == (len(paths), 0, 0, 0)
    assert {p.id: p.rowid for p in await store.latest(100)} == rowids


async def test_two_copies_of_a_moved_file_are_one_post_moved_and_one_new(store, archive):
    path = archive.post("2024-05-01-a.md", "复制的文章", "正文。")
    await sync(store, archive)
    raw = path.read_bytes()
    path.unlink()
    for folder in ("a/_posts", "b/_posts"):
        archive.write("2024-05-01-a.md", raw, folder=folder)
    result = await sync(store, archive)
    assert (result.moved, result.added, result.deleted) == (1, 1, 0)
    assert sorted(r[0] for r in await store._fetch("SELECT path FROM posts")) == [
        "a/_posts/2024-05-01-a.md",  # (the first in path order keeps the post)
        "b/_posts/2024-05-01-a.md",
    ]


async def test_a_move_is_read_at_its_new_path_even_when_the_sync_that_found_it_stopped(
    store, archive, monkeypatch
):
    from store import sync as sync_module

    path = archive.post("2024-05-01-a.md", "搬家的文章", "正文。", categories="markets")
    await sync(store, archive)
    (archive.root / "news/_posts").mkdir(parents=True)
    path.rename(archive.root / "news/_posts/2024-05-01-a.md")  # (mv keeps the file's mtime)

    def stops(*args, **kwargs):
        raise RuntimeError("the sync stops here")

    monkeypatch.setattr(sync_module, "_chunks", stops)
    with pytest.raises(RuntimeError):
        await sync(store, archive)
    monkeypatch.undo()
    result = await sync(store, archive)
    assert (result.updated, result.added, result.deleted) == (1, 0, 0)
    assert (await store.get_post("2024-05-01-a")).categories == ["news", "markets"]


async def test_a_post_moved_and_edited_at_once_is_found_by_its_file_name_when_unambiguous(store, archive):
    a = archive.post("2024-05-01-a.md", "搬家又改", "正文。")
    b1 = archive.post("2024-05-02-b.md", "同名之一", "正文。", folder="en/_posts")
    b2 = archive.post("2024-05-02-b.md", "同名之二", "正文。", folder="zh/_posts")
    await sync(store, archive)
    rowid = (await store.get_post("2024-05-01-a")).rowid
    a.unlink()
    archive.post("2024-05-01-a.md", "搬家又改了标题", "正文改了。", folder="news/_posts")
    # two gone files of one name and one new file of it: which one moved is not known, so none did
    b1.unlink()
    b2.unlink()
    archive.post("2024-05-02-b.md", "同名新的", "正文。", folder="fr/_posts")
    result = await sync_archive(store, open_archive(archive.root), workers=1, allow_mass_delete=True)
    assert (result.moved, result.added, result.deleted) == (1, 1, 2)
    moved = await store.get_post("2024-05-01-a")
    assert (moved.rowid, moved.title, moved.path) == (rowid, "搬家又改了标题", "news/_posts/2024-05-01-a.md")


def test_among_thousands_of_files_of_one_size_each_moved_file_finds_its_own(tmp_path):
    """A regenerated archive can have thousands of files of one size gone and as many new: each new
    file is looked up by its size and content hash (not compared with every gone file of its size)."""
    import hashlib

    from store.sync import _match_moves

    (tmp_path / "_posts").mkdir()
    cfg = open_archive(tmp_path)
    gone, new, hashes = [], [], {}
    for i in range(3000):
        raw = f"---\ntitle: t\n---\n{i:05d}\n".encode()
        (tmp_path / "_posts" / f"{i:05d}.md").write_bytes(raw)
        gone.append(f"_posts/old/{i:05d}.md")
        new.append((f"_posts/{i:05d}.md", len(raw)))
        hashes[gone[-1]] = hashlib.blake2b(raw, digest_size=16).hexdigest()
    moves = _match_moves(cfg, new, {len(raw): gone}, hashes)
    assert sorted(moves) == [(old, rel) for old, (rel, _) in zip(gone, new, strict=True)]
