"""A first start on an archive that takes seconds to index: the bot answers at once, searches say the
index is still being built, /stats shows the progress, and everything is there once the sync is done."""

from __future__ import annotations

from .botapi import FakeBotAPI, bot_settings, start_bot, stop_bot
from .test_bot import ALICE, TOKEN

ADMIN = 777


def _slow_archive(archive, posts: int, title: str) -> None:
    """Posts that take a while to index (8,000: several seconds on these machines)."""
    for i in range(posts):
        day = f"2023-{i // 28 % 12 + 1:02d}-{i % 28 + 1:02d}"
        archive.post(f"{day}-p{i}.md", f"第{i}条{title}", "离岸人民币兑美元汇率走强。" * 5, date=day)


async def _api_and_settings(tmp_path, archive, database: str, *chats: int):
    """A started test Bot API server knowing `chats` and ADMIN, and English settings for a bot with
    ADMIN as its admin and no scheduled sync."""
    api = FakeBotAPI(TOKEN)
    await api.start()
    for chat in (*chats, ADMIN):
        api.add_chat(chat)
    settings = bot_settings(
        api, tmp_path / database, archive.root, default_language="en", admin_ids=[ADMIN], sync_interval=0
    )
    return api, settings


async def test_the_bot_answers_while_the_first_sync_runs(tmp_path, archive):
    _slow_archive(archive, 8000, "汇率消息")
    api, settings = await _api_and_settings(tmp_path, archive, "first.sqlite3", ALICE)
    app = await start_bot(settings, synced=False)
    svc = app.bot_data["svc"]
    try:
        assert not svc.first_sync.done()
        start = await api.ask(ALICE, "/start")
        assert start.text and not svc.first_sync.done()  # answered during the sync
        search = await api.ask(ALICE, "/search 汇率")
        assert "still being indexed" in search.text
        stats = await api.ask(ADMIN, "/stats", user_id=ADMIN)
        assert "Indexing the archive" in stats.text
        await svc.first_sync
        search = await api.ask(ALICE, "/search 汇率")
        assert "still being indexed" not in search.text and "1,000+ found" in search.text
    finally:
        await stop_bot(app)
        await api.stop()


async def test_a_stop_during_the_first_sync_rolls_it_back_quietly_and_the_next_start_finishes_it(
    tmp_path, archive, caplog
):
    import sqlite3

    _slow_archive(archive, 3000, "消息")
    api, settings = await _api_and_settings(tmp_path, archive, "stop.sqlite3")
    try:
        app = await start_bot(settings, synced=False)
        svc = app.bot_data["svc"]
        await api.ask(ADMIN, "/start", user_id=ADMIN)
        assert not svc.first_sync.done()
        await stop_bot(app)  # as SIGTERM does, while the sync runs
        assert svc.follower._task.cancelled()
        failures = [r for r in caplog.records if r.levelname == "ERROR"]
        assert failures == [] and not any("sync failed" in (m.text or "") for m in api.sent_to(ADMIN))
        with sqlite3.connect(tmp_path / "stop.sqlite3") as db:
            assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] < 3000
        app = await start_bot(settings)  # the next start syncs again: every post
        try:
            assert await app.bot_data["svc"].store.count_posts() == 3000
        finally:
            await stop_bot(app)
    finally:
        await api.stop()


async def test_a_stop_during_a_reload_rolls_the_sync_back_instead_of_waiting_for_it(
    tmp_path, archive, monkeypatch
):
    """`newsbot run` told to stop while a /reload's sync runs: the application waits for every update it
    handles, and the /reload handler waited for the sync, so the bot stopped only once the sync ended
    (minutes for a large one; the service manager kills it first). Here the sync never ends."""
    import asyncio
    import os
    import signal

    import bot.follow as follow
    from bot.app import build_application, stop_syncing
    from bot.serve import serve

    archive.post("2024-05-01-a.md", "已经收录", "正文。")
    api, settings = await _api_and_settings(tmp_path, archive, "r.sqlite3")
    app = build_application(settings)
    running = asyncio.ensure_future(serve(app, settings, before_stop=stop_syncing))
    try:
        await api.ask_until(ADMIN, "/latest", "已经收录", user_id=ADMIN)  # the first sync is done
        started = asyncio.Event()

        async def never_ends(*args, **kwargs):
            started.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(follow, "sync_archive", never_ends)
        api.send_text(ADMIN, "/reload", user_id=ADMIN)
        await asyncio.wait_for(started.wait(), 10)
        os.kill(os.getpid(), signal.SIGTERM)  # (serve's handler takes it, as in newsbot run)
        await asyncio.wait_for(running, 15)
        replies = [m.text for m in api.sent_to(ADMIN)]
        assert any("the bot is stopping" in t for t in replies), replies  # the /reload was answered
    finally:
        if not running.done():
            running.cancel()
        await api.stop()
