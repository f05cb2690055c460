"""The story map (store.story_map): search's in-memory copy of each post's story answers as the
`post_story` table does, and is read again whenever the stories changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from store.candidates import Reads
from store.db import Store
from store.search import search
from store.story_map import StoryMap
from store.table_map import MAX_ID

from .conftest import Archive, sync
from .test_stories import CUT, CUT_REWRITE, OTHER, story_of, write


def tables(rows: dict[int, int], posts: list[int]) -> sqlite3.Connection:
    """The two tables the map is read from, as the schema makes them."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE posts (rowid INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE post_story (rowid INTEGER PRIMARY KEY, story INTEGER NOT NULL, ts INTEGER)")
    conn.executemany("INSERT INTO posts (rowid) VALUES (?)", [(p,) for p in posts])
    conn.executemany("INSERT INTO post_story VALUES (?, ?, 0)", list(rows.items()))
    return conn


ids = st.integers(min_value=1, max_value=400)


@given(
    rows=st.dictionaries(ids, st.integers(min_value=1, max_value=60), max_size=60),
    posts=st.lists(ids, max_size=60),
    asked=st.lists(st.integers(min_value=-5, max_value=10**12), max_size=20),
    stories=st.lists(st.integers(min_value=-500, max_value=10**12), max_size=20),
)
def test_the_map_answers_as_the_table_does(rows, posts, asked, stories):
    conn = tables(rows, sorted(set(posts) | set(rows)))
    table, known = Reads(conn), Reads(conn, StoryMap())
    assert known._story_map() is not None  # (the map answers here, not the table)
    rowids = list(rows) + posts + asked
    assert known.story_ids(rowids) == table.story_ids(rowids)
    every = list(rows.values()) + stories + [-r for r in rowids]
    assert known.story_sizes(every) == table.story_sizes(every)
    assert known.stories(rowids) == table.stories(rowids)


def test_ids_too_large_for_an_array_are_read_from_the_table():
    conn = tables({5: 5, MAX_ID + 7: 5, 9: MAX_ID + 3}, [5, 9, MAX_ID + 7])
    known = Reads(conn, StoryMap())
    assert known._story_map() is None
    assert known.stories([5, 9, MAX_ID + 7, 11]) == {
        5: (5, 2),
        9: (MAX_ID + 3, 1),
        MAX_ID + 7: (5, 2),
        11: (-11, 1),
    }


async def test_the_map_is_read_once_and_again_after_this_store_writes_stories(store: Store, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-other", OTHER, "2024-05-01 10:10:00 +0800")
    await sync(store, archive)
    first = await story_of(store, "2024-05-01-cut")
    for _ in range(3):
        assert (await search(store, "存款准备金")).hits[0].post.reports == 1
    assert store._story_map.loads == 1
    await sync(store, archive)  # nothing changed: the map stays
    await search(store, "存款准备金")
    assert store._story_map.loads == 1

    # a rewrite joins the story: the next search reads the map again and counts two reports
    write(archive, "2024-05-01-cut-rewrite", CUT_REWRITE, "2024-05-01 10:40:00 +0800")
    await sync(store, archive)
    page = await search(store, "存款准备金")
    assert [(h.post.story, h.post.reports) for h in page.hits] == [(first, 2)]
    assert page.total == 1
    assert store._story_map.loads == 2

    # the first report is deleted: one report again
    (archive.posts / "2024-05-01-cut.md").unlink()
    await sync(store, archive)
    page = await search(store, "存款准备金")
    assert [(h.post.id, h.post.reports) for h in page.hits] == [("2024-05-01-cut-rewrite", 1)]


async def test_another_connection_s_change_is_seen(tmp_path: Path, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-other", OTHER, "2024-05-01 10:10:00 +0800")
    path = tmp_path / "db.sqlite3"
    async with await Store.open(path) as store:
        await sync(store, archive)
        cut = await store.get_post("2024-05-01-cut")
        other = await store.get_post("2024-05-01-other")
        assert cut and other
        assert (await store.stories_of([other.rowid]))[other.rowid][1] == 1
        # another process (a sync from the command line) puts both posts in one story
        with sqlite3.connect(path) as conn:
            conn.execute(
                "UPDATE post_story SET story=(SELECT story FROM post_story WHERE rowid=?)", (cut.rowid,)
            )
        story = await story_of(store, "2024-05-01-cut")
        assert await store.stories_of([cut.rowid, other.rowid]) == {
            cut.rowid: (story, 2),
            other.rowid: (story, 2),
        }


async def test_inside_a_transaction_the_table_is_read(store: Store, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-other", OTHER, "2024-05-01 10:10:00 +0800")
    await sync(store, archive)
    cut = await store.get_post("2024-05-01-cut")
    assert cut
    before = await store.stories_of([cut.rowid])
    loads = store._story_map.loads
    # a write this connection has not committed (a sync's batch between two statements)
    await store.conn.execute("BEGIN IMMEDIATE")
    await store.conn.execute("UPDATE post_story SET story=story+1000")
    store._stories_written()
    assert await store.stories_of([cut.rowid]) == {cut.rowid: (before[cut.rowid][0] + 1000, 1)}
    assert store._story_map.loads == loads  # not read from an uncommitted state
    await store.conn.execute("ROLLBACK")
    assert await store.stories_of([cut.rowid]) == before
    assert store._story_map.loads == loads + 1
