"""A first start on an archive that takes seconds to index: the bot answers at once, searches say the
index is still being built, /stats shows the progress, and everything is there once the sync is done."""

from __future__ import annotations

from .botapi import FakeBotAPI, bot_settings, start_bot, stop_bot
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
