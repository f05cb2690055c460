"""Each post's folded title and labels (`post_heads.rank_text`) in memory, for search: ranking looks up
the titles and labels of up to 1,000 matches, and read from the table by rowid they cost ~2.5 µs a post
when its pages are in SQLite's cache and 6–60 µs when they are not (a query with 242 matches spent 1.8–
4.3 ms there on 100,000 large posts). The map holds the texts as one UTF-8 string of bytes, each text
followed by a record separator, and where each post's text starts, where its title ends and where the
text ends (three arrays indexed by rowid): ~6 MB of text and 2.4 MB of arrays at 100,000 posts, read
again (~90–150 ms) by the first search after posts were written (store.table_map).

Which matches hold a query's terms (`term_hits`) is answered without decoding and searching each
post's text on its own: the matches' texts are joined into one byte string and each term is looked for
in it with `bytes.find` (UTF-8: a term's bytes are found only where its characters are), a hit placed
in its post by bisection. 900 matches, three terms, ~450 of them in a title: ~1.3 instead of ~2.5 ms,
a post at a time (slicing, decoding, `in` on the title and on the labels)."""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from .segment import RANK_LABELS as LABELS
from .segment import _numpy  # (imported when the map is first read: the bot parses posts with it anyway)
from .table_map import MAX_ID, TableMap

# Past this many bytes of titles and labels (~1 million posts) the table is read instead.
MAX_BYTES = 64 << 20

_END = b"\x1e"  # after each text in the map's string


def hits_in_text(text: str, terms: Sequence[str]) -> tuple[int, bool]:
    """How many of the terms a post's rank_text holds in its title, and whether its labels hold one:
    what `HeadMap.term_hits` answers for many posts at once."""
    title, _, labels = text.partition(LABELS)
    return sum(t in title for t in terms), any(t in labels for t in terms)


class HeadMap(TableMap):
    def __init__(self) -> None:
        super().__init__()
        self._text = b""
        self._start: Any = None  # rowid -> where its text starts in _text (-1: no post)
        self._title_end: Any = None  # rowid -> where its title ends (its first LABELS, else its end)
        self._end: Any = None  # rowid -> where its text ends (at its _END)

    def _load(self, conn: sqlite3.Connection) -> bool:
        self._text, self._start, self._title_end, self._end = b"", None, None, None
        # one statement (one snapshot): the rowids, their texts' lengths in bytes and the texts, each
        # aggregate taking the same rows in the same order
        ids, sizes, text = conn.execute(
            "SELECT json_group_array(rowid), json_group_array(length(CAST(rank_text AS BLOB))),"
            " group_concat(rank_text, char(30)) FROM post_heads"
        ).fetchone()
        rowids, lengths = json.loads(ids), json.loads(sizes)
        data = (text or "").encode() + (_END if rowids else b"")
        top = max(rowids, default=0)
        if top > MAX_ID or min(rowids, default=0) < 0 or len(data) > MAX_BYTES:
            return False
        # (texts that are not valid UTF-8 as stored: read the table)
        if sum(lengths) + len(rowids) != len(data):
            return False
        np = _numpy()
        rows, size = np.asarray(rowids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        at = np.cumsum(size + 1) - (size + 1)
        start = np.full(top + 1, -1, dtype=np.int64)
        end = np.zeros(top + 1, dtype=np.int64)
        start[rows], end[rows] = at, at + size
        # each title ends at its text's first LABELS, if it has one
        marks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord(LABELS))
        first = np.searchsorted(marks, at)
        mark = marks[np.minimum(first, len(marks) - 1)] if len(marks) else at + size
        title_end = end.copy()
        title_end[rows] = np.where((first < len(marks)) & (mark < at + size), mark, at + size)
        self._text = data
        self._start, self._title_end, self._end = start, title_end, end
        return True

    def rank_texts(self, rowids: Sequence[int]) -> dict[int, str]:
        """rowid -> folded title, a unit separator, folded categories and tags (posts that exist)."""
        assert self._start is not None
        text, start, end, top = self._text, self._start, self._end, len(self._start)
        return {
            r: text[int(start[r]) : int(end[r])].decode() for r in rowids if 0 <= r < top and start[r] >= 0
        }

    def term_hits(self, rowids: Sequence[int], terms: Sequence[str]) -> dict[int, tuple[int, bool]]:
        """The posts (of `rowids`) whose title or labels hold a term (as a substring) -> what
        `hits_in_text` says of them."""
        assert self._start is not None
        np = _numpy()
        top = len(self._start)
        asked = np.fromiter((r for r in rowids if 0 <= r < top), dtype=np.int64)
        start = self._start[asked]
        posts, start = asked[start >= 0], start[start >= 0]
        if not posts.size:
            return {}
        end = self._end[posts]
        # the posts' texts, each with its _END, one after another (slices joined: no more memory than
        # the texts themselves, which a hostile archive's labels can make ~40 KB a post): where each
        # starts in `found`
        text = self._text
        found = b"".join([text[s:e] for s, e in zip(start.tolist(), (end + 1).tolist(), strict=True)])
        size = end - start + 1
        at = np.cumsum(size) - size
        shift = start - at
        titles, labels = _hits(
            found, terms, at.tolist(), (self._title_end[posts] - shift).tolist(), (end - shift).tolist()
        )
        ids = posts.tolist()
        return {ids[i]: (titles.get(i, 0), i in labels) for i in titles.keys() | labels}


def _hits(
    found: bytes, terms: Sequence[str], starts: list[int], title_ends: list[int], ends: list[int]
) -> tuple[dict[int, int], set[int]]:
    """Texts one after another in `found` (text i from starts[i], its title to title_ends[i], its end at
    ends[i]): text i -> how many terms its title holds; the texts whose labels (after the title's
    LABELS) hold one. Each term is looked for from one place to the next: past a title that holds it,
    on in its labels; past labels that hold it, on in the next text."""
    titles: dict[int, int] = {}
    labels: set[int] = set()
    for term in terms:
        pattern = term.encode()
        if not pattern:  # ("" is in every title and labels, as `in` says)
            for i in range(len(starts)):
                titles[i] = titles.get(i, 0) + 1
                labels.add(i)
            continue
        width = len(pattern)
        titled: set[int] = set()
        at = found.find(pattern)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            stop, title_end = at + width, title_ends[i]
            if stop <= title_end:
                titled.add(i)
                after = title_end
            elif at > title_end and stop <= ends[i]:
                labels.add(i)
                after = ends[i]
            else:  # (across the title's end or the text's: a term with a separator in it)
                after = at + 1
            at = found.find(pattern, max(after, at + 1))
        for i in titled:
            titles[i] = titles.get(i, 0) + 1
    return titles, labels
