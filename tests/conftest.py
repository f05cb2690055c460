from __future__ import annotations

import asyncio
import os
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from store.db import Store
from store.jekyll import open_archive
from store.sync import sync_archive

# The property-based tests use the same examples on every run (CI stays green or red for a reason);
# HYPOTHESIS_PROFILE=explore draws new ones, for looking for bugs by hand.
hypothesis_settings.register_profile("default", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("NEWSBOT_CORPUS", REPO.parent / "shared" / "corpus"))


WRITTEN_AGO_NS = 60 * 10**9


class Archive:
    """A Jekyll archive the test writes post by post."""

    def __init__(self, root: Path):
        self.root = root
        self.posts = root / "_posts"
        self.posts.mkdir(parents=True, exist_ok=True)

    def config(self, text: str) -> None:
        (self.root / "_config.yml").write_text(textwrap.dedent(text), encoding="utf-8")

    def write(self, name: str, text: str | bytes, dedent: bool = True, folder: str = "_posts") -> Path:
        """A file at `name` in `folder` (from the archive root: a posts folder by default)."""
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n") if dedent else text, encoding="utf-8")
        # written a while ago, as a scraper's posts usually are by the next sync: a sync waits for a file
        # changed in the last seconds (store.sync.SETTLE_SECONDS; tests of that write files of their own)
        ago = time.time_ns() - WRITTEN_AGO_NS
        os.utime(path, ns=(ago, ago))
        return path

    @staticmethod
    def touch(path: Path) -> None:
        """Move a file's mtime a second on: an edit every sync sees, however coarse the file system's
        timestamps."""
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    def post(
        self,
        name: str,
        title: str,
        body: str,
        *,
        date: str | None = "2024-05-01 10:00:00 +0800",
        categories: str = "news",
        tags: str = "",
        extra: str = "",
        folder: str = "_posts",
    ) -> Path:
        lines = ["---", "layout: post", f'title: "{title}"']
        if date is not None:
            lines.append(f"date: {date}")
        lines.append(f"categories: {categories}")
        if tags:
            lines.append(f"tags: {tags}")
        if extra:
            lines.append(extra.strip("\n"))
        lines.append("---")
        return self.write(name, "\n".join(lines) + "\n\n" + body + "\n", dedent=False, folder=folder)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path / "site")
    a.config("url: https://news.example.org\ntimezone: Asia/Shanghai\n")
    return a


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "test.sqlite3")
    yield s
    await s.close()


async def sync(store: Store, archive: Archive, **kwargs):
    return await sync_archive(store, open_archive(archive.root, **kwargs), workers=1)


class LoopStore:
    """A store on an event loop of its own, for hypothesis' synchronous examples: `run` awaits."""

    def __init__(self, path: Path):
        self.loop = asyncio.new_event_loop()
        self.store: Store = self.run(Store.open(path))

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self):
        self.run(self.store.close())
        self.loop.close()
