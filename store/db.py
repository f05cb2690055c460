"""The SQLite store: one `Store` object over one aiosqlite connection, made of one part per concern:

- `base.py`    the connection, write lock, transaction helper, migrations (`schema.py`), metadata;
- `posts.py`   posts and their index: what a sync writes, plain reads of posts and categories;
- `candidates.py` the SQL behind search (candidates, document frequencies, filters);
- `ledger.py`  auto-post rules and the delivery ledger;
- `chats.py`   chat languages and saved search queries.

Nothing outside the store package writes SQL.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from .base import StoreBase, database_problem, now_ts
from .candidates import SearchFilters, SearchStore
from .chats import ChatStore
from .ledger import LedgerStore
from .posts import POST_COLUMNS, IndexedPost, PostRow, PostsStore
from .schema import MIGRATIONS, SCHEMA_VERSION

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


class Store(PostsStore, SearchStore, LedgerStore, ChatStore):
    """The whole store: every part shares one connection, one write lock and one transaction helper."""

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        path = str(path)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # a database that cannot be opened (a folder, not a database) fails here, before aiosqlite
            # starts its thread (which, failing, could outlive the event loop and print a traceback)
            await asyncio.to_thread(_probe, path)
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
