"""A table search reads on every query, copied into memory (store.story_map, store.head_map) and read
again by the first search after it changed: after this store wrote it (`changed`, a generation count)
or another connection committed anything (`PRAGMA data_version`). Inside an open transaction, where
what is read may still be rolled back, and when a copy would be too large (`_load` says so), searches
read the table."""

from __future__ import annotations

import sqlite3

# Past this rowid (an archive that has had millions of posts: rowids are never reused, so deleted posts
# count too) an array indexed by rowid would take more than 32 MB: the table is read instead.
MAX_ID = 4_000_000


class TableMap:
    def __init__(self) -> None:
        self._generation = 0  # how many times this store wrote the table since it opened
        self._built: tuple[int, int] | None = None  # (generation, data_version) it was read at
        self._ok = False  # whether the copy answers (it was not too large)
        self.loads = 0  # how many times it was read (for tests)

    def changed(self) -> None:
        """Called after every write to the table (even inside a transaction that may roll back)."""
        self._generation += 1

    def ready(self, conn: sqlite3.Connection) -> bool:
        """Whether the copy answers for `conn` now, reading it again first if the table changed."""
        if conn.in_transaction:
            return False
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._built != (self._generation, version):
            self.loads += 1
            self._ok = self._load(conn)
            self._built = (self._generation, version)
        return self._ok

    def _load(self, conn: sqlite3.Connection) -> bool:
        """Read the table; False when the copy would be too large to answer (it then holds nothing)."""
        raise NotImplementedError
