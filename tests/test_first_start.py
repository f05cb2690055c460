"""A first start on an archive that takes seconds to index: the bot answers at once, searches say the
index is still being built, /stats shows the progress, and everything is there once the sync is done."""

from __future__ import annotations

from telegram import Update

from bot.app import build_application, setup, teardown

from .botapi import FakeBotAPI, bot_settings
from .test_bot import ALICE, TOKEN

ADMIN = 777


async def test_the_bot_answers_while_the_first_sync_runs(tmp_path, archive):
    for i in range(8000):  # several seconds of indexing on these machines
        day = f"2023-{i // 28 % 12 + 1:02d}-{i % 28 + 1:02d}"
        archive.post(f"{day}-p{i}.md", f"第{i}条汇率消息", "离岸人民币兑美元汇率走强。" * 5, date=day)
    api = FakeBotAPI(TOKEN)
    await api.start()
    api.add_chat(ALICE)
    api.add_chat(ADMIN)
    settings = bot_settings(
        api,
        tmp_path / "first.sqlite3",
        archive.root,
        default_language="en",
        admin_ids=[ADMIN],
        sync_interval=0,
    )
    app = build_application(settings, rate_limit=False)
    await app.initialize()
    await setup(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)
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
        await app.updater.stop()
        await app.stop()
        await teardown(app)
        await app.shutdown()
        await api.stop()
