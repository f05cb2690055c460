"""Query syntax and search.

Syntax: words are ANDed; ``"exact phrase"``; ``-word`` excludes; ``cat:NAME`` and ``#tag`` filter;
``since:YYYY-MM-DD`` / ``until:YYYY-MM-DD`` bound the date (until is inclusive). Anything else is text:
FTS5 operators, stray quotes, ``*``, ``NEAR(`` are never passed to SQLite unquoted.

Ranking, over every matching post of the archive (a post matches when each term matches in it as a
word, or as a substring of its title or body; every CJK character is also indexed as a token, and
adjacent ones as pairs (store.segment), so a phrase of characters or of pairs is an exact substring:
`知` finds `知道`). Results come in bands, newest first inside each band:
1. title: posts with a term in the title (word or substring), more of the terms first. Found in
   `heads_fts`, a small index of titles alone, whose doclists are short enough to read completely;
2. label: a term among the categories/tags;
3. word: every term as a word in the body;
4. substring: the rest (a term only inside a longer word of the body).
With every pair indexed (SEARCH_PAIRS=all, the default) bodies hold no Chinese words: for a query with
Chinese terms 3 and 4 are one band.
"Newest" is the most recently indexed (archives are indexed in date order; a backfill counts as new):
that order is the FTS index's own, so bands 2-4 are read in order and stop at the page, whatever the
number of matches. No decay between bands: a title hit from years ago beats today's body mention, as a
reader asking for a subject expects; recency decides inside a band. At most `MAX_RESULTS` results are
reachable by paging; the match count is exact up to that, "MAX_RESULTS+" beyond.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from .candidates import Reads, TooCostly
from .db import PostRow, SearchFilters, Store
from .segment import ALL_PAIRS, pair_phrase, words
from .segment import warm_up as warm_up_segmenter
from .text import CJK_CHAR, fold, may_fold_into, without_controls

MAX_RESULTS = 1000  # reachable by paging; the count is exact up to this
VERIFY_LIMIT = 120  # title candidates checked against the whole query (older than the newest matches)
# Caps on what one query may ask for (longer queries are cut, and the reply says so): each term and each
# filter becomes part of one SQL statement, and SQLite limits those (compound SELECT terms, expression
# depth); a reader's real query is far below these.
MAX_QUERY_CHARS = 500
MAX_TERMS = 12  # text terms and exclusions together
MAX_FILTERS = 8  # categories and tags together
SNIPPET_CHARS = 120
SNIPPET_SCAN = 20_000
SNIPPET_FOLD_SCAN = 3_000  # where a term is only found once the text is folded (Traditional, full-width)

_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_CAT_PREFIXES = ("cat:", "category:", "分类:", "分類:")
_TAG_PREFIXES = ("tag:", "标签:", "標籤:")


@dataclass
class Query:
    terms: list[str] = field(default_factory=list)  # positive text terms (a phrase is one term)
    excludes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    since: date | None = None
    until: date | None = None
    cut: str | None = None  # "length" or "terms" when the query was over a cap and was shortened

    @property
    def is_empty(self) -> bool:
        return not (self.terms or self.excludes or self.categories or self.tags or self.since or self.until)


def _split(text: str) -> list[tuple[str, bool]]:
    """Split on whitespace, keeping "quoted phrases" (an unclosed quote runs to the end)."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        neg = False
        if ch == "-" and i + 1 < n and text[i + 1] in '"“”':
            neg, i = True, i + 1
            ch = text[i]
        if ch in '"“”':
            end = i + 1
            while end < n and text[end] not in '"“”':
                end += 1
            out.append((("-" if neg else "") + text[i + 1 : end], True))
            i = end + 1
            continue
        end = i
        while end < n and not text[end].isspace():
            end += 1
        out.append((text[i:end], False))
        i = end
    return out


def parse_day(value: str) -> date | None:
    """A day as written in `since:`/`until:` (and the CLI's --since); None when it is not one."""
    m = _DATE.match(value.strip())
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_query(text: str) -> Query:
    """Parse a user query. Any string is accepted: over-long queries are cut to MAX_QUERY_CHARS, and
    terms/filters beyond MAX_TERMS/MAX_FILTERS are dropped (`cut` says which happened)."""
    q = Query()
    # (control characters and invisible ones dropped as from the posts: `人民\u200b币` pasted from a page
    # is 人民币)
    text = without_controls((text or "").replace("\x00", " "))
    if len(text) > MAX_QUERY_CHARS:
        text, q.cut = text[:MAX_QUERY_CHARS], "length"
    _parse_into(q, text)
    if len(q.terms) + len(q.excludes) > MAX_TERMS or len(q.categories) + len(q.tags) > MAX_FILTERS:
        q.cut = q.cut or "terms"
        q.terms = q.terms[:MAX_TERMS]
        q.excludes = q.excludes[: max(0, MAX_TERMS - len(q.terms))]
        q.categories = q.categories[:MAX_FILTERS]
        q.tags = q.tags[: max(0, MAX_FILTERS - len(q.categories))]
    return q


def _parse_into(q: Query, text: str) -> None:
    for raw, quoted in _split(text):
        neg = raw.startswith("-") and len(raw) > 1
        body = raw[1:] if neg else raw
        if not body.strip():
            continue
        if quoted:
            (q.excludes if neg else q.terms).append(body.strip())
            continue
        low = body.lower()
        prefix = next((p for p in _CAT_PREFIXES if low.startswith(p)), None)
        if prefix and len(body) > len(prefix) and not neg:
            q.categories.append(body[len(prefix) :])
            continue
        prefix = next((p for p in _TAG_PREFIXES if low.startswith(p)), None)
        if prefix and len(body) > len(prefix) and not neg:
            q.tags.append(body[len(prefix) :])
            continue
        if body[0] in "#＃" and len(body) > 1 and not neg:
            q.tags.append(body[1:])
            continue
        if low.startswith(("since:", "until:")) and not neg:
            day = parse_day(body[6:])
            if day is not None:
                if low.startswith("since:"):
                    q.since = day
                else:
                    q.until = day
                continue
        (q.excludes if neg else q.terms).append(body)


# --- FTS5 expressions (always built from quoted tokens) ------------------------------------------


def _phrase(tokens: list[str]) -> str:
    return '"' + " ".join(t.replace('"', '""') for t in tokens) + '"'


def _word_expr(toks: list[str], columns: str, single_columns: str | None = None) -> str | None:
    """The term's words as a phrase over `columns` (`single_columns` when it is one word)."""
    if not toks:
        return None
    cols = single_columns if single_columns and len(toks) == 1 else columns
    return cols + " : " + _phrase(toks)


_CJK_RUN = re.compile(f"{CJK_CHAR}+")
_CJK_ONLY = re.compile(f"(?:{CJK_CHAR}|\\s)+")
_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit, CJK included


def _char_expr(runs: list[str], latin: list[str], latin_columns: str, pair_chars: str = "") -> str | None:
    """Substring match: each CJK run of the term as a phrase of characters over the `chars` column (an
    exact substring), or, when every character of it is one of the archive's pair characters, as the
    same phrase over the `pairs` column (exact too, and cheap: store.segment; with every pair indexed,
    only single characters are looked up in `chars`, which then holds each once); the Latin/digit words as
    a phrase over `latin_columns` whose last word may be a prefix (`farad` finds `Faraday`; prefixes of
    fewer than 3 characters must match whole words)."""
    parts = []
    for run in dict.fromkeys(runs):  # each run once: `的a的a` needs 的 once, not a phrase per copy
        tokens = pair_phrase(run, pair_chars)
        parts.append(f"pairs : {_phrase(tokens)}" if tokens else f"chars : {_phrase(list(run))}")
    if latin:
        parts.append(latin_columns + " : " + _phrase(latin) + (" *" if len(latin[-1]) >= 3 else ""))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _one_token(run: str, pair_chars: str) -> str | None:
    """The one index token that is a CJK run's substring match (`_char_expr`), if there is one: a single
    character (the `chars` column), or two that are a pair (the `pairs` column)."""
    return run if len(run) == 1 or (len(run) == 2 and pair_phrase(run, pair_chars)) else None


def _either(*exprs: str | None) -> str | None:
    parts = [e for e in exprs if e]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


@dataclass
class _Term:
    """One query term, folded and segmented once, with its FTS5 expressions, built once per query."""

    text: str
    folded: str
    word: str | None  # as words anywhere (main index)
    chars: str | None  # as a substring of title or body (main index)
    head: str | None  # in the title, as words or a substring (heads_fts)
    label: str | None  # as words among the categories and tags (main index)
    any: str | None  # as a word anywhere or a substring of title or body: what a match needs
    costly_words: bool  # its words are single characters (这是, 高管): a word phrase costs a substring's
    cjk_only: bool  # only CJK characters and spaces: every title holding it matches `head`
    # every post matching `word` matches `any` too (not so for a CJK term of several words, whose words
    # may be adjacent in the index but apart in the text: 汇率，人民 for 汇率人民)
    words_within_any: bool
    # One run of CJK characters (no space): the heads_fts phrase of its pairs (of its character, for one),
    # which finds exactly the titles holding it (`head` finds more: its words, adjacent in the title's
    # words, may be apart in the title, `汇率，人民` for 汇率人民)
    title_chars: str | None
    every_pair: bool = False  # the archive indexes every pair (SEARCH_PAIRS=all, the default)

    @classmethod
    def of(cls, text: str, pair_chars: str = "", label_chars: frozenset[str] | None = None) -> _Term:
        """The term's expressions. `label_chars`: every character of the archive's labels, when known: a
        term with a word of another character cannot match among labels, and its label phrase (over
        word tokens that are common in bodies, 这 是: costly) is left out."""
        folded = fold(text)
        toks = words(folded)
        runs = _CJK_RUN.findall(folded)
        latin = words(_CJK_RUN.sub(" ", folded)) if runs else toks
        # with every pair indexed, bodies hold no CJK words (store.segment): a term with CJK characters
        # is matched as a substring there, and as words only among the labels
        body_words = not runs or pair_chars != ALL_PAIRS
        word = _word_expr(toks, "{title tags body}", "{title tags body sub}") if body_words else None
        chars = _char_expr(runs, latin, "{title body}", pair_chars)
        in_labels = label_chars is None or all(ch in label_chars for tok in toks for ch in tok)
        label = _word_expr(toks, "tags") if in_labels else None
        cjk_only = _CJK_ONLY.fullmatch(folded) is not None
        one_run = runs == [folded]  # the term is one run of CJK characters, nothing else
        token = _one_token(folded, pair_chars) if one_run else None
        any_: str | None
        if token is not None and (label is None or toks == [token]):
            # One index token: wherever it is a word (title, body, pieces) the text holds it, so it is
            # in the `pairs` or `chars` column too, and a label holding it is the label match. The token
            # in any column is that match, without FTS5 sifting each post's places by column (2-3 words
            # on 100,000 large posts: the expression 22-35% faster, the same posts).
            any_ = _phrase([token])
        elif chars and cjk_only:
            # A term of CJK only is a substring of the title or body wherever it is one of their words,
            # so its words are only looked for among the labels: one phrase to evaluate, not two.
            any_ = _either(label, chars)
        elif not body_words:
            # Latin and CJK: as words in the title or labels; in a body, each CJK run as a substring and
            # the Latin words as a phrase (adjacent once its CJK text is left out: `a不a` finds a是a…不)
            any_ = _either(_word_expr(toks, "{title tags}"), chars)
        else:
            any_ = _either(word, chars)
        return cls(
            text,
            folded,
            word,
            chars,
            _either(_word_expr(toks, "title"), _char_expr(runs, latin, "title", ALL_PAIRS)),
            label,
            any_,
            len(toks) > 1 and all(len(t) == 1 for t in toks),
            cjk_only,
            not cjk_only or len(toks) <= 1,
            _char_expr(runs, [], "", ALL_PAIRS) if one_run else None,
            pair_chars == ALL_PAIRS,
        )

    @property
    def matchable(self) -> bool:
        """Has a letter or digit: a term of only punctuation or operators (`%`, `++`, `_`) matches nothing."""
        return _WORD_CHAR.search(self.folded) is not None and bool(self.word or self.chars)


def _match_expr(terms: list[_Term], negatives: list[str]) -> str:
    """What a post must match: every term (as a word or a substring), none of the exclusions."""
    return _combine([a for t in terms if (a := t.any)], negatives)


def _combine(positive: list[str], negative: list[str]) -> str:
    expr = " AND ".join(f"({p})" for p in positive)
    for n in negative:
        expr += f" NOT {n}"
    return expr


# --- results ----------------------------------------------------------------------------------


@dataclass
class SearchHit:
    post: PostRow
    tier: str  # the band: 'title' | 'label' | 'word' | 'substring' | 'filter'
    snippet: str
    highlights: list[tuple[int, int]]

    def marked_snippet(
        self,
        open_mark: str = "**",
        close_mark: str = "**",
        escape=lambda s: s,
        limit: int | None = None,
        marks: int | None = None,
    ) -> str:
        """The snippet with matched terms between marks (the first `marks` of them); cut to `limit`
        characters (as plain text, before marking and escaping, so a cut never splits a mark or an
        entity)."""
        text, spans = self.snippet, self.highlights
        if limit is not None and len(text) > limit:
            text = text[: limit - 1] + "…"
            spans = [(s, e) for s, e in spans if e < limit]
        spans = spans[:marks]
        out, pos = [], 0
        for start, end in spans:
            out.append(escape(text[pos:start]))
            out.append(open_mark + escape(text[start:end]) + close_mark)
            pos = end
        out.append(escape(text[pos:]))
        return "".join(out)

    def to_json(self) -> dict:
        return self.post.to_json() | {"snippet": self.marked_snippet()}


@dataclass
class SearchPage:
    query: Query
    hits: list[SearchHit]
    offset: int
    has_more: bool
    total: int = (
        0  # matching stories (posts when over MAX_RESULTS matched); MAX_RESULTS + 1: "more than that"
    )
    # the search ran past the store's time limit (store.candidates.SEARCH_TIME_LIMIT) and was stopped:
    # no hits, and the reply says why
    too_costly: bool = False
    seconds: float = 0.0  # the time its statements kept the database busy (not the wait for it)

    @property
    def total_text(self) -> str:
        """The match count for people: "37", "1,000+"."""
        return f"{MAX_RESULTS:,}+" if self.total > MAX_RESULTS else f"{self.total:,}"


def _highlight_terms(q: Query) -> list[str]:
    out = []
    for term in q.terms:
        f = fold(term).strip()
        if f:
            out.append(f)
        out.extend(w for w in words(f) if len(w) > 1 and w not in out)
    return sorted(set(out), key=len, reverse=True)


def make_snippet(
    text: str, terms: list[str], width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` around the first match of any term, with the matched spans. Only the first
    SNIPPET_SCAN characters are looked at (a match further into a huge post shows its beginning), so a
    snippet costs the same whatever the post's size."""
    text = text[:SNIPPET_SCAN].replace("\n", " ")
    if not text:
        return "", []
    # Most text is its own folded form but for case: look for the terms in the lower-cased text first and
    # fold only the window; fold the whole text only when no term is found that way (Traditional
    # characters, full-width letters, diacritics) and a character of it may fold into a term's (a term
    # in the title only is mostly not in the body in any form: a scan says so, ~10 instead of ~80 µs).
    # (Terms without cased characters are looked for in the text itself: lower() makes a caseless
    # character only of itself, but for İ, whose lower case is two characters: ~15 µs of 3,000 saved.)
    low = text.lower() if any(t.upper() != t for t in terms) or "\u0130" in text else text
    first = min((at for term in terms if (at := low.find(term)) >= 0), default=-1)
    folded = None
    if first < 0 and len(low) == len(text) and not may_fold_into(text[:SNIPPET_FOLD_SCAN], terms):
        text, first = text[:SNIPPET_FOLD_SCAN], 0  # no term in any form: the beginning, as folding shows
    elif first < 0 or len(low) != len(text):
        text = text[:SNIPPET_FOLD_SCAN]
        folded = fold(text)
        if len(folded) != len(text):  # folding changed lengths (rare NFKC cases): show folded text
            text = folded
        first = min((at for term in terms if (at := folded.find(term)) >= 0), default=0)
    start = max(0, first - width // 4)
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    window = text[start:end]
    f_window = folded[start:end] if folded is not None else fold(window)
    if len(f_window) != len(window):
        window = f_window
    spans: list[tuple[int, int]] = []
    for term in terms:
        pos = f_window.find(term)
        while pos >= 0:
            span = (pos, pos + len(term))
            if not any(s < span[1] and span[0] < e for s, e in spans):
                spans.append(span)
            pos = f_window.find(term, pos + len(term))
    spans.sort()
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return prefix + window + suffix, [(s + len(prefix), e + len(prefix)) for s, e in spans]


def warm_up() -> None:
    """Load what the first search would otherwise wait for: the segmenter and folding tables
    (store.segment.warm_up) and the snippets' table of characters that fold into others (~60 ms,
    `may_fold_into`). The bot runs it in a thread at start; a sync's parsing workers, which make no
    snippets, warm the segmenter alone."""
    warm_up_segmenter()
    may_fold_into("預熱", ["预热"])


def day_start(day: date | None, zone: ZoneInfo, next_day: bool = False) -> int | None:
    """The timestamp a day (or the day after it) starts at in `zone`; None for no day, and for days at
    the ends of the calendar (`since:0001-01-01`, `until:9999-12-31`), which bound nothing."""
    if day is None:
        return None
    try:
        if next_day:
            day += timedelta(days=1)
        return int(datetime.combine(day, time(), zone).timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _terms(
    texts: list[str], pair_chars: str, label_chars: frozenset[str], key: Callable[[_Term], str | None]
) -> list[_Term]:
    """The terms of these texts, without those whose `key` an earlier one has."""
    out: dict[str | None, _Term] = {}
    for text in texts:
        term = _Term.of(text, pair_chars, label_chars)
        out.setdefault(key(term), term)
    return list(out.values())


async def _compile(store: Store, q: Query, tz: str | None) -> tuple[list[_Term], SearchFilters, list[str]]:
    """The query's terms (those made only of punctuation or operators, `%`, `++`, match nothing and are
    dropped from `q`), its filters, and its exclusion expressions."""
    pair_chars, label_chars = await store.pair_chars(), await store.label_chars()
    # each term once (as folded): a repeated term matches the same posts, and each copy would be
    # evaluated again (12 copies of a costly term cost 12 times one)
    terms = [t for t in _terms(q.terms, pair_chars, label_chars, lambda t: t.folded) if t.matchable]
    excludes = [t for t in _terms(q.excludes, pair_chars, label_chars, lambda t: t.any) if t.any]
    q.terms, q.excludes = [t.text for t in terms], [t.text for t in excludes]
    zone = ZoneInfo(tz or await store.archive_timezone())
    filters = SearchFilters(
        category_keys=[fold(c) for c in q.categories],
        tag_keys=[fold(t) for t in q.tags],
        since_ts=day_start(q.since, zone),
        until_ts=day_start(q.until, zone, next_day=True),
    )
    return terms, filters, [e for t in excludes if (e := t.any)]


class _Bands:
    """Collects the ranked rowids band by band, each post once and each story once (its best-ranked
    report), up to `want`; counts the stories of every post offered."""

    def __init__(self, want: int, story_of: Callable[[list[int]], dict[int, int]]):
        self.want = want
        self.story_of = story_of
        self.ranked: list[tuple[int, str]] = []
        self.seen: set[int] = set()
        self.stories: dict[int, int] = {}  # rowid -> story of the ranked posts
        self.stories_seen: set[int] = set()

    @property
    def full(self) -> bool:
        return len(self.ranked) >= self.want

    def add(self, rowids: list[int], tier: str) -> None:
        self.add_ranked([(rowid, tier) for rowid in rowids])

    def add_ranked(self, pairs: list[tuple[int, str]]) -> None:
        seen = self.seen
        new = [pair for pair in pairs if pair[0] not in seen]
        if not new:
            return
        rowids = [rowid for rowid, _ in new]
        stories = self.story_of(rowids)
        stories_seen, ranked, want = self.stories_seen, self.ranked, self.want
        # the page's posts one by one (a story's first report), the others only counted: up to 1,000
        # matches a search, most of them past the page
        if len(ranked) < want:
            for rowid, tier in new:
                story = stories[rowid]
                if story not in stories_seen:
                    stories_seen.add(story)
                    ranked.append((rowid, tier))
                    self.stories[rowid] = story
                    if len(ranked) >= want:
                        break
        seen.update(rowids)
        stories_seen.update(stories.values())


def _rank_all(
    r: Reads,
    bands: _Bands,
    terms: list[_Term],
    matches: list[int],
    wexpr: str | None,
    filters: SearchFilters,
    word_matches: list[int] | None = None,
) -> None:
    """Few matches (at most MAX_RESULTS, newest first): order them all exactly. Title and label hits are
    read from each post's folded title and labels (a term as a substring of them). `word_matches`: every
    post matching `wexpr`, when the caller knows them already."""
    if word_matches is None:
        word_matches = r.match_set(wexpr, filters, limit=len(matches)) if wexpr else []
    in_words = set(word_matches)
    hits = _title_hits(r, terms, matches)
    # by band, newest first: title hits keyed (more terms in the title first, then label hits, then
    # word hits; the sort is stable); label hits and the rest with every term as words first. Most
    # matches hold no term in their title or labels (their text is often not even read): they are
    # placed by `in_words` alone.
    titled: list[tuple[int, bool, bool, int]] = []
    labelled: tuple[list[int], list[int]] = ([], [])
    for rowid in [rowid for rowid in matches if rowid in hits] if hits else []:
        in_title, in_labels = hits[rowid]
        no_word = rowid not in in_words
        if in_title:
            titled.append((-in_title, not in_labels, no_word, rowid))
        elif in_labels:
            labelled[no_word].append(rowid)
    placed = {k[3] for k in titled}.union(*labelled)
    others = [rowid for rowid in matches if rowid not in placed] if placed else matches
    rest = ([r for r in others if r in in_words], [r for r in others if r not in in_words])
    titled.sort(key=lambda k: k[:3])
    bands.add_ranked(
        [(k[3], "title") for k in titled]
        + [(rowid, "label") for rowid in labelled[0] + labelled[1]]
        + [(rowid, "word") for rowid in rest[0]]
        + [(rowid, "substring") for rowid in rest[1]]
    )


# A term's titles are read from heads_fts up to this many per match (and 100): past that, reading every
# match's title and labels costs less. A title's rowid costs 0.3–0.7 µs; a post's title and labels
# (post_heads, read by rowid) ~2.5 µs when its pages are in SQLite's cache, 6–60 µs when they are not
# (2–3 words on 100,000 large posts: `数据 李彦宏 支付` read 854 of them in 5.0 ms, where the three
# terms' 2,600 titles take 2.3 ms). It was 2; paired A/B at 8, same results for all 1,600 queries:
# 2–3 words mean −2% warm, −17 to −32% with the database cold; single characters −6% (large) and −20%
# (finews-sized); the other classes unchanged. (With the titles and labels in memory, the tally of
# several terms is made there instead: store.head_map.term_hits, ~0.5 µs a match for three terms.)
TITLES_PER_MATCH = 8


def _title_hits(r: Reads, terms: list[_Term], matches: list[int]) -> dict[int, tuple[int, bool]]:
    """The matches with a term (as a substring) in their folded title or labels -> (how many terms the
    title holds, whether the labels hold one), read where it costs least. Several terms, with the titles
    and labels in memory: found in every match's there (one statement a term costs more: 2–3 words on
    100,000 large posts, paired, 0.69 -> 0.64 ms mean, p99 2.7 -> 2.3 ms). Otherwise, when every term is
    CJK only and no label can hold it (a character of it is in no label), the titles holding each term
    are read from heads_fts: for terms of one run of characters these are the answer (no post's title
    and labels are read; one term: 0.24 ms mean, against 0.85 finding it in every match's title); for
    others (`"汇率 人民"`) they say whose title and labels to read. Otherwise, or when a term is in more
    titles than a reading of every match's title costs, every match's is read."""
    if not all(t.cjk_only and t.label is None and t.head for t in terms) or (
        len(terms) > 1 and r.heads_in_memory()
    ):
        return _hits_in_texts(r, terms, matches)
    exact = all(t.title_chars for t in terms)
    cap = TITLES_PER_MATCH * len(matches) + 100
    sets: list[set[int]] = []
    for t in terms:
        found = r.head_match_set((t.title_chars if exact else t.head) or "", limit=cap + 1)
        if len(found) > cap:
            return _hits_in_texts(r, terms, matches)
        sets.append(set(found))
    if not exact:
        titled = set().union(*sets)
        return _hits_in_texts(r, terms, [rowid for rowid in matches if rowid in titled])
    counts: dict[int, int] = {}
    among = set(matches)
    for titled_set in sets:
        for rowid in titled_set & among:
            counts[rowid] = counts.get(rowid, 0) + 1
    return {rowid: (n, False) for rowid, n in counts.items()}


def _hits_in_texts(r: Reads, terms: list[_Term], rowids: list[int]) -> dict[int, tuple[int, bool]]:
    """`_title_hits` from the posts' folded titles and labels (post_heads, in memory: store.head_map)."""
    return r.term_hits(rowids, [t.folded for t in terms])


def _title_band(
    r: Reads,
    bands: _Bands,
    terms: list[_Term],
    expr: str,
    negatives: list[str],
    filters: SearchFilters,
    known: set[int] | None = None,
) -> None:
    """Many matches: the newest posts with every term in the title, then those with some, read from
    heads_fts in index order only as far as the page needs. Posts that might not match the whole query
    (other terms, exclusions) are checked against the main index; at most VERIFY_LIMIT such candidates
    are checked (those beyond appear in a later band)."""
    heads = [h for t in terms if (h := t.head)]
    if not heads:
        return
    every = " AND ".join(f"({h})" for h in heads)
    some = " OR ".join(f"({h})" for h in heads)
    plans = [(every, bool(negatives) or len(heads) < len(terms))]
    if len(heads) > 1:
        plans.append((some, True))
    for head_expr, check in plans:
        before, checked = None, 0
        while not bands.full and checked < VERIFY_LIMIT:
            batch = max(2 * (bands.want - len(bands.ranked)), 20) + min(len(bands.seen), 1000)
            rowids = r.head_matches(head_expr, filters, limit=batch, before=before)
            if rowids and check:
                unknown = [x for x in rowids if x not in bands.seen and (known is None or x not in known)]
                checked += len(unknown)
                ok = r.match_within(expr, unknown, None) if unknown else set()
                bands.add([x for x in rowids if x in ok or (known is not None and x in known)], "title")
            else:
                bands.add(rowids, "title")
            if len(rowids) < batch:
                break
            before = rowids[-1]


def _ordered_band(r: Reads, bands: _Bands, expr: str, filters: SearchFilters, tier: str) -> None:
    """Posts matching `expr` newest first, skipping those already ranked, until the page is full."""
    before = None
    while not bands.full:
        batch = max(2 * (bands.want - len(bands.ranked)), 50) + min(len(bands.seen), 5000)
        rowids = r.matches_desc(expr, filters, limit=batch, before=before)
        bands.add(rowids, tier)
        if len(rowids) < batch:
            return
        before = rowids[-1]


def _newest_matches(r: Reads, expr: str, filters: SearchFilters, likely_few: bool) -> list[int]:
    """The newest MAX_RESULTS + 1 posts matching `expr`, newest first. When they are `likely_few` (at
    most MAX_RESULTS: the query's word matches were counted and are), all of them are read in FTS5's own
    order, ~20% cheaper than newest first, and sorted; only when there are more after all are the newest
    read again. (Without the word count, single-character words often match more: 51% of such queries
    on 100,000 large posts, which then cost two reads, ~10% more on average.)"""
    if not likely_few:
        return r.matches_desc(expr, filters, limit=MAX_RESULTS + 1)
    matches = r.match_set(expr, filters, limit=MAX_RESULTS + 1)
    if len(matches) > MAX_RESULTS:
        return r.matches_desc(expr, filters, limit=MAX_RESULTS + 1)
    matches.sort(reverse=True)
    return matches


def _rank(
    r: Reads, terms: list[_Term], negatives: list[str], filters: SearchFilters, want: int
) -> tuple[_Bands, int]:
    """The ranked rowids (up to `want`) and the match count (MAX_RESULTS + 1: more than MAX_RESULTS)."""
    bands = _Bands(want, r.story_ids)
    if not terms:
        not_match = " OR ".join(negatives) if negatives else None
        newest = r.filtered_posts(filters, MAX_RESULTS + 1, not_match)
        bands.add(newest, "filter")
        return bands, len(newest)
    expr = _match_expr(terms, negatives)
    words_only = [w for t in terms if (w := t.word)]
    # the word expression, when it is cheap to evaluate (no term made of single-character words)
    cheap = len(words_only) == len(terms) and not any(t.costly_words for t in terms)
    wexpr = _combine(words_only, negatives) if cheap else None
    # Counting word matches is cheap (word doclists); substring matching (phrases of single-character
    # tokens) is what costs, so it is only counted when the words alone do not already exceed the cap.
    # Several words rarely match more than MAX_RESULTS posts together: their word matches are read as a
    # list at once, which both counts them and places them in the word band below (one evaluation of
    # the word expression instead of two); one word is counted, as it often matches more.
    word_matches: list[int] | None = None
    word_total: int | None = None
    if wexpr and len(terms) > 1:
        word_matches = r.match_set(wexpr, filters, limit=MAX_RESULTS + 1)
        total = len(word_matches)
    else:
        total = r.count_matches(wexpr, filters, MAX_RESULTS + 1) if wexpr else 0
        word_total = total if wexpr else None
    matches: list[int] = []
    if total <= MAX_RESULTS and wexpr is None and all(t.every_pair for t in terms):
        # No word count to go by, every pair indexed (bodies hold no Chinese words): the expression is
        # cheap (pairs and single characters, no phrase of characters), so one term is counted first;
        # else every match is read in FTS5's own order, up to the cap. Past it the bands below read only
        # as far as the page needs. (Paired A/B on 100,000 large posts, 200 queries a class: one word
        # p50 +28% when the newest 1,001 matches were read and all ranked instead; 2–3 words p99 −26 to −33%
        # against the layout with body words. Where a term is a phrase of characters, reading it twice
        # costs: finews-sized posts keep the path below.)
        if len(terms) == 1 and r.count_matches(expr, filters, MAX_RESULTS + 1) > MAX_RESULTS:
            # (one term often matches more: counted without reading its matches)
            total = MAX_RESULTS + 1
        else:
            matches = r.match_set(expr, filters, limit=MAX_RESULTS + 1)
            total = len(matches)
            matches = sorted(matches, reverse=True) if total <= MAX_RESULTS else []
    elif total <= MAX_RESULTS:
        matches = _newest_matches(r, expr, filters, likely_few=wexpr is not None)
        total = len(matches)
        if word_total is not None and all(t.words_within_any for t in terms):
            # every word match is among the matches: when none or all of them match as words, the count
            # says which without reading them (~0.2 ms of a one-word query with ~800 matches)
            if word_total == 0:
                word_matches = []
            elif word_total == total:
                word_matches = matches
    if total <= MAX_RESULTS:
        _rank_all(r, bands, terms, matches, wexpr, filters, word_matches)
        return bands, total
    if matches:
        # More than MAX_RESULTS matches, and the newest of them are read already: title hits from the
        # whole archive first (those among the newest need no check), then the newest matches ordered as
        # above; only they can be paged anyway.
        _title_band(r, bands, terms, expr, negatives, filters, known=set(matches))
        if not bands.full:  # (title hits filled the page: nothing after them is shown)
            _rank_all(r, bands, terms, matches, wexpr, filters, word_matches)
        return bands, total
    # Many matches: bands read in index order as far as the page needs. With more than MAX_RESULTS word
    # matches the page is filled from them, so the title check and the label band use the word
    # expression; substring-only matches would come after all of them.
    narrow = wexpr or expr
    _title_band(r, bands, terms, narrow, negatives, filters)
    labels = [lab for t in terms if (lab := t.label)]
    if labels and not bands.full:
        _ordered_band(r, bands, f"({narrow}) AND ({' OR '.join(labels)})", filters, "label")
    if wexpr and not bands.full:
        _ordered_band(r, bands, wexpr, filters, "word")
    if not bands.full:
        _ordered_band(r, bands, expr, filters, "substring")
    return bands, total


async def search(
    store: Store, text: str, *, limit: int = 10, offset: int = 0, tz: str | None = None
) -> SearchPage:
    """Run a user query. Never raises on odd input; an empty query returns no hits, and one whose
    statements run past the store's time limit is stopped: no hits, `too_costly`."""
    q = parse_query(text)
    limit = max(1, min(int(limit), 100))
    offset = max(0, min(int(offset), MAX_RESULTS))
    if q.is_empty:
        return SearchPage(q, [], offset, False)
    terms, filters, negatives = await _compile(store, q, tz)
    if q.is_empty:
        return SearchPage(q, [], offset, False)
    want = min(offset + limit, MAX_RESULTS) + 1
    end = min(offset + limit, MAX_RESULTS)

    busy = [0.0]  # the time the work below kept the database thread busy

    def work(r: Reads) -> tuple[_Bands, int, list[PostRow], dict[int, int]]:
        # every statement of the search in one hop to the database thread; a story is one result
        start = monotonic()
        try:
            bands, total = _rank(r, terms, negatives, filters, want)
            if total <= MAX_RESULTS:  # every match was offered to the bands: they counted its stories
                total = len(bands.stories_seen)
            shown = [rowid for rowid, _ in bands.ranked[offset:end]]
            sizes = r.story_sizes(bands.stories[rowid] for rowid in shown)  # only the page's stories
            return bands, max(total, len(bands.ranked)), r.posts(shown), sizes
        finally:
            busy[0] = monotonic() - start

    try:
        bands, total, posts, sizes = await store.read(work, time_limits=1)
    except TooCostly:
        return SearchPage(q, [], offset, False, too_costly=True, seconds=busy[0])
    ranked, stories = bands.ranked, bands.stories
    by_id = {p.rowid: p for p in posts}
    highlight = _highlight_terms(q)
    hits = []
    for rowid, tier in ranked[offset:end]:
        post = by_id.get(rowid)
        if post is None:
            continue
        post.story = stories[rowid]
        post.reports = sizes[post.story]
        snippet, spans = make_snippet(post.body or post.summary, highlight)
        hits.append(SearchHit(post, tier, snippet, spans))
    more = len(ranked) > offset + limit and offset + limit < MAX_RESULTS
    return SearchPage(q, hits, offset, more, total, seconds=busy[0])


async def matching(store: Store, text: str, rowids: list[int], tz: str | None = None) -> set[int]:
    """Which of `rowids` a query matches (substring-level, with the query's filters): for alerts. Raises
    TooCostly when its statements run past the store's time limit, counted per 10,000 posts (its work
    follows the span of `rowids`: 20-120 ms for a reader's query over 100,000 new large posts)."""
    q = parse_query(text)
    limits = max(1.0, len(rowids) / 10_000)
    compiled, filters, negatives = await _compile(store, q, tz)
    if q.is_empty or not rowids:
        return set()
    if compiled:
        expr = _match_expr(compiled, negatives)
        return await store.read(lambda r: r.match_within(expr, rowids, filters), limits)
    not_match = " OR ".join(negatives) if negatives else None

    def work(r: Reads) -> set[int]:
        keep: set[int] = set()
        for i in range(0, len(rowids), 500):
            part = rowids[i : i + 500]
            keep.update(r.filtered_posts(filters, len(part), not_match, within=part))
        return keep

    return await store.read(work, limits)
