"""The `newsbot` command line, run as a real subprocess against a real database file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import REPO


def run(*args, cwd, stdin=None, env=None, **popen):
    e = {
        k: v for k, v in os.environ.items() if not k.startswith(("ARCHIVE_", "DATABASE_", "BOT_", "SUMMARY_"))
    }
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
        **popen,
    )


def test_sync_search_latest_categories_show_json(tmp_path, archive):
    archive.post(
        "2024-05-01-a.md",
        "人民币汇率走强",
        "离岸人民币兑美元汇率走强。\n\n<https://src.example/a>",
        categories="markets",
        tags="汇率",
    )
    archive.post("2024-05-02-b.md", "English headline", "Some English body text.", categories="world")
    archive.write("broken.md", "---\ntitle: x\n---\n", dedent=False)
    db = str(tmp_path / "cli.sqlite3")

    r = run("sync", "--archive", str(archive.root), "--db", db, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {
        "added": 2,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "skipped": 1,
        "errors": [{"path": "_posts/broken.md", "reason": out["errors"][0]["reason"]}],
        "refused_deletes": 0,
        "unsettled": 0,
        "held": 0,
        "unpublished": 0,
        "moved": 0,
    }
    assert "no usable date" in out["errors"][0]["reason"]

    r = run("search", "人民币", "--db", db, "--json", cwd=tmp_path)
    hits = json.loads(r.stdout)
    assert len(hits) == 1
    h = hits[0]
    assert h["id"] == "2024-05-01-a" and h["title"] == "人民币汇率走强"
    assert h["date"] == "2024-05-01T10:00:00+08:00"
    assert h["categories"] == ["markets"] and h["tags"] == ["汇率"]
    assert h["url"] == "https://src.example/a"
    assert h["archive_url"] == "https://news.example.org/markets/2024/05/01/a.html"
    assert h["summary"] and "**人民币**" in h["snippet"]

    # `-word` is an exclusion, not an unknown flag
    r = run("search", "汇率", "-人民币", "--db", db, "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout) == []

    r = run("search", "-", "--db", db, cwd=tmp_path, stdin='人民币\nEnglish\n"unclosed\n')
    lines = r.stdout.splitlines()
    assert [len(json.loads(x)) for x in lines] == [1, 1, 0]
    assert json.loads(lines[1])[0]["id"] == "2024-05-02-b"

    r = run("latest", "--db", db, "--json", "--limit", "1", cwd=tmp_path)
    assert [p["id"] for p in json.loads(r.stdout)] == ["2024-05-02-b"]
    r = run("latest", "--category", "markets", "--db", db, "--json", cwd=tmp_path)
    assert [p["id"] for p in json.loads(r.stdout)] == ["2024-05-01-a"]
    r = run("categories", "--db", db, "--json", cwd=tmp_path)
    assert sorted((c["name"], c["count"]) for c in json.loads(r.stdout)) == [("markets", 1), ("world", 1)]
    r = run("categories", "--filter", "MARK", "--db", db, cwd=tmp_path)
    assert "markets" in r.stdout and "world" not in r.stdout
    r = run("show", "2024-05-01-a", "--db", db, cwd=tmp_path)
    assert "离岸人民币兑美元汇率走强。" in r.stdout and "https://src.example/a" in r.stdout
    r = run("show", "nope", "--db", db, cwd=tmp_path)
    assert r.returncode == 1 and "no post with id or path 'nope'" in r.stderr

    # human search output: title, date, category, link
    r = run("search", "汇率", "--db", db, cwd=tmp_path)
    assert "人民币汇率走强" in r.stdout and "2024-05-01 10:00" in r.stdout and "markets" in r.stdout
    assert "https://src.example/a" in r.stdout


def test_settings_from_env_file_and_errors(tmp_path, archive):
    archive.post("2024-05-01-a.md", "标题", "正文。")
    (tmp_path / ".env").write_text(f"ARCHIVE_DIR={archive.root}\nDATABASE_PATH={tmp_path / 'env.sqlite3'}\n")
    r = run("sync", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 1 and (tmp_path / "env.sqlite3").exists()

    r = run("sync", cwd=tmp_path, env={"SUMMARY_CHARS": "lots"})
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "SUMMARY_CHARS" in r.stderr and "Traceback" not in r.stderr
    r = run("sync", cwd=tmp_path, env={"TIMEZONE": "Nowhere/City"})
    assert r.returncode == 2 and "TIMEZONE" in r.stderr and "Traceback" not in r.stderr
    r = run("sync", cwd=tmp_path, env={"SEARCH_PAIRS": "bigrams"})
    assert r.returncode == 2 and "SEARCH_PAIRS" in r.stderr and "Traceback" not in r.stderr
    # the setting reaches the sync: every pair indexed, the stored post indexed again
    r = run("sync", "--json", cwd=tmp_path, env={"SEARCH_PAIRS": "all"})
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "env.sqlite3") as db:
        assert db.execute("SELECT value FROM meta WHERE key='pair_chars'").fetchone() == ("*",)
        assert db.execute(
            "SELECT COUNT(*) FROM posts_fts WHERE posts_fts MATCH 'pairs : 正文'"
        ).fetchone() == (1,)


def test_settings_arguments_and_query_lines_that_cannot_be_read_get_a_clear_answer(tmp_path, archive):
    # (Python hands over such bytes as lone surrogates: a SITE_URL of them failed every sync at its first
    # post, a query or an id was a traceback)
    archive.post("2024-05-01-a.md", "标题", "正文。")
    db = str(tmp_path / "bytes.sqlite3")
    sync_args = ("sync", "--archive", str(archive.root), "--db", db)
    for key in ("SITE_URL", "PERMALINK", "TIMEZONE", "BOT_TOKEN"):
        r = run(*sync_args, cwd=tmp_path, env={key: "x\udcff"})
        assert r.returncode == 2 and "Traceback" not in r.stderr, (key, r.stderr)
        assert (
            r.stderr.strip()
            == f"newsbot: configuration error: {key}: not valid UTF-8 (bytes of another encoding?)"
        )
    for key, value in (
        ("SITE_URL", "https://news.example/\n"),
        ("PERMALINK", "/:title\x1b[2J"),
        ("BOT_TOKEN", "1:a\tb"),
    ):
        r = run(*sync_args, cwd=tmp_path, env={key: value})
        assert r.returncode == 2 and r.stderr.strip() == (
            f"newsbot: configuration error: {key}: holds a control character (a line break, a tab or an escape"
            " sequence)"
        ), (key, r.stderr)
    (tmp_path / ".env").write_bytes(b"SITE_URL=https://news.example/\xff\n")
    r = run(*sync_args, cwd=tmp_path)
    assert (
        r.returncode == 2
        and r.stderr.strip() == "newsbot: configuration error: .env: not valid UTF-8 (byte 0xff at 30)"
    )
    for key in ("ADMIN_IDS", "AUTOPOST_CHATS"):  # (JSON thousands of levels deep: a RecursionError)
        (tmp_path / ".env").write_text(f"{key}={'[' * 50_000}{']' * 50_000}\n")
        r = run(*sync_args, cwd=tmp_path)
        assert r.returncode == 2 and "JSON nested too deeply" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / ".env").unlink()
    assert run(*sync_args, cwd=tmp_path).returncode == 0
    for args in (("search", "正文\udcff"), ("show", "x\udcff"), ("latest", "--category", "x\udcff")):
        r = run(*args, "--db", db, cwd=tmp_path)
        assert r.returncode == 2 and "not valid UTF-8" in r.stderr and "Traceback" not in r.stderr, args
    r = subprocess.run(
        [sys.executable, "-m", "bot", "search", "-", "--db", db],
        cwd=tmp_path,
        input=b"\xe6\xad\xa3\xff\n\xe6\xad\xa3\xe6\x96\x87\n",
        capture_output=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0] == {"error": "not valid UTF-8 (bytes of another encoding?)"}
    assert [h["title"] for h in lines[1]] == ["标题"]


def test_unreadable_archive_exits_2(tmp_path):
    r = run("sync", "--archive", str(tmp_path / "missing"), "--db", str(tmp_path / "x.sqlite3"), cwd=tmp_path)
    assert r.returncode == 2 and "archive not found" in r.stderr and "Traceback" not in r.stderr
    r = run("search", "x", "--db", str(tmp_path / "none.sqlite3"), cwd=tmp_path)
    assert r.returncode == 1 and "run `newsbot sync" in r.stderr


def test_demo_archive_ships_and_searches(tmp_path):
    db = str(tmp_path / "demo.sqlite3")
    r = run("sync", "--archive", str(REPO / "examples" / "demo"), "--db", db, "--json", cwd=tmp_path)
    out = json.loads(r.stdout)
    assert out["added"] >= 15 and (out["skipped"], out["unpublished"]) == (0, 1)  # the one draft
    r = run("search", "汇率", "--db", db, "--json", cwd=tmp_path)
    hits = json.loads(r.stdout)
    assert len(hits) >= 2
    r = run("search", "汇率", "--db", db, "--json", "--with-count", "--limit", "1", cwd=tmp_path)
    page = json.loads(r.stdout)
    assert page["total"] == len(hits) and page["total_text"] == str(len(hits))
    assert page["more"] is True and [h["id"] for h in page["hits"]] == [hits[0]["id"]]


def test_every_setting_is_documented_in_env_example():
    from store.settings import Settings

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text(encoding="utf-8")
    keys = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    assert {name.upper() for name in Settings.model_fields} <= keys


def test_hostile_cli_input_gets_answers_not_tracebacks(tmp_path, archive):
    for i in range(12):
        archive.post(f"2024-05-{i + 1:02d}-p{i}.md", f"人民币汇率{i}", "离岸人民币汇率走强。")
    db = str(tmp_path / "h.sqlite3")
    assert run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path).returncode == 0

    lines = ["汇率 until:9999-12-31", " ".join(f"w{i}" for i in range(5000)), "#t " * 3333, "", "汇率"]
    r = run("search", "-", "--db", db, cwd=tmp_path, stdin="\n".join(lines) + "\n")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == len(lines) and len(out[0]) == 10 and len(out[-1]) == 10

    r = run("latest", "--limit", "99999999999999999999", "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("[2024-05-") == 12 and "--limit is between" in r.stderr
    r = run("search", "汇率", "--limit", "500", "--offset", "99999999999999999999", "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and "--limit is between 1 and 100" in r.stderr
    r = run("search", "#t " * 300, "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and "shortened" in r.stderr

    for path in list(archive.posts.iterdir())[:11]:
        path.unlink()
    r = run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and "--allow-mass-delete" in r.stderr and "deleted 0" in r.stdout
    r = run("sync", "--archive", str(archive.root), "--db", db, "--allow-mass-delete", cwd=tmp_path)
    assert "deleted 11" in r.stdout


def test_a_database_path_from_home_is_read_as_a_shell_reads_it(tmp_path, archive):
    # DATABASE_PATH=~/… in a .env file or a systemd unit is not expanded by any shell
    archive.post("2024-05-01-a.md", "家目录里的数据库", "正文。")
    env = {"HOME": str(tmp_path / "home"), "DATABASE_PATH": "~/newsbot/news.sqlite3"}
    r = run("sync", "--archive", str(archive.root), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "home/newsbot/news.sqlite3").is_file() and not (tmp_path / "~").exists()
    r = run("search", "家目录", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "家目录里的数据库" in r.stdout
    archive.root.rename(tmp_path / "home/site")  # ARCHIVE_DIR too
    r = run("sync", "--json", cwd=tmp_path, env={**env, "ARCHIVE_DIR": "~/site"})
    assert r.returncode == 0 and json.loads(r.stdout)["unchanged"] == 1


def test_database_faults_are_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "folder.sqlite3"
    folder.mkdir()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 200)
    for db in (folder, junk):
        r = run("search", "x", "--db", str(db), cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.startswith("newsbot: database") and len(r.stderr.strip().splitlines()) == 1


async def test_a_backup_taken_while_a_sync_writes_is_complete_and_opens(tmp_path, archive):
    import asyncio
    import sqlite3

    from store.db import Store, backup

    from .conftest import sync

    for i in range(30):
        archive.post(f"2024-04-{i % 28 + 1:02d}-old{i}.md", f"旧文章{i}", "正文。")
    db = tmp_path / "live.sqlite3"
    store = await Store.open(db)
    try:
        await sync(store, archive)
        rule, _ = await store.add_rule("-100", origin="admin")
        await store.enqueue([(rule, "-100", 0, 1)], 1)
        for i in range(600):
            archive.post(f"2024-05-{i % 28 + 1:02d}-new{i}.md", f"新文章{i}", "正文内容。" * 20)
        writing = asyncio.ensure_future(sync(store, archive))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(backup, db, tmp_path / "copy.sqlite3")
        await writing
    finally:
        await store.close()
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    posts = copy.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    assert 30 <= posts <= 630  # a snapshot before, during or after the sync, of whole transactions:
    assert copy.execute("SELECT COUNT(*) FROM post_heads").fetchone()[0] == posts
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT COUNT(*) FROM rules").fetchone()[0] == 1
    assert copy.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 1
    copy.close()
    # restore is a file copy: the copy is a working database
    r = run("search", "旧文章", "--db", str(tmp_path / "copy.sqlite3"), cwd=tmp_path)
    assert r.returncode == 0 and "found" in r.stdout
    r = run("backup", str(tmp_path / "again.sqlite3"), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0 and "backed up" in r.stdout
    again = sqlite3.connect(tmp_path / "again.sqlite3")
    assert again.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 630
    again.close()


def _synced_60_posts(tmp_path, archive) -> Path:
    """live.sqlite3 in `tmp_path`, synced from 60 posts of ~1,000 characters."""
    for i in range(60):
        archive.post(f"2024-05-{i % 28 + 1:02d}-p{i}.md", f"文章{i}", "正文内容。" * 200)
    db = tmp_path / "live.sqlite3"
    assert run("sync", "--archive", str(archive.root), "--db", str(db), cwd=tmp_path).returncode == 0
    return db


def _signalled(program: str, args: list[str], cwd, ready: bytes, sig: int) -> tuple[int, bytes, bytes]:
    """Run a Python `program` with `args`, send it `sig` once its first line of output is `ready`;
    its exit code, the rest of its output and its error output."""
    p = subprocess.Popen(
        [sys.executable, "-c", program, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert p.stdout.readline() == ready
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    return p.returncode, out, err


def _files_at_most(size: int):
    """For a process that may write files of at most `size` bytes: a write past that fails as on a
    full disk (EFBIG, the signal it would raise ignored)."""

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_backup_that_cannot_be_written_says_where_and_leaves_nothing_behind(tmp_path, archive):
    db = _synced_60_posts(tmp_path, archive)
    backups = tmp_path / "backups"
    r = run("backup", str(backups / "copy.sqlite3"), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    good = (backups / "copy.sqlite3").read_bytes()

    # the disk fills up halfway through the copy
    r = run(
        "backup",
        str(backups / "copy.sqlite3"),
        "--db",
        str(db),
        cwd=tmp_path,
        preexec_fn=_files_at_most(100_000),
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"newsbot: backup to {backups / 'copy.sqlite3'} failed: ")
    assert "free some space" in r.stderr and "untouched" in r.stderr
    assert sorted(p.name for p in backups.iterdir()) == ["copy.sqlite3"]  # no partial copy left
    assert (backups / "copy.sqlite3").read_bytes() == good  # the last good copy is kept

    # a folder as the copy: the copy goes into it, named as the database (as `cp` does)
    r = run("backup", str(backups), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0 and f"→ {backups / 'live.sqlite3'}" in r.stdout, r.stdout + r.stderr
    with sqlite3.connect(backups / "live.sqlite3") as copy:
        assert copy.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 60

    # a path that cannot be a file, the database itself (by its folder): one line each, nothing written
    for dest, says in [
        (backups / "copy.sqlite3" / "x", "copy.sqlite3 is a file, not a folder"),
        (tmp_path, "cannot be the database itself"),
        (db, "cannot be the database itself"),
    ]:
        r = run("backup", str(dest), "--db", str(db), cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"backup to {dest} failed" in r.stderr and says in r.stderr, r.stderr
    assert sorted(p.name for p in backups.iterdir()) == ["copy.sqlite3", "live.sqlite3"]
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def test_a_backup_stopped_by_ctrl_c_or_sigterm_stops_at_once_and_leaves_nothing_behind(tmp_path, archive):
    """A Ctrl-C or SIGTERM during `newsbot backup` stops the copy at its next step and removes what it
    wrote: the copy used to go on to its end (minutes for a large database) and, on SIGTERM, leave its
    partial file. The copy's steps are made one page each, and slow, to stop it halfway for sure."""
    db = _synced_60_posts(tmp_path, archive)
    with sqlite3.connect(db) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 50
    backups = tmp_path / "backups"
    assert run("backup", str(backups / "copy.sqlite3"), "--db", str(db), cwd=tmp_path).returncode == 0
    good = (backups / "copy.sqlite3").read_bytes()
    program = textwrap.dedent(
        """
        import os, sys, time
        import store.db

        store.db.BACKUP_STEP_PAGES = 1
        stepping = store.db._step

        def slow_steps(stop):
            check = stepping(stop)

            def progress(status, remaining, total):
                os.write(1, b"step\\n")
                time.sleep(0.02)
                check(status, remaining, total)

            return progress

        store.db._step = slow_steps
        from bot.entry import main

        sys.exit(main(sys.argv[1:]))
        """
    )
    stopped = "newsbot: backup stopped by SIGTERM; no copy was made, the database itself is untouched\n"
    for sig, code, says in [(signal.SIGINT, 130, ""), (signal.SIGTERM, 143, stopped)]:
        args = ["backup", str(backups / "copy.sqlite3"), "--db", str(db)]
        returncode, out, err = _signalled(program, args, tmp_path, b"step\n", sig)
        assert (returncode, err.decode()) == (code, says)
        assert out.count(b"step\n") <= 2  # (of one step a page)
        assert sorted(x.name for x in backups.iterdir()) == ["copy.sqlite3"]  # nothing partial left
        assert (backups / "copy.sqlite3").read_bytes() == good  # the last good copy is kept
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 60


def test_stories_in_json_show_and_the_stories_command(tmp_path, archive):
    from .test_stories import CUT, CUT_REWRITE, OTHER

    archive.post("2024-05-01-cut.md", *CUT, date="2024-05-01 10:00:00 +0800")
    archive.post("2024-05-01-cut-rewrite.md", *CUT_REWRITE, date="2024-05-01 10:40:00 +0800")
    archive.post("2024-05-01-other.md", *OTHER, date="2024-04-20 10:10:00 +0800")
    db = str(tmp_path / "cli.sqlite3")
    assert run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path).returncode == 0

    latest = json.loads(run("latest", "--json", "--db", db, cwd=tmp_path).stdout)
    assert [p["id"] for p in latest] == ["2024-05-01-cut", "2024-05-01-other"]  # the story once
    assert latest[0]["story"] != latest[1]["story"]

    shown = json.loads(run("show", "2024-05-01-cut-rewrite", "--json", "--db", db, cwd=tmp_path).stdout)
    assert shown["story"] == latest[0]["story"] and shown["story_posts"] == ["2024-05-01-cut"]
    alone = json.loads(run("show", "2024-05-01-other", "--json", "--db", db, cwd=tmp_path).stdout)
    assert alone["story_posts"] == []

    found = json.loads(run("search", "存款准备金率", "--json", "--db", db, cwd=tmp_path).stdout)
    assert len(found) == 1 and found[0]["story"] == shown["story"]  # one result for the story

    stories = json.loads(run("stories", "--since", "2024-04-30", "--json", "--db", db, cwd=tmp_path).stdout)
    assert [[p["id"] for p in s["posts"]] for s in stories] == [["2024-05-01-cut", "2024-05-01-cut-rewrite"]]
    everything = run("stories", "--db", db, cwd=tmp_path)
    assert (
        everything.returncode == 0 and "2 reports" in everything.stdout and "1 report\n" in everything.stdout
    )
    assert run("stories", "--since", "0001-01-01", "--db", db, cwd=tmp_path).returncode == 0  # bounds nothing
    bad = run("stories", "--since", "yesterday", "--db", db, cwd=tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_show_takes_a_path_and_names_the_posts_that_share_an_id(tmp_path, archive):
    archive.post(
        "2024-05-01-x.md", "English report", "Text.", date="2024-05-01 09:00:00 +0000", folder="en/_posts"
    )
    archive.post(
        "2024-05-01-x.md", "中文报道", "正文。", date="2024-05-01 10:00:00 +0000", folder="zh/_posts"
    )
    db = str(tmp_path / "n.sqlite3")
    assert run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path).returncode == 0
    r = run("show", "2024-05-01-x", "--db", db, cwd=tmp_path)
    assert r.returncode == 0 and "中文报道" in r.stdout  # the newest
    assert "2 posts have the id '2024-05-01-x'" in r.stderr and "en/_posts/2024-05-01-x.md" in r.stderr
    r = run("show", "en/_posts/2024-05-01-x.md", "--json", "--db", db, cwd=tmp_path)
    assert json.loads(r.stdout)["title"] == "English report" and r.stderr == ""


def test_ctrl_c_while_the_command_loads_exits_quietly(tmp_path):
    """A Ctrl-C in the first ~0.25 s of any `newsbot` command, while its modules load, exits 130 with
    nothing printed, as a later one does: it printed Python's traceback of the imports. The installed
    command and `python -m bot` both start at bot.entry; here a real SIGINT arrives while one of the
    command line's modules is loading (held there until it comes)."""
    scripts = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "newsbot"]
    assert [e.value for e in scripts] == ["bot.entry:main"]
    program = textwrap.dedent(
        """
        import os, sys, time

        class HeldWhileLoading:
            def find_spec(self, name, path=None, target=None):
                if name == "store.settings":
                    os.write(1, b"loading\\n")
                    time.sleep(60)

        sys.meta_path.insert(0, HeldWhileLoading())
        from bot.entry import main

        sys.exit(main(["search", "x"]))
        """
    )
    assert _signalled(program, [], tmp_path, b"loading\n", signal.SIGINT) == (130, b"", b"")


def test_version_is_the_projects():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    r = run("--version", cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == f"newsbot {project['version']}"


def test_sync_says_how_many_posts_moved(tmp_path, archive):
    path = archive.post("2024-05-01-a.md", "搬家", "正文。")
    db = str(tmp_path / "m.sqlite3")
    assert run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path).returncode == 0
    (archive.posts / "2024").mkdir()
    path.rename(archive.posts / "2024" / path.name)
    r = run("sync", "--archive", str(archive.root), "--db", db, cwd=tmp_path)
    assert "added 0, updated 1, deleted 0" in r.stdout and "1 post(s) moved or renamed" in r.stdout
