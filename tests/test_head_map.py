"""The titles' map (store.head_map): search's in-memory copy of each post's folded title and labels
answers as the `post_heads` table does, is read again whenever posts were written, and ranking sees
every change at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from store.candidates import Reads
from store.db import Store
from store.head_map import HeadMap, hits_in_text
from store.search import search
from store.table_map import MAX_ID

from .conftest import Archive, sync


def heads_table(rows: dict[int, str]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE post_heads (rowid INTEGER PRIMARY KEY, rank_text TEXT NOT NULL)")
    conn.executemany("INSERT INTO post_heads VALUES (?, ?)", list(rows.items()))
    return conn


# any text SQLite can hold as it was written (no lone surrogates, which UTF-8 cannot encode)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@given(
    rows=st.dictionaries(st.integers(min_value=0, max_value=500), texts, max_size=40),
    asked=st.lists(st.integers(min_value=-5, max_value=10**12), max_size=20),
)
def test_the_map_answers_as_the_table_does(rows, asked):
    conn = heads_table(rows)
    table, known = Reads(conn), Reads(conn, heads=HeadMap())
    assert known._head_map() is not None  # (the map answers here, not the table)
    rowids = list(rows) + asked
    assert known.rank_texts(rowids) == table.rank_texts(rowids) == {r: rows[r] for r in rowids if r in rows}


# titles and labels as ranking texts hold them (a unit separator between), with the characters that
# could confuse finding terms in the map's one string: its own separator, a second unit separator, CJK
# and characters of four UTF-8 bytes
parts = st.text(st.sampled_from("ab汇率\x1e\x1f😀 "), max_size=8)
rank_texts = st.one_of(texts, st.builds(lambda title, labels: title + "\x1f" + labels, parts, parts), parts)


@given(
    rows=st.dictionaries(st.integers(min_value=0, max_value=300), rank_texts, max_size=30),
    asked=st.lists(st.integers(min_value=-5, max_value=10**12), max_size=10),
    terms=st.lists(st.one_of(parts, texts), max_size=4),
)
def test_the_map_finds_terms_as_each_post_s_title_and_labels_hold_them(rows, asked, terms):
    conn = heads_table(rows)
    table, known = Reads(conn), Reads(conn, heads=HeadMap())
    assert known._head_map() is not None and table._head_map() is None
    rowids = list(rows) + asked + list(rows)[:3]  # (some asked twice)
    expected = {r: hits for r in rowids if r in rows and any(hits := hits_in_text(rows[r], terms))}
    assert known.term_hits(rowids, terms) == table.term_hits(rowids, terms) == expected


def test_terms_found_in_titles_and_labels():
    rows = {1: "汇率上涨\x1f财经 汇率", 2: "油价\x1f汇率", 3: "汇率与利率", 5: "利率\x1f", 7: "a\x1fb\x1fc"}
    known = Reads(heads_table(rows), heads=HeadMap())
    assert known.term_hits([1, 2, 3, 4, 5, 7], ["汇率", "利率"]) == {
        1: (1, True),
        2: (0, True),
        3: (2, False),
        5: (1, False),
    }
    assert known.term_hits([7, 1], ["b\x1fc", "a\x1fb", "c"]) == {7: (0, True)}  # labels: "b\x1fc"
    assert known.term_hits([2], ["率\x1e", "价\x1f汇"]) == {}  # never across a separator
    assert known.term_hits([], ["汇率"]) == {} and known.term_hits([1], []) == {}


def test_an_empty_table_and_ids_too_large_for_an_array():
    assert Reads(heads_table({}), heads=HeadMap()).rank_texts([1, 2]) == {}
    known = Reads(heads_table({3: "a\x1fb", MAX_ID + 1: "c\x1f"}), heads=HeadMap())
    assert known._head_map() is None  # the table is read
    assert known.rank_texts([3, MAX_ID + 1, 4]) == {3: "a\x1fb", MAX_ID + 1: "c\x1f"}


def test_texts_too_large_for_memory_are_read_from_the_table(monkeypatch):
    import store.head_map

    rows = {1: "标题\x1f分类", 2: "title\x1fnews"}
    monkeypatch.setattr(store.head_map, "MAX_BYTES", len("标题\x1f分类".encode()))
    known = Reads(heads_table(rows), heads=HeadMap())
    assert known._head_map() is None
    assert known.rank_texts([1, 2, 3]) == rows


async def ranked(store: Store, query: str) -> list[tuple[str, str]]:
    return [(h.post.id, h.tier) for h in (await search(store, query)).hits]


HARBOUR = "Ships carrying Apple phones waited for berths."  # fixture posts written for these tests


def write_harbour(archive: Archive, title: str = "Harbour traffic slows") -> Path:
    """The older post, whose body mentions the word (and, retitled, its title too)."""
    path = archive.post("2024-05-01-old.md", title, HARBOUR, date="2024-05-01 10:00:00 +0800")
    Archive.touch(path)  # (a rewrite every sync sees)
    return path


def write_two(archive: Archive) -> Path:
    """Two posts that mention the word in their bodies; the older one's path."""
    archive.post(
        "2024-05-10-new.md",
        "Rain delays the harvest",
        "Apple growers in the north expect a late crop.",
        date="2024-05-10 10:00:00 +0800",
    )
    return write_harbour(archive)


async def test_ranking_sees_a_changed_title_at_once(store: Store, archive: Archive):
    # two posts mention the word in their bodies; the older one's title gets it in a later edit
    old = write_two(archive)
    await sync(store, archive)
    assert await ranked(store, "apple") == [("2024-05-10-new", "word"), ("2024-05-01-old", "word")]
    assert store._head_map.loads == 1
    await ranked(store, "apple")
    assert store._head_map.loads == 1  # nothing written: the map stays

    write_harbour(archive, "Apple harbour traffic slows")
    await sync(store, archive)
    assert await ranked(store, "apple") == [("2024-05-01-old", "title"), ("2024-05-10-new", "word")]
    assert store._head_map.loads == 2

    # a deleted post is gone from the map too (its rowid answers nothing)
    old.unlink()
    await sync(store, archive)
    assert await ranked(store, "apple") == [("2024-05-10-new", "word")]
    assert store._head_map.loads == 3


async def test_another_connection_s_sync_is_seen(tmp_path: Path, archive: Archive):
    path = tmp_path / "db.sqlite3"
    write_two(archive)
    async with await Store.open(path) as store:
        await sync(store, archive)
        assert (await ranked(store, "apple"))[0] == ("2024-05-10-new", "word")
        # a sync from the command line (another process: another connection) retitles the older post
        write_harbour(archive, "Apple harbour traffic slows")
        async with await Store.open(path) as other:
            await sync(other, archive)
        assert (await ranked(store, "apple"))[0] == ("2024-05-01-old", "title")


async def test_inside_a_transaction_the_table_is_read(store: Store, archive: Archive):
    write_harbour(archive)
    await sync(store, archive)
    post = await store.get_post("2024-05-01-old")
    assert post
    reads = lambda r: r.rank_texts([post.rowid])  # noqa: E731
    before = await store.read(reads)
    loads = store._head_map.loads
    await store.conn.execute("BEGIN IMMEDIATE")
    await store.conn.execute("UPDATE post_heads SET rank_text='apple\x1f' WHERE rowid=?", (post.rowid,))
    store._heads_written()
    assert await store.read(reads) == {post.rowid: "apple\x1f"}
    assert store._head_map.loads == loads  # not read from an uncommitted state
    await store.conn.execute("ROLLBACK")
    assert await store.read(reads) == before
    assert store._head_map.loads == loads + 1
