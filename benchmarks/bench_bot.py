"""Bot benchmark: /search reply latency end to end, and sustained updates per second.

    python benchmarks/bench_bot.py [--posts 100000] [--keep DIR] [--queries 200] [--burst 2000]

`newsbot run` (its own process, as in production) talks over HTTP to the loopback Bot API test server
(tests/botapi.py) in this process; the latency of one /search is from the moment the update is queued on
the server until the bot's reply has arrived there (getUpdates long poll, handler, search, sendMessage). Throughput: a burst of updates across
many chats, timed until every reply has arrived. The rate limiter is off here (RATE_LIMIT=false): this
measures what the bot can process, not what Telegram lets it send. Goals (bot issue): p50 <= 30 ms with a
100,000-post store, >= 200 updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_store import cpu_check  # noqa: E402
from gen_archive import RARE, WORDS, generate  # noqa: E402

from tests.botapi import FakeBotAPI  # noqa: E402

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
    # The bot runs as its own process (`newsbot run`), as in production; this process plays Telegram.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "TELEGRAM_", "ARCHIVE_", "DATABASE_"))
    }
    env.update(
        BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=api.base_url,
        ARCHIVE_DIR=str(archive),
        DATABASE_PATH=str(db),
        SYNC_INTERVAL="0",
        RATE_LIMIT="false",
        USER_UPDATES_PER_MINUTE="0",  # the burst comes from a few simulated users
    )
    t = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await api.wait_for(lambda: "" in api.commands, timeout=600)
        print(f"startup incl. sync/re-sync: {time.perf_counter() - t:.1f}s")
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
            rate = burst / (time.perf_counter() - t)
            print(f"burst of {burst} {kind:8s} {rate:8.1f} updates/s   {rate / 200:.2f} of goal (200/s)")
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
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
        print(f"machine speed check: {cpu_check():.2f} s (a quiet run of the development VM: ~0.5 s)")
        asyncio.run(run(archive, a.db or tmp / "bench.sqlite3", a.queries, a.burst))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
