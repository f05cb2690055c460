"""Each post's story and each story's size in memory, for search: a search places every match (up to
1,000) in its story, and reading those from `post_story` cost one B-tree lookup per match (~0.7 ms for
800 matches; up to a third of a one-word query on 100,000 large posts). The map answers from two arrays
of 64-bit integers (8 bytes per post and per story: 1.6 MB at 100,000 posts; the standard library's
`array`: the map brings no numpy, ~15 MB, into a process that does not load it otherwise), read again
from `post_story` (~30–60 ms at 100,000 posts) by the first search after the stories changed
(store.table_map). For an archive whose rowids or story numbers are too large to index an array by,
searches read the table."""

from __future__ import annotations

import itertools
import sqlite3
from array import array
from collections.abc import Iterable, Sequence
from operator import itemgetter

from .table_map import MAX_ID, TableMap


class StoryMap(TableMap):
    def __init__(self) -> None:
        super().__init__()
        self._story: array[int] | None = None  # rowid -> story (-rowid: none, the post is its own story)
        self._size: array[int] | None = None  # story -> number of reports

    def _load(self, conn: sqlite3.Connection) -> bool:
        self._story = self._size = None
        flat = array("q", itertools.chain.from_iterable(conn.execute("SELECT rowid, story FROM post_story")))
        rowids, stories = flat[0::2], flat[1::2]
        # (a post past the last story row has none: `story_ids` answers -rowid for it)
        top, top_story = max(rowids, default=0), max(stories, default=0)
        if max(top, top_story) > MAX_ID or min(rowids, default=0) < 0 or min(stories, default=0) < 0:
            return False
        story = array("q", range(0, -top - 1, -1))
        size = array("q", bytes(8 * (top_story + 1)))
        for rowid, of in zip(rowids, stories, strict=True):
            story[rowid] = of
            size[of] += 1
        self._story, self._size = story, size
        return True

    def story_ids(self, rowids: Sequence[int]) -> dict[int, int]:
        """rowid -> story; a post without a story row is its own story (-rowid)."""
        assert self._story is not None
        table, top = self._story, len(self._story)
        if len(rowids) > 1 and min(rowids) >= 0 and max(rowids) < top:  # (all in the table: looked up in C)
            return dict(zip(rowids, itemgetter(*rowids)(table), strict=True))
        return {r: table[r] if 0 <= r < top else -r for r in rowids}

    def story_sizes(self, stories: Iterable[int]) -> dict[int, int]:
        """story -> number of reports (1 for a post's own story, -rowid, and for a story without rows)."""
        assert self._size is not None
        sizes, top = self._size, len(self._size)
        return {s: (sizes[s] or 1) if 0 <= s < top else 1 for s in set(stories)}
