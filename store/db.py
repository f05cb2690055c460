"""The SQLite store: one `Store` object over one aiosqlite connection, made of one part per concern:

- `base.py`    the connection, write lock, transaction helper, migrations (`schema.py`), metadata;
- `posts.py`   posts and their index: what a sync writes, plain reads of posts and categories;
- `candidates.py` the SQL behind search (candidates, document frequencies, filters);
- `ledger.py`  auto-post rules and the delivery ledger;
- `chats.py`   chat languages and saved search queries;
- `story_rows.py` the reads of stories, and the newest posts a story at a time (grouping: `stories.py`);
- `table_map.py` what search reads on every query, in memory: `story_map.py` each post's story and
  each story's size, `head_map.py` each post's folded title and labels.

Nothing outside the store package writes SQL.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from .base import StoreBase, database_problem, now_ts
from .candidates import SearchFilters
from .chats import ChatStore
from .ledger import LedgerStore
from .posts import POST_COLUMNS, IndexedPost, PostRow, PostsStore
from .schema import MIGRATIONS, SCHEMA_VERSION
from .story_rows import StoriesStore

__all__ = [
    "MIGRATIONS",
    "POST_COLUMNS",
    "SCHEMA_VERSION",
    "IndexedPost",
    "PostRow",
    "SearchFilters",
    "Store",
    "StoreBase",
    "database_problem",
    "now_ts",
]


class Store(PostsStore, StoriesStore, LedgerStore, ChatStore):
    """The whole store: every part shares one connection, one write lock and one transaction helper."""

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        path = str(path)
        if path != ":memory:":
            # `~` as a shell would (DATABASE_PATH=~/newsbot/news.sqlite3 in .env or a unit file): SQLite
            # itself would look for a folder named `~`
            path = str(Path(path).expanduser())
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # a database that cannot be opened (a folder, not a database) fails here, before aiosqlite
            # starts its thread (which, failing, could outlive the event loop and print a traceback)
            await asyncio.to_thread(_probe, path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        store = cls(conn, path)
        try:
            # 8 KB pages (for a new database; an existing one keeps its own): FTS5's index pages and the
            # posts' text fit them better than 4 KB pages; a bulk load indexes ~10% faster.
            # secure_delete=FAST: some builds of SQLite (Debian's, which Python uses there) overwrite
            # every freed page with zeros, and the FTS5 merges of a sync free a great many: 15% of the
            # bytes a full sync writes (20,000 large posts: 2,370 → 1,980 MB, the same time). FAST still
            # clears deleted content where that costs no extra write (the archive is public anyway).
            await conn.executescript(
                "PRAGMA page_size=8192; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                " PRAGMA wal_autocheckpoint=16384; PRAGMA cache_size=-32000; PRAGMA temp_store=MEMORY;"
                " PRAGMA secure_delete=FAST;"
            )
            await store._use_wal()
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _probe(path: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    finally:
        conn.close()


class BackupError(Exception):
    """The copy could not be written where it was asked for (the live database is untouched)."""


class BackupStopped(Exception):
    """The copy was stopped (`backup`'s `stop`) and what it had written removed."""


BACKUP_STEP_PAGES = 1024  # pages copied between two looks at `stop` (8 MB of 8 KB pages)


def backup(
    source: str | os.PathLike[str], dest: str | os.PathLike[str], stop: threading.Event | None = None
) -> tuple[Path, int]:
    """Copy a live database to `dest` (into it, named as the database, when it is a folder, as `cp`
    does) with SQLite's online backup API, from a connection of its own: the copy is one consistent
    snapshot (one read transaction, held across its steps) while the bot and syncs go on writing (WAL
    lets them). Written to a temporary file first, checked and flushed to disk, then renamed into place.
    Returns where the copy is and its size in bytes. A copy that cannot be written (a full disk, a
    folder that cannot be written) raises BackupError, and one stopped by `stop` (looked at every
    BACKUP_STEP_PAGES pages) BackupStopped; either leaves no partial file behind: one that was left
    filled a full disk further. Synchronous: run it in a thread."""
    source = Path(source).expanduser()
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / source.name
    if dest.resolve() == source.resolve():
        raise BackupError("the copy cannot be the database itself")
    tmp = dest.with_name(dest.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute("BEGIN")  # (the snapshot: without it, a write between two steps restarts the copy)
        src.execute("PRAGMA schema_version").fetchone()  # (a problem of the database itself: raised as is)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _remove(tmp)
            out = sqlite3.connect(tmp)
            try:
                src.backup(out, pages=BACKUP_STEP_PAGES, progress=_step(stop))
                out.execute("PRAGMA journal_mode=DELETE")  # a self-contained file (no -wal beside it)
                problem = out.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                out.close()
            if problem != "ok":
                raise BackupError(f"the copy failed its check: {problem}")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)  # (on disk before it takes the name of a good copy)
            finally:
                os.close(fd)
            if stop is not None and stop.is_set():
                raise BackupStopped
            os.replace(tmp, dest)
        except BaseException as exc:
            _remove(tmp)
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise BackupError(_copy_problem(exc)) from None
            raise
    finally:
        src.close()
    return dest, dest.stat().st_size


def _step(stop: threading.Event | None) -> Callable[[int, int, int], None]:
    """The backup's progress callback: raises BackupStopped, which ends the copy, once `stop` is set."""

    def progress(status: int, remaining: int, total: int) -> None:
        if stop is not None and stop.is_set():
            raise BackupStopped

    return progress


def _remove(tmp: Path) -> None:
    """A partial copy and its rollback journal, if there are any."""
    for path in (tmp, tmp.with_name(tmp.name + "-journal")):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _copy_problem(exc: sqlite3.Error | OSError) -> str:
    """One line about a copy that could not be written, with what usually causes it."""
    if isinstance(exc, FileExistsError):  # (from mkdir: a file where a folder of the path should be)
        return f"{exc.filename} is a file, not a folder"
    if isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    low = text.lower()
    if any(k in low for k in ("disk is full", "disk i/o", "no space", "file too large", "quota")):
        return f"{text} (free some space where the copy goes)"
    if any(k in low for k in ("readonly", "read-only", "unable to open", "permission", "not a directory")):
        return f"{text} (can the copy's folder be written?)"
    return text
