"""Bot benchmark: /search reply latency end to end, and sustained updates per second.

    python benchmarks/bench_bot.py [--posts 100000] [--keep DIR] [--queries 200] [--burst 2000]

The real PTB Application talks over HTTP to the loopback Bot API test server (tests/botapi.py); the
latency of one /search is from the moment the update is queued on the server until the bot's reply has
arrived there (getUpdates long poll, handler, search, sendMessage). Throughput: a burst of updates across
many chats, timed until every reply has arrived. Telegram's own rate limiter is off here: this measures
what the bot can process, not what Telegram lets it send. Goals (bot issue): p50 <= 30 ms with a
100,000-post store, >= 200 updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gen_archive import RARE, WORDS, generate  # noqa: E402

from store.settings import Settings  # noqa: E402
from tests.botapi import FakeBotAPI, start_bot, stop_bot  # noqa: E402

TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def run(archive: Path, db: Path, n_queries: int, burst: int) -> None:
    api = FakeBotAPI(TOKEN)
    await api.start()
    chats = list(range(10_000, 10_000 + 200))
    for c in chats:
        api.add_chat(c)
    settings = Settings(
        bot_token=TOKEN, telegram_base_url=api.base_url, database_path=db, archive_dir=archive
    )
    t = time.perf_counter()
    app = await start_bot(settings, poll_timeout=10)
    posts = await app.bot_data["svc"].store.count_posts()
    print(f"startup incl. sync/re-sync: {time.perf_counter() - t:.1f}s, posts: {posts}")
    try:
        rng = random.Random(3)
        vocab = WORDS + RARE
        queries = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 3))) for _ in range(n_queries)]
        for q in queries[:10]:
            await api.ask(chats[0], "/search " + q)
        times = []
        for q in queries:
            t = time.perf_counter()
            await api.ask(chats[0], "/search " + q)
            times.append((time.perf_counter() - t) * 1000)
        print(f"/search reply p50 {pct(times, 0.5):8.2f} ms   {pct(times, 0.5) / 30:.2f} of goal (30 ms)")
        print(f"/search reply p99 {pct(times, 0.99):8.2f} ms")

        for kind, make in (
            ("/search", lambda i: "/search " + rng.choice(vocab)),
            ("/latest", lambda i: "/latest 5"),
            ("/help", lambda i: "/help"),
        ):
            before = len(api.messages)
            t = time.perf_counter()
            for i in range(burst):
                api.send_text(chats[i % len(chats)], make(i))
            await api.wait_for(lambda b=before: len(api.messages) - b >= burst, timeout=600)
            elapsed = time.perf_counter() - t
            rate = burst / elapsed
            print(f"burst of {burst} {kind:8s} {rate:8.1f} updates/s   {rate / 200:.2f} of goal (200/s)")
    finally:
        await stop_bot(app)
        await api.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=100_000)
    p.add_argument("--keep", type=Path, help="generate into (or reuse) this archive folder")
    p.add_argument("--db", type=Path, help="reuse this database (synced from the same archive)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--burst", type=int, default=2000)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="newsbot-botbench-"))
    archive = a.keep or tmp / "archive"
    try:
        if not (archive / "_posts").is_dir():
            generate(archive, a.posts)
        asyncio.run(run(archive, a.db or tmp / "bench.sqlite3", a.queries, a.burst))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
