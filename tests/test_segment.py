"""Index texts (store.segment): the search-mode pieces of long words."""

from __future__ import annotations

import rjieba

from store import segment
from store.segment import analyse
from store.text import fold


def _pieces_by_hand(title: str, body: str) -> set[str]:
    """What jieba's search mode adds for the post's words of 3+ characters, cut all at once."""
    seen = set(rjieba.cut(fold(title), False)) | set(rjieba.cut(fold(body), False))
    long_words = " ".join(w for w in seen if len(w) > 2)
    return {w for w in rjieba.cut_for_search(long_words, False) if w.strip()} - seen


def test_search_pieces_are_jiebas_and_stay_so_when_remembered(monkeypatch):
    monkeypatch.setattr(segment, "_pieces", {})
    title, body = "清华大学发布报告", "中华人民共和国的北京大学生在清华大学研究 abc+def 与2024年的数据。"
    expected = _pieces_by_hand(title, body)
    assert {"清华", "华大", "大学", "共和国", "学生"} <= expected
    first = analyse(title, body, [], []).fts.sub.decode().split()
    assert sorted(first) == sorted(expected) and first == sorted(first)
    assert segment._pieces  # the long words were remembered …
    assert analyse(title, body, [], []).fts.sub.decode().split() == first  # … and give the same pieces


def test_remembered_pieces_are_bounded(monkeypatch):
    monkeypatch.setattr(segment, "_pieces", {})
    monkeypatch.setattr(segment, "PIECES_CACHED", 3)
    for i in range(20):
        analyse("", f"清华大学{i}号与北京大学{i}号的中华人民共和国", [], [])
    assert len(segment._pieces) <= 3 + 3  # cleared once over the bound, then refilled by one post
    assert "清华" in analyse("", "清华大学", [], []).fts.sub.decode().split()


def test_warm_up_loads_the_segmenter_and_the_folding_tables():
    """In a fresh interpreter (here they are loaded already): what the bot loads at start, in a thread,
    instead of in its first search, and what a sync's parsing workers load."""
    import subprocess
    import sys

    from .conftest import REPO

    code = (
        "from store import search, segment, text\n"
        "loaded = lambda: (segment._jieba.cache_info().currsize, text._nfkc_patterns.cache_info().currsize,"
        " text._fold_sources.cache_info().currsize)\n"
        "assert loaded() == (0, 0, 0), loaded()\n"
        "segment.warm_up()  # a parsing worker's: no snippets there\n"
        "assert loaded() == (1, 1, 0), loaded()\n"
        "search.warm_up()  # the bot's\n"
        "assert loaded() == (1, 1, 1), loaded()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
