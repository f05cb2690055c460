"""`newsbot check` against the test Bot API server: a good setup, and each kind of bad one."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

from .botapi import FakeBotAPI
from .test_bot import TOKEN
from .test_cli import run

ADMIN, CHANNEL = 777, -1009999999999


async def _check(tmp_path, api, *args, **env):
    import asyncio

    base = dict(BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api.base_url)
    base.update(env)
    r = await asyncio.to_thread(run, "check", *args, cwd=tmp_path, env=base)
    assert TOKEN not in r.stdout + r.stderr and TOKEN.split(":")[1] not in r.stdout + r.stderr
    return r


async def _warnings(tmp_path, api, **env) -> list[str]:
    """The lines of a check that passes (exit code 0) that are not `ok`."""
    r = await _check(tmp_path, api, **env)
    assert r.returncode == 0, r.stdout
    return [line for line in r.stdout.splitlines() if not line.startswith("ok")]


async def test_check_a_good_setup_then_each_kind_of_bad_one(tmp_path, archive):
    archive.post("2024-05-01-a.md", "检查", "正文。")
    api = FakeBotAPI(TOKEN)
    await api.start()
    api.add_chat(ADMIN)
    api.add_chat(CHANNEL, "channel", "News")
    db = tmp_path / "c.sqlite3"
    good = dict(
        ARCHIVE_DIR=str(archive.root),
        DATABASE_PATH=str(db),
        ADMIN_IDS=str(ADMIN),
        AUTOPOST_CHATS=json.dumps([{"chat_id": CHANNEL}]),
    )
    try:
        assert run("sync", "--db", str(db), cwd=tmp_path, env=good).returncode == 0
        r = await _check(tmp_path, api, **good)
        assert r.returncode == 0, r.stdout
        lines = r.stdout.splitlines()
        assert all(line.startswith("ok") for line in lines), lines
        text = r.stdout
        assert "@newsbot_test_bot" in text and "1 post files, _config.yml found" in text
        assert "dates without offset in Asia/Shanghai (_config.yml)" in text
        r = await _check(tmp_path, api, **good, TIMEZONE="Europe/Berlin")
        assert "dates without offset in Europe/Berlin (TIMEZONE)" in r.stdout
        archive.post("2024-05-02-b.md", "分目录", "正文。", folder="news/_posts")  # the site's folders count
        assert "2 post files in 2 _posts folders, _config.yml" in (await _check(tmp_path, api, **good)).stdout
        (archive.root / "news/_posts/2024-05-02-b.md").unlink()
        assert "schema" in text and "writable" in text and f"admin {ADMIN}: reachable" in text
        assert "no bot running on it" in text
        with sqlite3.connect(db) as conn:  # the channel took the bot's rights: its rule was paused
            conn.execute(
                "INSERT INTO rules (id, chat, origin, since_seq, paused, paused_by, created)"
                " VALUES (1, ?, 'admin', 0, 'Not enough rights', 'chat', 0)",
                (str(CHANNEL),),
            )
        r = await _check(tmp_path, api, **good)
        failed = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
        assert r.returncode == 1 and failed == [
            f"FAIL  auto-post rule #1 to {CHANNEL}: paused: Not enough rights (it resumes when the bot may"
            " post there again, or with /autopost resume 1)"
        ]
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM rules")
        from bot.instance import InstanceLock

        lock = InstanceLock(db)  # as `newsbot run` holds it
        lock.acquire()
        try:
            r = await _check(tmp_path, api, **good)
            assert r.returncode == 0 and f"a bot is running on it: pid {os.getpid()}" in r.stdout
        finally:
            lock.release()
        assert f"auto-post chat {CHANNEL}: reachable (channel, News)" in text
        # posts Jekyll publishes at one URL: readers following one's link land on the other
        for folder in ("_posts", "zh/_posts"):
            archive.post("2024-05-03-same.md", "同名", "正文。", folder=folder, extra="permalink: /same.html")
        assert run("sync", "--db", str(db), cwd=tmp_path, env=good).returncode == 0
        assert await _warnings(tmp_path, api, **good) == [
            "warn  archive URLs: 1 archive URL is given to several posts (Jekyll publishes one page"
            " at each and reports a conflict; the other posts' links lead to it: change their file names or"
            " permalink): https://news.example.org/same.html <- _posts/2024-05-03-same.md,"
            " zh/_posts/2024-05-03-same.md"
        ]
        for path in (archive.posts / "2024-05-03-same.md", archive.root / "zh"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        assert run("sync", "--db", str(db), cwd=tmp_path, env=good).returncode == 0
        # a post file without a date in its name: newsbot serves it, plain Jekyll skips it
        archive.post("fed-raises-rates.md", "加息", "正文。")
        assert await _warnings(tmp_path, api, **good) == [
            "warn  post names: 1 post file without YYYY-MM-DD- in the name (_posts/fed-raises-rates.md):"
            " Jekyll publishes such posts only with a plugin, else their archive links lead nowhere (rename"
            " them)"
        ]
        (archive.posts / "fed-raises-rates.md").unlink()

        cases = [
            (
                {"BOT_TOKEN": "987654321:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJi"},
                "telegram: the token was rejected",
            ),
            ({"TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}, "telegram: cannot reach"),
            ({"ADMIN_IDS": "12345"}, "admin 12345: Chat not found"),
            (
                {"AUTOPOST_CHATS": json.dumps([{"chat_id": -100404}])},
                "auto-post chat -100404: Chat not found",
            ),
            ({"ARCHIVE_DIR": str(tmp_path / "missing")}, "archive: archive not found"),
            ({"DATABASE_PATH": str(tmp_path)}, "database:"),
        ]
        for change, expected in cases:
            r = await _check(tmp_path, api, **{**good, **change})
            fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
            assert r.returncode == 1 and fails and expected.lower() in " ".join(fails).lower(), (
                change,
                r.stdout,
            )

        hook = {**good, "WEBHOOK_URL": "https://bot.example.org"}
        r = await _check(tmp_path, api, "--webhook", **hook)
        assert r.returncode == 0 and "webhook: https://bot.example.org/telegram not set yet" in r.stdout
        api.webhook = {"url": "https://elsewhere.example.org/telegram"}
        r = await _check(tmp_path, api, "--webhook", **hook)
        assert r.returncode == 1 and "Telegram posts to https://elsewhere.example.org/telegram" in r.stdout
        r = run("check", cwd=tmp_path, env={**good, "AUTOPOST_CHATS": "[{"})
        assert r.returncode == 2 and "AUTOPOST_CHATS" in r.stderr

        # a channel's title is anyone's text: a line break in it forged an `ok` line, an escape sequence
        # reached the terminal
        api.add_chat(-1001, "channel", "Feed\nok    telegram: forged\x1b]0;owned\x07")
        r = await _check(tmp_path, api, **{**good, "AUTOPOST_CHATS": json.dumps([{"chat_id": -1001}])})
        assert "\x1b" not in r.stdout
        assert not [line for line in r.stdout.splitlines() if line.startswith("ok    telegram: forged")]
        (line,) = [line for line in r.stdout.splitlines() if "-1001" in line]
        assert line.endswith("reachable (channel, Feed\\x0aok    telegram: forged\\x1b]0;owned\\x07)"), line
    finally:
        await api.stop()
