"""Pairs of common characters (store.segment): chosen per archive, and exact — a query over pairs finds
the same posts as the character phrase it replaces, which is what substring-complete recall needs."""

from __future__ import annotations

import functools
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import segment as segment_module
from store import sync as sync_module
from store.db import Store
from store.jekyll import open_archive
from store.search import _Term, matching, search
from store.segment import (
    ALL_PAIRS,
    PAIR_CHARS,
    PAIR_CHARS_FEWEST,
    PAIR_TOKENS,
    analyse,
    distinct_chars,
    pair_chars,
    pairs,
)
from store.sync import sync_archive
from store.text import CJK_CHAR, fold

from .conftest import Archive, LoopStore

ALPHABET = "的是了不能中国人好經"  # 經 folds to 经: pairs are built from folded text
COMMON = "的是了不能中"  # the pair characters these tests give the archive


def test_pairs_text_holds_adjacent_common_characters_in_stretches():
    assert pairs("中国人不能是了", "中国不能是了") == "中国 不能 能是 是了"
    assert pairs("abc 不能, 中的", "不能中的") == "不能 中的"
    # a gap only where a run starts with the character the last one ended with ("能 能中" would match 能能中)
    assert pairs("不能，能中", "不能中") == "不能 0 能中"
    assert pairs("不能", "") == ""  # no pair characters chosen: nothing


def test_pair_characters_are_the_most_common_folded_characters():
    chars = pair_chars(["經經經 经 的的 a1", "的 不"])
    assert chars == "经的不"  # 經 and 经 are one character once folded; Latin is not counted
    # 300 characters, the i-th in i + 1 short posts: the PAIR_CHARS most common are chosen
    sample = [chr(0x4E00 + i) * 2 for i in range(300) for _ in range(i + 1)]
    chosen = pair_chars(sample)
    assert len(chosen) == PAIR_CHARS


def test_long_posts_get_fewer_pair_characters():
    # posts of 3,000 characters of 300 kinds would hold far more than PAIR_TOKENS pairs each
    rng = random.Random(2)
    sample = [
        "".join(rng.choice([chr(0x4E00 + i) for i in range(300)]) for _ in range(3000)) for _ in range(20)
    ]
    chosen = pair_chars(sample)
    assert PAIR_CHARS_FEWEST <= len(chosen) < PAIR_CHARS
    assert sum(pairs(text, chosen).count(" ") + 1 for text in sample) / len(sample) <= PAIR_TOKENS
    # SEARCH_PAIRS=auto: posts that long get every pair; short ones the common characters, as "common"
    assert pair_chars(sample, "auto") == ALL_PAIRS
    short = [text[:20] for text in sample]
    assert pair_chars(short, "auto") == pair_chars(short) != ALL_PAIRS


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET + "，a ") for _ in range(n))


def random_archive(
    root, seed: int, posts: int, title_chars: int, body_chars: int, end: str = "", tags: bool = False
) -> Archive:
    """An archive of `posts` posts of random text of the test alphabet (each body ending with `end`;
    with `tags`, each post has up to three tags of its first six characters)."""
    rng = random.Random(seed)
    archive = Archive(root / "site")
    archive.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
    for i in range(posts):
        title, body = random_text(rng, title_chars), random_text(rng, body_chars) + end
        labels = [
            "".join(rng.choice(ALPHABET[:6]) for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(0, 3))
        ]
        archive.post(
            f"2024-03-{i % 28 + 1:02d}-p{i}.md",
            title,
            body,
            tags="[" + ", ".join(labels) + "]" if tags else "",
        )
    return archive


def archive_cfg(archive: Archive, search_pairs: str):
    # random strings of ten characters look alike: no stories, every post is its own result
    return open_archive(archive.root, story_window_hours=0, search_pairs=search_pairs)


class PairStore(LoopStore):
    """A synced store whose pair characters are COMMON (or, with SEARCH_PAIRS=all, every CJK character),
    on its own loop (for hypothesis)."""

    def __init__(self, root, search_pairs: str = "common", tags: bool = False):
        super().__init__(root / "pairs.sqlite3")
        archive = random_archive(root, 7, 40, 8, 40, tags=tags)
        self.run(self.store.set_meta("pair_chars", COMMON))
        self.run(sync_archive(self.store, archive_cfg(archive, search_pairs), workers=0))
        rows = self.run(self.store._fetch("SELECT id, rowid, title, body FROM posts"))
        self.rowids = {r[0]: r[1] for r in rows}
        # the texts as the parser left them (it joins CJK lines, for one), folded as the index folds
        self.texts = {r[0]: (fold(r[2]), fold(r[3])) for r in rows}


@pytest.fixture(scope="module", params=["common", "all"])
def live(tmp_path_factory, request):
    s = PairStore(tmp_path_factory.mktemp("pairs"), request.param)
    assert s.run(s.store.pair_chars()) == (COMMON if request.param == "common" else ALL_PAIRS)
    yield s
    s.close()


def test_runs_of_pair_characters_are_looked_up_as_pairs():
    assert _Term.of("不能", COMMON).chars == 'pairs : "不能"'
    assert _Term.of("中是了", COMMON).chars == 'pairs : "中是 是了"'
    assert _Term.of("中国", COMMON).chars == 'chars : "中 国"'  # 国 is not common: a cheap phrase
    assert _Term.of("不", COMMON).chars == 'chars : "不"'
    assert _Term.of("不能", "").chars == 'chars : "不 能"'
    # with every pair indexed (SEARCH_PAIRS=all), every run of two or more CJK characters
    assert _Term.of("中国", ALL_PAIRS).chars == 'pairs : "中国"'
    assert _Term.of("A股市场", ALL_PAIRS).chars == '(pairs : "股市 市场" AND {title body} : "a")'
    assert _Term.of("不", ALL_PAIRS).chars == 'chars : "不"'


def test_a_term_of_one_index_token_matches_it_in_any_column():
    # wherever such a term is a word (title, body, pieces, labels) it is in `pairs` or `chars` too
    assert _Term.of("不能", COMMON).any == '"不能"'
    assert _Term.of("不", COMMON).any == '"不"'
    assert _Term.of("中国", ALL_PAIRS).any == '"中国"'
    # a label phrase of other words than the token, a phrase of characters, or more than one token:
    # each in its own columns
    assert _Term.of("中国", COMMON).any == '(tags : "中国" OR chars : "中 国")'
    assert _Term.of("能中", COMMON, frozenset(ALPHABET)).any == '(tags : "能 中" OR pairs : "能中")'
    assert _Term.of("中是了", COMMON).any.count(":") == 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=5))
def test_a_substring_is_found_exactly_where_it_is(live, term):
    want = {i for i, (title, body) in live.texts.items() if fold(term) in title or fold(term) in body}
    got = live.run(matching(live.store, term, list(live.rowids.values())))
    assert {i for i, rowid in live.rowids.items() if rowid in got} == want


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same archive in a store of each SEARCH_PAIRS mode."""
    stores = {mode: PairStore(tmp_path_factory.mktemp(f"both-{mode}"), mode) for mode in ("common", "all")}
    yield stores
    for s in stores.values():
        s.close()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET + "a", min_size=1, max_size=4), min_size=1, max_size=3))
def test_every_search_answers_the_same_whichever_pairs_are_indexed(both, terms):
    """The same posts, counted the same, titles and then labels first. With every pair indexed,
    bodies hold no CJK words (store.segment), so a body's matches are one band, newest first (otherwise
    those matching as words come before those matching as substrings), and a term of Latin words with
    CJK characters between them (`a不a`) finds its Latin words adjacent once a body's CJK text is left
    out: more posts, never fewer."""
    query = " ".join(terms)
    common, every = (both[m].run(search(both[m].store, query, limit=100)) for m in ("common", "all"))
    found, found_all = {h.post.id for h in common.hits}, {h.post.id for h in every.hits}
    if any(re.search(r"a.*[^a\s].*a", t) for t in terms):
        assert found <= found_all and common.total <= every.total
        return
    assert every.total == common.total and found_all == found
    for page in (common, every):
        tiers = [h.tier for h in page.hits]
        assert tiers == sorted(tiers, key=["title", "label", "word", "substring"].index)
    for tier in ("title", "label"):
        assert {h.post.id for h in every.hits if h.tier == tier} == {
            h.post.id for h in common.hits if h.tier == tier
        }
    rest = [h for h in every.hits if h.tier not in ("title", "label")]
    assert [h.post.rowid for h in rest] == sorted((h.post.rowid for h in rest), reverse=True)
    if any(ch >= "\u3400" for ch in query):  # (a query of Latin words only is matched as words)
        assert {h.tier for h in rest} <= {"substring"}


def test_a_search_over_pairs_counts_and_pages_every_match(live):
    for term in ("不能", "的是", "了不能"):
        want = {i for i, (t, b) in live.texts.items() if term in t or term in b}
        assert want  # the fixture holds these
        page = live.run(search(live.store, term, limit=100))
        assert {h.post.id for h in page.hits} == want
        assert page.total == len(want)


async def test_an_archive_chooses_its_pair_characters_once_it_is_large_enough(tmp_path, monkeypatch):
    monkeypatch.setattr(sync_module, "PAIR_MIN_POSTS", 12)
    rng = random.Random(3)
    archive = Archive(tmp_path / "site")
    archive.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")

    def add(i: int) -> None:
        archive.post(f"2024-04-{i % 28 + 1:02d}-q{i}.md", random_text(rng, 6), random_text(rng, 30) + "不能")

    async with await Store.open(tmp_path / "grow.sqlite3") as store:
        for i in range(5):
            add(i)
        await sync_archive(
            store, open_archive(archive.root, story_window_hours=0, search_pairs="auto"), workers=0
        )
        assert await store.get_meta("pair_chars") is None  # too small to need them
        for i in range(5, 15):
            add(i)
        await sync_archive(
            store, open_archive(archive.root, story_window_hours=0, search_pairs="auto"), workers=0
        )
        chosen = await store.pair_chars()
        assert "不" in chosen and "能" in chosen  # in every post
        # the posts indexed before the choice were indexed again, with pairs: a pairs query finds all
        assert _Term.of("不能", chosen).chars == 'pairs : "不能"'
        page = await search(store, "不能", limit=100)
        assert page.total == 15
        for i in range(15, 20):
            add(i)
        await sync_archive(
            store, open_archive(archive.root, story_window_hours=0, search_pairs="auto"), workers=0
        )
        assert await store.pair_chars() == chosen  # chosen once
        assert (await search(store, "不能", limit=100)).total == 20
        rows = await store._fetch("SELECT id, title, body FROM posts")
        for term in ("的是", "是了", "中"):
            want = {r[0] for r in rows if term in fold(r[1]) or term in fold(r[2])}
            assert {h.post.id for h in (await search(store, term, limit=100)).hits} == want


async def test_an_upgraded_database_chooses_them_from_its_stored_posts(tmp_path, monkeypatch):
    monkeypatch.setattr(sync_module, "PAIR_MIN_POSTS", 1000)
    rng = random.Random(5)
    archive = Archive(tmp_path / "site")
    archive.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
    for i in range(15):
        archive.post(f"2024-04-{i % 28 + 1:02d}-u{i}.md", random_text(rng, 6), random_text(rng, 30) + "是了")
    cfg = open_archive(archive.root, story_window_hours=0, search_pairs="auto")
    async with await Store.open(tmp_path / "old.sqlite3") as store:
        await sync_archive(store, cfg, workers=0)
        assert await store.get_meta("pair_chars") is None
        # as the 9 -> 10 migration leaves a database: a new index to build
        monkeypatch.setattr(sync_module, "PAIR_MIN_POSTS", 12)
        await store.set_meta("index_format", "stale")
        result = await sync_archive(store, cfg, workers=0)
        assert result.unchanged == 15
        chosen = await store.pair_chars()
        assert "是" in chosen and "了" in chosen
        assert _Term.of("是了", chosen).chars == 'pairs : "是了"'
        assert (await search(store, "是了", limit=100)).total == 15


def reference_pairs(folded: str, chars: str) -> str:
    """The pairs text by its definition: each run of pair characters as its adjacent pairs, a gap token
    between two runs where the second starts with the character the first ends with."""
    runs: list[str] = []
    current = ""
    for ch in folded + "\n":
        if ch in chars:
            current += ch
            continue
        if len(current) > 1:
            runs.append(current)
        current = ""
    tokens: list[str] = []
    for i, run in enumerate(runs):
        if i and runs[i - 1][-1] == run[0]:
            tokens.append("0")
        tokens += [run[k : k + 2] for k in range(len(run) - 1)]
    return " ".join(tokens)


# beside the test alphabet: an extension-B character (beyond 16 bits), a lone surrogate (a Python
# string can hold one), a character just outside the CJK ranges (U+4DC0) and the gap token itself
ODD = "\U00020001\ud800\u4dc00"


@given(
    st.text(alphabet=ALPHABET + ODD + "，a 1\n\x00", max_size=80),
    st.sampled_from([COMMON, "的是", "不能中国人好", "的\ufa6e是", "的\U00020001"]),  # U+FA6E: unassigned
)
def test_the_pairs_text_is_exactly_its_definition(text, chars):
    text = text.replace("經", "\ufa6e") if "\ufa6e" in chars else text
    assert pairs(text, chars) == reference_pairs(text, chars)
    # every CJK character a pair character (SEARCH_PAIRS=all): as if the text's own were chosen
    own = set(re.findall(CJK_CHAR, text))
    assert pairs(text, ALL_PAIRS) == reference_pairs(text, "".join(own))
    # both ways of making them (short texts run by run, long ones on code points) make that text
    if len(text) >= 2:
        for which in (chars, ALL_PAIRS):
            assert segment_module._short_pairs(text, which) == segment_module._long_pairs(text, which)
    # and its chars text holds each of them once (in code point order)
    assert distinct_chars(text) == " ".join(sorted(own))


@given(st.text(max_size=200))
def test_every_pair_s_texts_of_any_text_are_their_definitions(text):
    own = set(re.findall(CJK_CHAR, text))
    assert pairs(text, ALL_PAIRS) == reference_pairs(text, "".join(own))
    if len(text) >= 2:
        assert segment_module._short_pairs(text, ALL_PAIRS) == segment_module._long_pairs(text, ALL_PAIRS)
    assert distinct_chars(text) == " ".join(sorted(own))


def test_an_archive_with_every_pair_indexes_no_cjk_words_in_bodies():
    body = "iPhone手机的销量很好，5G版本 A股"
    every, common = (
        analyse("苹果手机 iPhone", body, ["科技"], [], chars).fts for chars in (ALL_PAIRS, COMMON)
    )
    assert every.body.decode().split() == ["iphone", "5g", "a"]  # its CJK text is in pairs and chars
    assert {"手机", "销量"} <= set(common.body.decode().split())
    # titles and labels keep their words (they rank the title and label bands)
    assert every.title == common.title and every.tags == common.tags
    assert "手机" in every.title.decode().split()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="中国人口ab1.-_+#&% ，。、“”—…！？：（）ａ１\u3000\n\tあア한éж·", max_size=60))
def test_with_every_pair_a_body_keeps_exactly_its_latin_words(text):
    # the words of the body with its CJK runs left out (the definition), though more is left out before
    # segmenting: the whitespace and punctuation the segmenter would yield one by one
    f = fold(text)
    want = segment_module._index_words(
        segment_module._jieba().cut(segment_module._CJK_RUN.sub(" ", f), False)
    )
    assert analyse("", text, [], [], ALL_PAIRS).fts.body.decode().split() == want.split()


def test_an_archive_with_every_pair_indexes_each_character_once():
    text = "中国人，人口。a 中"
    assert (
        analyse("", text, [], []).fts.chars.decode() == "0 中 国 人 0 人 口 0 中"
    )  # (the first 0: the title)
    assert analyse("", text, [], [], ALL_PAIRS).fts.chars.decode() == " ".join(sorted("中国人口"))
    assert analyse("", text, [], [], ALL_PAIRS).fts.pairs.decode() == "中国 国人 0 人口"


async def test_changing_search_pairs_indexes_the_stored_posts_again(tmp_path):
    archive = random_archive(tmp_path, 11, 15, 6, 30, end="中国")
    cfg = functools.partial(archive_cfg, archive)

    async with await Store.open(tmp_path / "switch.sqlite3") as store:

        async def in_pairs(pair: str) -> int:  # posts whose pairs text holds the pair
            q = f'pairs : "{pair}"'
            return (await store._fetch("SELECT COUNT(*) FROM posts_fts WHERE posts_fts MATCH ?", (q,)))[0][0]

        await sync_archive(store, cfg("common"), workers=0)
        assert await store.get_meta("pair_chars") is None  # (too small to choose common ones)
        assert await in_pairs("中国") == 0
        result = await sync_archive(store, cfg("all"), workers=0)
        assert result.unchanged == 15 and await store.pair_chars() == ALL_PAIRS
        assert await in_pairs("中国") == 15 and await store.index_is_current()
        assert (await search(store, "中国", limit=100)).total == 15
        # back: the common characters are not chosen yet (too few posts), and no pairs are indexed
        await sync_archive(store, cfg("common"), workers=0)
        assert await store.get_meta("pair_chars") is None and await in_pairs("中国") == 0
        assert (await search(store, "中国", limit=100)).total == 15
        # a sync that stops after the setting changed and before the index is rebuilt: the index is not
        # current, and the next sync rebuilds it
        await store.set_pair_chars(ALL_PAIRS)
        assert not await store.index_is_current()
        await sync_archive(store, cfg("all"), workers=0)
        assert await in_pairs("中国") == 15 and await store.index_is_current()


async def test_auto_chooses_every_pair_for_long_posts_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sync_module, "PAIR_MIN_POSTS", 12)
    monkeypatch.setattr(segment_module, "PAIR_TOKENS", 60)  # these posts are "long": ~70 common pairs
    archive = random_archive(tmp_path, 12, 15, 6, 120)
    cfg = functools.partial(archive_cfg, archive)

    async with await Store.open(tmp_path / "auto.sqlite3") as store:
        assert open_archive(archive.root).search_pairs == "all"  # the default (auto was, until session 26)
        with caplog.at_level("INFO", logger="newsbot.sync"):
            await sync_archive(store, cfg("auto"), workers=0)
        assert await store.pair_chars() == ALL_PAIRS and await store.index_is_current()
        assert "every pair of adjacent CJK characters (SEARCH_PAIRS=auto)" in caplog.text  # what it chose
        stored = await store._fetch("SELECT title, body FROM posts")
        in_text = sum("中国" in fold(title + "\n" + body) for title, body in stored)
        assert (await search(store, "中国", limit=100)).total == in_text
        # "common" chooses the common characters anew; "auto" keeps what is there, whichever it is
        await sync_archive(store, cfg("common"), workers=0)
        common = await store.pair_chars()
        assert common not in ("", ALL_PAIRS) and await store.index_is_current()
        result = await sync_archive(store, cfg("auto"), workers=0)
        assert await store.pair_chars() == common and result.unchanged == 15
        # but an index made again anyway (a new index format) is made as "auto" would choose now
        await store.set_meta("index_format", "an older format")
        await sync_archive(store, cfg("auto"), workers=0)
        assert await store.pair_chars() == ALL_PAIRS and await store.index_is_current()
        assert (await search(store, "中国", limit=100)).total == in_text
        # ("common" keeps its characters through such a rebuild)
        await sync_archive(store, cfg("common"), workers=0)
        common = await store.pair_chars()
        await store.set_meta("index_format", "an older format")
        await sync_archive(store, cfg("common"), workers=0)
        assert await store.pair_chars() == common and await store.index_is_current()


async def test_only_an_archive_with_every_pair_is_indexed_again_for_bodies_without_cjk_words(tmp_path):
    # as the code before this index layout left them: the same format name for every archive
    old_format = segment_module.INDEX_FORMAT
    for mode, rebuilt in (("all", True), ("common", False)):
        archive = random_archive(tmp_path / mode, 3, 15, 6, 200)
        cfg = archive_cfg(archive, mode)
        async with await Store.open(tmp_path / f"{mode}.sqlite3") as store:
            await sync_archive(store, cfg, workers=0)
            assert await store.index_is_current()
            await store.set_meta("index_format", old_format)
            assert await store.index_is_current() != rebuilt
            await sync_archive(store, cfg, workers=0)
            assert await store.index_is_current()
            stored = await store._fetch("SELECT title, body FROM posts")
            for term in ("的是", "不", "能中"):
                in_text = sum(term in fold(title + "\n" + body) for title, body in stored)
                assert (await search(store, term, limit=100)).total == in_text


async def test_a_parallel_sync_counts_the_pair_characters_in_a_worker(tmp_path, monkeypatch):
    # the main process of a sync whose workers parse makes no index texts (nor imports numpy for them)
    monkeypatch.setattr(sync_module, "PAIR_MIN_POSTS", 12)
    monkeypatch.setattr(sync_module, "PARALLEL_THRESHOLD", 10)

    def not_here(*args, **kwargs):
        raise AssertionError("pair characters counted in the main process")

    monkeypatch.setattr(sync_module, "pair_chars", not_here)  # (the worker imports its own)
    archive = random_archive(tmp_path, 13, 15, 6, 1500)  # long enough for every pair whatever the budget
    async with await Store.open(tmp_path / "parallel.sqlite3") as store:
        result = await sync_archive(store, archive_cfg(archive, "auto"), workers=1)
        assert result.added == 15 and await store.pair_chars() == ALL_PAIRS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(alphabet=ALPHABET, min_size=1, max_size=3),
    st.sets(st.integers(0, 39), max_size=40),
    st.sampled_from([0, 1, 3, 4096]),
    st.sampled_from([1, 2, 64]),
    st.sampled_from(["", " since:2024-05-01", " until:2024-04-30"]),  # (every post is of 2024-05-01)
)
def test_matches_among_given_posts_are_found_however_they_are_checked(live, term, picked, gap, walk, when):
    """Which of some posts match (alerts, a search's title candidates): the same whether the posts are
    checked one by one, by walks of the matches between them, or by walks stopped where the matches are
    dense (WALK_PER_ROWID), and with a filter (a join with the posts)."""
    from unittest import mock

    from store import candidates

    ids = sorted(live.texts)
    chosen = {live.rowids[ids[i]]: ids[i] for i in picked if i < len(ids)}
    want = {
        rowid
        for rowid, id_ in chosen.items()
        if any(fold(term) in text for text in live.texts[id_]) and "until" not in when
    }
    query = term + when
    with (
        mock.patch.object(candidates, "WITHIN_GAP", gap),
        mock.patch.object(candidates, "WALK_PER_ROWID", walk),
    ):
        got = live.run(matching(live.store, query, list(chosen)))
    assert got == want


@pytest.fixture(scope="module", params=["common", "all"])
def labelled(tmp_path_factory, request):
    """A PairStore whose posts have tags (of some of the alphabet's characters only)."""
    s = PairStore(tmp_path_factory.mktemp("labelled"), request.param, tags=True)
    yield s
    s.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=2), min_size=1, max_size=2), st.booleans())
def test_a_term_s_one_token_finds_what_its_columns_found(labelled, terms, exclude):
    """A term of one index token is matched in any column instead of as a label word or a substring of
    the title or body: the same posts, bands and count, also as an exclusion."""
    from unittest import mock

    from store import search as search_module

    query = " ".join(terms[:1] + [("-" if exclude else "") + t for t in terms[1:]])
    new = labelled.run(search(labelled.store, query, limit=100))
    with mock.patch.object(search_module, "_one_token", lambda folded, pair_chars: None):
        old = labelled.run(search(labelled.store, query, limit=100))
    assert [(h.post.id, h.tier) for h in new.hits] == [(h.post.id, h.tier) for h in old.hits]
    assert new.total == old.total
    everything = list(labelled.rowids.values())
    assert labelled.run(matching(labelled.store, query, everything)) == {h.post.rowid for h in old.hits}
