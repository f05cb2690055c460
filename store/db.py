"""The SQLite store: schema, migrations and every SQL statement of the project.

One `Store` object wraps one aiosqlite connection. Nothing outside this module writes SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite

from .segment import INDEX_FORMAT, Analysis, IndexTexts, analyse
from .text import fold

SCHEMA_VERSION = 6

# Each entry upgrades the schema from version i to i+1. Append, never edit a released step.
MIGRATIONS: list[str] = [
    # 0 -> 1: posts, their categories/tags, the full-text index, metadata.
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE posts (
        rowid INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        date TEXT NOT NULL,
        ts INTEGER NOT NULL,
        categories TEXT NOT NULL,
        tags TEXT NOT NULL,
        url TEXT,
        archive_url TEXT NOT NULL,
        summary TEXT NOT NULL,
        body TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        hash TEXT NOT NULL,
        first_seen INTEGER NOT NULL
    );
    CREATE INDEX posts_ts ON posts (ts DESC, rowid DESC);
    CREATE INDEX posts_id ON posts (id);
    CREATE INDEX posts_first_seen ON posts (first_seen);
    -- kind 'c' = category, 't' = tag; key = folded name for matching, name = as written.
    CREATE TABLE post_terms (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        ts INTEGER NOT NULL,
        post INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (kind, key, ts, post)
    ) WITHOUT ROWID;
    CREATE INDEX post_terms_post ON post_terms (post);
    CREATE TABLE term_counts (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    -- Contentless: the texts are recomputed from posts when an entry must be deleted (store.segment).
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, tags, body, sub, chars,
        content = '',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    """,
    # 1 -> 2: the folded title and labels of each post, for ranking without folding at query time.
    # Existing rows get theirs when the next sync rebuilds the index (index_format is reset).
    """
    ALTER TABLE posts ADD COLUMN rank_text TEXT NOT NULL DEFAULT '';
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 2 -> 3: what the bot remembers: each chat's language, and the search queries behind paging buttons.
    """
    CREATE TABLE chat_prefs (chat_id INTEGER PRIMARY KEY, language TEXT);
    CREATE TABLE saved_queries (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE, used INTEGER NOT NULL);
    """,
    # 3 -> 4: following the archive: auto-post rules (from settings, admins, or users' subscriptions) and
    # the delivery ledger (one row per post and destination; pending -> sending -> sent | failed).
    """
    CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        chat TEXT NOT NULL,
        thread INTEGER NOT NULL DEFAULT 0,
        categories TEXT NOT NULL DEFAULT '[]',
        query TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL,
        owner INTEGER,
        since_seq INTEGER NOT NULL,
        paused TEXT,
        created INTEGER NOT NULL,
        UNIQUE (chat, thread, categories, query, origin)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        rule INTEGER NOT NULL,
        chat TEXT NOT NULL,
        thread INTEGER NOT NULL DEFAULT 0,
        post INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        message_id INTEGER,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (chat, thread, post)
    );
    CREATE INDEX deliveries_status ON deliveries (status, chat, thread, id);
    """,
    # 4 -> 5: the FTS texts arrive folded and segmented (space-separated words, one token per CJK
    # character), so FTS5's plain `ascii` tokenizer (every non-ASCII character is a token character)
    # splits them as unicode61 did, at about half the cost; diacritics are folded by store.text.fold.
    # No per-row column sizes: ranking is computed in Python (store.search). The next sync rebuilds it.
    """
    DROP TABLE posts_fts;
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, tags, body, sub, chars,
        content = '',
        columnsize = 0,
        tokenize = 'ascii'
    );
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 5 -> 6: files that failed to parse, with the (mtime, size) they failed at: not parsed again until
    # they change (a hostile file costs once, not at every sync). Saved search queries belong to the chat
    # their buttons were sent to (a forged button in another chat finds nothing); old buttons expire.
    """
    CREATE TABLE failed_files (
        path TEXT PRIMARY KEY,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        reason TEXT NOT NULL
    ) WITHOUT ROWID;
    DROP TABLE saved_queries;
    CREATE TABLE saved_queries (
        id INTEGER PRIMARY KEY,
        chat INTEGER NOT NULL,
        text TEXT NOT NULL,
        used INTEGER NOT NULL,
        UNIQUE (chat, text)
    );
    """,
]

# FTS5's own defaults, restored after a bulk load (Store.set_bulk_load).
_FTS_DEFAULTS = {"automerge": 4, "crisismerge": 16, "hashsize": 1 << 20}

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
        }


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
    rank_text: str


def _locked(method):
    """Run a writing method alone: never inside another method's open transaction on this connection."""

    @functools.wraps(method)
    async def wrapper(self: Store, *args, **kwargs):
        async with self._lock:
            return await method(self, *args, **kwargs)

    return wrapper


class Store:
    def __init__(self, conn: aiosqlite.Connection, path: str):
        self.conn = conn
        self.path = path
        # One connection serves the bot's handlers, the sync and the sender; writes take turns so a
        # handler's write never lands inside (or breaks) a sync's transaction.
        self._lock = asyncio.Lock()
        # document-frequency samples for ranking; cleared whenever posts change
        self._df_cache: dict[tuple, tuple[int, list[int]]] = {}
        self._timezone: str | None = None
        self._states_cache: tuple[str | None, dict[str, tuple[int, int, int]]] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        path = str(path)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        store = cls(conn, path)
        try:
            # 8 KB pages (for a new database; an existing one keeps its own): FTS5's index pages and the
            # posts' text fit them better than 4 KB pages; a bulk load indexes ~10% faster.
            await conn.executescript(
                "PRAGMA page_size=8192; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                " PRAGMA wal_autocheckpoint=16384; PRAGMA cache_size=-32000; PRAGMA temp_store=MEMORY;"
            )
            await store._use_wal()
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self.conn.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """One write transaction: committed when the block ends, rolled back if it (or the commit) fails."""
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            await self.conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (a full disk, an I/O error): then ROLLBACK fails with
            # "no transaction is active", which must not hide the real error
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("ROLLBACK")
            raise

    async def _use_wal(self) -> None:
        """Switch to WAL. Switching needs the database to itself, and SQLite refuses at once, without
        waiting, while another connection is creating the schema of the same new database: retry."""
        for attempt in range(100):
            try:
                await self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                await asyncio.sleep(0.05)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _schema_version(self) -> int:
        rows = await self._fetch("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'")
        if not rows:
            return 0
        got = await self._fetch("SELECT value FROM meta WHERE key='schema_version'")
        return int(got[0][0]) if got else 0

    async def _migrate(self) -> None:
        """Apply the missing migrations in one write transaction (a second process opening the same new
        database waits for it, then finds the schema current)."""
        if await self._schema_version() == SCHEMA_VERSION:
            return
        async with self._transaction():
            version = await self._schema_version()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database schema version {version} is newer than this newsbot ({SCHEMA_VERSION});"
                    " upgrade newsbot"
                )
            while version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    await self.conn.execute(statement)
                version += 1
                await self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                await self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
                )

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """All rows of a statement, as a list (aiosqlite's execute_fetchall, typed)."""
        return list(await self.conn.execute_fetchall(sql, params))

    async def _rows_in(
        self, sql: str, values: Sequence[Any], chunk: int = 500, before: Sequence[Any] = ()
    ) -> list:
        """Run `sql`, whose "{}" stands for a list of placeholders, over `values` in chunks (`before`:
        the parameters that come before the list in every chunk)."""
        values = list(values)
        out: list = []
        for i in range(0, len(values), chunk):
            part = values[i : i + chunk]
            out += await self._fetch(sql.format(",".join("?" * len(part))), [*before, *part])
        return out

    # --- metadata ----------------------------------------------------------------------------

    async def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = await self._fetch("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    @_locked
    async def set_meta(self, key: str, value: str) -> None:
        await self._put_meta(key, value)

    async def _put_meta(self, key: str, value: str) -> None:
        await self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        if key == "timezone":
            self._timezone = value

    async def archive_timezone(self) -> str:
        """The archive's time zone as recorded by the last sync (cached; a sync here updates it)."""
        if self._timezone is None:
            self._timezone = await self.get_meta("timezone", "UTC") or "UTC"
        return self._timezone

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
    ) -> None:
        """In one transaction: delete `deletes` rowids, refresh (rowid, mtime_ns, size) of `touches`, and
        write each (post, rowid, first_seen), replacing what that rowid held."""
        touches, deletes = list(touches), list(deletes)
        self._df_cache.clear()
        async with self._transaction():
            if next_rowid is not None:
                await self._put_meta("next_rowid", str(next_rowid))
            if posts or deletes:
                await self._put_meta("term_counts_stale", "1")
            gone = deletes + [rowid for _, rowid, _ in posts]
            if gone:
                await self._unindex(gone)
            if touches:
                await self.conn.executemany(
                    "UPDATE posts SET mtime_ns=?, size=? WHERE rowid=?", [(m, s, r) for r, m, s in touches]
                )
            if posts:
                await self.conn.executemany(
                    "INSERT INTO posts (rowid, path, id, title, date, ts, categories, tags, url, archive_url,"
                    " summary, body, mtime_ns, size, hash, first_seen, rank_text)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                            p.rank_text,
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
                await self.conn.executemany(
                    "INSERT INTO posts_fts (rowid, title, tags, body, sub, chars) VALUES (?,?,?,?,?,?)",
                    [(rowid, *p.fts) for p, rowid, _ in posts],
                )

    async def _unindex(self, rowids: list[int]) -> None:
        """Remove posts (those of `rowids` that exist) from posts, post_terms and the FTS index."""
        existing = await self._analysed(rowids)
        if not existing:
            return
        await self.conn.executemany(
            "INSERT INTO posts_fts (posts_fts, rowid, title, tags, body, sub, chars) VALUES ('delete',?,?,?,?,?,?)",
            [(rowid, *a.fts) for rowid, a in existing],
        )
        params = [(rowid,) for rowid, _ in existing]
        await self.conn.executemany("DELETE FROM post_terms WHERE post=?", params)
        await self.conn.executemany("DELETE FROM posts WHERE rowid=?", params)

    async def _analysed(self, rowids: Sequence[int]) -> list[tuple[int, Analysis]]:
        """(rowid, index texts …) of the stored posts among `rowids`, computed again from their text (the
        FTS table is contentless: deleting or rebuilding an entry needs the texts it was built from)."""
        rows = await self._rows_in(
            "SELECT rowid, title, body, categories, tags FROM posts WHERE rowid IN ({})", rowids
        )
        return [(r[0], analyse(r[1], r[2], json.loads(r[3]), json.loads(r[4]))) for r in rows]

    async def index_is_current(self) -> bool:
        """False when the FTS texts were built by another segmenter/folding version than this one."""
        got = await self.get_meta("index_format")
        if got is None:
            return await self.count_posts() == 0
        return got == INDEX_FORMAT

    @_locked
    async def rebuild_index(self, progress=None) -> int:
        """Rebuild the FTS index from the stored posts (after a segmenter or dictionary change)."""
        async with self._transaction():
            await self.conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('delete-all')")
            rows = await self._fetch("SELECT rowid FROM posts ORDER BY rowid")
            ids = [r[0] for r in rows]
            for i in range(0, len(ids), 1000):
                chunk = ids[i : i + 1000]
                done = await self._analysed(chunk)
                await self.conn.executemany(
                    "INSERT INTO posts_fts (rowid, title, tags, body, sub, chars) VALUES (?,?,?,?,?,?)",
                    [(rowid, *a.fts) for rowid, a in done],
                )
                await self.conn.executemany(
                    "UPDATE posts SET rank_text=? WHERE rowid=?", [(a.rank_text, rowid) for rowid, a in done]
                )
                if progress:
                    progress(i + len(chunk), len(ids))
            await self._put_meta("index_format", INDEX_FORMAT)
        return len(ids)

    async def failed_files(self) -> dict[str, tuple[int, int, str]]:
        """path -> (mtime_ns, size, reason) of the files the last sync could not parse."""
        rows = await self._fetch("SELECT path, mtime_ns, size, reason FROM failed_files")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    @_locked
    async def finish_sync(
        self, summary: dict[str, Any], failed: Sequence[tuple[str, int, int, str]] = ()
    ) -> None:
        """Record the sync's summary and the files that failed to parse (replacing the last sync's)."""
        stale = await self.get_meta("term_counts_stale", "1") != "0"
        async with self._transaction():
            await self.conn.execute("DELETE FROM failed_files")
            await self.conn.executemany("INSERT OR REPLACE INTO failed_files VALUES (?,?,?,?)", failed)
            if stale:  # recount categories and tags only when posts were written or deleted since
                await self.conn.execute("DELETE FROM term_counts")
                await self.conn.execute(
                    "INSERT INTO term_counts (kind, key, name, n)"
                    " SELECT kind, key, MIN(name), COUNT(*) FROM post_terms GROUP BY kind, key"
                )
                await self._put_meta("term_counts_stale", "0")
            await self._put_meta("last_sync", json.dumps(summary, ensure_ascii=False))
            await self._put_meta("index_format", INDEX_FORMAT)

    @_locked
    async def set_bulk_load(self, on: bool) -> None:
        """Tune FTS5 segment merging for a bulk load (on) or for small incremental writes (off).

        FTS5 writes each flush of new entries as a segment and, by default, merges segments as it goes
        (automerge 4, crisismerge 16): during a large load most of that merging is redone again and again.
        In bulk mode nothing is merged until a level holds 200 segments, new entries are buffered up to
        4 MB (not 1 MB) before they are written as a segment, and the load ends with one `optimize` (see
        sync): at 100k posts this cuts the index's share of a full sync from ~21 to ~11 CPU-seconds (~8 with
        the `ascii` tokenizer). The settings are stored in the FTS table; every sync that writes sets the
        mode it needs, so an interrupted bulk load is not left in bulk mode (the next write's crisis merge
        tidies its segments).
        """
        settings = {"automerge": 0, "crisismerge": 200, "hashsize": 4 << 20} if on else _FTS_DEFAULTS
        for key, value in settings.items():
            await self.conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES (?, ?)", (key, value))

    @_locked
    async def optimize(self) -> None:
        await self.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
        await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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

    async def get_posts(self, rowids: Sequence[int]) -> list[PostRow]:
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = await self._fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE rowid IN ({marks})", tuple(rowids))
        by_id = {r[0]: PostRow.from_row(r) for r in rows}
        return [by_id[r] for r in rowids if r in by_id]

    async def latest(
        self, limit: int = 10, offset: int = 0, category_key: str | None = None
    ) -> list[PostRow]:
        limit, offset = _bounded(limit), _bounded(offset)
        if category_key is None:
            rows = await self._fetch(
                f"SELECT {POST_COLUMNS} FROM posts ORDER BY ts DESC, rowid DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
        else:
            cols = ", ".join(f"p.{c.strip()}" for c in POST_COLUMNS.split(","))
            rows = await self._fetch(
                f"SELECT {cols} FROM post_terms t JOIN posts p ON p.rowid = t.post"
                " WHERE t.kind='c' AND t.key=? ORDER BY t.ts DESC, t.post DESC LIMIT ? OFFSET ?",
                (category_key, limit, offset),
            )
        return [PostRow.from_row(r) for r in rows]

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

    # --- search primitives (the MATCH expressions are built by store.search) -----------------

    async def fts_candidates(
        self,
        match: str,
        *,
        limit: int,
        filters: SearchFilters | None = None,
        exclude: Sequence[int] = (),
    ) -> list[tuple[int, int, str]]:
        """(rowid, ts, rank_text) of up to `limit` posts matching an FTS5 expression, most recently
        indexed first.

        Ordering by rowid lets FTS5 walk its doclists backwards and stop early, so the cost is bounded
        by `limit`, not by how many posts match.
        """
        inner = "SELECT f.rowid FROM posts_fts f"
        params: list[Any] = []
        if filters:
            inner += " JOIN posts p ON p.rowid = f.rowid WHERE posts_fts MATCH ?"
            params.append(match)
            inner, params = filters.apply(inner, params)
        else:
            inner += " WHERE posts_fts MATCH ?"
            params.append(match)
        if exclude:
            inner += " AND f.rowid NOT IN ({})".format(",".join("?" * len(exclude)))
            params.extend(exclude)
        inner += " ORDER BY f.rowid DESC LIMIT ?"
        params.append(limit)
        return await self._fetch(f"SELECT rowid, ts, rank_text FROM posts WHERE rowid IN ({inner})", params)

    async def recent_doc_counts(self, matches: Sequence[str], window: int) -> tuple[int, list[int]]:
        key = (tuple(matches), window)
        cached = self._df_cache.get(key)
        if cached is None:
            cached = await self._recent_doc_counts(matches, window)
            if len(self._df_cache) > 4096:
                self._df_cache.clear()
            self._df_cache[key] = cached
        return cached

    async def _recent_doc_counts(self, matches: Sequence[str], window: int) -> tuple[int, list[int]]:
        """How many of the last `window` indexed posts match each expression (for IDF), and the sample size.

        FTS5's own bm25() computes IDF by scanning every matching row; sampling the newest posts keeps the
        cost bounded for words that occur in most posts.
        """
        parts = ["SELECT -1, COUNT(*) FROM posts WHERE rowid > ?1"]
        params: list[Any] = []
        for i, match in enumerate(matches):
            parts.append(f"SELECT {i}, COUNT(*) FROM posts_fts WHERE posts_fts MATCH ? AND rowid > ?1")
            params.append(match)
        top = await self._fetch("SELECT COALESCE(MAX(rowid), 0) FROM posts")
        floor = int(top[0][0]) - window
        sql = " UNION ALL ".join(parts)
        # ?1 is the floor; the MATCH parameters follow it.
        rows = await self._fetch(sql, [floor, *params])
        got = {r[0]: int(r[1]) for r in rows}
        return got.get(-1, 0), [got.get(i, 0) for i in range(len(matches))]

    async def filtered_posts(
        self,
        filters: SearchFilters,
        limit: int,
        not_match: str | None = None,
        within: Sequence[int] | None = None,
    ) -> list[int]:
        """Newest posts passing the filters (a query with no text terms), optionally among `within`."""
        sql = "SELECT p.rowid FROM posts p WHERE 1"
        params: list[Any] = []
        sql, params = filters.apply(sql, params, alias="p")
        if within is not None:
            sql += " AND p.rowid IN ({})".format(",".join("?" * len(within)))
            params.extend(within)
        if not_match:
            sql += " AND p.rowid NOT IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)"
            params.append(not_match)
        sql += " ORDER BY p.ts DESC, p.rowid DESC LIMIT ?"
        params.append(_bounded(limit))
        rows = await self._fetch(sql, params)
        return [r[0] for r in rows]

    # --- what the bot remembers ------------------------------------------------------------

    async def chat_language(self, chat_id: int) -> str | None:
        rows = await self._fetch("SELECT language FROM chat_prefs WHERE chat_id=?", (chat_id,))
        return rows[0][0] if rows else None

    @_locked
    async def set_chat_language(self, chat_id: int, language: str | None) -> None:
        await self.conn.execute(
            "INSERT INTO chat_prefs (chat_id, language) VALUES (?, ?)"
            " ON CONFLICT(chat_id) DO UPDATE SET language=excluded.language",
            (chat_id, language),
        )

    @_locked
    async def save_query(self, chat_id: int, text: str) -> int:
        """A short id for a query text sent to a chat (for buttons, whose data is limited to 64 bytes).
        The id is only valid in that chat."""
        rows = await self._fetch(
            "INSERT INTO saved_queries (chat, text, used) VALUES (?, ?, ?)"
            " ON CONFLICT(chat, text) DO UPDATE SET used=excluded.used RETURNING id",
            (chat_id, text, now_ts()),
        )
        return int(rows[0][0])

    async def saved_query(self, chat_id: int, query_id: int) -> str | None:
        rows = await self._fetch("SELECT text FROM saved_queries WHERE id=? AND chat=?", (query_id, chat_id))
        return rows[0][0] if rows else None

    @_locked
    async def forget_queries(self, older_than_seconds: int) -> int:
        cur = await self.conn.execute(
            "DELETE FROM saved_queries WHERE used < ?", (now_ts() - older_than_seconds,)
        )
        return cur.rowcount

    # --- auto-post rules and the delivery ledger ------------------------------------------------

    async def current_seq(self) -> int:
        return int(await self.get_meta("sync_seq", "0") or 0)

    @_locked
    async def add_rule(
        self,
        chat: str,
        *,
        thread: int = 0,
        categories: Sequence[str] = (),
        query: str = "",
        origin: str = "admin",
        owner: int | None = None,
    ) -> tuple[int, bool]:
        """(rule id, created?). A new rule only sees posts first indexed after the current sync.
        Categories are kept as folded keys, as posts' categories are (post_terms)."""
        cats = _json_list(sorted({fold(c) for c in categories}))
        rows = await self._fetch(
            "SELECT id FROM rules WHERE chat=? AND thread=? AND categories=? AND query=? AND origin=?",
            (chat, thread, cats, query, origin),
        )
        if rows:
            return int(rows[0][0]), False
        cur = await self.conn.execute(
            "INSERT INTO rules (chat, thread, categories, query, origin, owner, since_seq, created)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (chat, thread, cats, query, origin, owner, await self.current_seq(), now_ts()),
        )
        return int(cur.lastrowid or 0), True

    async def rules(self, origin: str | None = None, owner: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, chat, thread, categories, query, origin, owner, since_seq, paused FROM rules WHERE 1"
        )
        sql, params = _scoped(sql, [], origin, owner)
        rows = await self._fetch(sql + " ORDER BY id", params)
        keys = ("id", "chat", "thread", "categories", "query", "origin", "owner", "since_seq", "paused")
        out = []
        for r in rows:
            rule = dict(zip(keys, r, strict=True))
            rule["categories"] = json.loads(rule["categories"])
            out.append(rule)
        return out

    @_locked
    async def remove_rule(self, rule_id: int, origin: str | None = None, owner: int | None = None) -> bool:
        sql, params = _scoped("DELETE FROM rules WHERE id=?", [rule_id], origin, owner)
        cur = await self.conn.execute(sql, params)
        if cur.rowcount:
            await self.conn.execute(
                "UPDATE deliveries SET status='failed', error='rule removed', updated=? WHERE rule=? AND status"
                " IN ('pending','sending')",
                (now_ts(), rule_id),
            )
        return bool(cur.rowcount)

    @_locked
    async def pause_rules(self, chat: str, reason: str) -> list[int]:
        rows = await self._fetch("SELECT id FROM rules WHERE chat=? AND paused IS NULL", (chat,))
        await self.conn.execute("UPDATE rules SET paused=? WHERE chat=? AND paused IS NULL", (reason, chat))
        return [r[0] for r in rows]

    @_locked
    async def pause_rule(self, rule_id: int, reason: str) -> None:
        await self.conn.execute("UPDATE rules SET paused=? WHERE id=?", (reason, rule_id))

    @_locked
    async def resume_rule(self, rule_id: int) -> bool:
        cur = await self.conn.execute("UPDATE rules SET paused=NULL WHERE id=?", (rule_id,))
        return bool(cur.rowcount)

    async def new_posts_since(self, seq: int) -> list[tuple[int, int]]:
        """(rowid, first_seen) of posts first indexed after sync `seq`, oldest first."""
        return await self._fetch(
            "SELECT rowid, first_seen FROM posts WHERE first_seen > ? ORDER BY ts, rowid", (seq,)
        )

    async def posts_in_categories(self, rowids: Sequence[int], keys: Sequence[str]) -> set[int]:
        if not rowids or not keys:
            return set()
        keys_in = ",".join("?" * len(keys))
        rows = await self._rows_in(
            f"SELECT DISTINCT post FROM post_terms WHERE kind='c' AND key IN ({keys_in}) AND post IN ({{}})",
            rowids,
            before=keys,
        )
        return {r[0] for r in rows}

    async def match_within(
        self, match: str, rowids: Sequence[int], filters: SearchFilters | None = None
    ) -> set[int]:
        """Which of `rowids` match an FTS5 expression (and filters)."""
        if not rowids:
            return set()
        sql = "SELECT f.rowid FROM posts_fts f JOIN posts p ON p.rowid=f.rowid WHERE posts_fts MATCH ?"
        params: list[Any] = [match]
        if filters:
            sql, params = filters.apply(sql, params)
        sql = sql.replace("{", "{{").replace("}", "}}") + " AND f.rowid IN ({})"
        rows = await self._rows_in(sql, rowids, before=params)
        return {r[0] for r in rows}

    @_locked
    async def enqueue(self, items: Sequence[tuple[int, str, int, int]], delivered_seq: int) -> int:
        """Record (rule, chat, thread, post) deliveries as pending and move the watermark, atomically.

        A post goes to a chat/topic once even when several rules match it.
        """
        now = now_ts()
        async with self._transaction():
            before = self.conn.total_changes
            await self.conn.executemany(
                "INSERT OR IGNORE INTO deliveries (rule, chat, thread, post, status, created, updated)"
                " VALUES (?,?,?,?,'pending',?,?)",
                [(r, c, t, p, now, now) for r, c, t, p in items],
            )
            added = self.conn.total_changes - before
            await self._put_meta("delivered_seq", str(delivered_seq))
        return added

    async def due_deliveries(self) -> list[dict[str, Any]]:
        """Pending deliveries, and those left 'sending' by a crash (outcome unknown: they are sent again)."""
        rows = await self._fetch(
            "SELECT d.id, d.rule, d.chat, d.thread, d.post, d.attempts FROM deliveries d"
            " JOIN rules r ON r.id = d.rule"
            " WHERE d.status IN ('pending','sending') AND r.paused IS NULL ORDER BY d.chat, d.thread, d.id"
        )
        keys = ("id", "rule", "chat", "thread", "post", "attempts")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @_locked
    async def mark_deliveries(
        self,
        ids: Sequence[int],
        status: str,
        *,
        error: str | None = None,
        message_id: int | None = None,
        attempt: bool = False,
    ) -> None:
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self.conn.execute(
            f"UPDATE deliveries SET status=?, error=?, message_id=COALESCE(?, message_id), updated=?,"
            f" attempts = attempts + ? WHERE id IN ({marks})",
            (status, error, message_id, now_ts(), 1 if attempt else 0, *ids),
        )

    async def delivery_counts(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    # --- statistics --------------------------------------------------------------------------

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


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (sqlite3.complete_statement knows comments and literals)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        out.append(buffer.strip())
    return out


def _scoped(sql: str, params: list[Any], origin: str | None, owner: int | None) -> tuple[str, list[Any]]:
    """Restrict a rules statement to one origin and/or owner."""
    if origin is not None:
        sql += " AND origin=?"
        params.append(origin)
    if owner is not None:
        sql += " AND owner=?"
        params.append(owner)
    return sql, params


def _bounded(n: int, high: int = 10**9) -> int:
    """A LIMIT or OFFSET SQLite accepts (a huge number from a user is an overflow error otherwise)."""
    return max(0, min(int(n), high))


def _json_list(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False)


@dataclass
class SearchFilters:
    category_keys: list[str]
    tag_keys: list[str]
    since_ts: int | None = None
    until_ts: int | None = None

    def __bool__(self) -> bool:
        return bool(
            self.category_keys or self.tag_keys or self.since_ts is not None or self.until_ts is not None
        )

    def apply(self, sql: str, params: list[Any], alias: str = "p") -> tuple[str, list[Any]]:
        for kind, keys in (("c", self.category_keys), ("t", self.tag_keys)):
            for key in keys:
                sql += f" AND {alias}.rowid IN (SELECT post FROM post_terms WHERE kind='{kind}' AND key=?)"
                params.append(key)
        if self.since_ts is not None:
            sql += f" AND {alias}.ts >= ?"
            params.append(self.since_ts)
        if self.until_ts is not None:
            sql += f" AND {alias}.ts < ?"
            params.append(self.until_ts)
        return sql, params


def database_problem(exc: sqlite3.Error) -> str:
    """One line for an operator about a database error, with what usually causes it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return f"{text} (the file or its folder is read-only; it must be writable for syncs and settings)"
    if "disk is full" in low or "disk i/o" in low:
        return f"{text} (free some space; nothing was half-written)"
    if "not a database" in low or "malformed" in low:
        return f"{text} (the file is not a newsbot database or is damaged: restore a backup, or delete it and sync again)"
    if "unable to open" in low:
        return f"{text} (is the path a folder, or its folder missing or not writable?)"
    return text


def now_ts() -> int:
    return int(time.time())
