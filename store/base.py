"""What every part of the store shares: one aiosqlite connection, one write lock and transaction
helper, the schema migrations, metadata, and small SQL helpers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import aiosqlite

from .head_map import HeadMap
from .schema import MIGRATIONS, SCHEMA_VERSION, _statements
from .story_map import StoryMap


def _locked(method):
    """Run a writing method alone: never inside another method's open transaction on this connection."""

    @functools.wraps(method)
    async def wrapper(self: StoreBase, *args, **kwargs):
        async with self._lock:
            return await method(self, *args, **kwargs)

    return wrapper


class StoreBase:
    def __init__(self, conn: aiosqlite.Connection, path: str):
        self.conn = conn
        self.path = path
        # One connection serves the bot's handlers, the sync and the sender; writes take turns so a
        # handler's write never lands inside (or breaks) a sync's transaction.
        self._lock = asyncio.Lock()
        self._timezone: str | None = None
        self._pair_chars: str | None = None
        self._label_chars: frozenset[str] | None = None  # see PostsStore.label_chars
        self._states_cache: tuple[str | None, dict[str, tuple[int, int, int]]] | None = None
        # while a sync writes a fresh index (PostsStore.begin_fresh_index): the rowids written to it
        self._fresh: set[int] | None = None
        # tables search reads on every query, in memory (store.table_map): each post's story, each
        # post's folded title and labels
        self._story_map = StoryMap()
        self._head_map = HeadMap()

    # --- lifecycle ---------------------------------------------------------------------------

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
                await self._migrated_to(version)
                await self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                await self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
                )

    async def _migrated_to(self, version: int) -> None:
        """What a migration needs beyond its SQL, run in its transaction right after it (see the parts
        of the store that override this)."""

    def _stories_written(self) -> None:
        """Called after every write to `post_story` (even inside a transaction that may roll back): the
        story map is read again by the next search that finds no transaction open."""
        self._story_map.changed()

    def _heads_written(self) -> None:
        """Called after every write to `post_heads`, as `_stories_written`."""
        self._head_map.changed()

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """All rows of a statement, as a list (aiosqlite's execute_fetchall, typed)."""
        return list(await self.conn.execute_fetchall(sql, params))

    async def _rows_in(
        self, sql: str, values: Sequence[Any], chunk: int = 500, before: Sequence[Any] = ()
    ) -> list:
        """Run `sql`, whose "{}" stands for a list of placeholders, over `values` in chunks (`before`:
        the parameters that come before the list in every chunk)."""
        out: list = []
        for statement, params in chunked(sql, values, chunk, before):
            out += await self._fetch(statement, params)
        return out

    # --- metadata ----------------------------------------------------------------------------

    async def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = await self._fetch("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    @_locked
    async def set_meta(self, key: str, value: str) -> None:
        await self._put_meta(key, value)

    async def _drop_meta(self, key: str) -> None:
        await self.conn.execute("DELETE FROM meta WHERE key=?", (key,))
        if key == "pair_chars":
            self._pair_chars = None

    async def _put_meta(self, key: str, value: str) -> None:
        await self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        if key == "timezone":
            self._timezone = value
        elif key == "pair_chars":
            self._pair_chars = value

    async def archive_timezone(self) -> str:
        """The archive's time zone as recorded by the last sync (cached; a sync here updates it)."""
        if self._timezone is None:
            self._timezone = await self.get_meta("timezone", "UTC") or "UTC"
        return self._timezone

    async def pair_chars(self) -> str:
        """The archive's pair characters (store.segment), "" until a sync chose them (cached)."""
        if self._pair_chars is None:
            self._pair_chars = await self.get_meta("pair_chars", "") or ""
        return self._pair_chars

    async def current_seq(self) -> int:
        return int(await self.get_meta("sync_seq", "0") or 0)


def chunked(
    sql: str, values: Sequence[Any], chunk: int = 500, before: Sequence[Any] = ()
) -> Iterator[tuple[str, list[Any]]]:
    """(statement, parameters) for `sql`, whose "{}" stands for a list of placeholders, over `values` in
    chunks (SQLite limits the parameters of one statement); `before` comes first in every chunk."""
    values = list(values)
    for i in range(0, len(values), chunk):
        part = values[i : i + chunk]
        yield sql.format(",".join("?" * len(part))), [*before, *part]


T = TypeVar("T")


async def in_order(work: Iterable[Awaitable[T]], at_once: int) -> AsyncIterator[T]:
    """The results of `work` (taken from the iterable as it goes, so it may be a lazy generator), in
    order, with up to `at_once` of them running: a bounded window of tasks keeps memory flat however
    many there are. What is still running when the caller stops early is cancelled."""
    running: collections.deque[asyncio.Future[T]] = collections.deque()
    try:
        for item in work:
            running.append(asyncio.ensure_future(item))
            if len(running) >= at_once:
                yield await running.popleft()
        while running:
            yield await running.popleft()
    finally:
        for task in running:
            task.cancel()


def _bounded(n: int, high: int = 10**9) -> int:
    """A LIMIT or OFFSET SQLite accepts (a huge number from a user is an overflow error otherwise)."""
    return max(0, min(int(n), high))


def _json_list(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False)


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
