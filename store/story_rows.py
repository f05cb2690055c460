"""Stories in the database: the reads of `post_story` (written by PostsStore.write_batch in the sync's
own transactions): the newest posts a story at a time, "+N reports", `newsbot stories`, and the stored
neighbours a sync's grouper needs. The grouping itself is store.stories; a post's story and report
count come from `Reads.stories` (store.candidates), the one place that reads them."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from .base import _bounded
from .candidates import SearchStore
from .posts import POST_COLUMNS, PostRow
from .stories import MAX_WINDOW_POSTS, OPENING_READ, StoredPost

# p is its story's first report (earliest, then lowest rowid); a post without a story row is one
FIRST_REPORT = (
    "NOT EXISTS (SELECT 1 FROM post_story a JOIN post_story b ON b.story = a.story"
    " WHERE a.rowid = p.rowid AND (b.ts < a.ts OR (b.ts = a.ts AND b.rowid < a.rowid)))"
)
_P_COLUMNS = ", ".join(f"p.{c.strip()}" for c in POST_COLUMNS.split(","))


class StoriesStore(SearchStore):
    async def next_story_id(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(story), 0) FROM post_story")
        return max(int(await self.get_meta("next_story", "1") or 1), int(rows[0][0]) + 1)

    async def stories_stale(self) -> bool:
        return await self.get_meta("stories_stale", "0") == "1"

    async def stored_neighbours(
        self, lo: int, hi: int, skip: set[int]
    ) -> tuple[list[StoredPost], dict[int, tuple[int, int]]]:
        """The stored posts dated lo..hi (not those in `skip`: posts a sync changes or deletes), nearest
        the middle first when there are more than a grouper keeps, and their stories' (first, last)
        dates: what a sync's grouper holds as neighbours (store.stories.hold_stored)."""
        mid = (lo + hi) // 2
        rows = await self._fetch(
            "SELECT s.rowid, s.ts, s.story, p.title, substr(p.body, 1, ?) FROM post_story s"
            " JOIN posts p ON p.rowid = s.rowid WHERE s.ts BETWEEN ? AND ? ORDER BY abs(s.ts - ?) LIMIT ?",
            (OPENING_READ, lo, hi, mid, MAX_WINDOW_POSTS),
        )
        posts: list[StoredPost] = [tuple(r) for r in rows if r[0] not in skip]
        stories = sorted({p[2] for p in posts})
        spans: dict[int, tuple[int, int]] = {}
        if stories:
            spans = {
                r[0]: (r[1], r[2])
                for r in await self._rows_in(
                    "SELECT story, MIN(ts), MAX(ts) FROM post_story WHERE story IN ({}) GROUP BY story",
                    stories,
                )
            }
        return posts, spans

    async def latest(
        self, limit: int = 10, offset: int = 0, category_key: str | None = None
    ) -> list[PostRow]:
        """The newest posts (of a category), newest first, each story once: its first report (at its own
        date), with `story` and `reports` set."""
        limit, offset = _bounded(limit), _bounded(offset)
        if category_key is None:
            rows = await self._fetch(
                f"SELECT {_P_COLUMNS} FROM posts p WHERE {FIRST_REPORT} ORDER BY p.ts DESC, p.rowid DESC"
                " LIMIT ? OFFSET ?",
                (limit, offset),
            )
        else:
            rows = await self._fetch(
                f"SELECT {_P_COLUMNS} FROM post_terms t JOIN posts p ON p.rowid = t.post"
                f" WHERE t.kind='c' AND t.key=? AND {FIRST_REPORT} ORDER BY t.ts DESC, t.post DESC LIMIT ? OFFSET ?",
                (category_key, limit, offset),
            )
        posts = [PostRow.from_row(r) for r in rows]
        await self.attach_stories(posts)
        return posts

    async def stories_of(self, rowids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """rowid -> (story, number of reports)."""
        return await self.read(lambda r: r.stories(rowids)) if rowids else {}

    async def attach_stories(self, posts: Sequence[PostRow]) -> None:
        """Set each post's `story` and `reports` (the story's number of reports)."""
        of = await self.stories_of([p.rowid for p in posts])
        for p in posts:
            p.story, p.reports = of[p.rowid]

    async def story_posts(self, story: int) -> list[PostRow]:
        """A story's reports, first report first."""
        if story < 0:  # a post without a story row
            rows = await self._fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE rowid=?", (-story,))
            return _with_story(story, [PostRow.from_row(r) for r in rows])
        return (await self._reports([story]))[0]

    async def recent_stories(self, since_ts: int | None = None, limit: int = 20) -> list[list[PostRow]]:
        """The newest stories (by their latest report) with their reports, first report first."""
        limit = _bounded(limit, 1000)
        rows = await self._fetch(
            "SELECT story FROM post_story WHERE ts >= ? GROUP BY story ORDER BY MAX(ts) DESC, story DESC"
            " LIMIT ?",
            (since_ts if since_ts is not None else -(1 << 62), limit),
        )
        return await self._reports([r[0] for r in rows])

    async def _reports(self, stories: list[int]) -> list[list[PostRow]]:
        """The reports of each story (in the order given), first report first; read in one statement."""
        rows = await self._rows_in(
            f"SELECT s.story, {_P_COLUMNS} FROM post_story s JOIN posts p ON p.rowid = s.rowid"
            " WHERE s.story IN ({}) ORDER BY s.story, s.ts, s.rowid",
            stories,
        )
        by_story = {
            story: [PostRow.from_row(r[1:]) for r in group]
            for story, group in groupby(rows, key=lambda r: r[0])
        }
        return [_with_story(story, by_story.get(story, [])) for story in stories]


def _with_story(story: int, posts: list[PostRow]) -> list[PostRow]:
    for p in posts:
        p.story, p.reports = story, len(posts)
    return posts
