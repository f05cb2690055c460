"""Inline keyboards and their callback data (≤ 64 bytes, one compact format in one place).

p:<rowid>                        open a post card
cl:<page>:<filter>               categories list page (filter cut to fit)
cp:<cat hash>:<page>:<list page> one category's posts
sr:<query id>:<page>             a search results page
st:<story>                       a story's reports
lg:<lang>|auto                   choose a language
"""

from __future__ import annotations

import zlib

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from .render import web_url

MAX_DATA = 64
MAX_BUTTONS = 100


def _fit(prefix: str, tail: str) -> str:
    data = prefix + tail
    while len(data.encode("utf-8")) > MAX_DATA and tail:
        tail = tail[:-1]
        data = prefix + tail
    return data


def cat_hash(key: str) -> str:
    return format(zlib.crc32(key.encode("utf-8")), "08x")


def open_post(rowid: int) -> str:
    return f"p:{rowid}"


def open_posts(rowids: list[int], first_number: int = 1) -> list[tuple[str, str, bool]]:
    """A row of numbered buttons, one per listed post, each opening its card."""
    return [(str(first_number + i), open_post(rowid), False) for i, rowid in enumerate(rowids)]


def story(story_id: int) -> str:
    return f"st:{story_id}"


def story_buttons(i18n, lang: str, posts, first_number: int = 1) -> list[tuple[str, str, bool]]:
    """A row of "+N reports" buttons, one per listed post that is one of several reports of its story."""
    return [
        (i18n.t(lang, "story.button", count=p.reports - 1, number=first_number + i), story(p.story), False)
        for i, p in enumerate(posts)
        if p.story is not None and p.reports > 1
    ]


def categories_page(page: int, fragment: str = "") -> str:
    return _fit(f"cl:{page}:", fragment)


def category_posts(key: str, page: int, list_page: int) -> str:
    return f"cp:{cat_hash(key)}:{page}:{list_page}"


def search_page(query_id: int, page: int) -> str:
    return f"sr:{query_id}:{page}"


def language(lang: str) -> str:
    return f"lg:{lang}"


def parse(data: str | None) -> tuple[str, list[str]] | None:
    """('p', ['123']) etc.; None for data this bot did not make."""
    if not data or ":" not in data:
        return None
    kind, _, rest = data.partition(":")
    if kind == "cl":
        page, _, frag = rest.partition(":")
        return kind, [page, frag]
    if kind in ("p", "cp", "sr", "lg", "st"):
        return kind, rest.split(":")
    return None


def markup(rows: list[list[tuple[str, str, bool]]]) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback data or URL, is_url) → keyboard; at most 100 buttons."""
    out, count = [], 0
    for row in rows:
        buttons = []
        for label, value, is_url in row:
            if count >= MAX_BUTTONS:
                break
            if is_url:
                url = web_url(value)
                if url is None:  # a link Telegram would refuse (with the whole message): no button
                    continue
                buttons.append(InlineKeyboardButton(label, url=url))
            else:
                assert len(value.encode("utf-8")) <= MAX_DATA, value
                buttons.append(InlineKeyboardButton(label, callback_data=value))
            count += 1
        if buttons:
            out.append(buttons)
    return InlineKeyboardMarkup(out) if out else None


def pager(
    prev_data: str | None, next_data: str | None, middle: tuple[str, str] | None = None
) -> list[tuple[str, str, bool]]:
    row = []
    if prev_data:
        row.append(("‹", prev_data, False))
    if middle:
        row.append((middle[0], middle[1], False))
    if next_data:
        row.append(("›", next_data, False))
    return row


def post_links(i18n, lang: str, post) -> InlineKeyboardMarkup | None:
    """The buttons under a post card: its source, and its page in the archive."""
    row = []
    if post.url:
        row.append((i18n.t(lang, "post.source"), post.url, True))
    if post.archive_url:
        row.append((i18n.t(lang, "post.archive"), post.archive_url, True))
    return markup([row])
