"""The bot against the test Bot API server, as a hostile or careless user drives it: forged buttons, huge
arguments, too many alerts, odd chat ids, another group's language, a read-only database. The server
rejects what Telegram rejects (over 4096 characters, bad HTML), so every reply here is within limits."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from .botapi import FakeBotAPI, bot_settings, start_bot, stop_bot
from .test_bot import ALICE, GROUP, TOKEN, WANG

ADMIN = 777


@contextlib.asynccontextmanager
async def _running(tmp_path, archive, rate_limit: bool = False):
    long_cat = "很长的分类" * 900
    archive.post("2024-05-01-a.md", "人民币汇率走强", "离岸人民币兑美元汇率走强。", categories="markets")
    archive.post(
        "2024-05-02-long.md",
        "分类很长的文章",
        "正文。",
        categories=" ".join(f"{long_cat[:90]}{i}" for i in range(45)),
        tags=" ".join(f"标签{i}" * 30 for i in range(40)),
    )
    api = FakeBotAPI(TOKEN)
    await api.start()
    for chat in (ALICE, WANG, ADMIN):
        api.add_chat(chat)
    api.add_chat(GROUP, "supergroup", "Readers")
    api.admins[GROUP] = {WANG}
    settings = bot_settings(
        api,
        tmp_path / "hostile.sqlite3",
        archive.root,
        default_language="en",
        admin_ids=[ADMIN],
        max_subscriptions=3,
    )
    app = await start_bot(settings, rate_limit=rate_limit)
    try:
        yield api, app
    finally:
        await stop_bot(app)
        await api.stop()


@pytest.fixture
async def bot(tmp_path, archive):
    async with _running(tmp_path, archive) as running:
        yield running


@pytest.fixture
async def limited_bot(tmp_path, archive):
    """The bot with the rate limiter `newsbot run` has (bot.flood)."""
    async with _running(tmp_path, archive, rate_limit=True) as running:
        yield running


async def test_a_forged_search_button_from_another_chat_shows_nothing(bot):
    api, app = bot
    mine = await api.ask(ALICE, "/search 汇率")
    data = mine.button("›")["callback_data"] if any(b["text"] == "›" for b in mine.buttons()) else None
    own_id = data.split(":")[1] if data else str(await app.bot_data["svc"].remember_query(ALICE, "汇率"))
    other = await api.ask(WANG, "/help")
    for forged in (f"sr:{own_id}:0", "sr:1:0", "sr:0:0", "sr:99999999999999999999:0", "sr:x", "sr:"):
        qid = api.press_data(other, forged, user_id=WANG)
        answer = await api.callback_answer(qid)
        assert "expired" in answer["text"].lower() or "过期" in answer["text"], forged
    assert other.edits == 0


async def test_a_card_with_huge_categories_and_tags_is_sent_within_limits(bot):
    api, app = bot
    post = await app.bot_data["svc"].store.get_post("2024-05-02-long")
    card = await api.ask(ALICE, f"/start post_{post.rowid}")
    assert card.text.startswith("分类很长的文章") and len(card.text) <= 4096
    latest = await api.ask(ALICE, "/latest")
    assert "分类很长的文章" in latest.text


async def test_huge_arguments_get_a_clear_answer(bot):
    api, _ = bot
    reply = await api.ask(ALICE, "/latest " + "类" * 4000)
    assert "no category" in reply.text.lower() or "没有" in reply.text
    reply = await api.ask(ALICE, "/latest 99999999999999999999")
    assert reply.text.startswith("Latest posts")
    reply = await api.ask(ALICE, "/search " + "#t " * 1300)
    assert "shortened" in reply.text
    reply = await api.ask(ALICE, "/search 汇率 until:9999-12-31")
    assert "人民币汇率走强" in reply.text
    reply = await api.ask(ALICE, "/subscribe " + "字" * 4080)
    assert "too long" in reply.text
    assert await _subscriptions(api) == 0


async def _subscriptions(api) -> int:
    reply = await api.ask(ALICE, "/subscriptions")
    return reply.text.count("\n#")


async def test_subscriptions_are_capped_per_user_and_long_ones_are_listed_within_limits(bot):
    api, _ = bot
    for i in range(3):
        reply = await api.ask(ALICE, f"/subscribe {'汇率' * 120} {i}")
        assert "set" in reply.text
    reply = await api.ask(ALICE, "/subscribe 第四个")
    assert "the most allowed" in reply.text
    listing = await api.ask(ALICE, "/subscriptions")
    assert listing.text.count("#") >= 3 and len(listing.text) <= 4096


async def test_autopost_validates_chats_and_threads_and_lists_many_rules(bot):
    api, app = bot
    store = app.bot_data["svc"].store
    before = len(await store.rules())
    for bad in ("0", "-0", "١٢٣", "@x", "-100123 thread:-5", "-100123 thread:abc", "²"):
        reply = await api.ask(ADMIN, f"/autopost add {bad}", user_id=ADMIN)
        assert "/autopost add" in reply.text, bad  # the usage, nothing created
    assert len(await store.rules()) == before
    for i in range(81):
        await store.add_rule(f"-100{i}", query="长" * 200, origin="admin")
    n_before = len(api.sent_to(ADMIN))
    api.send_text(ADMIN, "/autopost", user_id=ADMIN)
    await api.wait_for(lambda: "#81 " in "".join(m.text for m in api.sent_to(ADMIN)[n_before:]))
    listing = api.sent_to(ADMIN)[n_before:]
    assert 2 <= len(listing) <= 5 and all(len(m.text) <= 4096 for m in listing)


async def test_only_a_groups_admins_change_its_language(bot):
    api, app = bot
    store = app.bot_data["svc"].store
    reply = await api.ask(GROUP, "/lang@newsbot_test_bot", user_id=ALICE)
    assert "administrators" in reply.text
    reply = await api.ask(GROUP, "/lang@newsbot_test_bot", user_id=WANG)
    qid = api.press(reply, "简体中文", user_id=ALICE)  # pressed by a non-admin
    assert "administrators" in (await api.callback_answer(qid))["text"]
    assert await store.chat_language(GROUP) is None
    qid = api.press(reply, "简体中文", user_id=WANG)
    await api.callback_answer(qid)
    assert await store.chat_language(GROUP) == "zh"


async def test_with_writes_refused_searches_still_answer_and_admins_are_told_once(bot):
    api, app = bot
    store = app.bot_data["svc"].store
    await store.conn.execute("PRAGMA query_only=1")  # SQLite refuses every write from now on
    for _ in range(2):
        reply = await api.ask(ALICE, "/search 汇率")
        assert "人民币汇率走强" in reply.text
    told = [m for m in api.sent_to(ADMIN) if "refuses writes" in m.text]
    assert len(told) == 1


async def test_updates_without_a_user_or_a_message_do_not_fail_handlers(bot, caplog):
    api, _ = bot
    api.add_chat(-100777, "channel", "A channel")
    channel = {"id": -100777, "type": "channel", "title": "A channel"}
    for text in ("/latest", "/search 汇率", "/subscribe 汇率", "/subscriptions", "/unsubscribe all", "/lang"):
        api._push(
            {
                "channel_post": {
                    "message_id": 5,
                    "date": 0,
                    "chat": channel,
                    "sender_chat": channel,
                    "text": text,
                    "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
                }
            }
        )
    for data in ("sr:1:0", "p:1", "cl:0:", "cp:00000000:0:0", "lg:en", "zz"):
        qid = f"inl{data}"
        api._push(
            {
                "callback_query": {
                    "id": qid,
                    "from": api.user(ALICE),
                    "chat_instance": "ci",
                    "inline_message_id": "im1",
                    "data": data,
                }
            }
        )
        await api.callback_answer(qid)
    marker = await api.ask(ALICE, "/help")  # every update before it has been handled
    assert marker.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]


async def test_one_users_flood_is_cut_off_and_others_are_still_answered(bot):
    api, app = bot
    svc = app.bot_data["svc"]
    from bot.handlers.guard import Flood

    svc.flood = Flood(5)
    before = len(api.sent_to(ALICE))
    for _ in range(9):
        api.send_text(ALICE, "/help")
    reply = await api.ask(WANG, "/help")  # another user is answered meanwhile
    assert reply.text
    await api.wait_for(lambda: any("Too many requests" in m.text for m in api.sent_to(ALICE)))
    sent = api.sent_to(ALICE)[before:]
    assert len(sent) == 6 and sum("Too many requests" in m.text for m in sent) == 1
    # an admin is never limited
    for _ in range(8):
        api.send_text(ADMIN, "/help", user_id=ADMIN)
    await api.wait_for(lambda: len(api.sent_to(ADMIN)) >= 8)


async def test_editing_a_message_over_and_over_counts_as_sending_it(bot):
    api, app = bot
    from bot.handlers.guard import Flood

    app.bot_data["svc"].flood = Flood(5)
    before = len(api.sent_to(ALICE))
    message = api.send_text(ALICE, "汇率")  # a search, then its text edited eight times
    for i in range(8):
        api.edit_text(message, f"汇率 {i}" if i % 2 else f"/search 汇率{i}")
    await api.wait_for(lambda: len(api.sent_to(ALICE)) >= before + 6)  # five answers and a warning
    await asyncio.sleep(0.5)  # (time for any more: there are none)
    sent = api.sent_to(ALICE)[before:]
    assert len(sent) == 6 and sum("Too many requests" in m.text for m in sent) == 1


def test_the_flood_window_slides():
    from bot.handlers.guard import Flood

    f = Flood(2)
    assert f.allow(1, 0.0) == (True, False) and f.allow(1, 1.0) == (True, False)
    assert f.allow(1, 2.0) == (False, True) and f.allow(1, 3.0) == (False, False)
    assert f.allow(2, 3.0) == (True, False)
    assert f.allow(1, 61.0) == (True, False)


async def test_a_refused_write_in_a_command_is_an_apology_and_one_admin_alert(bot):
    api, app = bot
    await app.bot_data["svc"].store.conn.execute("PRAGMA query_only=1")
    for _ in range(2):
        reply = await api.ask(ALICE, "/subscribe 汇率")
        assert "went wrong" in reply.text.lower() or "出错" in reply.text
    assert len([m for m in api.sent_to(ADMIN) if "refuses writes" in m.text]) == 1
    assert "人民币汇率走强" in (await api.ask(ALICE, "/latest")).text  # reads go on


async def test_a_search_stopped_for_its_cost_is_explained_and_uses_up_the_users_budget(bot, monkeypatch):
    """With no time allowed (and the clock looked at every step) every search is stopped: the reply says
    why, an alert on such a query is refused, and a user whose searches used up their database time for
    the minute gets no more searches, inline ones included, while other users still do."""
    import store.candidates as candidates_mod
    from bot.handlers.guard import Flood

    api, app = bot
    svc = app.bot_data["svc"]
    await api.ask_until(ALICE, "/search 人民币", "人民币汇率走强")  # (the first sync has indexed it)
    monkeypatch.setattr(candidates_mod, "PROGRESS_STEPS", 1)
    svc.store.search_time_limit = 1e-9
    reply = await api.ask(ALICE, "/search 人民币")
    assert "took too long and was stopped" in reply.text and "人民币" in reply.text
    reply = await api.ask(ALICE, "/subscribe 人民币")
    assert "takes too long to check" in reply.text
    assert await svc.store.rules(origin="subscription", owner=ALICE) == []
    reply = await api.ask(ADMIN, "/autopost add -100123 人民币", user_id=ADMIN)
    assert "takes too long to check" in reply.text
    assert await svc.store.rules(origin="admin") == []

    answer = await api.inline_answer(api.inline(ALICE, "人民币"))
    assert answer["results"] == [] and answer["button"]["text"].startswith("Too costly to search")
    reply = await api.ask(ALICE, "/start help")  # where the answer's button leads
    assert "/search" in reply.text

    svc.flood = Flood(0, search_seconds=1e-9)  # any search's time uses it up
    await api.ask(ALICE, "/search 人民币")
    reply = await api.ask(ALICE, "/search 人民币")
    assert "Too many requests" in reply.text
    answer = await api.inline_answer(api.inline(ALICE, "人民币"))
    assert answer["results"] == [] and answer["button"]["text"] == "Too many searches: please wait a minute"
    assert answer["button"]["start_parameter"] == "help"
    svc.store.search_time_limit = 30
    answer = await api.inline_answer(api.inline(WANG, "人民币"))  # another user (this uses theirs up)
    assert [r["title"] for r in answer["results"]] == ["人民币汇率走强"]
    reply = await api.ask(ADMIN, "/search 人民币", user_id=ADMIN)  # admins have no budget
    assert "人民币汇率走强" in reply.text


def test_the_search_time_budget_slides():
    from bot.handlers.guard import Flood

    f = Flood(0, search_seconds=1.0)
    assert f.allow(1, 0.0) == (True, False)
    f.charge(1, 0.6, 0.0)
    assert not f.over_budget(1, 1.0) and f.allow(1, 1.0) == (True, False)
    f.charge(1, 0.5, 2.0)
    assert f.over_budget(1, 3.0) and f.allow(1, 3.0) == (False, True) and f.allow(1, 4.0) == (False, False)
    assert not f.over_budget(2, 3.0)
    assert not f.over_budget(1, 61.0) and f.allow(1, 61.0) == (True, False)  # the first charge has left


async def test_posts_with_links_telegram_refuses_are_still_shown(bot, archive):
    """A source link with a space, one to a host without a dot, a permalink template with a space: the
    test server refuses such button URLs as Telegram does (with the whole message); the cards still go
    out, the links encoded or left out."""
    from store.jekyll import open_archive
    from store.sync import sync_archive

    api, app = bot
    store = app.bot_data["svc"].store
    archive.post(
        "2024-06-01-s.md", "空格链接", "正文。", categories="odd", extra="source: https://src.example/a b"
    )
    archive.post(
        "2024-06-02-l.md", "本机链接", "正文。", categories="odd", extra="source: http://localhost/x"
    )
    archive.post(
        "2024-06-03-p.md", "永久链接", "正文。", categories="odd", extra='permalink: "/odd page/:slug/"'
    )
    await sync_archive(store, open_archive(archive.root), workers=0)
    listing = await api.ask(ALICE, "/latest 3 odd")
    urls = {}
    for n in ("1", "2", "3"):
        api.press(listing, n)
        card = await api.next_message(ALICE, max(m.message_id for m in api.sent_to(ALICE)))
        urls[card.text.split("\n")[0]] = {b["text"]: b["url"] for b in card.buttons()}
    assert urls["空格链接"]["Source"] == "https://src.example/a%20b"
    assert "Source" not in urls["本机链接"] and urls["本机链接"]["Archive page"].startswith("https://")
    assert urls["永久链接"]["Archive page"] == "https://news.example.org/odd%20page/p/"
    assert not [e for e in api.errors if "BUTTON_URL_INVALID" in e[1]], api.errors


async def test_lists_of_posts_with_long_links_and_many_matches_are_messages_telegram_takes(bot, archive):
    """/latest 20 of posts whose source links carry long tracking queries was refused by Telegram
    ("entities too long": the test server refuses it too) and answered with an apology; now every post
    is listed, those past the formatting Telegram takes without their links; a search for a
    character every snippet holds many times bolded each, past the 100 entities whose formatting
    Telegram keeps."""
    from store.jekyll import open_archive
    from store.sync import sync_archive

    api, app = bot
    store = app.bot_data["svc"].store
    for i in range(20):
        archive.post(
            f"2024-06-{i + 1:02d}-u.md",
            f"长链接{i}",
            "的" * 3 + "。的的，的" * 30,
            categories="long",
            extra=f"source: https://src.example/{i}?ref=" + "y" * 1500,
        )
    await sync_archive(store, open_archive(archive.root), workers=0)
    listing = await api.ask(ALICE, "/latest 20 long")
    assert all(f"长链接{i}" in listing.text for i in range(20)) and not api.errors, api.errors
    assert listing.html.count("<a href=") >= 3  # the first posts linked; past the budget, their titles plain
    assert len(listing.buttons()) >= 20  # every post still opens from its button
    found = await api.ask(ALICE, "/search 的")
    assert "长链接" in found.text and found.html.count("<b>") <= 100 and not api.errors, api.errors


async def test_a_flood_of_inline_queries_is_cut_off_and_others_are_still_answered(bot):
    from bot.handlers.guard import Flood

    api, app = bot
    svc = app.bot_data["svc"]
    svc.inline_flood = Flood(3)
    answers = [await api.inline_answer(api.inline(ALICE, "人民币")) for _ in range(5)]
    assert [bool(a["results"]) for a in answers] == [True, True, True, False, False]
    assert answers[-1]["button"]["text"] == "Too many searches: please wait a minute"
    answer = await api.inline_answer(api.inline(WANG, "人民币"))  # another user
    assert answer["results"]
    for _ in range(5):  # admins are not counted
        answer = await api.inline_answer(api.inline(ADMIN, "人民币"))
    assert answer["results"]


async def test_another_program_polling_with_the_token_is_one_log_line_and_one_admin_alert(bot, caplog):
    api, app = bot
    api.conflicts = 2  # two polls answered "Conflict", as when a second deployment polls too
    await api.wait_for(lambda: [m for m in api.sent_to(ADMIN) if "Another program" in m.text], timeout=20)
    reply = await api.ask(ALICE, "/help")  # once the other program stops, polling goes on
    assert reply.text and api.conflicts == 0
    assert len([m for m in api.sent_to(ADMIN) if "Another program" in m.text]) == 1
    lines = [r for r in caplog.records if "another program is getting" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "ERROR" and lines[0].exc_info is None


async def test_a_group_that_muted_the_bot_costs_one_refused_reply_and_no_traceback(bot, caplog):
    api, app = bot
    from .botapi import ApiError

    api.refusing[GROUP] = ApiError("Bad Request: not enough rights to send text messages to the chat")
    api.send_text(GROUP, "/search 汇率", user_id=ALICE)
    await api.ask(ALICE, "/help")  # (the group's command was handled before it)
    await api.wait_for(lambda: [e for e in api.errors if "not enough rights" in e[1]])
    await asyncio.sleep(0.3)
    sends = [p for m, p in api.log if m == "sendMessage" and str(p.get("chat_id")) == str(GROUP)]
    assert len(sends) == 1  # the answer; no apology after it
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r for r in caplog.records if "refused the answer" in r.getMessage()]


async def test_the_language_cache_is_bounded_and_an_evicted_chat_keeps_its_language(bot, monkeypatch):
    api, app = bot
    from bot import services as services_module

    monkeypatch.setattr(services_module, "LANGUAGES_CACHED", 3)
    svc = app.bot_data["svc"]
    await svc.set_language(ALICE, "zh")
    for chat in range(5001, 5006):  # five other chats write after her
        api.add_chat(chat)
        await api.ask(chat, "/help", user_id=chat)
    assert len(svc._languages) <= 3 and ALICE not in svc._languages
    reply = await api.ask(ALICE, "/help", user_id=ALICE)  # read again from the store: still Chinese
    assert "搜索" in reply.text


async def test_a_business_accounts_chats_with_its_customers_are_not_answered(bot):
    api, app = bot
    api.add_chat(4242)
    message = {"message_id": 1, "date": 0, "chat": api.chats[4242], "from": api.user(4242), "text": "汇率"}
    api._push({"business_message": {**message, "business_connection_id": "bc1"}})
    api._push({"business_message": {**message, "message_id": 2, "text": "/nosuchcommand"}})
    await api.ask(ALICE, "/help")  # (every update before it was handled)
    await asyncio.sleep(0.3)
    assert api.sent_to(4242) == [] and not [p for m, p in api.log if p.get("business_connection_id")]


async def test_a_long_flood_wait_in_one_chat_drops_its_answer_and_holds_up_no_one_else(limited_bot, caplog):
    # (PTB's own rate limiter held every request of the bot for the whole wait, at each of 3 retries)
    api, app = limited_bot
    api.set_flood(ALICE, 60)
    loop = asyncio.get_running_loop()
    started = loop.time()
    api.send_text(ALICE, "/latest", user_id=ALICE)
    await api.wait_for(lambda: ("sendMessage", "Too Many Requests: retry after 60") in api.errors)
    reply = await api.ask(WANG, "/latest", user_id=WANG)
    assert "人民币汇率走强" in reply.text and loop.time() - started < 5
    await asyncio.sleep(0.3)
    assert api.errors.count(("sendMessage", "Too Many Requests: retry after 60")) == 1  # no apology tried
    assert api.sent_to(ALICE) == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r for r in caplog.records if "answer dropped: Telegram asks to wait 60 s" in r.getMessage()]


async def test_a_short_flood_wait_is_waited_out_and_the_answer_sent(limited_bot):
    api, app = limited_bot
    api.set_flood(ALICE, 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.ask(ALICE, "/latest", user_id=ALICE)
    assert "人民币汇率走强" in reply.text and loop.time() - started >= 1.0
    assert api.errors.count(("sendMessage", "Too Many Requests: retry after 1")) == 1


# Pieces of arguments a careless or hostile user types: numbers out of range, query syntax cut short,
# markup, invisible and combining characters, very long words.
PIECES = [
    "0",
    "-1",
    "1" * 30,
    "1e9",
    "0x10",
    "3.5",
    "-100123",
    "@",
    "@x",
    "@newsbot_test_bot",
    "cat:",
    "cat:markets",
    "since:",
    "since:2024-13-45",
    "until:9999-99-99",
    "#",
    "#标签",
    "-",
    "--",
    '"',
    "'",
    '""',
    "*",
    "OR",
    "NOT",
    "(",
    ")",
    "^",
    "汇率",
    "🦄",
    "\u200b",
    "\u202e",
    "e\u0301",
    "<b>",
    "&amp;",
    "&",
    "<",
    "\n",
    "a" * 300,
    "很" * 500,
    "x" * 4000,
    "all",
    "add",
    "remove",
    "pause",
    "resume",
    "zh",
    "fr",
    "thread:-5",
    "[1,2]",
    "\\",
    "%",
]
COMMANDS = [
    "/start",
    "/start post_1",
    "/start post_",
    "/start post_99999999999999",
    "/help",
    "/latest",
    "/categories",
    "/search",
    "/lang",
    "/subscribe",
    "/unsubscribe",
    "/subscriptions",
    "/reload",
    "/stats",
    "/autopost",
    "/autopost add",
    "/autopost remove",
    "/autopost pause",
    "/autopost resume",
]


async def test_any_command_with_any_arguments_gets_one_answer_within_limits(bot, caplog):
    # (the test server refuses what Telegram refuses: over 4096 characters, bad HTML, bad buttons)
    api, app = bot
    from bot.handlers.guard import Flood

    app.bot_data["svc"].flood = Flood(0)  # (this is not a flood: every message is answered)
    rng = random.Random(7)
    for _ in range(200):
        chat = rng.choice([ALICE, ADMIN, GROUP])
        command = rng.choice(COMMANDS)
        if chat == GROUP:
            command += "@newsbot_test_bot"
        text = " ".join([command, *(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))])[:4096]
        await api.ask(chat, text, user_id=ADMIN if chat == ADMIN else ALICE)
    assert api.errors == []
    assert not [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


async def test_any_button_data_and_inline_query_gets_an_answer(bot, caplog):
    api, app = bot
    from bot.handlers.guard import Flood

    app.bot_data["svc"].flood = Flood(0)
    rng = random.Random(11)
    results = await api.ask(ALICE, "/search 汇率", user_id=ALICE)
    prefixes = ["cl", "cp", "sr", "p", "st", "lg", "zz", ""]
    parts = ["0", "-1", "1" * 25, "a", "", "汇率", "x" * 60, ":", "zh", "en", "9" * 19, "1.5", "-0"]
    for _ in range(150):
        data = rng.choice(prefixes) + ":" + ":".join(rng.choice(parts) for _ in range(rng.randint(0, 4)))
        await api.callback_answer(
            api.press_data(results, data.encode()[:64].decode("utf-8", "ignore"), ALICE)
        )
        query = " ".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))[:256]
        offset = rng.choice(["", "0", "-5", "abc", "99999999999999999999", "10"])
        await api.inline_answer(api.inline(ALICE, query, offset=offset))
    # (a page button pressed on the page it shows edits nothing: Telegram says so, and that is all)
    assert [e for e in api.errors if "message is not modified" not in e[1]] == []
    assert not [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


async def test_a_busy_group_does_not_hold_up_the_answers_in_other_chats(limited_bot, caplog):
    # Telegram takes 20 messages a minute in one group: commands sent there faster than that must not
    # leave the bot's handlers all waiting on that group's limit while other chats wait for them
    api, app = limited_bot
    for user in range(5001, 5041):  # forty members, one command each: within every user's own limit
        api.send_text(GROUP, "/latest@newsbot_test_bot", user_id=user)
    await api.wait_for(lambda: len(api.sent_to(GROUP)) >= 15)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.ask(WANG, "/help", user_id=WANG)
    assert reply.text and loop.time() - started < 3
    await asyncio.sleep(0.5)
    answers = api.sent_to(GROUP)
    assert len(answers) == 20  # (Telegram's limit for a group; the other commands are not answered)
    pressed = api.press(answers[0], answers[0].buttons()[0]["text"], user_id=5001)
    assert "busy" in (await api.callback_answer(pressed)).get("text", "")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_one_chats_burst_in_a_flood_wait_does_not_hold_up_other_chats(limited_bot):
    # a reader sends a burst of commands (within their own limit) while Telegram makes their chat wait:
    # each answer waits out the short flood wait in place, and must not take every handler with it
    api, app = limited_bot
    api.set_flood(ALICE, 6)
    for _ in range(20):
        api.send_text(ALICE, "/help", user_id=ALICE)
    await api.wait_for(lambda: api.errors.count(("sendMessage", "Too Many Requests: retry after 6")) >= 2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.ask(WANG, "/help", user_id=WANG)
    assert reply.text and loop.time() - started < 2
    await api.wait_for(lambda: len(api.sent_to(ALICE)) == 20, timeout=30)  # hers all go out after the wait


async def test_a_token_revoked_while_the_bot_runs_stops_it_with_one_line(bot, caplog):
    # (PTB's long polling ends on a refused token without a word: the bot went on without updates, every
    # send failing, looking healthy to its service manager; `newsbot run` now exits 2, bot.serve)
    from telegram.error import InvalidToken

    from bot.serve import watch_token

    api, app = bot
    stop = asyncio.Event()
    watch = asyncio.ensure_future(watch_token(app, stop, every=0.1))
    await asyncio.sleep(0.3)
    assert not stop.is_set()  # (the token is good: nothing happens)
    token, api.token = api.token, "123456789:revoked-with-BotFather"
    await asyncio.wait_for(stop.wait(), 5)
    await watch
    assert isinstance(app.bot_data["token_refused"], InvalidToken)
    lines = [r for r in caplog.records if "refuses the bot's token" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    api.token = token  # (so that the fixture stops the bot as usual)
