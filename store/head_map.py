"""Each post's folded title and labels (`post_heads.rank_text`) in memory, for search: ranking looks up
the titles and labels of up to 1,000 matches, and read from the table by rowid they cost ~2.5 µs a post
when its pages are in SQLite's cache and 6–60 µs when they are not (a query with 242 matches spent 1.8–
4.3 ms there on 100,000 large posts). The map holds the texts as one UTF-8 string of bytes and where each
post's starts and ends (two arrays indexed by rowid): ~6 MB of text and 1.6 MB of arrays at 100,000
posts, read again (~90 ms) by the first search after posts were written (store.table_map)."""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Sequence

from .table_map import MAX_ID, TableMap

# Past this many bytes of titles and labels (~1 million posts) the table is read instead.
MAX_BYTES = 64 << 20


class HeadMap(TableMap):
    def __init__(self) -> None:
        super().__init__()
        self._text = b""
        self._start: array[int] | None = None  # rowid -> where its text starts in _text (-1: no post)
        self._end: array[int] | None = None  # rowid -> where it ends

    def _load(self, conn: sqlite3.Connection) -> bool:
        self._text, self._start, self._end = b"", None, None
        # one statement (one snapshot): the rowids, their texts' lengths in bytes and the texts, each
        # aggregate taking the same rows in the same order
        ids, sizes, text = conn.execute(
            "SELECT json_group_array(rowid), json_group_array(length(CAST(rank_text AS BLOB))),"
            " group_concat(rank_text, '') FROM post_heads"
        ).fetchone()
        rowids, lengths = json.loads(ids), json.loads(sizes)
        data = (text or "").encode()
        top = max(rowids, default=0)
        if top > MAX_ID or min(rowids, default=0) < 0 or len(data) > MAX_BYTES:
            return False
        if sum(lengths) != len(data):  # (texts that are not valid UTF-8 as stored: read the table)
            return False
        start = array("q", [-1]) * (top + 1)
        end = array("q", bytes(8 * len(start)))
        at = 0
        for rowid, size in zip(rowids, lengths, strict=True):
            start[rowid] = at
            at += size
            end[rowid] = at
        self._text, self._start, self._end = data, start, end
        return True

    def rank_texts(self, rowids: Sequence[int]) -> dict[int, str]:
        """rowid -> folded title, a unit separator, folded categories and tags (posts that exist)."""
        assert self._start is not None and self._end is not None
        text, start, end, top = self._text, self._start, self._end, len(self._start)
        return {r: text[start[r] : end[r]].decode() for r in rowids if 0 <= r < top and start[r] >= 0}
