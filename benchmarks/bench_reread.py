"""A sync that reads every post again (the archive's time zone changed), with a fresh index and post by
post, side by side in one run: seconds, main-process peak RSS, database size.

    python benchmarks/bench_reread.py ARCHIVE [--base DB] [--runs 2]

ARCHIVE is a generated archive (benchmarks/gen_real.py, either shape). The archive is first synced
into a base database (or --base, one already synced from ARCHIVE, is used); each run copies it and
syncs the copy in a process of its own with another time zone, once writing a fresh index (the
default) and once post by post (store.sync.FRESH_SHARE above 1: every post's old entries deleted
from the index, as before the fresh index), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_store import cpu_check  # noqa: E402

import store.sync as sync_module  # noqa: E402
from store.db import Store  # noqa: E402
from store.jekyll import open_archive  # noqa: E402


async def child_sync(archive: Path, db: Path, zone: str, fresh: bool) -> dict:
    if not fresh:
        sync_module.FRESH_SHARE = 2.0
    async with await Store.open(db) as store:
        t = time.perf_counter()
        r = await sync_module.sync_archive(store, open_archive(archive, timezone_name=zone), merge=False)
        searchable = time.perf_counter() - t
        await store.merge_index()
        merged = time.perf_counter() - t
    return {
        "updated": r.updated,
        "added": r.added,
        "searchable": searchable,
        "merged": merged,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "size": sum(os.path.getsize(f"{db}{s}") for s in ("", "-wal") if os.path.exists(f"{db}{s}")),
    }


def in_child(archive: Path, db: Path, zone: str, fresh: bool) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, str(archive), "--child", str(db), zone, "fresh" if fresh else "by-post"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive", type=Path)
    p.add_argument("--base", type=Path, help="a database already synced from ARCHIVE")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        db, zone, how = a.child
        print(json.dumps(asyncio.run(child_sync(a.archive, Path(db), zone, how == "fresh"))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="newsbot-reread-", dir=os.environ.get("BENCH_TMP")))
    try:
        print(f"machine speed check: {cpu_check():.2f} s (a quiet run of the development VM: ~0.5 s)")
        base = a.base
        if base is None:
            base = tmp / "base.sqlite3"
            got = in_child(a.archive, base, "Asia/Shanghai", True)
            print(
                f"first sync: {got['added']} posts searchable in {got['searchable']:.1f} s, merged at"
                f" {got['merged']:.1f} s, peak RSS {got['rss']:.0f} MB, {got['size'] / 2**20:.0f} MB"
            )
        with contextlib.closing(sqlite3.connect(base)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='timezone'").fetchone()
        zone = "America/New_York" if row and row[0] == "Europe/Berlin" else "Europe/Berlin"
        figures: dict[str, list[dict]] = {"fresh": [], "by-post": []}
        for run in range(a.runs):
            for how in ("fresh", "by-post") if run % 2 == 0 else ("by-post", "fresh"):
                db = tmp / "run.sqlite3"
                shutil.copyfile(base, db)
                got = in_child(a.archive, db, zone, how == "fresh")
                figures[how].append(got)
                print(
                    f"{how:8s} re-read {got['updated']} posts: searchable in {got['searchable']:6.1f} s,"
                    f" merged at {got['merged']:6.1f} s, peak RSS {got['rss']:4.0f} MB,"
                    f" {got['size'] / 2**20:5.0f} MB after"
                )
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
        best = {how: min(f["searchable"] for f in runs) for how, runs in figures.items()}
        print(f"best searchable, fresh / by post: {best['fresh'] / best['by-post']:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
