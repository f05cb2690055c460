"""Search semantics over a real SQLite store built from fixture posts."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.jekyll import open_archive
from store.search import parse_query, search
from store.sync import sync_archive
from store.text import fold

from .conftest import Archive, LoopStore, sync

# The index layout whose bodies hold their Chinese words (SEARCH_PAIRS=common): there a body's word
# matches are a band of their own, above its substring-only matches. (With every pair indexed, the
# default, a body's matches are one band: test_with_every_pair_many_matches_are_counted_and_banded_without_body_words and
# tests/test_pairs.py.)
WORD_BANDS = {"search_pairs": "common"}


async def ids(store, q, **kw):
    page = await search(store, q, limit=kw.pop("limit", 50), **kw)
    return [h.post.id for h in page.hits]


@pytest.fixture
async def corpus(store, archive):
    a = archive
    a.post(
        "2024-05-01-know.md",
        "市场消息",
        "我们知道市场会波动。",
        date="2024-05-01 09:00:00 +0800",
        categories="markets",
        tags="观察",
    )
    a.post(
        "2024-05-02-bank.md",
        "銀行業務調整",
        "多家銀行調整存款利率。",
        date="2024-05-02 09:00:00 +0800",
        categories="banks",
    )
    a.post(
        "2024-05-03-rmb.md",
        "人民币汇率走强",
        "离岸人民币兑美元汇率走强，美元指数回落。",
        date="2024-05-03 09:00:00 +0800",
        categories="markets",
        tags="汇率 外汇",
    )
    a.post(
        "2024-05-04-rmb2.md",
        "外汇市场周评",
        "本周人民币汇率小幅波动，交易清淡。",
        date="2024-05-04 09:00:00 +0800",
        categories="markets",
    )
    a.post(
        "2024-05-05-en.md",
        "Fed holds rates steady",
        "The Federal Reserve kept interest rates unchanged. C++ developers cheered, 100% sure.",
        date="2024-05-05 09:00:00 +0800",
        categories="World",
        tags="fed",
    )
    a.post(
        "2024-05-06-full.md",
        "ＡＢＣ公司发布财报",
        "ＡＢＣ公司第一季度营收增长。",
        date="2024-05-06 09:00:00 +0800",
        categories="companies",
    )
    a.post(
        "2024-05-07-univ.md",
        "清华大学发布报告",
        "清华大学研究团队发布年度报告。",
        date="2024-05-07 09:00:00 +0800",
        categories="education",
    )
    a.post(
        "2024-05-08-usd.md",
        "美元走弱",
        "美元指数下跌，美国国债收益率回落。",
        date="2024-05-08 09:00:00 +0800",
        categories="markets",
    )
    a.post(
        "2024-05-09-phrase.md",
        "exchange news",
        "The exchange rate moved. Rate of exchange is a phrase.",
        date="2024-05-09 09:00:00 +0800",
        categories="World",
    )
    result = await sync(store, a)
    assert result.added == 9
    return store


async def test_word_search_and_and_semantics(corpus):
    assert set(await ids(corpus, "人民币 汇率")) == {"2024-05-03-rmb", "2024-05-04-rmb2"}
    assert await ids(corpus, "人民币 清淡") == ["2024-05-04-rmb2"]


async def test_substring_recall_single_and_two_chars(corpus):
    # 知 is only inside the word 知道
    assert await ids(corpus, "知") == ["2024-05-01-know"]
    # 华大 spans the jieba word 清华大学
    assert await ids(corpus, "华大") == ["2024-05-07-univ"]
    # 民币汇 crosses two words
    assert set(await ids(corpus, "民币汇")) == {"2024-05-03-rmb", "2024-05-04-rmb2"}
    # a single very common character finds every post that contains it
    assert set(await ids(corpus, "美")) == {"2024-05-03-rmb", "2024-05-08-usd"}


async def test_traditional_simplified_fullwidth_and_case_fold(corpus):
    assert await ids(corpus, "银行") == ["2024-05-02-bank"]
    assert await ids(corpus, "銀行") == ["2024-05-02-bank"]
    assert await ids(corpus, "存款利率") == ["2024-05-02-bank"]
    assert await ids(corpus, "abc") == ["2024-05-06-full"]
    assert await ids(corpus, "ＡＢＣ") == ["2024-05-06-full"]
    assert await ids(corpus, "FEDERAL") == ["2024-05-05-en"]


async def test_phrase_exclude_and_filters(corpus):
    assert await ids(corpus, '"exchange rate"') == ["2024-05-09-phrase"]
    assert await ids(corpus, '"rate exchange"') == []
    assert set(await ids(corpus, "exchange rate")) == {"2024-05-09-phrase"}
    assert await ids(corpus, "人民币 -清淡") == ["2024-05-03-rmb"]
    assert await ids(corpus, "cat:markets 美元") == ["2024-05-08-usd", "2024-05-03-rmb"]
    assert await ids(corpus, "cat:MARKETS #外汇") == ["2024-05-03-rmb"]
    assert await ids(corpus, "#fed") == ["2024-05-05-en"]
    assert await ids(corpus, "cat:world") == ["2024-05-09-phrase", "2024-05-05-en"]
    assert await ids(corpus, "cat:markets since:2024-05-03 until:2024-05-04") == [
        "2024-05-04-rmb2",
        "2024-05-03-rmb",
    ]
    assert await ids(corpus, "汇率 until:2024-05-03") == ["2024-05-03-rmb"]
    assert await ids(corpus, "cat:nosuch 美元") == []


async def test_ranking_title_over_body_and_newer_first(corpus, archive):
    # 美元 is in the title of -usd and only in the bodies of others
    assert (await ids(corpus, "美元"))[0] == "2024-05-08-usd"
    # word-level hits rank above substring-only hits: 汇率 as a word vs inside nothing else; 外汇 tag vs body
    got = await ids(corpus, "外汇")
    assert got[:2] == ["2024-05-03-rmb", "2024-05-04-rmb2"] or got[:2] == [
        "2024-05-04-rmb2",
        "2024-05-03-rmb",
    ]


async def test_equal_scores_newer_first(store, archive):
    for day in range(1, 6):
        archive.post(
            f"2024-06-0{day}-same.md", "同一标题", "完全相同的正文。", date=f"2024-06-0{day} 08:00:00 +0800"
        )
    await sync(store, archive, story_window_hours=0)  # identical posts: not one story here
    assert await ids(store, "相同") == [f"2024-06-0{d}-same" for d in range(5, 0, -1)]


async def test_word_hits_rank_above_substring_hits(store, archive):
    archive.post("2024-01-01-a.md", "甲", "他们知道答案。", date="2024-01-01")  # 知 only inside 知道
    archive.post("2023-01-01-b.md", "乙", "求 知 若渴，知 也。", date="2023-01-01")  # 知 as a word
    await sync(store, archive, **WORD_BANDS)
    page = await search(store, "知")
    assert [h.post.id for h in page.hits] == ["2023-01-01-b", "2024-01-01-a"]
    assert [h.tier for h in page.hits] == ["word", "substring"]


async def test_with_several_terms_only_posts_with_every_term_as_a_word_are_in_the_word_band(store, archive):
    archive.post("2024-03-01-a.md", "甲", "他们知道答案。", date="2024-03-01")  # both only inside words
    archive.post("2024-02-01-c.md", "丙", "知，答案。", date="2024-02-01")  # 知 a word, 答 not
    archive.post("2023-01-01-b.md", "乙", "知，答。", date="2023-01-01")  # both as words
    archive.post("2022-01-01-d.md", "丁", "只有知。", date="2022-01-01")  # 答 missing: no match
    await sync(store, archive, **WORD_BANDS)
    page = await search(store, "知 答")
    assert [h.post.id for h in page.hits] == ["2023-01-01-b", "2024-03-01-a", "2024-02-01-c"]
    assert [h.tier for h in page.hits] == ["word", "substring", "substring"]
    assert page.total == 3


ODD = [
    "C++",
    "100%",
    "*",
    "NEAR(",
    "a-b",
    "中国 -美国",
    "AND",
    "OR",
    "NOT",
    '"',
    '""',
    '他说"你好',
    "'",
    "-",
    "--",
    "(",
    ")",
    "{title}:x",
    "title:x",
    "^x",
    "x:y:z",
    "\\",
    "\x00",
    "#",
    "cat:",
    "#",
    "since:2024-99-99",
    "until:abc",
    "🙂",
    "!!!",
    "“引号”",
    "a AND OR NOT b",
    "NEAR(a b, 2)",
    "*x*",
    "x'); DROP TABLE posts;--",
    " ",
    "",
    '-"a b"',
    "銀" * 500,
]


@pytest.mark.parametrize("q", ODD)
async def test_odd_queries_never_raise(corpus, q):
    page = await search(corpus, q)
    assert isinstance(page.hits, list)
    assert await corpus.count_posts() == 9


async def test_odd_query_still_finds_text(corpus):
    assert await ids(corpus, "C++") == ["2024-05-05-en"]
    assert await ids(corpus, "100%") == ["2024-05-05-en"]
    assert await ids(corpus, "NEAR( 清华") == []  # NEAR is a plain word here, and no post has it


async def test_paging_is_consistent(store, archive):
    for i in range(25):
        archive.post(
            f"2024-02-{i + 1:02d}-p.md", f"新闻{i}", "测试分页的正文内容。", date=f"2024-02-{i + 1:02d}"
        )
    await sync(store, archive)
    seen = []
    offset = 0
    while True:
        page = await search(store, "分页", limit=10, offset=offset)
        seen += [h.post.id for h in page.hits]
        if not page.has_more:
            break
        offset += 10
    assert len(seen) == 25 == len(set(seen))


async def test_snippet_marks_terms(corpus):
    page = await search(corpus, "汇率")
    hit = next(h for h in page.hits if h.post.id == "2024-05-04-rmb2")
    assert hit.marked_snippet("[", "]") == "本周人民币[汇率]小幅波动，交易清淡。"
    trad = await search(corpus, "銀行")
    assert "**銀行**" in trad.hits[0].marked_snippet()


def test_parse_query_syntax():
    q = parse_query('人民币 "exact phrase" -美国 cat:emnews #tag since:2024-01-02 until:2024-02-03 since:bad')
    assert q.terms == ["人民币", "exact phrase", "since:bad"]
    assert q.excludes == ["美国"]
    assert q.categories == ["emnews"] and q.tags == ["tag"]
    assert str(q.since) == "2024-01-02" and str(q.until) == "2024-02-03"


async def test_latin_diacritics_fold_and_wide_punctuation_separates_words(store, archive):
    archive.post(
        "2024-06-01-cafe.md",
        "Café culture in São Paulo",
        "Crème brûlée—naïve résumé，见“咖啡馆”。Ελλάδα and Москва too.",
    )
    archive.post("2024-06-02-other.md", "Other", "Nothing to see。")
    await sync(store, archive)
    for q in ["cafe", "CAFÉ", "sao paulo", "creme brulee", "résumé", "resume", "naive", "咖啡馆", "москва"]:
        assert await ids(store, q) == ["2024-06-01-cafe"], q
    assert await ids(store, "brulee—naive") == ["2024-06-01-cafe"]  # the dash separates, as a space
    assert await ids(store, "—") == []


# --- ranking over the whole archive (search v2) -----------------------------------------------


async def test_older_title_hits_beat_hundreds_of_newer_body_hits(store, archive):
    for i in range(3):  # old posts *about* the subject
        archive.post(f"2020-01-0{i + 1}-about{i}.md", f"第一季度报告{i}", "内容。", date=f"2020-01-0{i + 1}")
    for i in range(330):  # many newer posts that merely mention it (more than the 300-post window of old)
        day = f"2024-{i // 28 + 1:02d}-{i % 28 + 1:02d}"
        archive.post(f"{day}-m{i}.md", f"新闻{i}", "据第一季度报告，市场平稳。", date=day)
    await sync(store, archive, **WORD_BANDS, story_window_hours=0)  # look-alike posts: not stories here
    page = await search(store, "第一季度", limit=5)
    assert [h.post.id for h in page.hits[:3]] == [f"2020-01-0{i}-about{i - 1}" for i in (3, 2, 1)]
    assert [h.tier for h in page.hits] == ["title"] * 3 + ["word"] * 2
    assert page.total == 333 and page.total_text == "333"


async def test_a_substring_title_hit_outranks_a_body_word_hit_and_labels_sit_between(store, archive):
    archive.post(
        "2020-01-01-t.md", "知识付费兴起", "正文。", date="2020-01-01"
    )  # 知 inside 知识, in the title
    archive.post("2021-01-01-l.md", "标签", "正文。", date="2021-01-01", tags="知")  # a label
    archive.post(
        "2024-01-01-b.md", "正文里有", "求 知 若渴，知 也。", date="2024-01-01"
    )  # the word 知 in the body
    archive.post("2024-02-01-s.md", "另一篇", "我们知道。", date="2024-02-01")  # 知 inside 知道, in the body
    await sync(store, archive, **WORD_BANDS)
    page = await search(store, "知")
    assert [(h.post.id, h.tier) for h in page.hits] == [
        ("2020-01-01-t", "title"),
        ("2021-01-01-l", "label"),
        ("2024-01-01-b", "word"),
        ("2024-02-01-s", "substring"),
    ]


async def test_more_query_terms_in_the_title_rank_first_and_all_terms_must_match(store, archive):
    archive.post("2020-01-01-both.md", "人民币汇率", "正文。", date="2020-01-01")
    archive.post("2021-01-01-one.md", "人民币走势", "汇率平稳。", date="2021-01-01")
    archive.post("2022-01-01-no.md", "人民币走势", "没有另一个词。", date="2022-01-01")  # lacks 汇率
    archive.post("2023-01-01-body.md", "其他", "人民币汇率。", date="2023-01-01")
    await sync(store, archive)
    assert await ids(store, "人民币 汇率") == ["2020-01-01-both", "2021-01-01-one", "2023-01-01-body"]
    assert await ids(store, "人民币 -汇率") == ["2022-01-01-no"]
    assert await ids(store, "人民币 since:2021-06-01") == ["2022-01-01-no", "2023-01-01-body"]


async def test_every_match_is_reachable_up_to_the_cap_and_the_count_says_the_rest(store, archive):
    from store import search as search_mod

    search_mod.MAX_RESULTS, old = 40, search_mod.MAX_RESULTS
    try:
        for i in range(55):
            day = f"2024-{i // 28 + 1:02d}-{i % 28 + 1:02d}"
            archive.post(f"{day}-p{i}.md", "标题" if i % 3 else "分页的标题", "分页测试。", date=day)
        await sync(store, archive, story_window_hours=0)  # look-alike posts: not stories here
        seen, offset = [], 0
        while True:
            page = await search(store, "分页", limit=7, offset=offset)
            seen += [h.post.id for h in page.hits]
            assert page.total == 41 and page.total_text == "40+"
            if not page.has_more:
                break
            offset += 7
        assert len(seen) == 40 == len(set(seen))
        assert [h.tier for h in (await search(store, "分页", limit=40)).hits][:19] == ["title"] * 19
    finally:
        search_mod.MAX_RESULTS = old
    small = await search(store, "分页", limit=50)
    assert small.total == 55 and len(small.hits) == 50 and small.has_more


async def test_with_many_matches_the_bands_are_read_in_order_as_with_few(store, archive, monkeypatch):
    from store import search as search_mod

    for i in range(3):
        archive.post(f"2020-01-0{i + 1}-t{i}.md", f"汇率标题{i}", "人民币走势。", date=f"2020-01-0{i + 1}")
    archive.post("2020-02-01-half.md", "汇率半个", "没有另一个词。", date="2020-02-01")  # title, lacks 人民币
    archive.post("2020-03-01-label.md", "其他", "人民币汇率。", date="2020-03-01", tags="汇率")
    for i in range(12):
        archive.post(
            f"2024-01-{i + 1:02d}-b{i}.md", f"新闻{i}", "人民币汇率走强。", date=f"2024-01-{i + 1:02d}"
        )
    await sync(store, archive, **WORD_BANDS)
    few = await ids(store, "汇率 人民币")
    monkeypatch.setattr(search_mod, "MAX_RESULTS", 5)  # now "many": the band-by-band path
    many = await ids(store, "汇率 人民币", limit=5)
    assert many == few[:5]
    assert many[:3] == ["2020-01-03-t2", "2020-01-02-t1", "2020-01-01-t0"]
    assert "2020-02-01-half" not in few
    page = await search(store, "汇率 人民币", limit=5)
    assert page.total_text == "5+" and [h.tier for h in page.hits] == ["title"] * 3 + ["label", "word"]


async def test_past_the_cap_the_newest_matches_are_ranked_though_few_are_words(store, archive, monkeypatch):
    # 知 as a word in two old posts, inside 知道 in eight newer ones: the words are counted first (2, few),
    # so all matches are read in the index's own order, oldest first, and found to be more than the cap:
    # the page is ranked from the newest matches, as when they are read newest first
    from store import search as search_mod

    archive.post("2020-01-01-w0.md", "甲", "知也，对。", date="2020-01-01")
    archive.post("2020-01-02-w1.md", "乙", "知 也。", date="2020-01-02")
    for i in range(8):
        archive.post(f"2024-01-0{i + 1}-s{i}.md", f"丙{i}", f"我们知道第{i}件事。", date=f"2024-01-0{i + 1}")
    await sync(store, archive, **WORD_BANDS, story_window_hours=0)
    few = await search(store, "知", limit=10)
    assert [h.post.id for h in few.hits][:2] == ["2020-01-02-w1", "2020-01-01-w0"]  # the word band first
    monkeypatch.setattr(search_mod, "MAX_RESULTS", 5)
    page = await search(store, "知", limit=5)
    assert page.total_text == "5+"
    assert [h.post.id for h in page.hits] == [f"2024-01-0{i + 1}-s{i}" for i in range(7, 2, -1)]


async def test_with_every_pair_many_matches_are_counted_and_banded_without_body_words(
    store, archive, monkeypatch
):
    # every pair indexed (SEARCH_PAIRS=all): bodies hold no Chinese words, so a query with Chinese has
    # no word count; one term is counted, several are read, and past the cap the bands are read in order
    from store import search as search_mod

    for i in range(3):
        archive.post(f"2020-01-0{i + 1}-t{i}.md", f"汇率标题{i}", "人民币走势。", date=f"2020-01-0{i + 1}")
    archive.post("2020-03-01-label.md", "其他", "人民币汇率。", date="2020-03-01", tags="汇率")
    for i in range(12):
        archive.post(
            f"2024-01-{i + 1:02d}-b{i}.md", f"新闻{i}", "人民币汇率走强。", date=f"2024-01-{i + 1:02d}"
        )
    await sync(store, archive, search_pairs="all", story_window_hours=0)
    assert await store.pair_chars() == "*"
    for query in ("汇率", "汇率 人民币"):
        few = await search(store, query, limit=20)
        assert (
            few.total == 16 and [h.tier for h in few.hits] == ["title"] * 3 + ["label"] + ["substring"] * 12
        )
        newest_first = [f"2024-01-{i + 1:02d}-b{i}" for i in range(11, -1, -1)]
        assert [h.post.id for h in few.hits][4:] == newest_first
        monkeypatch.setattr(search_mod, "MAX_RESULTS", 5)  # now "many": the band-by-band path
        many = await search(store, query, limit=6)
        assert many.total_text == "5+" and [h.post.id for h in many.hits] == [h.post.id for h in few.hits][:5]
        monkeypatch.setattr(search_mod, "MAX_RESULTS", 1000)


def test_snippets_find_terms_in_plain_and_in_folded_text():
    from store.search import make_snippet

    body = "开头。" * 100 + "人民币汇率走强。" + "结尾。" * 100
    snippet, spans = make_snippet(body, ["汇率"])
    assert snippet.startswith("…") and [snippet[s:e] for s, e in spans] == ["汇率"]
    traditional = "開頭。" * 100 + "銀行調整利率。" + "結尾。" * 100  # found only once folded
    snippet, spans = make_snippet(traditional, ["银行"])
    assert [snippet[s:e] for s, e in spans] == ["銀行"]
    snippet, spans = make_snippet("The FED held RATES.", ["rates"])
    assert [snippet[s:e] for s, e in spans] == ["RATES"]


# Simplified and Traditional, full-width, accented and plain Latin, digits, punctuation: characters
# folding maps to others or leaves alone (none whose folding changes the text's length)
_SNIPPET_CHARS = "国银行汇率调整國銀匯調整ａｂＡＢ１abAB1éÉe，。 "


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=_SNIPPET_CHARS, max_size=400),
    st.lists(st.text(alphabet=_SNIPPET_CHARS, min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_snippets_skip_folding_only_where_folding_could_not_find_a_term(text, raw_terms):
    """make_snippet folds a text the lower-cased text lacks every term of only when a character of it
    folds into a term's: the same snippet and marks as when it always folds."""
    from unittest import mock

    from store import search as search_mod
    from store.search import make_snippet

    terms = sorted({t for t in (fold(r).strip() for r in raw_terms) if t}, key=len, reverse=True)
    if not terms:
        return
    text = "开头。" * 60 + text  # (a match past the first window moves the window)
    with mock.patch.object(search_mod, "may_fold_into", lambda text, terms: True):
        expected = make_snippet(text, terms)
    assert make_snippet(text, terms) == expected


def test_lower_case_makes_a_caseless_character_only_of_itself_but_for_one():
    """make_snippet looks for terms without cased characters in the text itself, not its lower case:
    right because no other character's lower case holds a caseless one, but İ's (i and a combining dot,
    U+0307), which the snippet therefore checks for. Every code point."""
    makers = {
        x
        for x in map(chr, range(sys.maxunicode + 1))
        if (low := x.lower()) != x and any(c != x and c.upper() == c for c in low)
    }
    assert makers == {"\u0130"}


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="汇率國銀\u0130\u0307iIaAÉé，。 ", max_size=300),
    st.lists(st.text(alphabet="汇率国银\u0307，", min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_caseless_terms_find_the_same_snippet_without_lower_case(text, terms):
    """A term with a cased character (`xyz`, in no text here) makes make_snippet look in the lower-cased
    text: the snippet and marks are the same as without it."""
    from store.search import make_snippet

    text = "开头。" * 60 + text
    assert make_snippet(text, terms) == make_snippet(text, [*terms, "xyz"])


async def test_a_word_is_looked_for_among_labels_only_when_the_labels_have_its_characters(store, archive):
    from store.search import _Term

    archive.post("2024-06-01-a.md", "季度报告", "本季度营收增长。", categories="这是分类")
    archive.post("2024-06-02-b.md", "高管变动", "公司宣布高管调整。", categories="人事")
    await sync(store, archive)
    chars = await store.label_chars()
    assert set("这是分类人事") <= chars
    assert _Term.of("高管", "", chars).label is None  # 高 and 管 are in no label: no label phrase
    assert _Term.of("这是", "", chars).label == 'tags : "这 是"'
    assert await ids(store, "这是") == ["2024-06-01-a"]  # found among its labels only
    assert await ids(store, "高管") == ["2024-06-02-b"]
    # a new label brings its characters
    archive.post("2024-06-03-c.md", "新闻", "正文。", categories="高管动态")
    await sync(store, archive)
    assert _Term.of("高管", "", await store.label_chars()).label is not None
    assert set(await ids(store, "高管")) == {"2024-06-02-b", "2024-06-03-c"}


# --- reading ranking texts only where a term can be (store.search._title_hits) ---------------------

# A small alphabet, so that random terms hit titles, bodies and labels often; labels have a few of its
# characters and two of their own.
_TITLE_CHARS = "汇率人民币市场走强银行"
_LABEL_CHARS = "汇市观察"


class _SmallAlphabetStore(LoopStore):
    def __init__(self, root):
        import random

        super().__init__(root / "alphabet.sqlite3")
        rng = random.Random(9)
        archive = Archive(root / "site")
        for i in range(60):
            title = "".join(rng.choice(_TITLE_CHARS) for _ in range(rng.randint(2, 8)))
            body = "".join(rng.choice(_TITLE_CHARS + "，。") for _ in range(rng.randint(5, 40)))
            labels = "".join(rng.choice(_LABEL_CHARS) for _ in range(2))
            archive.post(f"2024-03-{i % 28 + 1:02d}-p{i}.md", title, body, categories=labels)
        # each post its own story: counts and hits are posts here
        self.run(sync_archive(self.store, open_archive(archive.root, story_window_hours=0), workers=0))


@pytest.fixture(scope="module")
def alphabet(tmp_path_factory):
    s = _SmallAlphabetStore(tmp_path_factory.mktemp("alphabet"))
    yield s
    s.close()


_TERM = st.text(alphabet=_TITLE_CHARS + _LABEL_CHARS, min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_TERM, st.sampled_from(["a", "率 市", '"汇率 人民"'])), min_size=1, max_size=3),
    st.sampled_from(["", " since:2024-03-10", " -强", " category:汇市"]),
)
def test_ranking_reads_titles_only_where_a_term_may_be_and_ranks_as_when_it_reads_all(alphabet, terms, more):
    """Every query of CJK terms (with a filter or an exclusion, or not) ranks as it would with every
    match's title and labels read, and its word matches read rather than known from their count."""
    from unittest import mock

    from store import search as search_mod
    from store.candidates import Reads

    query = " ".join(terms) + more
    fast = alphabet.run(search(alphabet.store, query, limit=100))
    rank_all = search_mod._rank_all

    def reading_word_matches(*args):  # (never known from the word count or a list: read)
        return rank_all(*args[:6])

    with (
        mock.patch.object(search_mod, "_title_hits", search_mod._hits_in_texts),
        mock.patch.object(search_mod, "_rank_all", reading_word_matches),
    ):
        full = alphabet.run(search(alphabet.store, query, limit=100))
    # several terms' titles read from the titles' index, as where the titles are not in memory
    with mock.patch.object(Reads, "heads_in_memory", lambda self: False):
        from_index = alphabet.run(search(alphabet.store, query, limit=100))
    ranked = [(h.post.id, h.tier) for h in full.hits]
    assert (
        [(h.post.id, h.tier) for h in fast.hits] == ranked == [(h.post.id, h.tier) for h in from_index.hits]
    )
    assert fast.total == full.total == from_index.total


async def test_a_title_holds_a_term_only_as_a_substring(store, archive):
    # 汇率人民 is 汇率 人民 as words: adjacent words of the first title (a word match), but not a
    # substring of it (not a title match)
    archive.post("2024-01-01-a.md", "汇率，人民", "正文汇率人民币。", date="2024-01-01")
    archive.post("2024-01-02-b.md", "谈汇率人民币", "正文。", date="2024-01-02")
    await sync(store, archive, **WORD_BANDS, story_window_hours=0)
    page = await search(store, "汇率人民")
    assert [(h.post.id, h.tier) for h in page.hits] == [
        ("2024-01-02-b", "title"),
        ("2024-01-01-a", "word"),
    ]


async def test_word_matches_are_known_from_their_count_only_when_they_are_among_the_matches(store, archive):
    # 汇率人民 as words (汇率 人民) matches the first post, whose text does not hold 汇率人民; the second holds
    # it only as a substring: one word match, one match, but not the same post
    archive.post("2024-01-01-a.md", "甲", "汇率，人民。", date="2024-01-01")
    archive.post("2024-01-02-b.md", "乙", "汇率人民币。", date="2024-01-02")
    archive.post("2024-01-03-c.md", "丙", "人民币汇率。", date="2024-01-03")
    await sync(store, archive, **WORD_BANDS, story_window_hours=0)
    page = await search(store, "汇率人民")
    assert [(h.post.id, h.tier) for h in page.hits] == [("2024-01-02-b", "substring")]
    # one word: every word match is a match, and here all matches are word matches
    page = await search(store, "汇率")
    assert {h.tier for h in page.hits} == {"word"} and page.total == 3


def test_ranking_texts_are_read_only_for_posts_whose_title_holds_a_term(alphabet):
    from unittest import mock

    from store.candidates import Reads

    read: list[int] = []
    term_hits = Reads.term_hits

    def spy(self, rowids, terms):
        read.extend(rowids)
        return term_hits(self, rowids, terms)

    with mock.patch.object(Reads, "term_hits", spy):
        page = alphabet.run(search(alphabet.store, "走", limit=100))
    titled = [h for h in page.hits if h.tier == "title"]
    assert titled and len(page.hits) > len(titled)  # (the fixture has both kinds)
    assert read == []  # 走 is in no label: the titles holding it are read from the titles' index
    with mock.patch.object(Reads, "term_hits", spy):
        page = alphabet.run(search(alphabet.store, '"走 强"', limit=100))  # (two runs: not one substring)
    assert 0 < len(read) < page.total  # only titles with 走 and 强 were read
    read.clear()
    with mock.patch.object(Reads, "term_hits", spy):
        page = alphabet.run(search(alphabet.store, "汇", limit=100))  # 汇 may be among the labels
    assert len(read) == page.total == len(page.hits)
