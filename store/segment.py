"""Chinese word segmentation and the index texts of a post (one place, so index and query agree).

We use rjieba (jieba-rs with jieba's dictionary) with the HMM off: it gives the same tokens as pure-Python
jieba with HMM off, ~17× faster (see README), and HMM-off output does not depend on the statistical model
guessing new words, so index-time and query-time segmentation agree exactly.

A second, small index (`heads_fts`) holds each post's title alone (`HeadTexts`): its words, its CJK
characters, and every pair of adjacent CJK characters (whatever the archive's pair characters).

Six texts are indexed per post in the main index, as space-separated folded tokens (UTF-8 bytes:
`IndexTexts`) with punctuation already dropped (the FTS table's `ascii` tokenizer takes every non-ASCII
character as part of a token):
- ``title``, ``tags`` (categories + tags), ``body``: the jieba words;
- ``sub``: the extra search-mode pieces (清华 华大 大学 for 清华大学), unshown, low weight;
- ``chars``: every CJK character as its own token (other text collapsed to a gap token) — a phrase
  query over it is an exact substring match, which makes Chinese recall substring-complete (`知` finds
  `知道`);
- ``pairs``: each two adjacent characters as one token when both are among the archive's most common
  characters (its *pair characters*, `PAIR_CHARS` of them, chosen once per database from a sample:
  `pair_chars`), in text order (see `pairs` for the gaps between runs). A phrase over common characters is slow
  on the ``chars`` column (every post holds them: 是了 takes ~20 ms at 100k posts whatever it finds); the
  same substring as a phrase of pairs (为什么 → "为什 什么") reads a few short doclists, and it is just
  as exact: two pairs are adjacent tokens that overlap only where their characters are adjacent.
  With SEARCH_PAIRS=all every CJK character is a pair character (`ALL_PAIRS`): every query run of two
  or more characters is a phrase of pairs, and only single characters are looked up in ``chars``,
  which then holds each character of the post once (`distinct_chars`: a lookup needs no places).
  ``body`` then holds the body's other words only (Latin, digits): its CJK text is found through the
  pairs and chars, so a query's CJK words are matched there, and in the title and labels as words
  (store.search: a body's matches are then one band, newest first). On large posts (~3,000
  characters) the CJK body words were ~40% of a post's segmenting and ~30% of its index writing.

The FTS table is contentless: deleting a post's entry needs these same texts again, so they are
recomputed from the stored post. `INDEX_FORMAT` names everything the texts depend on; when it changes
(a new dictionary, a new OpenCC), the index is rebuilt rather than trusted.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, NamedTuple

from .stories import OPENING_READ
from .text import CJK_RANGES, CJK_SPANS, fold

if TYPE_CHECKING:
    import numpy as np

_TOKEN_OK = re.compile(r"\w", re.UNICODE)
_NON_CJK_RUN = re.compile(f"[^{CJK_RANGES}]+")
_CJK_RUN = re.compile(f"[{CJK_RANGES}]+")
# What a body's Latin words are segmented without (ALL_PAIRS): its CJK runs, and the whitespace and
# punctuation around them, which the segmenter would yield one by one for `_index_words` to drop (the
# same words, 0.44 → 0.34 ms a large post's analysis)
_NOT_LATIN_WORDS = re.compile(
    f"[{CJK_RANGES}\\s\u3000-\u303f\u2010-\u2027\u2030-\u205e"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+"
)
# Stands between two CJK runs in the chars text, so a phrase never matches across other text.
CHARS_GAP = "0"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


INDEX_FORMAT = (
    f"fts-v7 rjieba={_version('rjieba')} opencc={_version('opencc')} unicode={unicodedata.unidata_version}"
)


def index_format(pair_chars: str) -> str:
    """What the index texts of an archive with these pair characters are made by (stored with the index;
    an index made otherwise is rebuilt). With every pair indexed, bodies hold no CJK words (since
    session 24: an archive of long posts is indexed again once; others keep theirs)."""
    return INDEX_FORMAT + (" bodies=latin" if pair_chars == ALL_PAIRS else "")


@lru_cache(maxsize=1)
def _jieba():
    import rjieba

    return rjieba


def words(folded: str) -> list[str]:
    """Word tokens of an already folded text (whitespace and punctuation dropped)."""
    if not folded:
        return []
    return [t for t in _jieba().cut(folded, False) if _TOKEN_OK.search(t)]


def _index_words(tokens: list[str]) -> str:
    """Tokens as FTS text: the FTS5 `ascii` tokenizer takes every non-ASCII character as part of a
    token, so punctuation such as `，` or `—` must not reach it. jieba yields such characters one by one
    (its multi-character tokens are runs of CJK, ASCII letters and digits and `+#&._%-`, or `\r\n`),
    so dropping the single characters that are not letters or digits leaves the same tokens as
    `words()` (whose regex test is slower), with ASCII punctuation left to the tokenizer."""
    return " ".join([t for t in tokens if len(t) > 1 or t.isalnum()])


def chars(folded: str) -> str:
    """The CJK characters of the text, space-separated, with a gap token for anything between them.

    Only CJK is indexed here: Latin and digit words are words in the other columns already.
    """
    # str.replace with an empty pattern puts a space between every two characters, in C
    return _NON_CJK_RUN.sub(CHARS_GAP, folded).replace("", " ")[1:-1]


PAIR_CHARS = 200  # the most common characters whose adjacent pairs are indexed (~60% of Chinese text)
# The pair characters of an archive that indexes every pair of adjacent CJK characters (the
# SEARCH_PAIRS=all setting): a value no chosen set of CJK characters can be.
ALL_PAIRS = "*"
PAIR_TOKENS = 200  # at most this many pair tokens in a post, on average (finews-sized posts: ~170)
PAIR_CHARS_FEWEST = 20
PAIR_SAMPLE_POSTS = 500  # posts an archive's pair characters are counted in
PAIR_MIN_POSTS = 200  # an archive smaller than this has no pair characters yet (its phrases are cheap)


def pair_chars(texts: Iterable[str], mode: str = "common") -> str:
    """An archive's pair characters from a sample of its texts: its most common CJK characters (folded
    as the index folds them), most common first — PAIR_CHARS of them, or fewer when the sample's posts
    would hold more than PAIR_TOKENS pairs each on average: pairs cost the sync what their tokens cost,
    so long posts get the commonest characters only (their other index texts cost more already).
    Counted on the raw text, then folded one by one.

    `mode` "auto" (SEARCH_PAIRS=auto): posts that long get every pair instead (ALL_PAIRS). With only
    their commonest characters paired, the phrases of the others are what makes search slow on long
    posts (each character is in most of them); every pair makes it fast, for a slower full sync."""
    texts = list(texts)
    counts: Counter[str] = Counter()
    for text in texts:
        for run in _CJK_RUN.findall(text):
            counts.update(run)
    folded: Counter[str] = Counter()
    for ch, n in counts.most_common(4 * PAIR_CHARS):
        f = fold(ch)
        if len(f) == 1 and _CJK_RUN.fullmatch(f):
            folded[f] += n
    chars = "".join(ch for ch, _ in folded.most_common(PAIR_CHARS))
    while texts and (len(chars) > PAIR_CHARS_FEWEST or mode == "auto"):
        tokens = sum(pairs(text, chars).count(" ") + 1 for text in texts) / len(texts)
        if tokens <= PAIR_TOKENS:
            break
        if mode == "auto":
            return ALL_PAIRS
        chars = chars[: int(len(chars) * 0.75)]
    return chars


@lru_cache(maxsize=1)
def _numpy():
    """numpy, imported when index texts are first made: ~19 MB of memory a process that never makes
    them (the main process of a sync whose workers parse) does not carry."""
    import numpy

    return numpy


@lru_cache(maxsize=4)
def _char_table(chars: str) -> np.ndarray:
    """One flag per code point: is it one of `chars` (any CJK character for ALL_PAIRS)."""
    np = _numpy()
    table = np.zeros(sys.maxunicode + 1, dtype=bool)
    if chars == ALL_PAIRS:
        for first, last in CJK_SPANS:
            table[first : last + 1] = True
    else:
        table[[ord(ch) for ch in chars]] = True
    return table


def _code_points(text: str) -> np.ndarray:
    np = _numpy()
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _text_of(tokens: np.ndarray) -> str:
    """Rows of code points, each ending with a space, as one string without the last space."""
    return tokens.tobytes().decode("utf-32-le")[:-1]


def pairs(folded: str, chars: str) -> str:
    """The pairs text of a folded text for these pair characters (see the module's docstring): each
    run of pair characters as its adjacent pairs. Between two runs a gap token stands only where the
    second starts with the character the first ends with: elsewhere the last pair of one run and the
    first of the next do not overlap, which every two adjacent pairs of a query phrase do, so no phrase
    can match across them. Made run by run for a short text (a title), on code points for a long one."""
    if not chars or len(folded) < 2:
        return ""
    return _short_pairs(folded, chars) if len(folded) < PAIRS_SHORT else _long_pairs(folded, chars)


PAIRS_SHORT = 100  # texts shorter than this are paired run by run: numpy's calls cost more (~9 µs a title)


def _long_pairs(folded: str, chars: str) -> str:
    """`pairs` made on the text's code points with numpy, not character by character: with every pair
    indexed (ALL_PAIRS) a long post has thousands, and a Python string per pair cost ~220 µs a post of
    ~3,000 characters where this takes ~35."""
    np = _numpy()
    code = _code_points(folded)
    ok = _char_table(chars)[code]
    at = np.flatnonzero(ok[:-1] & ok[1:])  # where a pair starts
    if not at.size:
        return ""
    tokens = np.empty((at.size, 3), dtype=np.uint32)
    tokens[:, 0], tokens[:, 1], tokens[:, 2] = code[at], code[at + 1], ord(" ")
    # a pair that does not follow the one before it starts a new run: a gap before it where the run
    # before ends with the character it starts with
    gaps = np.flatnonzero((at[1:] != at[:-1] + 1) & (code[at[:-1] + 1] == code[at[1:]])) + 1
    if not gaps.size:
        return _text_of(tokens)
    gap = [ord(CHARS_GAP), ord(CHARS_GAP), ord(" ")]  # "00", made "0" below
    return _text_of(np.insert(tokens, gaps, gap, axis=0)).replace(CHARS_GAP * 2, CHARS_GAP)


@lru_cache(maxsize=4)
def _pair_runs(chars: str) -> re.Pattern[str]:
    """Runs of two or more pair characters."""
    return re.compile(f"[{CJK_RANGES if chars == ALL_PAIRS else re.escape(chars)}]{{2,}}")


def _short_pairs(folded: str, chars: str) -> str:
    """`pairs` of a short text, run by run: the same text as `_long_pairs` (a property test compares
    them), ~2 instead of ~9 µs for a title."""
    out: list[str] = []
    last = None
    for run in _pair_runs(chars).findall(folded):
        if run[0] == last:
            out.append(CHARS_GAP)
        out += [run[i : i + 2] for i in range(len(run) - 1)]
        last = run[-1]
    return " ".join(out)


def distinct_chars(folded: str) -> str:
    """Each CJK character of the text once, in code point order: the chars text of an archive that
    indexes every pair (ALL_PAIRS). There a query's run of two or more characters is a phrase of pairs,
    and only single characters are looked up among the chars, which needs each character once, not
    each of its places: ~800 tokens for a post of ~3,000 characters instead of ~3,000."""
    np = _numpy()
    code = _code_points(folded)
    cjk = np.sort(code[_char_table(ALL_PAIRS)[code]])
    if not cjk.size:
        return ""
    cjk = cjk[np.concatenate(([True], cjk[1:] != cjk[:-1]))]
    tokens = np.empty((cjk.size, 2), dtype=np.uint32)
    tokens[:, 0], tokens[:, 1] = cjk, ord(" ")
    return _text_of(tokens)


def pair_phrase(run: str, chars: str) -> list[str] | None:
    """A CJK run of a query as its pair tokens, when every character of it is a pair character and it
    has two or more; else None (its character phrase is cheap: a rare character leads it)."""
    if len(run) < 2 or not chars:
        return None
    if chars == ALL_PAIRS:
        if not _CJK_RUN.fullmatch(run):
            return None
    elif any(ch not in chars for ch in run):
        return None
    return [run[i : i + 2] for i in range(len(run) - 1)]


PIECES_CACHED = 200_000  # words whose search-mode pieces are remembered (a few tens of MB at most)
_pieces: dict[str, tuple[str, ...]] = {}


def _search_pieces(long_words: list[str]) -> set[str]:
    """The search-mode pieces of words of 3+ characters (jieba's `cut_for_search`: 清华大学 → 清华 华大
    大学 清华大学), remembered per word: an archive's long words are mostly its dictionary's, repeated
    from post to post, and segmenting each again cost the sync ~10% of its parsing. A word is cut on
    its own, as it was when the words were joined with spaces (a space ends jieba's blocks)."""
    out: set[str] = set()
    missing = []
    for w in long_words:
        got = _pieces.get(w)
        if got is None:
            missing.append(w)
        else:
            out.update(got)
    if missing:
        if len(_pieces) > PIECES_CACHED:
            _pieces.clear()
        cut = _jieba().cut_for_search
        for w in missing:
            got = _pieces[w] = tuple(cut(w, False))
            out.update(got)
    return out


class IndexTexts(NamedTuple):
    """A post's texts for the main FTS index, as UTF-8 bytes. SQLite stores bytes as they are and FTS5
    tokenizes a blob's bytes as text, so these reach it without being decoded from a sync's worker (as
    a pickled str is) and encoded again for SQLite, both in the process that writes: 85-130 µs of its
    ~1.3 ms a ~10 KB post, measured on whole syncs. (The index is contentless: they are never read back.)"""

    title: bytes
    tags: bytes
    body: bytes
    sub: bytes
    chars: bytes
    pairs: bytes


class HeadTexts(NamedTuple):
    """A post's title alone, for the small `heads_fts` index that finds title matches across the whole
    archive (a title is ~1% of a post: its doclists are short enough to read completely). UTF-8 bytes,
    as IndexTexts."""

    title: bytes  # the title's words, as in IndexTexts.title
    chars: bytes  # the title's CJK characters, as in IndexTexts.chars
    # every two adjacent CJK characters of the title as one token (`pairs` with ALL_PAIRS, whatever the
    # archive's pair characters): a title substring of two or more characters is a phrase of pairs,
    # one short doclist for two characters (谈谈 in 3,800 of 100,000 titles: 0.09 instead of 0.38 ms)
    pairs: bytes


def head_texts(f_title: str, title_words: bytes) -> HeadTexts:
    """The titles' index texts of a folded title (and its words, as made for the main index)."""
    return HeadTexts(title_words, chars(f_title).encode(), pairs(f_title, ALL_PAIRS).encode())


def title_head_texts(title: str) -> HeadTexts:
    """The titles' index texts of a title alone (what `analyse` makes of it)."""
    f_title = fold(title)
    return head_texts(f_title, _index_words(_jieba().cut(f_title, False)).encode())


RANK_LABELS = "\x1f"  # in a rank_text, between the folded title and the folded labels


class Analysis(NamedTuple):
    """Everything the store derives from a post's text, each text folded once."""

    fts: IndexTexts
    heads: HeadTexts
    rank_text: str  # folded title, a unit separator, folded categories and tags: what ranking looks at
    category_keys: list[str]
    tag_keys: list[str]
    opening: str  # the folded opening of the body, for story fingerprints (store.stories)


def analyse(title: str, body: str, categories: list[str], tags: list[str], pair_chars: str = "") -> Analysis:
    """The FTS texts, ranking text and folded labels of a post. Deterministic for a given INDEX_FORMAT
    and the archive's pair characters."""
    jieba = _jieba()
    f_title, f_body = fold(title), fold(body)
    category_keys = [fold(c) for c in categories]
    tag_keys = [fold(t) for t in tags]
    labels = " ".join(category_keys + tag_keys)
    t_words = jieba.cut(f_title, False)
    if pair_chars == ALL_PAIRS:
        # every run of the body's CJK characters is found as a phrase of pairs (one character among the
        # chars): its CJK words would only tell a word match from a substring match within the body's
        # band, and cost a large post most of its segmenting and a third of its index writing
        b_words = jieba.cut(_NOT_LATIN_WORDS.sub(" ", f_body), False)
    else:
        b_words = jieba.cut(f_body, False)
    seen = set(t_words)
    seen.update(b_words)
    extra = _search_pieces([w for w in seen if len(w) > 2]).difference(seen)
    title_words = _index_words(t_words).encode()
    text = f_title + "\n" + f_body
    fts = IndexTexts(
        title=title_words,
        tags=_index_words(jieba.cut(labels, False)).encode(),
        body=_index_words(b_words).encode(),
        sub=" ".join(sorted(extra)).encode(),
        chars=(distinct_chars(text) if pair_chars == ALL_PAIRS else chars(text)).encode(),
        pairs=pairs(text, pair_chars).encode(),
    )
    heads = head_texts(f_title, title_words)
    opening = f_body[:OPENING_READ]
    return Analysis(fts, heads, f_title + RANK_LABELS + labels, category_keys, tag_keys, opening)


def warm_up() -> None:
    """Load what the first text to index or query would otherwise wait for: the segmenter's dictionary
    (~90 ms), OpenCC's tables and the NFKC patterns (~25 ms): `①` and `預` take those paths. (What a
    search adds: store.search.warm_up.)"""
    analyse("預熱①", "预热 warm-up ①", [], [])
