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
