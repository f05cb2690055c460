"""Queries that would keep the database busy for everyone: a search (or an alert's query) is stopped at
the store's time limit (SEARCH_TIME_LIMIT) and every way in says so; a query's repeated terms and runs
are evaluated once. On a real SQLite file whose posts make one such query cost ~0.7 s."""

from __future__ import annotations

import json

import pytest

import store.candidates as candidates_mod
from bot.follow import enqueue_new_posts
from store.candidates import TooCostly
from store.jekyll import open_archive
from store.search import _compile, _match_expr, matching, parse_query, search
from store.sync import sync_archive

from .conftest import Archive, LoopStore
from .test_cli import run

# A phrase of the same common character 499 times over posts that are that character 2,000 times: FTS5
# reads the character's (or pair's) places once per token of the phrase, ~0.7 s for 250 posts here.
COSTLY = "的" * 499
POSTS = 250


def heavy_archive(root) -> Archive:
    archive = Archive(root)
    for i in range(POSTS):
        archive.post(f"2024-05-01-h{i}.md", f"常用字{i}", "的" * 2000, categories="x")
    archive.post("2024-05-02-a.md", "人民币汇率走强", "离岸人民币兑美元汇率走强。", categories="markets")
    return archive


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    root = tmp_path_factory.mktemp("heavy")
    s = LoopStore(root / "heavy.sqlite3")
    s.archive = heavy_archive(root / "archive")
    s.run(sync_archive(s.store, open_archive(s.archive.root), workers=0))
    yield s
    s.close()


def test_a_search_past_the_time_limit_is_stopped_and_says_so(heavy):
    store = heavy.store
    store.search_time_limit = 0.02
    page = heavy.run(search(store, COSTLY, limit=5))
    assert page.too_costly and page.hits == [] and page.total == 0
    assert page.seconds >= 0.02
    # the connection is left as it was: the next searches run and find what they should
    page = heavy.run(search(store, "人民币", limit=5))
    assert not page.too_costly and [h.post.title for h in page.hits] == ["人民币汇率走强"]
    assert heavy.run(store.count_posts()) == POSTS + 1  # (a read without a limit)
    # given the time, the same search finds every post
    store.search_time_limit = 30
    page = heavy.run(search(store, COSTLY, limit=5))
    assert not page.too_costly and page.total == POSTS and len(page.hits) == 5


def test_an_alert_query_past_the_time_limit_raises_and_its_rule_is_paused(heavy):
    store = heavy.store
    rowids = [r[0] for r in heavy.run(store._fetch("SELECT rowid FROM posts"))]
    store.search_time_limit = 0.02
    with pytest.raises(TooCostly):
        heavy.run(matching(store, COSTLY, rowids))
    store.search_time_limit = 30
    assert len(heavy.run(matching(store, COSTLY, rowids))) == POSTS

    store.search_time_limit = 0.02
    costly, _ = heavy.run(store.add_rule("5", query=COSTLY, origin="subscription", owner=5))
    cheap, _ = heavy.run(store.add_rule("6", query="汇率", origin="subscription", owner=6))
    for i in range(100):  # new posts: the alert queries look at them (their cost follows how many)
        heavy.archive.post(f"2024-05-03-n{i}.md", f"汇率新消息{i}", "的" * 2000 + "汇率。", categories="x")
    heavy.run(sync_archive(store, open_archive(heavy.archive.root), workers=0))
    try:
        _, broken, _ = heavy.run(enqueue_new_posts(store))
    finally:
        store.search_time_limit = 30
    assert [rule["id"] for rule, _ in broken] == [costly]
    assert "too costly" in broken[0][1]
    rules = {r["id"]: r for r in heavy.run(store.rules())}
    assert rules[costly]["paused"] and not rules[cheap]["paused"]
    assert {d["rule"] for d in heavy.run(store.due_deliveries())} == {cheap}


def test_repeated_terms_and_runs_are_evaluated_once(heavy):
    store = heavy.store

    def compiled(text):
        q = parse_query(text)
        terms, _, negatives = heavy.run(_compile(store, q, None))
        return terms, _match_expr(terms, negatives)

    once, expr = compiled("汇率")
    many, expr_many = compiled("汇率 汇率 匯率 汇率")  # (匯率 folds to 汇率)
    assert len(once) == len(many) == 1 and expr_many == expr
    _, excluded = compiled("人民币 -汇率 -汇率")
    assert excluded == compiled("人民币 -汇率")[1]
    # a term of a Latin word and a character, repeated: the character's phrase once
    terms, _ = compiled("的a的a的a的a")
    assert terms[0].chars is not None and terms[0].chars.count("的") == 1
    assert heavy.run(search(store, "汇率 汇率 汇率")).total == heavy.run(search(store, "汇率")).total > 0


def test_the_cli_says_a_search_was_stopped(tmp_path):
    archive = heavy_archive(tmp_path / "archive")
    db = str(tmp_path / "cli.sqlite3")
    r = run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    env = {"SEARCH_TIME_LIMIT": "0.02"}
    r = run("search", COSTLY, "--db", db, cwd=tmp_path, env=env)
    assert r.returncode == 1 and "stopped (SEARCH_TIME_LIMIT)" in r.stderr and not r.stdout
    r = run("search", "-", "--db", db, "--json", cwd=tmp_path, env=env, stdin=f"{COSTLY}\n人民币\n")
    costly, found = (json.loads(line) for line in r.stdout.splitlines())
    assert "stopped (SEARCH_TIME_LIMIT)" in costly["error"]
    assert [h["title"] for h in found] == ["人民币汇率走强"]


def test_every_statement_is_stopped_once_past_the_deadline(heavy, monkeypatch):
    """The limit applies to the whole search, not per statement: with the clock looked at every step
    and no time at all, the first statement is already stopped."""
    monkeypatch.setattr(candidates_mod, "PROGRESS_STEPS", 1)
    store = heavy.store
    store.search_time_limit = 1e-9
    try:
        assert heavy.run(search(store, "人民币")).too_costly
    finally:
        store.search_time_limit = 30
    assert not heavy.run(search(store, "人民币")).too_costly


def test_a_search_stopped_inside_an_open_write_transaction_leaves_it_and_its_writes(heavy):
    """Searches share the store's connection with the writes (a sync's transaction may be open between
    two of its batches): stopping a search's SELECT must not end that transaction."""
    store = heavy.store
    conn = store.conn

    def sql(statement, *params):
        return heavy.run(conn._execute(lambda: conn._conn.execute(statement, params).fetchall()))

    sql("BEGIN IMMEDIATE")
    sql("INSERT INTO meta (key, value) VALUES ('test_costly', '1')")
    store.search_time_limit = 0.02
    try:
        assert heavy.run(search(store, COSTLY)).too_costly
    finally:
        store.search_time_limit = 30
    assert heavy.run(conn._execute(lambda: conn._conn.in_transaction))
    sql("COMMIT")
    assert sql("SELECT value FROM meta WHERE key = 'test_costly'") == [("1",)]
