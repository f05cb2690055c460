"""The renderer keeps Telegram's limits whatever the archive contains."""

from __future__ import annotations

from bot import render
from store.db import PostRow

from .botapi import check_text


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


def test_lists_and_cards_escape_and_cut_cleanly():
    items = [
        render.post_item(post(i, "<script>" * 100, "&amp;" * 2000), "Source", number=i) for i in range(40)
    ]
    text = render.join_blocks("<b>Latest</b>", items)
    plain = check_text(text, "HTML")
    assert "<script>" in plain and "&amp;" in plain
    card = render.post_card(post(1, "x" * 5000, "y" * 9000))
    assert len(check_text(card, "HTML")) <= 4096
