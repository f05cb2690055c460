"""Generate a synthetic Jekyll archive from real text: sentences and titles of the archives in
`../shared/corpus` (read at run time, never copied into the project), recombined into new posts.

    python benchmarks/gen_real.py OUT_DIR [--posts 100000] [--shape finews|large] [--seed 1]

- `finews`: posts of 300-700 characters of plain paragraphs, like the finews archive;
- `large`: ~10 KB of WeChat-style HTML per post (~2,900 characters of text in nested, styled tags), like
  the wechat archive.

Titles are real titles (recombined halves, so they stay realistic but are not all duplicates); bodies are
real sentences drawn at random, so word frequencies follow real prose rather than a built-in vocabulary.
Without the corpus it falls back to gen_archive's synthetic vocabulary (and says so).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gen_archive import post_times, write_post  # noqa: E402

CORPUS = Path(os.environ.get("NEWSBOT_CORPUS", HERE.parent.parent / "shared" / "corpus"))
_SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]")
STYLE = 'style="margin:0;padding:0;font-size:15px;color:rgb(62,62,62);line-height:1.75em;"'


def real_text(corpus: Path = CORPUS) -> tuple[list[str], list[str]]:
    """(titles, sentences) of the real archives, parsed with newsbot's own parser."""
    from store.jekyll import PostError, iter_post_files, open_archive, parse_post

    titles: list[str] = []
    sentences: list[str] = []
    for name in ("finews", "wechat"):
        root = corpus / name
        if not (root / "_posts").is_dir():
            continue
        cfg = open_archive(root)
        for rel, _, _ in iter_post_files(cfg):
            try:
                post = parse_post(cfg, rel, (cfg.root / rel).read_bytes())
            except (PostError, OSError):
                continue
            titles.append(post.title)
            for para in post.body.split("\n"):
                sentences += [s.strip() for s in _SENTENCE.findall(para) if 8 <= len(s.strip()) <= 200]
    return titles, sentences


def _title(rng: random.Random, titles: list[str]) -> str:
    a, b = rng.choice(titles), rng.choice(titles)
    cut_a, cut_b = len(a) // 2, len(b) // 2
    return (a[:cut_a] + b[cut_b:])[:60] or a


def _paragraphs(rng: random.Random, sentences: list[str], target: int) -> list[str]:
    paras, length = [], 0
    while length < target:
        para = "".join(rng.choice(sentences) for _ in range(rng.randint(1, 5)))
        paras.append(para)
        length += len(para)
    return paras


def _large_html(paras: list[str]) -> str:
    out = ['<section class="rich_media_content" style="visibility:visible;">']
    for i, para in enumerate(paras):
        if i % 7 == 3:
            out.append(f'<p {STYLE}><strong><span style="color:rgb(0,82,255);">{para}</span></strong></p>')
        else:
            out.append(f'<p {STYLE}><span {STYLE}><span style="letter-spacing:1px;">{para}</span></span></p>')
        if i % 5 == 4:
            out.append(f"<p {STYLE}><br  /></p>")
    out.append("</section>")
    return "\n".join(out)


def generate(out: Path, posts: int, shape: str = "finews", seed: int = 1) -> str:
    """Write the archive; returns where the text came from."""
    rng = random.Random(seed)
    titles, sentences = real_text()
    source = f"real text of {CORPUS} ({len(titles)} titles, {len(sentences)} sentences)"
    if len(sentences) < 100:
        from gen_archive import WORDS, sentence

        weights = [1.0 / (i + 1) ** 0.8 for i in range(len(WORDS))]
        sentences = [sentence(rng, weights) for _ in range(20000)]
        titles = ["".join(rng.choices(WORDS, weights=weights, k=5)) for _ in range(5000)]
        source = "the synthetic vocabulary (no corpus found)"
    for i, when in enumerate(post_times(out, posts)):
        if shape == "large":
            body = _large_html(_paragraphs(rng, sentences, rng.randint(2400, 3400)))
        else:
            body = "\n\n".join(_paragraphs(rng, sentences, rng.randint(300, 700)))
        title = _title(rng, titles).replace('"', "'")
        write_post(out, i, when, title, f"cat{int(rng.paretovariate(1.2)) % 2000:04d}", body)
    return source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--posts", type=int, default=100_000)
    p.add_argument("--shape", choices=("finews", "large"), default="finews")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    print(generate(a.out, a.posts, a.shape, a.seed))


if __name__ == "__main__":
    main()
