"""Chinese word segmentation for the index and for queries (one place, so both agree).

We use rjieba (jieba-rs with jieba's dictionary) with the HMM off: it gives the same tokens as pure-Python
jieba with HMM off, ~17× faster (measured in benchmarks/README.md), and HMM-off output does not depend on
the statistical model guessing new words, so index-time and query-time segmentation agree exactly.

Three views of a folded text are indexed:
- ``words``: the jieba words, space-separated (what BM25 ranks);
- ``subwords``: the extra search-mode pieces (清华 华大 大学 for 清华大学), unshown, low weight;
- ``chars``: every CJK character as its own token, other runs as words — a phrase query over it is an
  exact substring match, which makes Chinese recall substring-complete (`知` finds `知道`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .text import CJK_CHAR

_TOKEN_OK = re.compile(r"\w", re.UNICODE)
_CJK_SPLIT = re.compile(f"({CJK_CHAR})")


@lru_cache(maxsize=1)
def _jieba():
    import rjieba

    return rjieba


def words(folded: str) -> list[str]:
    """Word tokens of an already folded text (whitespace and punctuation dropped)."""
    if not folded:
        return []
    return [t for t in _jieba().cut(folded, False) if _TOKEN_OK.search(t)]


def subwords(folded: str, word_list: list[str] | None = None) -> list[str]:
    """Search-mode sub-words that are not already words of the text."""
    if not folded:
        return []
    seen = set(word_list if word_list is not None else words(folded))
    out = []
    for t in _jieba().cut_for_search(folded, False):
        if t not in seen and _TOKEN_OK.search(t):
            seen.add(t)
            out.append(t)
    return out


def chars(folded: str) -> str:
    """The text with a space around every CJK character (for the unigram substring index)."""
    return _CJK_SPLIT.sub(r" \1 ", folded)
