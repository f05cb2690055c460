"""Search reads: the SQL behind store.search (matches of an FTS5 expression in index order, counts,
titles and labels for ranking, filter-only queries, matching within given posts). The MATCH expressions
themselves are built by store.search from quoted tokens."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .base import StoreBase, _bounded, chunked
from .head_map import HeadMap, hits_in_text
from .posts import POST_COLUMNS, PostRow
from .story_map import StoryMap
from .table_map import TableMap

T = TypeVar("T")
M = TypeVar("M", bound=TableMap)

# A search's (or an alert query's) statements stop after this many seconds by default
# (SEARCH_TIME_LIMIT): its reply then says so. Readers' queries take milliseconds (p99 ~10-20 ms on
# 100,000 posts); some odd ones would hold the database for seconds (a term of one common character
# repeated 499 times: ~0.5 s; twelve terms of 的a…: ~4 s on 100,000 large posts), during which no other
# chat gets an answer.
SEARCH_TIME_LIMIT = 0.5
PROGRESS_STEPS = 1000  # SQLite VM steps between two looks at the clock (~every 0.5 ms in FTS5 work)

# match_within: posts this close are checked by walking the matches between them, at most so many a post
WITHIN_GAP = 4096
WALK_PER_ROWID = 64


class Reads:
    """The statements behind a search, run synchronously on the store's own connection in its thread:
    a search is one hop from the event loop (`SearchStore.read`) instead of one per statement (each
    aiosqlite call costs ~0.2 ms of thread hand-over, more than most of these statements)."""

    def __init__(
        self, conn: sqlite3.Connection, stories: StoryMap | None = None, heads: HeadMap | None = None
    ):
        self.conn = conn
        self._stories, self._heads = stories, heads
        self._ready: dict[int, bool] = {}  # id of a map -> whether it answers for this read

    def _answering(self, table_map: M | None) -> M | None:
        """`table_map` when it can answer (store.table_map), asked once per read; else None: its table
        is read."""
        if table_map is None:
            return None
        ok = self._ready.get(id(table_map))
        if ok is None:
            ok = self._ready[id(table_map)] = table_map.ready(self.conn)
        return table_map if ok else None

    def _story_map(self) -> StoryMap | None:
        """The store's story map (store.story_map), when it can answer."""
        return self._answering(self._stories)

    def _head_map(self) -> HeadMap | None:
        """The store's titles and labels in memory (store.head_map), when they can answer."""
        return self._answering(self._heads)

    def heads_in_memory(self) -> bool:
        """Whether posts' titles and labels are read from memory (`rank_texts`, `term_hits`)."""
        return self._head_map() is not None

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def _rows_in(self, sql: str, values: Sequence[Any], before: Sequence[Any] = ()) -> list[Any]:
        """`sql` ("{}" stands for a list of placeholders) over `values` in chunks."""
        return [
            row
            for statement, params in chunked(sql, values, before=before)
            for row in self._all(statement, params)
        ]

    def stories(self, rowids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """rowid -> (story, number of reports); a post without a story row is its own story (-rowid)."""
        of = self.story_ids(rowids)
        sizes = self.story_sizes(set(of.values()))
        return {r: (story, sizes[story]) for r, story in of.items()}

    def story_ids(self, rowids: Sequence[int]) -> dict[int, int]:
        """rowid -> story; a post without a story row is its own story (-rowid)."""
        if (known := self._story_map()) is not None:
            return known.story_ids(rowids)
        of = {
            r[0]: r[1]
            for r in self._rows_in("SELECT rowid, story FROM post_story WHERE rowid IN ({})", rowids)
        }
        return {r: of.get(r, -r) for r in rowids}

    def story_sizes(self, stories: Iterable[int]) -> dict[int, int]:
        """story -> number of reports (1 for a post's own story, -rowid)."""
        if (known := self._story_map()) is not None:
            return known.story_sizes(stories)
        stories = set(stories)
        ids = sorted(s for s in stories if s >= 0)
        sizes = {
            r[0]: r[1]
            for r in self._rows_in(
                "SELECT story, COUNT(*) FROM post_story WHERE story IN ({}) GROUP BY story", ids
            )
        }
        return {s: sizes.get(s, 1) for s in stories}

    def head_matches(
        self, match: str, filters: SearchFilters | None, limit: int, before: int | None = None
    ) -> list[int]:
        """Up to `limit` posts whose title matches an FTS5 expression over heads_fts (and the filters),
        most recently indexed first, below rowid `before`."""
        return self._rowids("heads_fts", match, filters, limit, before)

    def matches_desc(
        self, match: str, filters: SearchFilters | None, limit: int, before: int | None = None
    ) -> list[int]:
        """Up to `limit` posts matching an FTS5 expression over the main index (and the filters), most
        recently indexed first, below rowid `before`. FTS5 walks its doclists in rowid order and stops at
        the limit, so the cost follows the page, not the number of matches."""
        return self._rowids("posts_fts", match, filters, limit, before)

    def _rowids(
        self,
        table: str,
        match: str,
        filters: SearchFilters | None,
        limit: int,
        before: int | None,
        newest_first: bool = True,
    ) -> list[int]:
        """Up to `limit` rowids of `table` matching `match` (and the filters), below `before`: newest first,
        or in FTS5's own order (oldest first)."""
        sql, params = _matching(table, match, filters)
        if before is not None:
            sql += " AND f.rowid < ?"
            params.append(before)
        params.append(_bounded(limit))
        if newest_first:
            return [r[0] for r in self._all(sql + " ORDER BY f.rowid DESC LIMIT ?", params)]
        # One row, a JSON array of them all: Python's sqlite3 makes a tuple and an int of every row
        # fetched (~0.17 µs a row), json.loads only the ints (~0.07): a term in 3,800 titles was read in
        # 0.39 instead of 0.78 ms. (Their order is not relied on: these are read as sets, or sorted.)
        (array,) = self._all(f"SELECT json_group_array(rowid) FROM ({sql} LIMIT ?)", params)[0]
        return json.loads(array)

    def match_set(self, match: str, filters: SearchFilters | None, limit: int) -> list[int]:
        """Up to `limit` posts matching an FTS5 expression over the main index (and the filters), in
        FTS5's own order (oldest first): for a caller that wants them all, or as a set. FTS5 walks a
        doclist backwards by first reading each of its pages forwards, so newest first costs ~20–25% more
        (100,000 posts, 2–3-word queries: 1.21 vs 0.95 ms large, 2.79 vs 2.16 ms finews-sized)."""
        return self._rowids("posts_fts", match, filters, limit, None, newest_first=False)

    def head_match_set(self, match: str, limit: int) -> list[int]:
        """Up to `limit` posts whose title matches an FTS5 expression over heads_fts, in FTS5's own
        order (see `match_set`)."""
        return self._rowids("heads_fts", match, None, limit, None, newest_first=False)

    def count_matches(self, match: str, filters: SearchFilters | None, cap: int) -> int:
        """How many posts match, counting no further than `cap`."""
        inner, params = _matching("posts_fts", match, filters)
        return int(self._all(f"SELECT COUNT(*) FROM ({inner} LIMIT ?)", [*params, _bounded(cap)])[0][0])

    def rank_texts(self, rowids: Sequence[int]) -> dict[int, str]:
        """rowid -> folded title, a unit separator, folded categories and tags."""
        if (known := self._head_map()) is not None:
            return known.rank_texts(rowids)
        rows = self._rows_in("SELECT rowid, rank_text FROM post_heads WHERE rowid IN ({})", rowids)
        return {r[0]: r[1] for r in rows}

    def term_hits(self, rowids: Sequence[int], terms: Sequence[str]) -> dict[int, tuple[int, bool]]:
        """The posts (of `rowids`) whose folded title or labels hold a term as a substring -> (how many
        terms the title holds, whether the labels hold one): store.head_map."""
        if (known := self._head_map()) is not None:
            return known.term_hits(rowids, terms)
        out = {}
        for rowid, text in self.rank_texts(rowids).items():
            in_title, in_labels = hits_in_text(text, terms)
            if in_title or in_labels:
                out[rowid] = (in_title, in_labels)
        return out

    def match_within(
        self, match: str, rowids: Sequence[int], filters: SearchFilters | None = None
    ) -> set[int]:
        """Which of `rowids` match an FTS5 expression (and filters).

        Asked for one post at a time (`rowid IN (...)`), FTS5 parses the expression and seeks each of its
        doclists anew per post (~13 µs a post on 100,000 large posts); posts within WITHIN_GAP of each
        other are checked by one walk of the matches between the first and the last of them instead
        (~0.4 µs a match walked), at most WALK_PER_ROWID matches a post: where the matches are denser
        the rest of the run is checked one at a time. (A search's title candidates, 2–3-word queries on
        100,000 large posts: ~0.33 → 0.07 ms a check, mean −6%, p99 −16%.)"""
        if not rowids:
            return set()
        sql, params = _matching("posts_fts", match, filters)
        alone, runs = _runs(rowids, WITHIN_GAP)
        out: set[int] = set()
        walk = sql + " AND f.rowid >= ? AND f.rowid <= ? ORDER BY f.rowid LIMIT ?"
        for run in runs:
            limit = WALK_PER_ROWID * len(run)
            got = [r[0] for r in self._all(walk, [*params, run[0], run[-1], limit])]
            out.update(got)
            if len(got) == limit:  # (matches this dense cost more to walk than to seek)
                alone.extend(rowid for rowid in run if rowid > got[-1])
        if alone:
            one_by_one = sql.replace("{", "{{").replace("}", "}}") + " AND f.rowid IN ({})"
            out.update(r[0] for r in self._rows_in(one_by_one, alone, before=params))
        return out.intersection(rowids)

    def filtered_posts(
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
        return [r[0] for r in self._all(sql, params)]

    def posts(self, rowids: Sequence[int]) -> list[PostRow]:
        """The posts, in the order of `rowids` (those that still exist)."""
        rows = self._rows_in(f"SELECT {POST_COLUMNS} FROM posts WHERE rowid IN ({{}})", rowids)
        by_id = {r[0]: PostRow.from_row(r) for r in rows}
        return [by_id[r] for r in rowids if r in by_id]


def _runs(rowids: Sequence[int], gap: int) -> tuple[list[int], list[list[int]]]:
    """`rowids` in order, as those standing alone and runs of several, each within `gap` of the next."""
    alone: list[int] = []
    runs: list[list[int]] = []
    run: list[int] = []
    for rowid in [*sorted(set(rowids)), None]:
        if run and (rowid is None or rowid - run[-1] > gap):
            if len(run) > 1:
                runs.append(run)
            else:
                alone.append(run[0])
            run = []
        if rowid is not None:
            run.append(rowid)
    return alone, runs


def _matching(table: str, match: str, filters: SearchFilters | None) -> tuple[str, list[Any]]:
    """SELECT f.rowid of the rows of an FTS5 table matching `match` (and the filters, on posts p)."""
    if not filters:
        return f"SELECT f.rowid FROM {table} f WHERE {table} MATCH ?", [match]
    sql = f"SELECT f.rowid FROM {table} f JOIN posts p ON p.rowid = f.rowid WHERE {table} MATCH ?"
    return filters.apply(sql, [match])


class TooCostly(Exception):
    """A query's statements ran past the store's time limit and were stopped (`SearchStore.read`)."""


def _within(conn: sqlite3.Connection, seconds: float, fn: Callable[[], T]) -> T:
    """`fn()`, its statements stopped once it has run `seconds` (TooCostly). SQLite asks the progress
    handler every PROGRESS_STEPS steps of its VM, FTS5's reads of its index included; after the deadline
    the handler stops each statement (an interrupted SELECT ends without touching any transaction)."""
    deadline = time.monotonic() + seconds
    late = False

    def check() -> int:
        nonlocal late
        late = late or time.monotonic() > deadline
        return late

    conn.set_progress_handler(check, PROGRESS_STEPS)
    try:
        return fn()
    except sqlite3.OperationalError:
        if late:
            raise TooCostly(f"it took over {seconds:g} s (use fewer or more specific words)") from None
        raise
    finally:
        conn.set_progress_handler(None, 0)


class SearchStore(StoreBase):
    # seconds a search's or alert query's statements may run (0: no limit); set from SEARCH_TIME_LIMIT
    search_time_limit: float = SEARCH_TIME_LIMIT

    async def read(self, fn: Callable[[Reads], T], time_limits: float = 0) -> T:
        """Run `fn` with the search statements on the connection's own thread, in one hop. `time_limits`:
        for the work a user's query asks for, stopped (TooCostly) after that many `search_time_limit`s
        (0: never stopped)."""
        conn = self.conn
        stories, heads = self._story_map, self._head_map
        seconds = self.search_time_limit * time_limits

        def work() -> T:
            reads = Reads(conn._conn, stories, heads)
            return _within(conn._conn, seconds, lambda: fn(reads)) if seconds > 0 else fn(reads)

        return await conn._execute(work)

    async def load_maps(self) -> None:
        """Read the story map and the titles' map now if their tables changed (store.table_map), so that
        the first search after a sync does not wait for them (~30–60 and ~90 ms at 100,000 posts)."""
        await self.read(lambda r: (r._story_map(), r._head_map()))

    async def get_posts(self, rowids: Sequence[int]) -> list[PostRow]:
        """The posts, in the order of `rowids` (those that still exist)."""
        return await self.read(lambda r: r.posts(rowids)) if rowids else []

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
