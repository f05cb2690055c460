"""Search reads: the SQL behind store.search (candidates for an FTS5 expression, document-frequency
samples, filter-only queries, matching within given posts). The MATCH expressions themselves are built
by store.search from quoted tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import StoreBase, _bounded


class SearchStore(StoreBase):
    # --- search primitives (the MATCH expressions are built by store.search) -----------------

    async def head_matches(
        self, match: str, filters: SearchFilters | None, limit: int, before: int | None = None
    ) -> list[int]:
        """Up to `limit` posts whose title matches an FTS5 expression over heads_fts (and the filters),
        most recently indexed first, below rowid `before`."""
        return await self._desc("heads_fts", match, filters, limit, before)

    async def matches_desc(
        self, match: str, filters: SearchFilters | None, limit: int, before: int | None = None
    ) -> list[int]:
        """Up to `limit` posts matching an FTS5 expression over the main index (and the filters), most
        recently indexed first, below rowid `before`. FTS5 walks its doclists in rowid order and stops at
        the limit, so the cost follows the page, not the number of matches."""
        return await self._desc("posts_fts", match, filters, limit, before)

    async def _desc(
        self, table: str, match: str, filters: SearchFilters | None, limit: int, before: int | None
    ) -> list[int]:
        sql = f"SELECT f.rowid FROM {table} f"
        params: list[Any] = []
        if filters:
            sql += f" JOIN posts p ON p.rowid = f.rowid WHERE {table} MATCH ?"
            params.append(match)
            sql, params = filters.apply(sql, params)
        else:
            sql += f" WHERE {table} MATCH ?"
            params.append(match)
        if before is not None:
            sql += " AND f.rowid < ?"
            params.append(before)
        sql += " ORDER BY f.rowid DESC LIMIT ?"
        params.append(_bounded(limit))
        return [r[0] for r in await self._fetch(sql, params)]

    async def rank_texts(self, rowids: Sequence[int]) -> dict[int, str]:
        """rowid -> folded title, a unit separator, folded categories and tags."""
        rows = await self._rows_in("SELECT rowid, rank_text FROM post_heads WHERE rowid IN ({})", rowids)
        return {r[0]: r[1] for r in rows}

    async def count_matches(self, match: str, filters: SearchFilters | None, cap: int) -> int:
        """How many posts match, counting no further than `cap`."""
        inner = "SELECT f.rowid FROM posts_fts f"
        params: list[Any] = []
        if filters:
            inner += " JOIN posts p ON p.rowid = f.rowid WHERE posts_fts MATCH ?"
            params.append(match)
            inner, params = filters.apply(inner, params)
        else:
            inner += " WHERE posts_fts MATCH ?"
            params.append(match)
        rows = await self._fetch(f"SELECT COUNT(*) FROM ({inner} LIMIT ?)", [*params, _bounded(cap)])
        return int(rows[0][0])

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
