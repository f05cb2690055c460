"""Stories: posts that report the same event, grouped at sync time.

A post's *fingerprint* is what grouping looks at: the character bigrams of its folded title, those of its
opening (the title and the first `OPENING_CHARS` characters of the body: where rewrites of one report
share their sentences, names and figures), and the figures (numbers) in the title and the opening.

Two posts report the same event when
- their figures do not conflict: each title has a figure the other post does not mention (`40亿` vs
  `30亿`, target price 6.1 vs 22.83) means different events — also for successive updates of one
  figure: a new figure is news, it gets its own card (decided; see README "Stories");
- they are similar: `sqrt(opening containment × title cover)` ≥ `THRESHOLD`, where opening containment
  is the share of the smaller opening's bigrams found in the other opening (a short flash and its full
  article meet), and title cover the mean share of each title's bigrams found in the other's opening (an
  article that only mentions the flash's subject in passing does not);
- they are within the window (`STORY_WINDOW_HOURS`, default 48) of each other and of the story's first
  report: a story never spans more than the window, however many reports chain on.

We looked at datasketch (MinHash LSH) and simhash first: both estimate the Jaccard similarity of two
sets, and same-event pairs here are often a short flash inside a longer article (Jaccard 0.1–0.2,
containment near 1). Measured on the labelled finews pairs (tests/data/finews_stories.json) with *exact*
Jaccard (what MinHash estimates): it reaches the same precision and recall only in a narrow band (0.15
with these openings; 0.1 merges six different-event pairs, 0.2 loses five more same-event pairs), where
a MinHash estimate (±0.03 at 128 permutations) and LSH banding (useful recall from ~0.3) are unreliable;
the score here keeps precision 1.0 and the same recall from 0.40 to 0.50. Candidates come from an inverted
index of the window's title bigrams instead (common bigrams skipped), so a post is compared with a few
posts, not the whole window.

`Grouper` is pure Python and holds only the window's posts (at most `MAX_WINDOW_POSTS`); the store
persists the result (`post_story`) and reads the stored neighbours a sync's grouper needs. A sync
(store.sync) runs it in the sync's own process or, for a large sync, in a process of its own at the
lowest CPU priority (`process_*` below), fed each post's `StoryKey` by the sync's workers.
"""

from __future__ import annotations

import heapq
import math
import re
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

from .text import fold

OPENING_CHARS = 150
OPENING_READ = 2 * OPENING_CHARS  # body characters read for the opening (punctuation and spaces go)
THRESHOLD = 0.45
MAX_CANDIDATES = 5  # most similar candidates (by shared title bigrams) scored per post
COMMON_BIGRAM = 64  # a title bigram in more window posts than this does not find candidates
MAX_WINDOW_POSTS = 5000  # posts the grouper keeps; the oldest go first
DEFAULT_WINDOW_HOURS = 48

_NOT_WORD = re.compile(r"[\W_]+")
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


PROBE_BIGRAMS = 30  # body bigrams (after the title's) that look for candidates


def _pairs(text: str) -> bytes:
    """Each character with the next as one 64-bit code (the two code points' UTF-32 bytes), as the
    bytes of an array of them: taken in C from two aligned views of the encoded text, pairs (0, 1),
    (2, 3), … then (1, 2), (3, 4), … A single character is its own code."""
    raw = text.encode("utf-32-le", "surrogatepass")
    if len(text) < 2:
        return raw + bytes(4) if text else b""
    n = len(text)
    return raw[: 8 * (n // 2)] + raw[4 : 4 + 8 * ((n - 1) // 2)]


def _bigrams(text: str) -> frozenset[int]:
    return frozenset(array("Q", _pairs(text)))


def _figures(folded: str) -> set[str]:
    """The numbers in a text: 00388 and 0388 are one stock code, 40 and 40.0 one figure."""
    out = set()
    for n in _FIGURE.findall(folded):
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        out.add(n.lstrip("0") or "0")
    return out


def fingerprint(title: str, body: str) -> Fingerprint:
    return Fingerprint(fold(title), fold(body[:OPENING_READ]))


# A post's story key, as sync workers send it: its folded title and the folded start of its body
# (OPENING_READ characters). Grouping makes the fingerprint: that work runs in the grouper's process.
StoryKey = tuple[str, str]


class Fingerprint:
    """What grouping compares, of a post's folded title and opening, built as far as it is used: the
    title's bigrams at once (they find candidates), the opening's bigrams when the post is first
    compared, the figures only when two posts are similar enough for them to matter."""

    __slots__ = ("title", "_title_chars", "_text", "_folded", "_opening", "_figures")

    def __init__(self, f_title: str, f_opening: str):
        t = _NOT_WORD.sub("", f_title)
        self.title: frozenset[int] = _bigrams(t)  # (see _pairs)
        self._title_chars = len(t)
        # the body's first OPENING_CHARS word characters, from as little of it as will do
        head = OPENING_CHARS + OPENING_CHARS // 4
        body = _NOT_WORD.sub("", f_opening[:head])
        if len(body) < OPENING_CHARS and len(f_opening) > head:
            body = _NOT_WORD.sub("", f_opening)
        self._text = t + body[:OPENING_CHARS]  # title and body meet without a gap
        self._folded = (f_title, f_opening)
        self._opening: frozenset[int] | None = None
        self._figures: tuple[frozenset[str], frozenset[str]] | None = None

    @property
    def opening(self) -> frozenset[int]:
        """The bigrams of the title and the body's first OPENING_CHARS characters."""
        if self._opening is None:
            self._opening = _bigrams(self._text)
        return self._opening

    @property
    def probe(self) -> frozenset[int]:
        """The bigrams of the title and the body's first PROBE_BIGRAMS: what looks for candidates."""
        return _bigrams(self._text[: self._title_chars + PROBE_BIGRAMS + 1])

    @property
    def figures(self) -> tuple[frozenset[str], frozenset[str]]:
        """(the title's figures, those of the title and the opening)."""
        if self._figures is None:
            f_title, f_opening = self._folded
            title = frozenset(_figures(f_title))
            self._figures = (title, title.union(_figures(f_opening)))
        return self._figures


def conflict(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether each title has a figure the other post does not mention."""
    (a_title, a_all), (b_title, b_all) = a.figures, b.figures
    return bool(a_title and b_title and (a_title - b_all) and (b_title - a_all))


def similarity(a: Fingerprint, b: Fingerprint, at_least: float = 0.0) -> float:
    """How surely `a` and `b` report the same event, 0..1; 0 when their figures conflict, and as soon as
    the score cannot reach `at_least` (the titles' cover is computed first: two small intersections;
    figures are looked at last, only when the score reaches `at_least`)."""
    if not a.title or not b.title:  # (an opening holds its title's bigrams)
        return 0.0
    a_opening, b_opening = a.opening, b.opening
    cover = (len(a.title & b_opening) / len(a.title) + len(b.title & a_opening) / len(b.title)) / 2
    if cover < at_least * at_least:  # containment is at most 1
        return 0.0
    containment = len(a_opening & b_opening) / min(len(a_opening), len(b_opening))
    score = math.sqrt(containment * cover)
    if score >= at_least and score > 0 and conflict(a, b):
        return 0.0
    return score


@dataclass(slots=True)
class _Entry:
    ts: int
    story: int
    fp: Fingerprint


@dataclass(slots=True)
class _Span:
    first: int
    last: int


@dataclass
class Grouper:
    """Assigns posts to stories, one post at a time, against the posts it holds (the window).

    `next_story` is the id the next new story gets. `changes` collects rowid -> (story, ts) of every
    post whose story was set or changed (assigned posts and the held reports of merged stories), and
    `new_merges` the (story, into) merges, for the store to write in the same transaction as the posts
    (store.story_rows.take_writes). A window of 0 turns grouping off: every post is its own story.
    """

    window: int  # seconds
    next_story: int
    entries: dict[int, _Entry] = field(default_factory=dict)
    spans: dict[int, _Span] = field(default_factory=dict)
    changes: dict[int, tuple[int, int]] = field(default_factory=dict)
    new_merges: list[tuple[int, int]] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)  # story -> the story it was merged into
    _index: dict[int, set[int]] = field(default_factory=dict)
    _by_ts: list[tuple[int, int]] = field(default_factory=list)  # heap of (ts, rowid)
    _newest: int = 0

    # --- the window ------------------------------------------------------------------------

    def hold(
        self, rowid: int, ts: int, story: int, fp: Fingerprint, span: tuple[int, int] | None = None
    ) -> None:
        """Take a post whose story is already known (a stored neighbour) into the window."""
        self.drop(rowid)
        self._put(rowid, _Entry(ts, story, fp))
        s = self.spans.get(story)
        first, last = span if span else (ts, ts)
        if s is None:
            self.spans[story] = _Span(first, last)
        else:
            s.first, s.last = min(s.first, first, ts), max(s.last, last, ts)

    def drop(self, rowid: int) -> None:
        entry = self.entries.pop(rowid, None)
        if entry is None:
            return
        index = self._index
        for gram in entry.fp.title:
            posts = index[gram]  # every held post's title bigrams are indexed
            if len(posts) == 1:
                del index[gram]
            else:
                posts.discard(rowid)

    def _put(self, rowid: int, entry: _Entry) -> None:
        """Hold a post that is not held (callers drop it first)."""
        self.entries[rowid] = entry
        index = self._index
        for gram in entry.fp.title:
            posts = index.get(gram)
            if posts is None:
                index[gram] = {rowid}
            else:
                posts.add(rowid)
        heapq.heappush(self._by_ts, (entry.ts, rowid))
        self._newest = max(self._newest, entry.ts)
        self._evict()

    def _evict(self) -> None:
        """Forget the oldest posts: beyond the window of the newest post seen (they can no longer be
        joined by posts arriving in date order), or beyond MAX_WINDOW_POSTS."""
        horizon = self._newest - 2 * self.window
        heap = self._by_ts
        while heap and (heap[0][0] < horizon or len(self.entries) > MAX_WINDOW_POSTS):
            ts, rowid = heapq.heappop(heap)
            entry = self.entries.get(rowid)
            if entry is not None and entry.ts == ts:
                self.drop(rowid)
        if len(heap) > 4 * MAX_WINDOW_POSTS:  # stale heap items of re-added posts
            self._by_ts = [(e.ts, r) for r, e in self.entries.items()]
            heapq.heapify(self._by_ts)

    # --- assigning -------------------------------------------------------------------------

    def _story(self, story: int) -> int:
        while story in self.merged:
            story = self.merged[story]
        return story

    def candidates(self, fp: Fingerprint) -> list[int]:
        """The held posts whose titles share most probe bigrams with `fp` (common bigrams skipped; one
        shared bigram can be all two reports' titles have in common: `FF` in two headlines on FF)."""
        lists = [posts for posts in map(self._index.get, fp.probe) if posts and len(posts) <= COMMON_BIGRAM]
        counts = Counter(chain.from_iterable(lists))
        if len(counts) <= MAX_CANDIDATES:
            return list(counts)
        return sorted(counts, key=counts.__getitem__, reverse=True)[:MAX_CANDIDATES]

    def assign(self, rowid: int, ts: int, fp: Fingerprint | None) -> int:
        """The story of a new or changed post; the post joins the window. An edited post is grouped
        anew: when it matches nothing it starts a new story, even if it was alone in its old one (its
        old story may have been sent to chats as another event). With grouping off (a window of 0; the
        sync then makes no fingerprints, `fp` is None) every post is a story of its own."""
        if rowid in self.entries:
            self.drop(rowid)
        if fp is None or self.window <= 0:
            story = self.next_story
            self.next_story += 1
            self.changes[rowid] = (story, ts)
            return story
        matches: list[tuple[float, int]] = []
        for other in self.candidates(fp):
            entry = self.entries[other]
            if abs(entry.ts - ts) > self.window:
                continue
            story = self._story(entry.story)
            span = self.spans.get(story)
            if span is not None and (ts - span.first > self.window or span.last - ts > self.window):
                continue
            score = similarity(fp, entry.fp, THRESHOLD)
            if score >= THRESHOLD:
                matches.append((score, story))
        if matches:
            matches.sort(reverse=True)
            story = matches[0][1]
            for _, other in matches[1:]:
                if other != story:
                    story = self._merge(story, other)
        else:
            story = self.next_story
            self.next_story += 1
        span = self.spans.setdefault(story, _Span(ts, ts))
        span.first, span.last = min(span.first, ts), max(span.last, ts)
        self._put(rowid, _Entry(ts, story, fp))
        self.changes[rowid] = (story, ts)
        return story

    def _merge(self, keep: int, other: int) -> int:
        """Merge two stories a post reports both of, when together they still fit the window; returns
        the story kept (the one that started first)."""
        a, b = self.spans.get(keep), self.spans.get(other)
        if a is None or b is None or max(a.last, b.last) - min(a.first, b.first) > self.window:
            return keep
        if (b.first, other) < (a.first, keep):
            keep, other, a, b = other, keep, b, a
        a.first, a.last = min(a.first, b.first), max(a.last, b.last)
        del self.spans[other]
        self.merged[other] = keep
        self.new_merges.append((other, keep))
        for rowid, entry in self.entries.items():
            if entry.story == other:
                entry.story = keep
                self.changes[rowid] = (keep, entry.ts)
        return keep


@dataclass
class StoryWrites:
    """What a batch changes in post_story: (rowid, story, ts) rows, and stories merged into others."""

    rows: list[tuple[int, int, int]] = field(default_factory=list)
    merged: list[tuple[int, int]] = field(default_factory=list)  # (story, into)
    next_story: int = 1


def take_writes(grouper: Grouper) -> StoryWrites:
    """The grouper's changes since the last call, as rows to write."""
    out = StoryWrites(
        rows=[(rowid, story, ts) for rowid, (story, ts) in grouper.changes.items()],
        merged=list(grouper.new_merges),
        next_story=grouper.next_story,
    )
    grouper.changes.clear()
    grouper.new_merges.clear()
    return out


# a stored post a sync gives the grouper as a neighbour: (rowid, ts, story, title, body's first characters)
StoredPost = tuple[int, int, int, str, str]


def assign_batch(grouper: Grouper, items: Sequence[tuple[int, int, StoryKey | None]]) -> StoryWrites:
    """The stories of a batch of new or changed posts, (rowid, ts, story key or None) each, grouped in
    date order, as rows to write."""
    grouped = grouper.window > 0
    for rowid, ts, key in sorted(items, key=lambda item: (item[1], item[0])):
        grouper.assign(rowid, ts, Fingerprint(*key) if key is not None and grouped else None)
    return take_writes(grouper)


def hold_stored(grouper: Grouper, posts: Sequence[StoredPost], spans: dict[int, tuple[int, int]]) -> None:
    """Give the grouper stored posts (with their stories' (first, last) dates) it does not hold yet."""
    for rowid, ts, story, title, opening in posts:
        if rowid not in grouper.entries:
            grouper.hold(rowid, ts, story, fingerprint(title, opening), spans.get(story))


# --- a grouper in a process of its own (a large sync runs one beside its parsing workers: store.sync) ---

_own: Grouper | None = None


def process_start(window: int, next_story: int) -> None:
    """Set up this process's grouper (its priority is the sync's to set: store.sync)."""
    global _own
    _own = Grouper(window, next_story)


def process_assign(items: Sequence[tuple[int, int, StoryKey | None]]) -> StoryWrites:
    assert _own is not None, "process_start first"
    return assign_batch(_own, items)


def process_hold(posts: Sequence[StoredPost], spans: dict[int, tuple[int, int]]) -> None:
    assert _own is not None, "process_start first"
    hold_stored(_own, posts, spans)
