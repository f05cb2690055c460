"""Everything that turns posts into Telegram HTML, within Telegram's limits.

Dynamic text is cut as plain text first and escaped afterwards, so a cut never lands inside a tag or an
entity; only the tags Telegram accepts are produced (b, i, a, code, blockquote).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from urllib.parse import quote, urlsplit

from store.db import PostRow
from store.search import SearchHit
from store.text import truncate

MESSAGE_LIMIT = 4096
# Telegram's limits on a message's formatting: past 100 entities (bold, italic, links…) the rest of the
# formatting is dropped without a word, and a message whose entities carry too much (the URLs of its
# links: ~9,500 characters in all, said Telegram's tdlib maintainer) is refused ("entities too long").
# A list of posts with long tracking URLs hit the second: /latest 20 was an apology, a digest never sent.
MAX_ENTITIES = 100
MAX_LINK_CHARS = 6000
SNIPPET_MARKS = 8  # matched words in bold in one snippet, at most
TITLE_CHARS = 120
LINE_CHARS = 160
CARD_SUMMARY_CHARS = 600
CARD_LINE_CHARS = 400  # the categories line and the tags line of a card
BUTTON_CHARS = 60
_TAG = re.compile(r"<[^>]+>")


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def attr(text: str) -> str:
    return html.escape(text, quote=True)


def visible_len(markup: str) -> int:
    """Length of the text Telegram shows for an HTML message (what its 4096 limit counts)."""
    return len(html.unescape(_TAG.sub("", markup)))


_START_TAG = re.compile(r"<[a-z]")
_HREF = re.compile(r'<a href="([^"]*)"')


def entities(markup: str) -> int:
    """The formatting entities of an HTML message: one per start tag (`<b><a …>` is two)."""
    return len(_START_TAG.findall(markup))


def link_chars(markup: str) -> int:
    """The characters of the URLs its links carry, as Telegram counts them (unescaped)."""
    return sum(len(html.unescape(href)) for href in _HREF.findall(markup))


def fits(markup: str, limit: int = MESSAGE_LIMIT) -> bool:
    """Whether Telegram takes an HTML message whole: its text within `limit`, its formatting within
    MAX_ENTITIES entities and MAX_LINK_CHARS characters of link URLs."""
    return (
        visible_len(markup) <= limit
        and entities(markup) <= MAX_ENTITIES
        and link_chars(markup) <= MAX_LINK_CHARS
    )


def fmt_date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


MAX_URL_CHARS = 2048
# Characters a URL cannot hold as they are (spaces, controls, non-ASCII, quotes, angle brackets): they
# are percent-encoded (as UTF-8); `%` stays, so existing escapes are kept.
_URL_UNSAFE = re.compile(r'[^\x21-\x7e]|["<>\\^`{|}]')


def web_url(url: str | None) -> str | None:
    """`url` as a link Telegram takes (a link button or a text link), or None when it cannot be one.

    A post's links come from its archive (a source link in the front matter or the body, a permalink
    template): one Telegram refuses (a space in it, a host without a dot, `http://localhost`) fails the
    whole message its button is on (BUTTON_URL_INVALID), so a post would never be delivered. Unsafe
    characters are percent-encoded; a URL that is not http(s), has no host, a host without a dot or a
    non-ASCII one, or is over MAX_URL_CHARS is no link at all (the text stays)."""
    if not url:
        return None
    url = _URL_UNSAFE.sub(lambda m: quote(m.group(), safe="", errors="replace"), url.strip())
    if not url.lower().startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
        return None
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed port or IPv6 address
        return None
    if "." not in host.strip(".") or "%" in host:
        return None
    return url


def link(url: str | None, text: str) -> str:
    href = web_url(url)
    if href is not None:
        return f'<a href="{attr(href)}">{esc(text)}</a>'
    return esc(text)


def one_line(text: str, limit: int = LINE_CHARS) -> str:
    return truncate(" ".join(text.split()), limit)


def post_item(
    post: PostRow,
    source_label: str,
    snippet_html: str | None = None,
    number: int | None = None,
    more: str | None = None,
) -> str:
    """A post in a list: linked title, date · categories, one line of summary or snippet, source link,
    and `more` (how many other reports its story has)."""
    prefix = f"{number}. " if number is not None else ""
    lines = [prefix + "<b>" + link(post.archive_url, truncate(post.title, TITLE_CHARS)) + "</b>"]
    meta = fmt_date(post.date)
    if post.categories:
        meta += " · " + ", ".join(post.categories[:3])
    lines.append(f"<i>{esc(truncate(meta, LINE_CHARS))}</i>")
    if snippet_html:
        lines.append(snippet_html)
    elif post.summary:
        lines.append(esc(one_line(post.summary)))
    if post.url:
        lines.append(link(post.url, source_label))
    if more:
        lines.append(f"<i>{esc(more)}</i>")
    return "\n".join(lines)


def report_line(post: PostRow) -> str:
    """One report of a story: linked title, date · categories, source link."""
    meta = fmt_date(post.date)
    if post.categories:
        meta += " · " + ", ".join(post.categories[:2])
    line = (
        "• "
        + link(post.archive_url, truncate(post.title, TITLE_CHARS))
        + f" <i>{esc(truncate(meta, 80))}</i>"
    )
    if post.url:
        line += " " + link(post.url, "↗")
    return line


def snippet_html(hit: SearchHit) -> str:
    """The hit's snippet on one line with the matched terms in bold (the first SNIPPET_MARKS of them: a
    common character matched twenty times would take a message's entities)."""
    return " ".join(hit.marked_snippet("<b>", "</b>", esc, limit=LINE_CHARS, marks=SNIPPET_MARKS).split())


def post_card(post: PostRow, others: Sequence[PostRow] = (), others_header: str = "") -> str:
    """A post on its own: title, date, categories and tags, summary; then the other reports of its
    story (as many as fit a message)."""
    parts = ["<b>" + link(post.archive_url, truncate(post.title, 300)) + "</b>"]
    meta = fmt_date(post.date)
    if post.categories:
        meta += " · " + " / ".join(post.categories)
    parts.append(f"<i>{esc(truncate(meta, CARD_LINE_CHARS))}</i>")
    if post.tags:
        parts.append(esc(truncate(" ".join("#" + t for t in post.tags[:10]), CARD_LINE_CHARS)))
    summary = post.summary or truncate(post.body, CARD_SUMMARY_CHARS)
    if summary:
        parts.append("")
        parts.append(esc(truncate(summary, CARD_SUMMARY_CHARS)))
    card = "\n".join(parts)
    if others:
        card = join_blocks(card + "\n\n" + others_header, [report_line(p) for p in others], separator="\n")
    return card


_LINK_TAG = re.compile(r'<a href="[^"]*">|</a>')


def _plainer(block: str) -> Iterator[str]:
    """A block as it is, then without its links, then without any formatting (made only when asked)."""
    yield block
    yield _LINK_TAG.sub("", block)
    yield _TAG.sub("", block)


def join_blocks(header: str, blocks: list[str], limit: int = MESSAGE_LIMIT, separator: str = "\n\n") -> str:
    """Header and blocks separated by blank lines, keeping only whole blocks that fit a message (its
    text within the limit, its formatting within Telegram's: `fits`). Once the formatting is spent (100
    entities, or link URLs long enough), a block goes on without its links, then without any formatting,
    rather than not at all: a list keeps every post's line (its button still opens the post)."""
    out = header
    for block in blocks:
        for form in _plainer(block):
            candidate = out + (separator if out else "") + form
            if fits(candidate, limit):
                out = candidate
                break
        else:
            break
    return out


def digest_item(post: PostRow) -> str:
    """One line of a digest: the linked title (source link when there is one)."""
    line = "• " + link(post.archive_url, truncate(post.title, TITLE_CHARS))
    if post.url:
        line += " · " + link(post.url, "↗")
    return line


def split_blocks(header: str, blocks: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Header and blocks (one per line) in as many messages as needed, each one Telegram takes whole
    (`fits`)."""
    messages, current = [], header
    for block in blocks:
        candidate = current + "\n" + block
        if not fits(candidate, limit) and current != header:
            messages.append(current)
            current = header + "\n" + block
        else:
            current = candidate
    messages.append(current)
    return messages


def rule_filter(rule: dict) -> str:
    """What an auto-post rule or subscription takes, in the commands' own syntax: `cat:NAME… words`."""
    return " ".join(["cat:" + c for c in rule["categories"]] + ([rule["query"]] if rule["query"] else []))
