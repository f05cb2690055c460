"""Text handling: Markdown/HTML bodies to plain text, folding for search, summaries.

Everything here is pure (no I/O, no database) so it runs in sync worker processes.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser

# --- folding -----------------------------------------------------------------------------------

# The CJK ideographs, as (first, last) code points: the regex classes below and store.segment's
# per-code-point tables are made from this one list.
CJK_SPANS = (
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x20000, 0x3134F),  # extensions B..G
)
CJK_RANGES = "".join(f"{chr(first)}-{chr(last)}" for first, last in CJK_SPANS)
CJK_CHAR = f"[{CJK_RANGES}]"
_CJK_RE = re.compile(CJK_CHAR)
# Text made only of these characters needs no NFKC pass: NFKC leaves ASCII and CJK ideographs alone and
# changes only punctuation among the rest, which indexing and queries drop anyway (store.segment). Anything else (full-width
# letters and digits, ideographic space, compatibility ideographs, …) triggers the full normalisation.
# tests/test_parse.py checks the claim against unicodedata for every character of this set.
NFKC_SAFE = (
    "\x00-\x7f\u4e00-\u9fff\u3001-\u3037\u303b-\u303f\u2010-\u2027\u2030-\u205e"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff3e\uff40\uff5b-\uff64"
)
_NEEDS_NFKC = re.compile(f"[^{NFKC_SAFE}]")
# A single space (whitespace is collapsed first) between two CJK characters. The pattern starts with
# the space itself, so the regex engine skips to spaces instead of testing every position.
_SPACE_BETWEEN_CJK = re.compile(f" (?<={CJK_CHAR} )(?={CJK_CHAR})")


# Beyond this many distinct characters to replace, or runs to normalise, a text is normalised in one
# pass: a hostile post made of every character NFKC changes (~3,000) would cost a `str.replace` of the
# whole text for each.
NFKC_PIECES = 64


# Unicode's stream-safe limit (UAX #15): folding keeps at most this many combining marks in a row. NFKC
# puts a run of them in order in quadratic time: 160,000 characters of two alternating marks took 13 s
# to fold (a 2 MB post of them, minutes per fold). Real text has a few at most.
MAX_MARKS = 30


@lru_cache(maxsize=1)
def _long_marks() -> re.Pattern[str]:
    """A run of more than MAX_MARKS combining marks (canonical combining class not 0: the characters
    NFKC reorders), its first MAX_MARKS as group 1. Built once per process, ~10 ms."""
    marks = _class([cp for cp in range(0x20000) if cp not in _SURROGATES and unicodedata.combining(chr(cp))])
    return re.compile(f"([{marks}]{{{MAX_MARKS}}})[{marks}]+")


def _normalize(text: str) -> str:
    """NFKC, with each run of more than MAX_MARKS combining marks cut to MAX_MARKS first (a run that
    long is never real text; NFKC orders it in quadratic time)."""
    if len(text) > MAX_MARKS:
        text = _long_marks().sub(r"\1", text)
    return unicodedata.normalize("NFKC", text)


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, normalising only where it can change something: a post
    with a stray `㎡` or full-width comma among 3,000 characters of Chinese was normalised whole (~240 µs,
    half of a long post's folding); now ~50 µs. Exact, by two properties of NFKC:
    - a character may be replaced by its own NFKC form anywhere (the text's full decomposition stays
      the same), so each character NFKC changes is replaced, each distinct one in one `str.replace`;
    - the text can be cut before any *stable* character (one NFKC leaves as it is, that combines with
      nothing before it: combining class 0, not the second of a composition), and each piece normalised
      alone; so what is left to normalise is each run of characters that are not stable, with the
      character before it (which such a run may combine with: `e` and U+0301, `か` and U+3099).
    tests/test_fold.py checks it against `unicodedata` (every BMP character alone and beside what it
    may combine with, every composition, random text). One exception: a run of more than MAX_MARKS
    combining marks keeps its first MAX_MARKS (`_normalize`)."""
    changed, unstable = _nfkc_patterns()
    found = set(changed.findall(text))
    if len(found) > NFKC_PIECES:  # (a text made of many such characters: one pass is cheaper)
        return _normalize(text)
    for ch in found:
        text = text.replace(ch, unicodedata.normalize("NFKC", ch))
    out: list[str] = []
    pos = 0
    for n, m in enumerate(unstable.finditer(text)):
        if n == NFKC_PIECES:
            return _normalize(text)
        start, end = m.span()
        start = max(start - 1, 0)
        out.append(text[pos:start])
        out.append(_normalize(text[start:end]))
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# Hangul vowels and trailing consonants join the syllable or consonant before them (an algorithm, not
# decomposition data: `unicodedata.decomposition` of a syllable is empty).
_HANGUL_JOINING = (range(0x1161, 0x1176), range(0x11A8, 0x11C3))


_SURROGATES = range(0xD800, 0xE000)  # not text


@lru_cache(maxsize=1)
def _nfkc_changed_bmp() -> list[int]:
    """The BMP code points NFKC changes, in order (`nfkc`'s patterns and the snippets' fold table)."""
    return [
        cp
        for cp in range(0x10000)
        if cp not in _SURROGATES and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]


@lru_cache(maxsize=1)
def _nfkc_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a BMP character NFKC changes, a run of characters that are not stable; see `nfkc`). Stable
    characters are taken from the BMP only: every character beyond it counts as unstable, which costs
    nothing (they are rare) and is always exact. Built once per process, ~25 ms."""
    seconds = {cp for r in _HANGUL_JOINING for cp in r}
    for cp in range(0x10000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(int(parts[1], 16))
    changed = _nfkc_changed_bmp()
    unstable = seconds.union(changed, _SURROGATES)
    stable = [cp for cp in range(0x10000) if cp not in unstable and not unicodedata.combining(chr(cp))]
    return re.compile(f"[{_class(changed)}]"), re.compile(f"[^{_class(stable)}]+")


def _class(code_points: list[int]) -> str:
    """Sorted code points as the inside of a regex character class, in ranges."""
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )


def _latin_base_letters() -> dict[int, str]:
    """Latin letters with diacritics -> their base letter (é -> e, Ş -> S), as FTS5's unicode61
    tokenizer with remove_diacritics would fold them; letters that do not decompose (ß, æ) stay."""
    table = {}
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        decomposed = unicodedata.normalize("NFD", chr(cp))
        if len(decomposed) > 1 and decomposed[0].isascii() and decomposed[0].isalpha():
            if all(unicodedata.combining(c) for c in decomposed[1:]):
                table[cp] = decomposed[0]
    return table


_BASE_LETTERS = _latin_base_letters()
_MARKED_LATIN = re.compile("[" + "".join(map(chr, _BASE_LETTERS)) + "]")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def is_utf8(text: str) -> bool:
    """Whether a str is text that can be stored and sent: Python gives bytes that are not UTF-8 (in a file
    name, an environment variable, a command-line argument) as lone surrogates, which SQLite, JSON and
    Telegram refuse."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# C0 and C1 control characters but tab, line feed and carriage return: no post's text holds them, and in a
# title they reach terminals (`newsbot search` printing an escape sequence), logs and chats. With them,
# the invisible characters that split a word where the eye sees none (zero-width space, word joiner, a
# byte order mark inside the text, soft hyphen: scraped pages hold them), which no search for the word
# would find: `人民\u200b币` is not 人民币 to the segmenter or the index. And the bidirectional embeddings
# and overrides (U+202A-U+202E), which make a title or a name show its characters in another order than
# they are (`‮lmth.txt` looks like `txt.html`), a spoofing trick with no place in news text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u200b\u202a-\u202e\u2060\ufeff]")
_CONTROL_SPACES = frozenset("\x0b\x0c\x1c\x1d\x1e\x1f\x85")  # what Python takes for whitespace
# every control character, tab and line breaks too, and the bidirectional overrides: in a file name
# they forge log lines or disguise the name
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e]")


def without_controls(text: str) -> str:
    """Text with its control characters and invisible word-splitting characters dropped (the controls
    that separate words, as spaces)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: " " if m.group() in _CONTROL_SPACES else "", text)


def has_controls(name: str) -> bool:
    """Whether a name (of a file or folder) holds a control character (tab and line breaks included) or
    a bidirectional override."""
    return _ANY_CONTROL.search(name) is not None


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped_controls(text: str) -> str:
    """Text for a log line or a terminal: every control character as `\\xNN`, a bidirectional override
    as `\\u202e`."""
    return _ANY_CONTROL.sub(_escaped, text)


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def fold(text: str) -> str:
    """Fold text for matching: full-width→half-width (NFKC), Latin diacritics dropped,
    Traditional→Simplified, lower case.

    Applied identically to indexed text and to queries, so `銀行`, `ＡＢＣ`, `Café` and `abc`,
    `cafe` meet `银行`, `abc`, `cafe`.
    """
    if not text:
        return ""
    if _NEEDS_NFKC.search(text):  # (letters with diacritics are never NFKC-safe)
        text = nfkc(text)
        if _MARKED_LATIN.search(text):
            text = text.translate(_BASE_LETTERS)
    if _CJK_RE.search(text):
        text = _t2s().convert(text)
    return text.lower()


@lru_cache(maxsize=1)
def _fold_sources() -> dict[str, str]:
    """Each character folding can produce -> the characters that fold into it on their own other than
    by case: 国 <- 國, a <- ａ Ａ á à …, 1 <- １ ① …. Folding changes a character only by NFKC (the
    characters it changes, up to plane 3), by dropping a Latin diacritic, or by OpenCC's t2s (one call
    over every CJK ideograph, each on a line of its own). Made once per process, ~0.1 s."""
    candidates = set(map(chr, [*_BASE_LETTERS, *_nfkc_changed_bmp()]))
    for cp in range(0x10000, 0x32000):
        if unicodedata.normalize("NFKC", ch := chr(cp)) != ch:
            candidates.add(ch)
    cjk = [chr(cp) for first, last in CJK_SPANS for cp in range(first, last + 1)]
    converted = _t2s().convert("\n".join(cjk)).split("\n")
    if len(converted) != len(cjk):  # (a conversion across lines: then one by one)
        converted = [_t2s().convert(ch) for ch in cjk]
    candidates.update(ch for ch, to in zip(cjk, converted, strict=True) if to != ch)
    sources: dict[str, set[str]] = {}
    for ch in candidates:
        folded = fold(ch)
        if folded != ch.lower():
            for out in folded:
                sources.setdefault(out, set()).add(ch)
    return {out: "".join(sorted(chars)) for out, chars in sources.items()}


# Up to this many characters that fold into a term's are each looked for with `in` (a vectorised
# search: ~0.1–2 µs over 3,000 characters) rather than with one regex (~15 µs: it tests each character):
# a Chinese term has a few (国 <- 國; 汇 <- 匯 彙 滙), a Latin letter or digit a hundred (a <- ａ á …).
_FIND_EACH = 16


@lru_cache(maxsize=256)
def _fold_sources_of(chars: frozenset[str]) -> str:
    """The characters that fold into one of `chars` (other than by case)."""
    return "".join(sorted({src for ch in chars for src in _fold_sources().get(ch, "")}))


@lru_cache(maxsize=256)
def _fold_sources_re(sources: str) -> re.Pattern[str]:
    return re.compile("[" + "".join(map(re.escape, sources)) + "]")


def may_fold_into(text: str, terms: list[str]) -> bool:
    """Whether folding `text` may make a character of a term out of another character (not just its
    other case): False when a term absent from `text.lower()` is absent from `fold(text)` too, found by
    looking for those characters (`in` for a few, a regex scan for many) instead of folding the text
    (~1–15 vs ~80 µs for 3,000 characters of Chinese). Judged
    character by character: what folding makes of characters together (OpenCC's phrase rules, NFKC's
    compositions such as decomposed Hangul) is not looked at. Search snippets use it, where that at
    worst shows a post's beginning instead of such a match further on."""
    sources = _fold_sources_of(frozenset("".join(terms)))
    if len(sources) <= _FIND_EACH:
        return any(ch in text for ch in sources)
    pattern = _fold_sources_re(sources)
    return pattern.search(text) is not None


# --- Markdown / HTML to plain text -------------------------------------------------------------

_AUTOLINK = re.compile(r"<(https?://[^<>\s]*|)>")
_MD_IMAGE = re.compile(r"!\[[^\[\]]*\]\([^)\[\]]*\)")
_MD_LINK = re.compile(r"\[([^\[\]]*)\]\(([^)\[\]\s]*)(?:\s+\"[^\"\n]*\")?\)")
_LIQUID = re.compile(r"\{%(?:(?!\{%|%\}).)*%\}|\{\{(?:(?!\{\{|\}\}).)*\}\}", re.S)
_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")
_BLOCK_BREAK = re.compile(
    r"<(?:br\s*/?|/?(?:p|div|h[1-6]|li|ul|ol|tr|table|section|article|blockquote|pre|hr)\b[^<>]*)>",
    re.I,
)
_PARA_MARK = "\ue000"
_BLANK_LINE = re.compile(r"\n\s*\n")
_WS = re.compile(r"[ \t\r\n\f\v\u00a0\u3000]+")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?")
_MD_LIST = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+")
_MD_EMPH = re.compile(r"(\*\*|__|~~|`+)")
# A line that starts a Markdown block: looked for at the text's start and after each newline (a pattern
# that starts with "\n" lets the regex engine skip to newlines: ~7× faster on long HTML bodies than `^`
# with re.M, which is tried at every position).
_MD_BLOCK_START = r"\s{0,3}(?:#{1,6}\s|[-*+]\s|\d+[.)]\s|>|[-*_]\s*[-*_]\s*[-*_])"
_MD_BLOCK_FIRST = re.compile(_MD_BLOCK_START)
_MD_BLOCK_NEXT = re.compile("\n" + _MD_BLOCK_START)
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")

# A line made only of Markdown links whose text starts with 返回/Back/Home, joined by separators:
# the archive's own navigation ("[返回东财滚动新闻](../emnews/)｜[返回首页](../)").
_NAV_LINK = r"\[(?:返回|回到|back\b|home\b|首页)[^\[\]\n]*\]\([^)\[\]\n]*\)"
_NAV_LINE = re.compile(rf"^[ \t]*{_NAV_LINK}(?:[ \t]*[|｜/·•\-]?[ \t]*{_NAV_LINK})*[ \t]*$", re.I | re.M)


def _has_comment(text: str) -> bool:
    """Whether an HTML comment (`<!-- … -->`) is in the text: a `-->` after the first `<!--` (a regex
    would try every `<!--` in turn, each to the end of the text when none is closed)."""
    start = text.find("<!--")
    return start >= 0 and text.find("-->", start + 4) >= 0


def _html_to_text(html: str) -> str:
    marked = _BLOCK_BREAK.sub(_PARA_MARK, html)
    tree = LexborHTMLParser(marked)
    tree.strip_tags(["script", "style", "noscript", "template", "iframe", "svg", "head"])
    body = tree.body
    return body.text(separator="") if body is not None else ""


def _clean_lines(text: str) -> list[str]:
    # Single newlines are soft breaks (Markdown and HTML alike); paragraphs were marked before.
    text = _SPACE_BETWEEN_CJK.sub("", _WS.sub(" ", text))
    return [line for chunk in text.split(_PARA_MARK) if (line := chunk.strip())]


def extract_source_links(body: str) -> tuple[str, list[str]]:
    """Remove Markdown autolinks (`<http://…>`, also the empty `<>`) and return them."""
    links: list[str] = []

    def take(m: re.Match[str]) -> str:
        if m.group(1):
            links.append(m.group(1))
        return "\n"

    return _AUTOLINK.sub(take, body), links


def leading_digest(body: str) -> str:
    """The leading `> …` blockquote of a Markdown body, as plain text ('' if none)."""
    body = body.lstrip("\n")
    if not _MD_QUOTE.match(body):  # (its first line does not start one: no need to split them all)
        return ""
    lines = []
    for raw in body.splitlines():
        if _MD_QUOTE.match(raw):
            lines.append(_MD_QUOTE.sub("", raw, count=1))
        else:
            break
    if not lines:
        return ""
    return "\n".join(body_to_paragraphs("\n".join(lines)))


def body_to_paragraphs(body: str) -> list[str]:
    """Markdown or HTML body → list of plain-text paragraphs.

    Drops script/style/comments, Liquid tags, images and the archive's navigation lines; decodes
    entities; keeps link texts but not their URLs.
    """
    text = _LIQUID.sub("", body) if "{" in body else body
    if "](" in text:
        text = _NAV_LINE.sub("", text)
        text = _MD_IMAGE.sub("", text)
        text = _MD_LINK.sub(r"\1", text)
    if "<" in text:
        text, _ = extract_source_links(text)
    if _MD_BLOCK_FIRST.match(text) or _MD_BLOCK_NEXT.search(text):
        lines = []
        for line in text.split("\n"):
            if _MD_RULE.match(line):
                lines.append("")
                continue
            if _MD_HEADING.match(line) or _MD_LIST.match(line):
                # headings and list items are their own paragraphs
                line = _PARA_MARK + _MD_LIST.sub("", _MD_HEADING.sub("", line)) + _PARA_MARK
            lines.append(_MD_QUOTE.sub("", line))
        text = "\n".join(lines)
    if "**" in text or "__" in text or "~~" in text or "`" in text:  # (the regex scan costs ~10 µs/KB)
        text = _MD_EMPH.sub("", text)
    # Markdown paragraphs are separated by blank lines; single newlines stay line breaks.
    text = _BLANK_LINE.sub(_PARA_MARK, text)
    if "&" in text or ("<" in text and (_HTML_TAG.search(text) or _has_comment(text))):
        text = _html_to_text(text)
    # control characters, raw or decoded from entities (`&#27;`), after the markup is gone: the scan costs
    # what the text is, not what its HTML was
    return _clean_lines(without_controls(text))


# --- summaries ---------------------------------------------------------------------------------

# A sentence ends after 。！？!?… (and closing quotes), a "." before whitespace, or ; and ；.
_SENTENCE_END = re.compile(r"[。！？!?…][”」』\"')）]*|\.(?=\s)|[;；]")


def split_sentences(paragraph: str) -> list[str]:
    out, start = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        end = m.end()
        if end > start:
            piece = paragraph[start:end].strip()
            if piece:
                out.append(piece)
            start = end
    rest = paragraph[start:].strip()
    if rest:
        out.append(rest)
    return out


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut text to at most `limit` characters, at a word boundary for Latin text."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ellipsis), 1)]
    if not has_cjk(cut[-20:]):
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
    return cut.rstrip(" ,，、;；:：") + ellipsis


def summarize(paragraphs: list[str], limit: int = 200) -> str:
    """Extractive summary: whole sentences from the start, up to `limit` characters.

    Cuts at sentence ends (。！？ and . ! ?); if the very first sentence is longer than the limit it is
    truncated with an ellipsis.
    """
    limit = max(int(limit), 20)
    out = ""
    for para in paragraphs:
        # Only the paragraph's head can fit: split just that. Its last piece may be a cut sentence,
        # which is then longer than what is left of the limit, so it ends the summary either way.
        head = para if len(para) <= 2 * limit else para[: 2 * limit]
        for sentence in split_sentences(head):
            joined = join_text(out, sentence)
            if len(joined) > limit:
                return out or truncate(sentence, limit)
            out = joined
        if head is not para:
            return out
    return out


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def join_text(left: str, right: str) -> str:
    """Join two pieces of text with a space unless either side of the seam is wide (CJK)."""
    if not left:
        return right
    if not right:
        return left
    if _wide(left[-1]) or _wide(right[0]):
        return left + right
    return left + " " + right
