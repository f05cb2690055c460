"""Stories in the database: each post's story (`post_story`), written in the sync's own transactions,
and the reads behind "+N reports", `newsbot stories` and delivering a story once. The grouping itself
is store.stories."""

from __future__ import annotations

from .base import StoreBase, _bounded
from .posts import POST_COLUMNS, PostRow
from .stories import MAX_WINDOW_POSTS, OPENING_CHARS, Grouper, fingerprint


class StoriesStore(StoreBase):
    async def next_story_id(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(story), 0) FROM post_story")
        return max(int(await self.get_meta("next_story", "1") or 1), int(rows[0][0]) + 1)

    async def stories_stale(self) -> bool:
        return await self.get_meta("stories_stale", "0") == "1"

    async def hold_neighbours(self, grouper: Grouper, lo: int, hi: int, skip: set[int]) -> int:
        """Give the grouper the stored posts dated lo..hi (not those in `skip`: posts this sync changes or
        deletes), nearest the middle first when there are more than it keeps. Returns how many."""
        mid = (lo + hi) // 2
        rows = await self._fetch(
            "SELECT s.rowid, s.ts, s.story, p.title, substr(p.body, 1, ?) FROM post_story s"
            " JOIN posts p ON p.rowid = s.rowid WHERE s.ts BETWEEN ? AND ? ORDER BY abs(s.ts - ?) LIMIT ?",
            (OPENING_CHARS * 2, lo, hi, mid, MAX_WINDOW_POSTS),
        )
        rows = [r for r in rows if r[0] not in skip and r[0] not in grouper.entries]
        stories = sorted({r[2] for r in rows})
        spans = {}
        if stories:
            spans = {
                r[0]: (r[1], r[2])
                for r in await self._rows_in(
                    "SELECT story, MIN(ts), MAX(ts) FROM post_story WHERE story IN ({}) GROUP BY story",
                    stories,
                )
            }
        for rowid, ts, story, title, opening in rows:
            grouper.hold(rowid, ts, story, fingerprint(title, opening), spans.get(story))
        return len(rows)

    async def story_posts(self, story: int) -> list[PostRow]:
        """A story's reports, first report first."""
        if story < 0:  # a post without a story row
            rows = await self._fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE rowid=?", (-story,))
        else:
            cols = ", ".join(f"p.{c.strip()}" for c in POST_COLUMNS.split(","))
            rows = await self._fetch(
                f"SELECT {cols} FROM post_story s JOIN posts p ON p.rowid = s.rowid WHERE s.story=?"
                " ORDER BY s.ts, s.rowid",
                (story,),
            )
        posts = [PostRow.from_row(r) for r in rows]
        for p in posts:
            p.story, p.reports = story, len(posts)
        return posts

    async def recent_stories(self, since_ts: int | None = None, limit: int = 20) -> list[list[PostRow]]:
        """The newest stories (by their latest report) with their reports, first report first."""
        limit = _bounded(limit, 1000)
        rows = await self._fetch(
            "SELECT story FROM post_story WHERE ts >= ? GROUP BY story ORDER BY MAX(ts) DESC, story DESC"
            " LIMIT ?",
            (since_ts if since_ts is not None else -(1 << 62), limit),
        )
        return [await self.story_posts(r[0]) for r in rows]
