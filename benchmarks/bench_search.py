"""Search benchmark by query class, beside tantivy on the same texts and queries when it is installed
(`pip install -e '.[bench]'`).

    python benchmarks/bench_search.py [--posts 100000] [--shape finews|large] [--queries 200] [--keep DIR]
                                      [--db DB] [--no-tantivy] [--pairs auto|common|all]

Generates an archive from real text (benchmarks/gen_real.py; or reuses --keep DIR), syncs it as the bot
does (or reuses --db): the time until the posts are searchable (the last one written: SyncResult.searchable)
and until the sync returns (its stories grouped; the index merge begun while the grouper caught up), then
the rest of the index merge the bot runs after it (store.merge_index); then times newsbot's search (with
snippets) and tantivy's (top 10 by BM25, with snippets) over the same queries, each query used once
(nothing is warm for a query but the page cache; each engine first answers up to 40 other queries, as a
serving bot is warm). Query classes, drawn from the archive's own titles:
- word: one word of two or more characters;
- words: two or three words of one title;
- single: a two-character word the segmenter splits into single characters (这是, 高管);
- substring: two adjacent characters of a title.
tantivy indexes the same folded, segmented texts (words of title and body; the CJK characters for the
substring classes, matched as phrases, as newsbot does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import get_args

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_store import cpu_check, pct, rss_mb  # noqa: E402
from gen_real import generate  # noqa: E402

from store.db import Store  # noqa: E402
from store.jekyll import open_archive  # noqa: E402
from store.search import search  # noqa: E402
from store.segment import analyse, words  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.sync import sync_archive  # noqa: E402
from store.text import fold  # noqa: E402

CLASSES = ("word", "words", "single", "substring")


def _bytes_written() -> int:
    """Bytes this process has caused to be written to storage (Linux /proc/self/io), else 0."""
    try:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("write_bytes"))
    except (OSError, StopIteration, ValueError):
        return 0


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, where the next one starts)."""
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")


async def index_segments(store: Store) -> int | None:
    """How many segments the main FTS index has: its structure record (rowid 10 of posts_fts_data: a
    4-byte cookie, then the number of levels and of segments). A bulk load that leaves more than FTS5's
    crisis merge allows (PostsStore's bulk settings) merges nearly all of them mid-load."""
    rows = await store._fetch("SELECT block FROM posts_fts_data WHERE id = 10")
    if not rows:
        return None
    _, at = _varint(rows[0][0], 4)
    return _varint(rows[0][0], at)[0]


async def titles(store: Store, n: int = 20000) -> list[str]:
    rows = await store._fetch("SELECT title FROM posts ORDER BY rowid DESC LIMIT ?", (n,))
    return [fold(r[0]) for r in rows]


def make_queries(all_titles: list[str], per_class: int, seed: int = 3) -> dict[str, list[str]]:
    rng = random.Random(seed)
    out: dict[str, list[str]] = {c: [] for c in CLASSES}
    seen: set[str] = set()

    def add(cls: str, q: str) -> None:
        if q and q not in seen and len(out[cls]) < per_class:
            seen.add(q)
            out[cls].append(q)

    for _ in range(200 * per_class):
        if all(len(v) >= per_class for v in out.values()):
            break
        title = rng.choice(all_titles)
        ws = [w for w in words(title) if len(w) >= 2 and not w.isascii()]
        if ws:
            add("word", rng.choice(ws))
        if len(ws) >= 2:
            add("words", " ".join(rng.sample(ws, min(len(ws), rng.randint(2, 3)))))
        cjk = [
            i
            for i in range(len(title) - 1)
            if "\u4e00" <= title[i] <= "\u9fff" and "\u4e00" <= title[i + 1] <= "\u9fff"
        ]
        if cjk:
            i = rng.choice(cjk)
            pair = title[i : i + 2]
            if words(pair) == [pair[0], pair[1]]:
                add("single", pair)
            else:
                add("substring", pair)
    return out


def read_through(paths: list[Path]) -> None:
    """Read files once, so that both engines' indexes are in the OS page cache when their queries are
    timed, as a serving engine's are (this VM hands cached pages back to its host at times: with the
    3.4 GB database of 100,000 large posts partly read back from disk, 2-3-word queries took ~1.9x as
    long on average and ~3x at p99). Neither engine's own caches are touched: each query still reads
    its pages into SQLite's cache (or tantivy's)."""
    for path in paths:
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 20):
                    pass


async def time_newsbot(
    store: Store, queries: dict[str, list[str]], stopped: list[str] | None = None
) -> dict[str, list[float]]:
    """Each query's time in ms, by class; `stopped` collects those stopped at the store's time limit."""
    out = {}
    for cls, qs in queries.items():
        times = []
        for q in qs:
            t = time.perf_counter()
            page = await search(store, q, limit=10)
            for hit in page.hits:
                hit.marked_snippet()
            times.append((time.perf_counter() - t) * 1000)
            if page.too_costly and stopped is not None:
                stopped.append(q)
        out[cls] = times
    return out


def adversarial(all_titles: list[str]) -> list[str]:
    """Queries a hostile user would send to keep the database busy, from the archive's commonest
    characters: one repeated 499 times, a ten-character run repeated, twelve terms of a character and a
    letter, twelve runs of 40 (what store.candidates.SEARCH_TIME_LIMIT stops)."""
    counts = Counter(ch for t in all_titles for ch in t if "\u4e00" <= ch <= "\u9fff")
    c = "".join(ch for ch, _ in counts.most_common(12))
    return [
        c[0] * 499,
        c[:10] * 49,
        " ".join([(c[0] + "a") * 20] * 12),
        " ".join(c[i] * 40 for i in range(12)),
        " ".join(c[i:] + c[:i] for i in range(12))[:499],
    ]


async def time_adversarial(store: Store, all_titles: list[str]) -> None:
    stopped: list[str] = []
    times = (await time_newsbot(store, {"adversarial": adversarial(all_titles)}, stopped))["adversarial"]
    print(
        f"adversarial queries: slowest {max(times):.0f} ms, {len(stopped)} of {len(times)} stopped at the time"
        f" limit ({store.search_time_limit:g} s; each: {', '.join(f'{x:.0f}' for x in times)} ms)"
    )


def build_tantivy(docs, folder: Path):
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("title", tokenizer_name="whitespace", stored=True)
    sb.add_text_field("body", tokenizer_name="whitespace", stored=True)
    sb.add_text_field("chars", tokenizer_name="whitespace")
    schema = sb.build()
    folder.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer(heap_size=200_000_000, num_threads=2)
    for title, body, chars in docs:
        writer.add_document(tantivy.Document(title=title, body=body, chars=chars))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, schema


def time_tantivy(index, schema, queries: dict[str, list[str]]) -> dict[str, list[float]]:
    import tantivy

    searcher = index.searcher()
    out = {}
    for cls, qs in queries.items():
        times = []
        for q in qs:
            t = time.perf_counter()
            must = []
            for term in q.split():
                f = fold(term)
                if cls in ("single", "substring"):
                    chars: list[str | tuple[int, str]] = list(f)  # (tantivy's phrase_query type)
                    sub = (
                        tantivy.Query.phrase_query(schema, "chars", chars)
                        if len(chars) > 1
                        else tantivy.Query.term_query(schema, "chars", f)
                    )
                    must.append((tantivy.Occur.Must, sub))
                    continue
                toks: list[str | tuple[int, str]] = list(words(f))
                per_field = []
                for field in ("title", "body"):
                    if len(toks) > 1:
                        per_field.append(
                            (tantivy.Occur.Should, tantivy.Query.phrase_query(schema, field, toks))
                        )
                    else:
                        per_field.append(
                            (tantivy.Occur.Should, tantivy.Query.term_query(schema, field, toks[0]))
                        )
                must.append((tantivy.Occur.Must, tantivy.Query.boolean_query(per_field)))
            query = tantivy.Query.boolean_query(must)
            result = searcher.search(query, 10, count=True)
            gen = tantivy.SnippetGenerator.create(searcher, query, schema, "body")
            for _, address in result.hits:
                gen.snippet_from_doc(searcher.doc(address)).to_html()
            times.append((time.perf_counter() - t) * 1000)
        out[cls] = times
    return out


def print_goals(
    shape: str, posts: int, rate: float | None, rss: float, ours: dict, theirs: dict | None
) -> None:
    """Issue 9's goals for this archive shape, each with the figure of this run: ok or MISSED. They are
    set at 100,000 posts; a smaller archive's figures are printed but not judged."""
    if posts < 100_000:
        print(f"goals: set at 100,000 posts; this archive has {posts:,}, not judged")
        return
    goals: list[tuple[str, bool]] = []
    if rate is not None:
        if shape == "large":
            goals.append((f"sync >= 1,000 posts/s until searchable: {rate:,.0f}", rate >= 1000))
        else:
            goals.append((f"sync of 100,000 posts <= 30 s: {100_000 / rate:.1f} s", 100_000 / rate <= 30))
    if shape == "large":
        goals.append((f"main-process peak RSS <= 250 MB: {rss:.0f} MB", rss <= 250))
    for cls in CLASSES:
        a = ours.get(cls)
        if not a:
            continue
        p50, p99 = pct(a, 0.5), pct(a, 0.99)
        if shape == "large":
            goals.append((f"{cls}: p99 <= 10 ms: {p99:.1f} ms", p99 <= 10))
            if theirs and theirs.get(cls):
                r50, r99 = p50 / pct(theirs[cls], 0.5), p99 / pct(theirs[cls], 0.99)
                goals.append((f"{cls}: p50 <= 2x tantivy's: {r50:.1f}x", r50 <= 2))
                goals.append((f"{cls}: p99 <= 1.5x tantivy's: {r99:.1f}x", r99 <= 1.5))
        else:
            goals.append(
                (f"{cls}: p50 <= 5 ms, p99 <= 20 ms: {p50:.1f} / {p99:.1f} ms", p50 <= 5 and p99 <= 20)
            )
    print(f"goals ({shape} posts; this VM's speed moves every time figure by tens of percent):")
    for text, met in goals:
        print(f"  {'ok    ' if met else 'MISSED'} {text}")


async def run(
    archive: Path, db: Path, per_class: int, use_tantivy: bool, tmp: Path, shape: str, pairs: str
) -> None:
    rate = None
    async with await Store.open(db) as store:
        t = time.perf_counter()
        written = _bytes_written()
        # as the bot syncs: the index merge a bulk load needs is left to merge_index, timed apart
        r = await sync_archive(store, open_archive(archive, search_pairs=pairs), merge=False)
        returned = time.perf_counter() - t
        secs = r.searchable
        segments = await index_segments(store)
        t = time.perf_counter()
        steps = await store.merge_index()
        merge_secs = time.perf_counter() - t
        written = _bytes_written() - written
        n = await store.count_posts()
        if r.added or r.updated:
            done = r.added + r.updated
            rate = done / secs
            print(
                f"sync: {done} posts searchable in {secs:.1f} s = {done / secs:,.0f} posts/s;"
                f" stories grouped, sync returned in {returned:.1f} s;"
                f" index merged {merge_secs:.1f} s later ({steps} steps; {done / (returned + merge_secs):,.0f}"
                f" posts/s in all); {written / 2**20:,.0f} MB written to storage by the syncing process;"
                f" {segments} index segments left to merge when the sync returned"
            )
        size = sum(os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(str(db) + s))
        rss = rss_mb()[0]
        print(f"database: {size / 2**20:,.0f} MB, {size / max(n, 1):,.0f} bytes/post; peak RSS {rss:.0f} MB")
        all_titles = await titles(store)
        queries = make_queries(all_titles, per_class)
        # Before each timed pass, other queries warm the engine as a serving bot is warm: without them
        # the first queries of a pass read their pages into SQLite's cache (which the sync, the merge
        # and tantivy's read of every post have just filled with other pages): 1-2 such queries of 23-40
        # instead of ~1 ms made the word class's p99 (the second slowest of 200).
        timed = {q for qs in queries.values() for q in qs}
        warm = {c: [q for q in qs if q not in timed] for c, qs in make_queries(all_titles, 10, 99).items()}
        print("queries per class: " + ", ".join(f"{c} {len(q)}" for c, q in queries.items()))
        db_files = [Path(str(db) + s) for s in ("", "-wal")]
        read_through(db_files)
        await time_newsbot(store, warm)
        stopped: list[str] = []  # timed queries stopped at the time limit (there should be none)
        ours = await time_newsbot(store, queries, stopped)
        theirs = None
        if use_tantivy:
            try:
                import tantivy  # noqa: F401
            except ImportError:
                print("tantivy is not installed (pip install -e '.[bench]'): newsbot alone")
            else:
                t = time.perf_counter()
                rows = await store._fetch("SELECT title, body, categories, tags FROM posts")
                docs = []
                for title, body, _, _ in rows:
                    fts = analyse(title, body, [], []).fts
                    docs.append((fts.title.decode(), fts.body.decode(), fts.chars.decode()))
                del rows
                index, schema = build_tantivy(docs, tmp / "tantivy")
                del docs
                built = time.perf_counter() - t
                print(f"tantivy index built in {built:.1f} s (incl. segmentation)")
                if r.added or r.updated:  # the same run: a ratio the VM's drift does not move much
                    print(f"newsbot sync until searchable / tantivy's build: {secs / built:.2f}x")
                # same order of work: newsbot again after tantivy's build, so both run on a warm machine
                read_through(db_files)
                await time_newsbot(store, warm)
                stopped.clear()
                ours = await time_newsbot(store, queries, stopped)
                read_through(sorted((tmp / "tantivy").iterdir()))
                time_tantivy(index, schema, warm)
                theirs = time_tantivy(index, schema, queries)
        await time_adversarial(store, all_titles)
        if stopped:
            print(f"{len(stopped)} timed queries were stopped at the time limit, e.g. {stopped[0]!r}")
    print(
        f"{'class':10s} {'newsbot p50':>12s} {'p99':>8s}"
        + (f" {'tantivy p50':>12s} {'p99':>8s} {'ratio p50':>10s} {'p99':>6s}" if theirs else "")
    )
    for cls in CLASSES:
        a = ours[cls]
        if not a:
            continue
        line = f"{cls:10s} {pct(a, 0.5):10.2f}ms {pct(a, 0.99):6.2f}ms"
        if theirs and theirs[cls]:
            b = theirs[cls]
            line += f" {pct(b, 0.5):10.2f}ms {pct(b, 0.99):6.2f}ms {pct(a, 0.5) / pct(b, 0.5):9.1f}x {pct(a, 0.99) / pct(b, 0.99):5.1f}x"
        print(line)
    print_goals(shape, n, rate, rss, ours, theirs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=100_000)
    p.add_argument("--shape", choices=("finews", "large"), default="finews")
    p.add_argument("--queries", type=int, default=200, help="per class")
    p.add_argument("--keep", type=Path, help="generate into (or reuse) this archive folder")
    p.add_argument("--db", type=Path, help="reuse this database (synced incrementally)")
    p.add_argument("--no-tantivy", action="store_true")
    pairs = Settings.model_fields["search_pairs"]
    p.add_argument("--pairs", choices=get_args(pairs.annotation), default=pairs.default, help="SEARCH_PAIRS")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="newsbot-search-"))
    archive = a.keep or tmp / "archive"
    try:
        if not (archive / "_posts").is_dir():
            t = time.perf_counter()
            source = generate(archive, a.posts, a.shape)
            print(f"generated {a.posts} {a.shape} posts from {source} in {time.perf_counter() - t:.0f} s")
        print(f"machine: {os.cpu_count()} cores; speed check {cpu_check():.2f} s (quiet VM: ~0.5 s)")
        asyncio.run(
            run(archive, a.db or tmp / "bench.sqlite3", a.queries, not a.no_tantivy, tmp, a.shape, a.pairs)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
