"""Folding: store.text.nfkc normalises only where NFKC can change something, and must give exactly
what `unicodedata.normalize("NFKC", …)` gives; fold is unchanged by it."""

from __future__ import annotations

import unicodedata
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

import store.text
from store.text import CJK_SPANS, fold, may_fold_into, nfkc


def NFKC(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


BMP = [chr(cp) for cp in range(0x10000) if not 0xD800 <= cp < 0xE000]


def test_every_bmp_character_alone_and_beside_what_it_may_combine_with():
    # each character alone, after a letter and a Hangul syllable (it may be a second half: a combining
    # mark, a vowel jamo, U+3099), before a combining mark (it may be a first half), between jamo
    wrong = [
        hex(ord(ch))
        for ch in BMP
        for text in (ch, f"e{ch}", f"{ch}\u0301", f"가{ch}\u11a8", f"\u1100{ch}", f"か{ch}\u3099x")
        if nfkc(text) != NFKC(text)
    ]
    assert wrong == []


def _composition_pairs() -> list[tuple[str, str]]:
    pairs = []
    for cp in range(0x110000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            pairs.append((chr(int(parts[0], 16)), chr(int(parts[1], 16))))
    return pairs


def test_every_canonical_composition_in_any_plane_and_hangul():
    text_around = ("中文，", "abc ", "")
    wrong = [
        (a, b)
        for a, b in _composition_pairs()
        for before in text_around
        if nfkc(f"{before}{a}{b}文") != NFKC(f"{before}{a}{b}文")
    ]
    assert wrong == []
    for text in ("\u1100\u1161", "ㄱㅏㄴ", "\u1100\u1161\u11a8", "가\u11a8", "ｶﾞｷﾞ", "ｶ\u3099", "①㎡ｶﾞ，"):
        assert nfkc(text) == NFKC(text), text


MIXED = (
    "abcAZ09 ,.-_\n中文國語的是"  # ASCII, CJK (Traditional too)
    "，。：！？（）「」·×÷±①㎡￥ＡＢａｂ１２"  # punctuation and compatibility forms NFKC changes
    "\u0300\u0301\u0308\u0327\u0344\u0341\u302a\u302e"  # combining marks (some decompose)
    "\u1100\u1161\u11a8\u3131\u314f가각"  # Hangul: jamo, compatibility jamo, syllables
    "かがカ\u3099\u309aｶﾞﾟ"  # kana and voiced marks, half-width
    "éÅﬁℌ\u212b\u2126\u0b47\u0b3e\u0bc6\u0bbe"  # precomposed, ligature, singletons, Indic vowel signs
    "\U0001d400\U0001d7ce\U0002f800\U00011099\U000110ba\U0001f600"  # beyond the BMP
)


@given(st.text(alphabet=MIXED, max_size=60))
def test_nfkc_is_unicodedata_nfkc_on_mixed_text(text):
    assert nfkc(text) == NFKC(text)


@given(st.text(max_size=40))
def test_nfkc_is_unicodedata_nfkc_on_any_text(text):
    assert nfkc(text) == NFKC(text)


@given(st.text(alphabet=MIXED, max_size=60))
def test_fold_is_unchanged(text):
    with mock.patch.object(store.text, "nfkc", NFKC):  # fold as it was: the whole text normalised
        expected = fold(text)
    assert fold(text) == expected


def test_texts_of_many_pieces_are_normalised_in_one_pass_with_the_same_result():
    from store.text import NFKC_PIECES, _nfkc_patterns

    changed, _ = _nfkc_patterns()
    many_changed = "".join(ch for ch in BMP if changed.match(ch))  # every character NFKC changes
    many_runs = "中e\u0301" * (NFKC_PIECES + 5)  # a run to normalise after every CJK character
    few = "中文，" * 100 + "e\u0301" * (NFKC_PIECES - 1)
    for text in (many_changed, many_runs, few, many_changed + few):
        assert nfkc(text) == NFKC(text)


def test_the_characters_that_fold_into_another_are_all_known():
    """may_fold_into's table: every character whose folding alone is more than its lower case (NFKC,
    a dropped diacritic, OpenCC's t2s) is listed under each character its folding holds."""
    from store.text import _fold_sources

    sources = _fold_sources()
    cjk = (chr(cp) for first, last in CJK_SPANS for cp in range(first, min(last, first + 30_000) + 1))
    for ch in [*BMP, *cjk, "\U0001d400", "\U0001f100", "\U0002f800"]:
        folded = fold(ch)
        if folded != ch.lower():
            assert all(ch in sources.get(out, "") for out in folded), (ch, folded)
    assert may_fold_into("開頭。銀行調整", ["银行"]) and may_fold_into("ＡＢＣ", ["abc"])
    assert may_fold_into("Café", ["cafe"]) and may_fold_into("第①名", ["1"])
    assert not may_fold_into("开头。银行调整", ["汇率"]) and not may_fold_into("The FED", ["rates"])
    assert not may_fold_into("國", ["x"])  # 国 is not a term's character


def test_a_long_run_of_combining_marks_is_cut_to_the_stream_safe_limit():
    """NFKC puts a run of combining marks in order in quadratic time (160,000 characters of two
    alternating marks: 13 s; a 2 MB post of them: minutes per fold); folding keeps the first MAX_MARKS
    of a run (Unicode's stream-safe limit), which real text never reaches. The time bound is a
    complexity class, not a speed goal: 2,000,000 marks take ~0.1 s, quadratic would take hours."""
    import time

    from store.text import MAX_MARKS

    marks = "\u0301\u0316"  # combining classes 230 and 220: NFKC swaps each pair
    short = "e" + marks * (MAX_MARKS // 2) + "中"
    assert nfkc(short) == NFKC(short)  # a run of MAX_MARKS: as it was
    started = time.perf_counter()
    long = "e" + marks * 1_000_000 + "中文" + "é" * 10
    assert nfkc(long) == NFKC("e" + marks * (MAX_MARKS // 2) + "中文" + "é" * 10)
    assert fold(long) == fold("e" + marks * (MAX_MARKS // 2) + "中文" + "é" * 10)
    many = ("中" + marks * 100) * 1000  # many long runs (the whole text is normalised at once)
    assert nfkc(many) == NFKC(("中" + marks * (MAX_MARKS // 2)) * 1000)
    assert time.perf_counter() - started < 60
