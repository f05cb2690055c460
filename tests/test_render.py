"""The renderer keeps Telegram's limits whatever the archive contains."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render
from store.db import PostRow

from .botapi import check_markup, check_text


def post(i: int, title: str = "标题", summary: str = "摘要。") -> PostRow:
    return PostRow(
        rowid=i,
        id=f"p{i}",
        path=f"_posts/p{i}.md",
        title=title,
        date="2024-05-01T10:00:00+08:00",
        ts=0,
        categories=["a<b>"],
        tags=["t&t"],
        url=f"https://src.example/{i}?a=1&b=2",
        archive_url=f"https://x.example/{i}",
        summary=summary,
        body="正文",
    )


def test_digest_splits_into_valid_messages_within_the_limit():
    blocks = [render.digest_item(post(i, title="很长的标题<&>" * 20)) for i in range(300)]
    messages = render.split_blocks("<b>300 new posts</b>", blocks)
    assert len(messages) > 1
    shown = 0
    for m in messages:
        plain = check_text(m, "HTML")  # valid Telegram HTML, at most 4096 characters
        assert plain.startswith("300 new posts")
        shown += plain.count("•")
    assert shown == 300


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(0, 2000),
    st.lists(st.sampled_from(["<b>", "</b>", "&", "<", "链"]), max_size=5).map("".join),
)
def test_a_list_keeps_every_post_it_can_show_within_telegrams_formatting_limits(n, url_length, title):
    """A list of posts past Telegram's formatting limits (100 entities, link URLs of ~9,500 characters)
    keeps listing them, their links or formatting left out, until the text itself is full."""
    items = []
    for i in range(n):
        p = post(i, title=f"{title}{i}")
        p.url = f"https://src.example/{i}?ref=" + "u" * url_length
        items.append(render.post_item(p, "source", number=i + 1, more="+1"))
    markup = render.join_blocks("<b>latest</b>", items)
    plain = check_text(markup, "HTML")  # the test server's Telegram rules, formatting limits included
    assert render.fits(markup)
    shown = sum(f"{i + 1}. {title}{i}\n" in plain for i in range(n))
    assert shown == n or render.visible_len(markup) > render.MESSAGE_LIMIT - 300, (shown, n)


def test_lists_and_cards_escape_and_cut_cleanly():
    items = [
        render.post_item(post(i, "<script>" * 100, "&amp;" * 2000), "Source", number=i) for i in range(40)
    ]
    text = render.join_blocks("<b>Latest</b>", items)
    plain = check_text(text, "HTML")
    assert "<script>" in plain and "&amp;" in plain
    card = render.post_card(post(1, "x" * 5000, "y" * 9000))
    assert len(check_text(card, "HTML")) <= 4096


def test_links_are_made_what_telegram_takes_or_left_out():
    from bot.render import web_url

    assert web_url("https://src.example/m12?a=1&b=%20#x") == "https://src.example/m12?a=1&b=%20#x"
    assert web_url(" https://src.example/a b\t") == "https://src.example/a%20b"
    assert web_url("https://例子.example/新闻") is None  # (a non-ASCII host)
    assert web_url("https://src.example/新闻") == "https://src.example/%E6%96%B0%E9%97%BB"
    assert web_url('https://src.example/"<x>') == "https://src.example/%22%3Cx%3E"
    assert web_url("https://src.example/\ud800") == "https://src.example/%3F"  # (a lone surrogate)
    for refused in ("http://localhost/x", "https://", "ftp://a.example/x", "javascript:alert(1)", "/a/b", ""):
        assert web_url(refused) is None, refused
    assert web_url("https://a.example/" + "x" * 3000) is None
    # a card with such links: the text links are encoded too, the bad one is plain text
    p = post(1)
    p.url, p.archive_url = "http://localhost/src", "https://x.example/a b.html"
    for html in (render.post_card(p), render.post_item(p, "Source")):
        assert 'href="https://x.example/a%20b.html"' in html and "localhost" not in html
        check_text(html, "HTML")


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=300), st.text(max_size=300).map(lambda t: "https://" + t)))
def test_any_link_is_telegrams_or_none(text):
    from bot.render import MAX_URL_CHARS, web_url

    url = web_url(text)
    if url is None:
        return
    check_markup({"inline_keyboard": [[{"text": "x", "url": url}]]})  # the test server's rules
    assert len(url) <= MAX_URL_CHARS and url.isascii()
    assert web_url(url) == url
