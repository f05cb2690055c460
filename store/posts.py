"""Posts and their index: what a sync writes (posts, categories and tags, the FTS5 index), and the
plain reads of posts (by id, latest, categories)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .base import StoreBase, _bounded, _json_list, _locked, in_order
from .segment import HeadTexts, IndexTexts, analyse, index_format, title_head_texts
from .stories import OPENING_READ, Grouper, StoryKey, StoryWrites, fingerprint, take_writes

_FTS_DEFAULTS = {"automerge": 4, "crisismerge": 16, "hashsize": 1 << 20}
# A bulk load's settings (see PostsStore.set_bulk_load)
_FTS_BULK = {"automerge": 0, "crisismerge": 1000, "hashsize": 16 << 20}

# Posts written at once (a sync's changed files, an index rebuild's posts) that make a bulk load
# (`set_bulk_load`)
BULK_LOAD_AT = 5000
# A bulk load whose caller merges its index segments later (PostsStore.end_bulk_load) is marked with
# this meta key until PostsStore.merge_index is done; each merge step writes about this many index pages
# (100,000 finews-sized posts: ~50 steps of ~0.1 s, longest ~0.35 s; 500-page steps took ~20% longer in
# all).
MERGE_PENDING = "index_merge_pending"
MERGE_STEP_PAGES = 2000
# Rebuilding the index: stored posts are read and their texts made a chunk at a time, up to
# REBUILD_AHEAD chunks ahead of the one being written.
REBUILD_CHUNK = 100
REBUILD_AHEAD = 4
# The FTS tables a sync that writes most posts again fills beside the index searches read, and puts in
# its place at the end (PostsStore.begin_fresh_index)
FRESH = "_fresh"
OLD = "_old"  # the index a fresh one replaced, until it is dropped
FRESH_PENDING = "fresh_index_pending"  # meta key: a fresh index is being filled (the stored one is stale)
FTS_TABLES = ("posts_fts", "heads_fts")


def _fts_tables(fresh: bool) -> tuple[str, str]:
    """The posts' and titles' FTS tables: those searches read, or the fresh ones a sync fills."""
    return (FTS_TABLES[0] + FRESH, FTS_TABLES[1] + FRESH) if fresh else FTS_TABLES


IndexEntry = tuple[int, IndexTexts, HeadTexts, str]  # rowid, index texts, title texts, ranking text
IndexTextsFn = Callable[[list[tuple]], Awaitable[list[IndexEntry]]]


def _title_head_texts(titles: list[str]) -> list[HeadTexts]:
    return [title_head_texts(title) for title in titles]


def index_entries(rows: list[tuple], pair_chars: str) -> list[IndexEntry]:
    """The index entries of stored posts given as (rowid, title, body, categories JSON, tags JSON).
    Pure: a sync's worker processes run it when an index is rebuilt."""
    out = []
    for rowid, title, body, categories, tags in rows:
        a = analyse(title, body, json.loads(categories), json.loads(tags), pair_chars)
        out.append((rowid, a.fts, a.heads, a.rank_text))
    return out


class Failed(NamedTuple):
    """A file a sync did not index, remembered with the bytes it had then (mtime, size): the next syncs
    skip it until it changes, or, when `until` (a POSIX time) is set, until then (a post dated in the
    future). `kind`: "error", or what is not one: "held" (a post Jekyll does not publish yet,
    store.jekyll.PostHeld), "unpublished" (`published: false`)."""

    mtime_ns: int
    size: int
    reason: str
    until: int | None = None
    kind: str = "error"


# the file state (mtime) of a post moved to a new path and not read there yet (move_posts): any file's
# differs from it, so the post is read again whatever its hash
MOVED = -1

POST_COLUMNS = "rowid, id, path, title, date, ts, categories, tags, url, archive_url, summary, body"


@dataclass
class PostRow:
    rowid: int
    id: str
    path: str
    title: str
    date: str
    ts: int
    categories: list[str]
    tags: list[str]
    url: str | None
    archive_url: str
    summary: str
    body: str
    story: int | None = None  # set by the story reads (store.story_rows)
    reports: int = 1  # the story's number of reports

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> PostRow:
        r = list(row)
        r[6] = json.loads(r[6])
        r[7] = json.loads(r[7])
        return cls(*r)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "date": self.date,
            "categories": self.categories,
            "tags": self.tags,
            "url": self.url,
            "archive_url": self.archive_url,
            "summary": self.summary,
        } | ({"story": self.story} if self.story is not None else {})


class IndexedPost(NamedTuple):
    """A parsed post with its index texts, ready to write (built in sync workers; a tuple pickles
    faster than a dataclass on its way back to the main process)."""

    path: str
    id: str
    title: str
    date: str
    ts: int
    categories: list[str]
    tags: list[str]
    category_keys: list[str]
    tag_keys: list[str]
    url: str | None
    archive_url: str
    summary: str
    body: str
    mtime_ns: int
    size: int
    hash: str
    fts: IndexTexts
    heads: HeadTexts
    rank_text: str
    story_key: StoryKey | None = None  # what the post's story fingerprint is made of (store.stories)


class PostsStore(StoreBase):
    # --- sync support ------------------------------------------------------------------------

    async def file_states(self) -> dict[str, tuple[int, int, int]]:
        """path -> (rowid, mtime_ns, size) of every indexed post.

        A long-running process (the bot) keeps the result of its own last sync; it is reused while no
        other process has synced since (the sync sequence number is unchanged).
        """
        seq = await self.get_meta("sync_seq", "0")
        if self._states_cache is not None and self._states_cache[0] == seq:
            # the sync that asked reads it, and only updates it once its own work is committed
            states = self._states_cache[1]
            self._states_cache = None
            return states
        rows = await self._fetch("SELECT path, rowid, mtime_ns, size FROM posts")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    async def remember_file_states(self, states: dict[str, tuple[int, int, int]]) -> None:
        self._states_cache = (await self.get_meta("sync_seq", "0"), states)

    async def hashes(self, paths: Sequence[str]) -> dict[str, tuple[str, int]]:
        """path -> (content hash, first_seen) for the given indexed paths."""
        rows = await self._rows_in("SELECT path, hash, first_seen FROM posts WHERE path IN ({})", paths)
        return {r[0]: (r[1], r[2]) for r in rows}

    @_locked
    async def move_posts(self, moves: Sequence[tuple[int, str]]) -> None:
        """Give posts (rowid, new path) the path their file moved to: the same posts, their rowids,
        first-seen sync, deliveries and stories kept. Their file state is cleared (mtime MOVED), so a
        sync stopped before it read them again at their new paths reads them the next time."""
        async with self._transaction():
            await self.conn.executemany(
                "UPDATE posts SET path=?, mtime_ns=? WHERE rowid=?", [(p, MOVED, r) for r, p in moves]
            )
            await self.conn.executemany("DELETE FROM failed_files WHERE path=?", [(p,) for _, p in moves])

    @_locked
    async def begin_sync(self) -> int:
        """Start a sync: returns its sequence number (posts first indexed in it carry it)."""
        seq = int(await self.get_meta("sync_seq", "0") or 0) + 1
        await self._put_meta("sync_seq", str(seq))
        return seq

    async def next_rowid(self) -> int:
        """The rowid the next new post gets; rowids are never reused, even after a post is deleted."""
        rows = await self._fetch("SELECT COALESCE(MAX(rowid), 0) FROM posts")
        return max(int(await self.get_meta("next_rowid", "1") or 1), int(rows[0][0]) + 1)

    @_locked
    async def write_batch(
        self,
        posts: Sequence[tuple[IndexedPost, int, int]],
        touches: Iterable[tuple[int, int, int]] = (),
        deletes: Iterable[int] = (),
        next_rowid: int | None = None,
        stories: Sequence[StoryWrites] = (),
        stories_behind: bool | None = None,
    ) -> None:
        """In one transaction: delete `deletes` rowids, refresh (rowid, mtime_ns, size) of `touches`,
        write each (post, rowid, first_seen), replacing what that rowid held, and story changes (in
        order). `stories_behind` True records that posts written so far may lack their stories (a large
        sync groups in a process of its own, a batch behind: a sync that stops then leaves the stories
        stale, to be regrouped by the next one), False that they no longer do."""
        touches, deletes = list(touches), list(deletes)
        if posts or deletes:
            self._label_chars = None
        async with self._transaction():
            if next_rowid is not None:
                await self._put_meta("next_rowid", str(next_rowid))
            if posts or deletes:
                await self._put_meta("term_counts_stale", "1")
            rewritten = [rowid for _, rowid, _ in posts]
            if self._fresh is None:
                await self._unindex(deletes + rewritten)
            else:
                # the index searches read keeps the entries of the posts written again (it matches
                # them by their old texts until the fresh index takes its place); those of the deleted
                # posts leave whichever index holds them
                await self._unindex([r for r in deletes if r not in self._fresh])
                await self._unindex([r for r in deletes if r in self._fresh], fresh=True)
                await self._drop_rows(rewritten)
                self._fresh.update(rewritten)
            if touches:
                await self.conn.executemany(
                    "UPDATE posts SET mtime_ns=?, size=? WHERE rowid=?", [(m, s, r) for r, m, s in touches]
                )
            if posts:
                await self.conn.executemany(
                    "INSERT INTO posts (rowid, path, id, title, date, ts, categories, tags, url, archive_url,"
                    " summary, body, mtime_ns, size, hash, first_seen)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            rowid,
                            p.path,
                            p.id,
                            p.title,
                            p.date,
                            p.ts,
                            _json_list(p.categories),
                            _json_list(p.tags),
                            p.url,
                            p.archive_url,
                            p.summary,
                            p.body,
                            p.mtime_ns,
                            p.size,
                            p.hash,
                            first_seen,
                        )
                        for p, rowid, first_seen in posts
                    ],
                )
                terms = []
                for p, rowid, _ in posts:
                    terms += [
                        ("c", k, p.ts, rowid, n) for k, n in zip(p.category_keys, p.categories, strict=True)
                    ]
                    terms += [("t", k, p.ts, rowid, n) for k, n in zip(p.tag_keys, p.tags, strict=True)]
                if terms:
                    await self.conn.executemany(
                        "INSERT OR IGNORE INTO post_terms (kind, key, ts, post, name) VALUES (?,?,?,?,?)",
                        terms,
                    )
                await self._index([(rowid, p.fts, p.heads, p.rank_text) for p, rowid, _ in posts])
            for writes in stories:
                await self._write_stories(writes)
            if stories_behind:
                await self._put_meta("stories_stale", "1")
            elif stories_behind is not None:
                await self._drop_meta("stories_stale")

    async def _write_stories(self, writes: StoryWrites) -> None:
        """A batch's story changes (store.stories), inside its write transaction."""
        for story, into in writes.merged:
            await self.conn.execute("UPDATE post_story SET story=? WHERE story=?", (into, story))
        if writes.rows:
            await self.conn.executemany(
                "INSERT OR REPLACE INTO post_story (rowid, story, ts) VALUES (?,?,?)", writes.rows
            )
        if writes.merged or writes.rows:
            self._stories_written()
        await self._put_meta("next_story", str(writes.next_story))

    async def _index(self, entries: Sequence[IndexEntry]) -> None:
        """Add (rowid, index texts, title texts, ranking text) to both FTS indexes (the fresh ones while
        a sync writes them) and post_heads."""
        posts_fts, heads_fts = _fts_tables(self._fresh is not None)
        await self.conn.executemany(
            f"INSERT INTO {posts_fts} (rowid, title, tags, body, sub, chars, pairs) VALUES (?,?,?,?,?,?,?)",
            [(rowid, *fts) for rowid, fts, _, _ in entries],
        )
        await self.conn.executemany(
            f"INSERT INTO {heads_fts} (rowid, title, chars, pairs) VALUES (?,?,?,?)",
            [(rowid, *heads) for rowid, _, heads, _ in entries],
        )
        await self.conn.executemany(
            "INSERT OR REPLACE INTO post_heads (rowid, rank_text) VALUES (?,?)",
            [(rowid, rank) for rowid, _, _, rank in entries],
        )
        self._heads_written()

    async def _unindex(self, rowids: list[int], fresh: bool = False) -> None:
        """Remove posts (those of `rowids` that exist) from posts, post_terms and the FTS index (`fresh`:
        the fresh one, which holds them)."""
        existing = await self._stored_entries(rowids)
        if not existing:
            return
        posts_fts, heads_fts = _fts_tables(fresh)
        await self.conn.executemany(
            f"INSERT INTO {posts_fts} ({posts_fts}, rowid, title, tags, body, sub, chars, pairs)"
            " VALUES ('delete',?,?,?,?,?,?,?)",
            [(rowid, *fts) for rowid, fts, _, _ in existing],
        )
        await self.conn.executemany(
            f"INSERT INTO {heads_fts} ({heads_fts}, rowid, title, chars, pairs) VALUES ('delete',?,?,?,?)",
            [(rowid, *heads) for rowid, _, heads, _ in existing],
        )
        await self._drop_rows([entry[0] for entry in existing])

    async def _drop_rows(self, rowids: list[int]) -> None:
        """Remove posts from posts, post_terms, post_heads and post_story (not from the FTS index)."""
        params = [(rowid,) for rowid in rowids]
        if not params:
            return
        await self.conn.executemany("DELETE FROM post_terms WHERE post=?", params)
        await self.conn.executemany("DELETE FROM post_heads WHERE rowid=?", params)
        self._heads_written()
        await self.conn.executemany("DELETE FROM post_story WHERE rowid=?", params)
        self._stories_written()
        await self.conn.executemany("DELETE FROM posts WHERE rowid=?", params)

    async def _migrated_to(self, version: int) -> None:
        if version == 16:  # the titles' index, made again with its pairs column (store.schema)
            await self._refill_heads()

    async def _refill_heads(self) -> None:
        """Fill the (emptied) titles' index from the stored titles, inside the caller's transaction; a
        fresh index a stopped sync left is dropped by the next sync (`drop_leftovers`), which then
        rebuilds the index as a whole."""
        after = 0
        while rows := await self._fetch(
            "SELECT rowid, title FROM posts WHERE rowid > ? ORDER BY rowid LIMIT 2000", (after,)
        ):
            texts = await asyncio.to_thread(_title_head_texts, [title for _, title in rows])
            await self.conn.executemany(
                "INSERT INTO heads_fts (rowid, title, chars, pairs) VALUES (?,?,?,?)",
                [(rowid, *heads) for (rowid, _), heads in zip(rows, texts, strict=True)],
            )
            after = rows[-1][0]
        await self.conn.execute("INSERT INTO heads_fts(heads_fts) VALUES ('optimize')")

    async def _stored_entries(self, rowids: Sequence[int]) -> list[IndexEntry]:
        """The index entries of the stored posts among `rowids`, made again from their text (the FTS
        table is contentless: deleting an entry needs the texts it was built from). Made in a thread:
        a batch of edited posts took the event loop for ~0.5 s (1,000–2,000 of them at ~0.25 ms each),
        and the bot's replies waited; in a thread they wait for the interpreter's switch interval."""
        return await self._texts_in_thread(await self._stored_rows(rowids))

    async def _texts_in_thread(self, rows: list[tuple]) -> list[IndexEntry]:
        """`index_entries` of stored posts' rows, in a thread (see `_stored_entries`)."""
        return await asyncio.to_thread(index_entries, rows, await self.pair_chars()) if rows else []

    def _stored_entries_ahead(
        self, ids: list[int], index_texts: IndexTextsFn | None = None
    ) -> AsyncIterator[list[IndexEntry]]:
        """The index entries of the stored posts `ids`, REBUILD_CHUNK at a time, in order, made by
        `index_texts` (default: in a thread) up to REBUILD_AHEAD chunks ahead of the one taken."""
        make = index_texts or self._texts_in_thread

        async def texts(chunk: list[int]) -> list[IndexEntry]:
            return await make(await self._stored_rows(chunk))

        chunks = (texts(ids[i : i + REBUILD_CHUNK]) for i in range(0, len(ids), REBUILD_CHUNK))
        return in_order(chunks, REBUILD_AHEAD + 1)

    async def _stored_rows(self, rowids: Sequence[int]) -> list[tuple]:
        """(rowid, title, body, categories JSON, tags JSON) of the stored posts among `rowids`: what
        their index entries are made from (`index_entries`)."""
        return await self._rows_in(
            "SELECT rowid, title, body, categories, tags FROM posts WHERE rowid IN ({})", rowids
        )

    async def label_chars(self) -> frozenset[str]:
        """Every character of the archive's folded categories and tags (cached until posts are written):
        a query word with another character cannot be among any post's labels (store.search)."""
        if self._label_chars is None:
            rows = await self._fetch("SELECT DISTINCT key FROM post_terms")
            self._label_chars = frozenset("".join(r[0] for r in rows))
        return self._label_chars

    async def sample_texts(self, n: int, chars: int) -> list[str]:
        """The title and first `chars` characters of the body of up to `n` stored posts, spread evenly
        over the archive."""
        ids = [r[0] for r in await self._fetch("SELECT rowid FROM posts ORDER BY rowid")]
        ids = ids[:: max(1, len(ids) // max(n, 1))][:n]
        rows = await self._rows_in(
            "SELECT title || char(10) || substr(body, 1, ?) FROM posts WHERE rowid IN ({})",
            ids,
            before=[chars],
        )
        return [r[0] for r in rows]

    async def index_is_current(self) -> bool:
        """False when the FTS texts were built by another segmenter/folding version than this one."""
        if await self.get_meta(FRESH_PENDING) is not None:
            return False  # a sync stopped while it filled a fresh index (begin_fresh_index)
        got = await self.get_meta("index_format")
        if got is None:
            return await self.count_posts() == 0
        return got == index_format(await self.pair_chars())

    @_locked
    async def set_pair_chars(self, chars: str | None) -> None:
        """Set the archive's pair characters (store.segment; None: not chosen). The stored posts' index
        texts are stale from then on: until `rebuild_index` (or, with no posts yet, the end of the sync
        that indexes them) the index is not current, so a sync that stops before rebuilding it rebuilds
        it the next time."""
        async with self._transaction():
            if chars is None:
                await self._drop_meta("pair_chars")
            else:
                await self._put_meta("pair_chars", chars)
            await self._drop_meta("index_format")

    @_locked
    async def rebuild_index(
        self, progress=None, index_texts: IndexTextsFn | None = None, merge: bool = True
    ) -> int:
        """Rebuild the FTS index from the stored posts (after a segmenter or dictionary change), in one
        transaction, as a bulk load (see `set_bulk_load`) when there are many, its segments merged at
        once or left to `merge_index` (see `end_bulk_load`).

        `index_texts` (the sync gives one that uses its worker processes) turns a chunk of stored posts
        (rowid, title, body, categories JSON, tags JSON) into their (rowid, index texts, title texts,
        ranking text); up to REBUILD_AHEAD chunks are in its hands while earlier ones are written. Without
        it, they are made in a thread, a chunk at a time."""
        ids = [r[0] for r in await self._fetch("SELECT rowid FROM posts ORDER BY rowid")]
        bulk = len(ids) >= BULK_LOAD_AT
        async with self._transaction():
            if bulk:
                await self._fts_merging(bulk=True)
            await self.conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('delete-all')")
            await self.conn.execute("INSERT INTO heads_fts (heads_fts) VALUES ('delete-all')")
            done = 0
            async for entries in self._stored_entries_ahead(ids, index_texts):
                await self._index(entries)
                done += len(entries)
                if progress:
                    progress(done, len(ids))
            await self._put_meta("index_format", index_format(await self.pair_chars()))
            await self._drop_meta(FRESH_PENDING)
        if bulk:
            await self._end_bulk_load(merge)
        return len(ids)

    @_locked
    async def regroup(self, window_hours: int, progress=None) -> int:
        """Group every stored post anew (after the upgrade that added stories), oldest first, in one
        transaction, calling `progress(done, total)`. Returns the number of posts."""
        grouper = Grouper(window=window_hours * 3600, next_story=1)
        async with self._transaction():
            await self.conn.execute("DELETE FROM post_story")
            self._stories_written()
            total = int((await self._fetch("SELECT COUNT(*) FROM posts"))[0][0])
            done, after = 0, (-(1 << 62), 0)
            while True:
                rows = await self._fetch(
                    "SELECT rowid, ts, title, substr(body, 1, ?) FROM posts WHERE (ts, rowid) > (?, ?)"
                    " ORDER BY ts, rowid LIMIT 2000",
                    (OPENING_READ, *after),
                )
                if not rows:
                    break
                for rowid, ts, title, opening in rows:
                    grouper.assign(rowid, ts, fingerprint(title, opening))
                await self._write_stories(take_writes(grouper))
                after = (rows[-1][1], rows[-1][0])
                done += len(rows)
                if progress:
                    progress(done, total)
            await self._drop_meta("stories_stale")
        return done

    async def failed_files(self) -> dict[str, Failed]:
        """path -> what the last sync found of the files it could not index."""
        rows = await self._fetch("SELECT path, mtime_ns, size, reason, until, kind FROM failed_files")
        return {r[0]: Failed(*r[1:]) for r in rows}

    @_locked
    async def remember_failed(self, path: str, mtime_ns: int, size: int, reason: str) -> None:
        """Record one file as failing in these bytes, as a sync's end does (`finish_sync`): the next sync
        skips it until it changes. (For a file that stalls the sync running: it never gets to its end.)"""
        async with self._transaction():
            await self.conn.execute(
                "INSERT OR REPLACE INTO failed_files (path, mtime_ns, size, reason) VALUES (?,?,?,?)",
                (path, mtime_ns, size, reason),
            )

    @_locked
    async def finish_sync(self, summary: dict[str, Any], failed: Sequence[tuple[str, Failed]] = ()) -> None:
        """Record the sync's summary and the files it could not index (replacing the last sync's)."""
        stale = await self.get_meta("term_counts_stale", "1") != "0"
        async with self._transaction():
            await self.conn.execute("DELETE FROM failed_files")
            await self.conn.executemany(
                "INSERT OR REPLACE INTO failed_files (path, mtime_ns, size, reason, until, kind)"
                " VALUES (?,?,?,?,?,?)",
                [(path, *f) for path, f in failed],
            )
            if stale:  # recount categories and tags only when posts were written or deleted since
                await self.conn.execute("DELETE FROM term_counts")
                await self.conn.execute(
                    "INSERT INTO term_counts (kind, key, name, n)"
                    " SELECT kind, key, MIN(name), COUNT(*) FROM post_terms GROUP BY kind, key"
                )
                await self._put_meta("term_counts_stale", "0")
            await self._put_meta("last_sync", json.dumps(summary, ensure_ascii=False))
            await self._put_meta("index_format", index_format(await self.pair_chars()))

    @_locked
    async def set_bulk_load(self, on: bool) -> None:
        """Tune FTS5 segment merging for a bulk load (on) or for small incremental writes (off).

        FTS5 writes each flush of new entries as a segment and, by default, merges segments as it goes
        (automerge 4, crisismerge 16): during a large load most of that merging is redone again and again.
        In bulk mode nothing is merged until a level holds 1,000 segments (FTS5 allows 2,000 in all), new
        entries are buffered up to 16 MB (not 1 MB) before they are written as a segment, and the load
        ends with one merge of them all (see `end_bulk_load`): at 100k finews-sized posts this cut the
        index's share of a full sync from ~21 to ~11 CPU-seconds (~8 with the `ascii` tokenizer; crisis
        merges at 200 segments then); at 100k large posts, merging at 1,000 instead of 200 segments wrote
        8.2 GB instead of 11.9 GB and synced ~6% faster.
        The buffer's size sets how many segments a load writes (each batch's transaction writes at least
        one): with 8 MB, 100,000 large posts with every pair indexed wrote 986–998 segments, so whether a
        sync crossed 1,000 and merged nearly all of them in the middle of the load (~50 s) depended on how
        the batches happened to be cut: 3 runs of 4 did, at 576–644 instead of 976 posts/s, with a 5.6 GB
        instead of a 3.5 GB file. With 16 MB: ~350 segments (a crisis merge only past ~280,000 large
        posts in one sync), 902–962 posts/s in four runs, the final merge 27 s instead of 41 s, for
        ~12 MB more memory; finews-sized posts (~60–100 segments) sync as fast as with 8 MB. The settings are
        stored in the FTS table; every sync that writes sets the mode it needs, so an interrupted bulk
        load is not left in bulk mode (the next write's crisis merge tidies its segments) — except while
        a bulk load's segments await `merge_index`: writes then stay in bulk mode, or the first small
        write after the load would merge them all in one go (a crisis merge).
        """
        await self._fts_merging(on)

    async def _fts_merging(self, bulk: bool, table: str = "posts_fts") -> None:
        if not bulk and await self.merge_pending():
            bulk = True
        settings = _FTS_BULK if bulk else _FTS_DEFAULTS
        for key, value in settings.items():
            await self.conn.execute(f"INSERT INTO {table}({table}, rank) VALUES (?, ?)", (key, value))

    @_locked
    async def begin_fresh_index(self) -> None:
        """Start writing a fresh index: a sync that writes most stored posts again (every one, after a
        settings change that reads them otherwise) fills FTS tables of its own, in bulk mode, which
        `end_fresh_index` puts in the place of the index searches read. Searches meanwhile find every
        post, those written again by their old texts. Each post written again would otherwise have its
        old entries deleted, which needs its old index texts made again (FTS5's contentless tables only
        delete what they are given): on 20,000 finews-sized posts that was 8.3 of a 13.8 s sync.

        Until `end_fresh_index` the stored index is marked stale (FRESH_PENDING): a sync that stops before
        (its posts written again are only in the fresh tables) has the next one drop them and rebuild it.
        The sync must be the only one writing the database meanwhile (store.sync_lock), and have dropped
        what a stopped one left (`drop_leftovers`)."""
        async with self._transaction():
            for table in FTS_TABLES:
                rows = await self._fetch(
                    "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
                )
                # (as created, or as renamed by the last fresh index: `CREATE VIRTUAL TABLE "posts_fts" …`)
                definition = re.match(rf'CREATE VIRTUAL TABLE "?{table}"? (USING .*)', rows[0][0], re.S)
                if definition is None:
                    raise RuntimeError(f"unexpected definition of {table}: {rows[0][0]!r}")
                await self.conn.execute(f"CREATE VIRTUAL TABLE {table}{FRESH} {definition[1]}")
            await self._fts_merging(True, _fts_tables(fresh=True)[0])
            await self._put_meta(FRESH_PENDING, "1")
        self._fresh = set()

    @_locked
    async def end_fresh_index(self) -> None:
        """Put the fresh index in the place of the old one, after adding the stored posts the sync did
        not write again (unchanged, or failing to parse now: their stored version stays)."""
        assert self._fresh is not None
        rest = [r for (r,) in await self._fetch("SELECT rowid FROM posts") if r not in self._fresh]
        async with self._transaction():
            async for entries in self._stored_entries_ahead(rest):
                await self._index(entries)
        async with self._transaction():
            for table in FTS_TABLES:
                await self.conn.execute(f"ALTER TABLE {table} RENAME TO {table}{OLD}")
                await self.conn.execute(f"ALTER TABLE {table}{FRESH} RENAME TO {table}")
            await self._drop_meta(FRESH_PENDING)
        self._fresh = None
        await self._drop_tables(OLD)

    def abandon_fresh_index(self) -> None:
        """After a sync that began a fresh index failed or was stopped: this store writes the index
        searches read again (it stays marked stale, so the next sync rebuilds it and drops the rest)."""
        self._fresh = None

    async def _drop_tables(self, suffix: str) -> None:
        """Drop the index tables named with `suffix`, if they exist (FRESH: those of a fresh index a sync
        stopped filling; OLD: the index a fresh one replaced), each in a transaction of its own with its
        statement journal in a file: dropping a 1.3 GB index (100,000 finews-sized posts) inside the
        swap's transaction journalled its pages in memory (1.5 GB, 20 s); so, 1.6 s and 31 MB."""
        (temp_store,) = (await self._fetch("PRAGMA temp_store"))[0]
        await self.conn.execute("PRAGMA temp_store=FILE")
        try:
            for table in FTS_TABLES:
                await self.conn.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
        finally:
            await self.conn.execute(f"PRAGMA temp_store={int(temp_store)}")

    @_locked
    async def drop_leftovers(self) -> None:
        """Drop what a fresh index stopped halfway left: its tables, or the index it replaced."""
        names = {r[0] for r in await self._fetch("SELECT name FROM sqlite_master WHERE type='table'")}
        for suffix in (FRESH, OLD):
            if names & {table + suffix for table in FTS_TABLES}:
                await self._drop_tables(suffix)

    @_locked
    async def end_bulk_load(self, merge: bool = True) -> None:
        await self._end_bulk_load(merge)

    async def _end_bulk_load(self, merge: bool) -> None:
        """After a bulk load, its index segments (one or a few per batch: ~100 at 100,000 finews-sized
        posts, ~350 at 100,000 large ones) are merged into one: searches read one b-tree per term, ~30%
        faster. `merge` merges them now, in one statement (~5 s at 100,000 finews-sized posts, ~20 s at
        100,000 large ones, one core busy and the connection with it); otherwise the store records that
        a merge is pending and `merge_index` does it a step at a time: the posts are searchable at once,
        and searches and writes go between the steps. The titles' index is merged with it (in one
        statement, ~0.2 s at 100,000 posts: at the end of `merge_index` when it is left for later)."""
        if merge:
            await self._merged()
            await self.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            await self._put_meta(MERGE_PENDING, "1")
            await self._fts_merging(True)  # until merge_index is done (see set_bulk_load)

    async def merge_pending(self) -> bool:
        """Whether a bulk load's index segments await `merge_index`."""
        return await self.get_meta(MERGE_PENDING) is not None

    async def merge_index(
        self, pages: int = MERGE_STEP_PAGES, until: Callable[[], bool] | None = None
    ) -> int:
        """Merge the index segments a bulk load left (`end_bulk_load(merge=False)`), a step of about
        `pages` index pages at a time, each in a transaction of its own (~0.1 s, see MERGE_STEP_PAGES):
        searches and other writes go between the steps, and a merge stopped halfway (the bot stopping)
        goes on from there the next time. As fast in all as one `optimize`. `until`: asked before each
        step; the merge stops there (the rest left for later) once it says True. Returns the steps taken."""
        steps = 0
        while (until is None or not until()) and await self._merge_step(pages):
            steps += 1
            await asyncio.sleep(0)
        return steps

    @_locked
    async def _merge_step(self, pages: int) -> bool:
        """One step of `merge_index`; False once nothing is left to merge (the FTS settings are then
        back in incremental mode and the pending mark gone)."""
        if not await self.merge_pending():
            return False
        async with self._transaction():
            before = self.conn.total_changes
            # a negative page count merges every segment into one, as `optimize` does, but in steps
            await self.conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('merge', ?)", (-pages,))
            if self.conn.total_changes - before > 1:  # (the command itself counts one)
                return True
            await self._merged()
        await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return False

    async def _merged(self) -> None:
        """No merge is pending any more: the titles' index merged too (its segments are few, FTS5's
        automerge keeps them so: one statement), and writes go back to incremental merging."""
        await self.conn.execute("INSERT INTO heads_fts(heads_fts) VALUES ('optimize')")
        await self._drop_meta(MERGE_PENDING)
        await self._fts_merging(False)

    # --- reading -----------------------------------------------------------------------------

    async def count_posts(self) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM posts")
        return int(rows[0][0])

    async def get_post(self, key: str | int) -> PostRow | None:
        """By rowid (int), or by id (file name without extension; the newest if several share it)."""
        if isinstance(key, int):
            rows = await self._fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE rowid=?", (key,))
        else:
            rows = await self._fetch(
                f"SELECT {POST_COLUMNS} FROM posts WHERE id=? ORDER BY ts DESC LIMIT 1", (key,)
            )
        return PostRow.from_row(rows[0]) if rows else None

    async def find_post(self, key: str) -> tuple[PostRow | None, list[str]]:
        """A post by its path from the archive root (`news/_posts/2024-05-01-x.md`) or its id; with the
        paths of every post sharing that id when there are several (`en/_posts/x.md` and
        `zh/_posts/x.md`: the newest is returned)."""
        rows = await self._fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE path=?", (key,))
        if rows:
            return PostRow.from_row(rows[0]), []
        rows = await self._fetch(
            f"SELECT {POST_COLUMNS} FROM posts WHERE id=? ORDER BY ts DESC, rowid DESC LIMIT 50", (key,)
        )
        posts = [PostRow.from_row(r) for r in rows]
        return (posts[0] if posts else None), ([p.path for p in posts] if len(posts) > 1 else [])

    async def term_count(self, kind: str, key: str) -> tuple[str, int] | None:
        rows = await self._fetch("SELECT name, n FROM term_counts WHERE kind=? AND key=?", (kind, key))
        return (rows[0][0], int(rows[0][1])) if rows else None

    async def terms(
        self, kind: str = "c", fragment: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[tuple[str, str, int]], int]:
        """(key, name, post count) of categories (kind 'c') or tags ('t'), most posts first; and the total."""
        limit, offset = _bounded(limit), _bounded(offset)
        where, params = "kind=?", [kind]
        if fragment:
            where += " AND instr(key, ?) > 0"
            params.append(fragment)
        rows = await self._fetch(
            f"SELECT key, name, n FROM term_counts WHERE {where} ORDER BY n DESC, key LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        total = await self._fetch(f"SELECT COUNT(*) FROM term_counts WHERE {where}", params)
        return [(r[0], r[1], int(r[2])) for r in rows], int(total[0][0])

    # --- statistics --------------------------------------------------------------------------

    async def shared_archive_urls(self, limit: int = 3) -> tuple[int, list[tuple[str, list[str]]]]:
        """Archive URLs that several posts have: Jekyll writes one page at such a URL ("Conflict: the
        following destination is shared by multiple files"), so the links of all but one lead to another
        post. How many such URLs there are, and the first `limit` with their posts' paths."""
        rows = await self._fetch(
            "SELECT archive_url, json_group_array(path) FROM posts GROUP BY archive_url"
            " HAVING COUNT(*) > 1 ORDER BY archive_url"
        )
        return len(rows), [(url, sorted(json.loads(paths))) for url, paths in rows[:limit]]

    async def stats(self) -> dict[str, Any]:
        posts = await self.count_posts()
        cats = await self._fetch("SELECT COUNT(*) FROM term_counts WHERE kind='c'")
        last = await self.get_meta("last_sync")
        size = 0
        if self.path != ":memory:":
            for suffix in ("", "-wal"):
                try:
                    size += os.path.getsize(self.path + suffix)
                except OSError:
                    pass
        return {
            "posts": posts,
            "categories": int(cats[0][0]),
            "db_bytes": size,
            "last_sync": json.loads(last) if last else None,
        }
