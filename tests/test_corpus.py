"""Integration over the real archives in ../shared/corpus (skipped when absent)."""

from __future__ import annotations

import pytest

from store.db import Store
from store.jekyll import iter_post_files, open_archive
from store.search import search
from store.sync import sync_archive

from .conftest import CORPUS


@pytest.mark.parametrize("name", ["finews", "wechat"])
async def test_real_archive_indexes_or_reports_every_file(tmp_path, name):
    root = CORPUS / name
    if not (root / "_posts").is_dir():
        pytest.skip(f"{root} not present")
    cfg = open_archive(root)
    files = [rel for rel, *_ in iter_post_files(cfg)]
    async with await Store.open(tmp_path / f"{name}.sqlite3") as store:
        r = await sync_archive(store, cfg)
        assert r.added + r.skipped == len(files)
        assert r.skipped == len(r.errors)
        assert all(e["reason"] and e["path"] in files for e in r.errors)
        assert await store.count_posts() == r.added
        # nearly everything in a real archive must load
        assert r.added >= 0.98 * len(files)
        again = await sync_archive(store, cfg)
        assert (again.added, again.updated, again.deleted, again.unchanged) == (0, 0, 0, r.added)
        assert again.skipped == r.skipped
        # every indexed post has a title, an aware date and an archive URL
        for p in await store.latest(limit=10_000):
            assert (
                p.title.strip()
                and p.archive_url.startswith("http")
                and ("+" in p.date[10:] or "-" in p.date[10:])
            )
        # a title word of the newest post finds it
        newest = (await store.latest(limit=1))[0]
        page = await search(store, newest.title[:4], limit=100)
        assert newest.id in [h.post.id for h in page.hits]


async def test_finews_known_shapes(tmp_path):
    root = CORPUS / "finews"
    if not (root / "_posts").is_dir():
        pytest.skip("finews corpus not present")
    async with await Store.open(tmp_path / "f.sqlite3") as store:
        await sync_archive(store, open_archive(root))
        rows, _ = await store.terms("c")
        assert "emnews" in [name for _, name, _ in rows]
        for p in await store.latest(limit=1000):
            assert "返回首页" not in p.body and "<p" not in p.body
            assert p.archive_url.startswith("https://finews.withounder.com/")
            assert p.url is None or p.url.startswith("http")


@pytest.mark.parametrize("name", ["finews", "wechat"])
def test_front_matter_fast_path_agrees_with_yaml(name):
    from store.jekyll import PostError, parse_post

    root = CORPUS / name
    if not (root / "_posts").is_dir():
        pytest.skip(f"{root} not present")
    cfg = open_archive(root)
    compared = 0
    for rel, *_ in iter_post_files(cfg):
        raw = (cfg.root / rel).read_bytes()
        outcomes = []
        for fast in (True, False):
            try:
                outcomes.append(parse_post(cfg, rel, raw, use_fast_path=fast))
            except PostError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], rel
        compared += 1
    assert compared > 50
