"""End to end: the real PTB Application over HTTP against the Bot API test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import ConfigError, check_token
from bot.i18n import I18n, placeholders
from store.settings import Settings

from .botapi import FakeBotAPI, bot_settings, start_bot, stop_bot

TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"
ALICE = 111  # a private chat with an English user
WANG = 222  # a private chat with a Chinese user
GROUP = -1001234567890


class Bot:
    def __init__(self, api: FakeBotAPI, app, archive):
        self.api, self.app, self.archive = api, app, archive

    @property
    def store(self):
        return self.app.bot_data["svc"].store


@pytest.fixture
async def bot(tmp_path, archive):
    for i in range(1, 13):
        archive.post(
            f"2024-03-{i:02d}-m{i}.md",
            f"人民币汇率第{i}条消息",
            f"第{i}条：离岸人民币兑美元汇率走强。\n\n<https://src.example/m{i}>",
            date=f"2024-03-{i:02d} 09:00:00 +0800",
            categories="markets",
            tags="汇率",
        )
    archive.post(
        "2024-03-20-en.md",
        "Fed keeps rates on hold",
        "The Federal Reserve held rates. <b>not a tag</b> & more.",
        date="2024-03-20 08:00:00 +0800",
        categories="world",
    )
    archive.post(
        "2024-03-21-lt.md",
        "A <script> & 'quotes' title",
        "Body with <angle> brackets & ampersands.",
        date="2024-03-21 08:00:00 +0800",
        categories="world",
    )
    for i in range(25):
        archive.post(
            f"2023-01-{i + 1:02d}-c{i}.md",
            f"分类{i}",
            "正文。",
            date=f"2023-01-{i + 1:02d}",
            categories=f"cat{i:02d}",
        )
    api = FakeBotAPI(TOKEN)
    await api.start()
    api.add_chat(ALICE)
    api.add_chat(WANG)
    api.add_chat(GROUP, "supergroup", "Readers")
    settings = bot_settings(api, tmp_path / "bot.sqlite3", archive.root, default_language="zh")
    app = await start_bot(settings)
    try:
        yield Bot(api, app, archive)
    finally:
        await stop_bot(app)
        await api.stop()


async def test_commands_are_published_per_language(bot):
    assert set(bot.api.commands) == {"", "en", "zh"}
    en = {c["command"]: c["description"] for c in bot.api.commands["en"]}
    zh = {c["command"]: c["description"] for c in bot.api.commands["zh"]}
    assert (
        set(en)
        == set(zh)
        == {
            "start",
            "help",
            "latest",
            "categories",
            "search",
            "lang",
            "subscribe",
            "unsubscribe",
            "subscriptions",
        }
    )
    assert "reload" not in en  # admin commands are only in admins' own menus
    assert en["search"].startswith("Search") and zh["search"].startswith("搜索")


async def test_start_and_help_in_both_languages(bot):
    reply = await bot.api.ask(ALICE, "/start")
    assert "/latest" in reply.text and "@newsbot_test_bot" in reply.text and "news archive" in reply.text
    reply = await bot.api.ask(WANG, "/start", language_code="zh-hans")
    assert "新闻档案" in reply.text
    reply = await bot.api.ask(ALICE, "/help")
    assert "cat:NAME" in reply.text and "since:" in reply.text


async def test_latest_lists_posts_with_links_dates_and_sources(bot):
    reply = await bot.api.ask(ALICE, "/latest 3")
    assert reply.text.startswith("Latest posts")
    assert "A <script> & 'quotes' title" in reply.text  # escaped on the way out, shown as written
    assert "2024-03-21 08:00" in reply.text and "world" in reply.text
    assert reply.html.count("<a href=") >= 3
    assert [b["text"] for b in reply.buttons()] == ["1", "2", "3"]
    reply = await bot.api.ask(ALICE, "/latest 2 MARKETS")
    assert "Latest in markets" in reply.text and "人民币汇率第12条消息" in reply.text
    assert 'href="https://src.example/m12"' in reply.html
    reply = await bot.api.ask(ALICE, "/latest nosuchcategory")
    assert "no category named “nosuchcategory”" in reply.text


async def test_categories_paging_filter_and_back(bot):
    reply = await bot.api.ask(ALICE, "/categories")
    assert "Categories (27)" in reply.text and "page 1/3" in reply.text
    labels = [b["text"] for b in reply.buttons()]
    assert labels[0] == "markets (12)" and "›" in labels and "‹" not in labels
    bot.api.press(reply, "›")
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert "page 2/3" in reply.text and "‹" in [b["text"] for b in reply.buttons()]
    bot.api.press(reply, "‹")
    await bot.api.wait_for(lambda: reply.edits == 2)
    assert "page 1/3" in reply.text
    # into a category, page through its posts, and back
    bot.api.press(reply, "markets (12)")
    await bot.api.wait_for(lambda: reply.edits == 3)
    assert "markets — 12 posts, page 1/2" in reply.text and "人民币汇率第12条消息" in reply.text
    bot.api.press(reply, "›")
    await bot.api.wait_for(lambda: reply.edits == 4)
    assert "page 2/2" in reply.text and "人民币汇率第1条消息" in reply.text
    bot.api.press(reply, "« Categories")
    await bot.api.wait_for(lambda: reply.edits == 5)
    assert "Categories (27)" in reply.text
    filtered = await bot.api.ask(ALICE, "/categories cat1")
    assert "matching “cat1”" in filtered.text and "(10)" in filtered.text
    assert all(b["text"].startswith("cat1") for b in filtered.buttons() if "(" in b["text"])


async def test_search_paging_snippets_and_nothing_found(bot):
    reply = await bot.api.ask(ALICE, "/search 汇率")
    assert "Results for 汇率 — 12 found, page 1 of 3" in reply.text
    assert "<b>汇率</b>" in reply.html
    assert "›" in [b["text"] for b in reply.buttons()]
    first_page = reply.text
    bot.api.press(reply, "›")
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert "page 2" in reply.text and reply.text != first_page
    bot.api.press(reply, "‹")
    await bot.api.wait_for(lambda: reply.edits == 2)
    assert reply.text == first_page
    nothing = await bot.api.ask(ALICE, "/search 不存在的词语组合xyz")
    assert "Nothing found" in nothing.text and "single character" in nothing.text
    usage = await bot.api.ask(ALICE, "/search")
    assert "/search 人民币 汇率" in usage.text


async def test_a_button_answered_too_late_still_turns_the_page_and_nobody_gets_an_apology(bot):
    reply = await bot.api.ask(ALICE, "/search 汇率")
    late = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    bot.api.too_late.add(bot.api.press(reply, "›"))  # (the bot was restarting, or busy, when it came)
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert "page 2" in reply.text
    assert bot.api.errors == [("answerCallbackQuery", late)]
    query_id = bot.api.inline(ALICE, "汇率")
    bot.api.too_late.add(query_id)
    await bot.api.wait_for(lambda: len(bot.api.errors) == 2)
    await bot.api.ask(ALICE, "/help")  # (every update before it was handled)
    answers = [p for m, p in bot.api.log if m == "answerInlineQuery" and p["inline_query_id"] == query_id]
    assert len(answers) == 1  # no empty "apology" answer tried after it
    assert not [m for m in bot.api.sent_to(ALICE) if "went wrong" in m.text.lower()]


async def test_plain_text_in_private_is_a_search_and_odd_queries_are_safe(bot):
    reply = await bot.api.ask(ALICE, "Federal")
    assert "Fed keeps rates on hold" in reply.text
    for odd in ['"unclosed', "C++ AND NOT", "<b>", "* NEAR(", "-", "&amp;"]:
        r = await bot.api.ask(ALICE, odd)
        assert r.text
    assert not [e for e in bot.api.errors if e[0] == "sendMessage"]


async def test_post_card_from_button_and_deep_link(bot):
    reply = await bot.api.ask(ALICE, "/latest 1 markets")
    before = reply.message_id
    bot.api.press(reply, "1")
    card = await bot.api.next_message(ALICE, before)
    assert card.text.startswith("人民币汇率第12条消息")
    assert "2024-03-12 09:00" in card.text and "#汇率" in card.text and "离岸人民币" in card.text
    urls = {b["text"]: b["url"] for b in card.buttons()}
    assert urls["Source"] == "https://src.example/m12"
    assert urls["Archive page"] == "https://news.example.org/markets/2024/03/12/m12.html"
    rowid = int(reply.button("1")["callback_data"].split(":")[1])
    deep = await bot.api.ask(WANG, f"/start post_{rowid}", language_code="zh")
    assert deep.text.startswith("人民币汇率第12条消息")
    assert {b["text"] for b in deep.buttons()} == {"原文", "档案页面"}


async def test_deleted_post_and_expired_buttons(bot):
    reply = await bot.api.ask(ALICE, "/latest 1")
    missing = await bot.api.ask(ALICE, "/start post_99999")
    assert "no longer in the archive" in missing.text
    qid = bot.api.press_data(reply, "p:99999")
    answer = await bot.api.callback_answer(qid)
    assert answer["show_alert"] and "no longer" in answer["text"]
    qid = bot.api.press_data(reply, "sr:99999:1")
    assert "expired" in (await bot.api.callback_answer(qid))["text"]
    qid = bot.api.press_data(reply, "zz:whatever")
    assert "expired" in (await bot.api.callback_answer(qid))["text"]
    qid = bot.api.press_data(reply, "cp:deadbeef:0:0")
    assert "expired" in (await bot.api.callback_answer(qid))["text"]


async def test_pressing_the_same_page_twice_is_not_an_error(bot):
    reply = await bot.api.ask(ALICE, "/categories")
    data = reply.button("›")["callback_data"]
    q1 = bot.api.press_data(reply, data)
    await bot.api.callback_answer(q1)
    await bot.api.wait_for(lambda: reply.edits == 1)
    q2 = bot.api.press_data(reply, data)
    await bot.api.callback_answer(q2)
    await bot.api.wait_for(lambda: any("not modified" in d for _, d in bot.api.errors))
    # the "not modified" answer was swallowed: no apology was sent
    assert all("went wrong" not in (a.get("text") or "") for a in bot.api.callback_answers.values())


async def test_unknown_command(bot):
    reply = await bot.api.ask(ALICE, "/frobnicate")
    assert "don't know that command" in reply.text


async def test_group_commands_with_suffix_and_no_chatter(bot):
    reply = await bot.api.ask(GROUP, "/latest@newsbot_test_bot 2", user_id=ALICE)
    assert "Latest posts" in reply.text
    before = len(bot.api.sent_to(GROUP))
    bot.api.send_text(GROUP, "just chatting about 汇率", user_id=ALICE)
    bot.api.send_text(GROUP, "/latest@some_other_bot", user_id=ALICE)
    bot.api.send_text(GROUP, "/frobnicate", user_id=ALICE)
    probe = await bot.api.ask(GROUP, "/help@newsbot_test_bot", user_id=ALICE)
    assert "Search syntax" in probe.text
    assert len(bot.api.sent_to(GROUP)) == before + 1  # only the /help reply


async def test_lang_is_stored_per_chat(bot):
    reply = await bot.api.ask(ALICE, "/lang")
    assert [b["text"] for b in reply.buttons()] == ["English", "简体中文", "Automatic (Telegram's language)"]
    bot.api.press(reply, "简体中文")
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert reply.text == "语言：简体中文。"
    assert await bot.store.chat_language(ALICE) == "zh"
    after = await bot.api.ask(ALICE, "/latest 1")  # the user's Telegram language is English
    assert after.text.startswith("最新文章")
    reply = await bot.api.ask(ALICE, "/lang")
    bot.api.press(reply, "自动（跟随 Telegram 语言）")
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert (await bot.api.ask(ALICE, "/latest 1")).text.startswith("Latest posts")


async def test_inline_mode_search_latest_and_paging(bot):
    qid = bot.api.inline(ALICE, "")
    answer = await bot.api.inline_answer(qid)
    titles = [r["title"] for r in answer["results"]]
    assert titles[0] == "A <script> & 'quotes' title" and len(titles) == 20
    assert answer["next_offset"] == "20"
    qid = bot.api.inline(ALICE, "", offset="20")
    more = await bot.api.inline_answer(qid)
    assert len(more["results"]) == 39 - 20 and more.get("next_offset", "") == ""
    qid = bot.api.inline(ALICE, "汇率")
    hits = await bot.api.inline_answer(qid)
    assert len(hits["results"]) == 12
    first = hits["results"][0]
    assert first["input_message_content"]["message_text"].startswith("<b><a href=")
    assert first["description"]


async def test_long_content_is_cut_within_limits(bot):
    long_title = "长标题" * 200
    long_body = ("很长的正文句子，" * 400) + "。"
    bot.archive.post("2024-04-01-long.md", long_title, long_body, date="2024-04-01", categories="markets")
    for i in range(6):
        bot.archive.post(f"2024-04-0{i + 2}-x.md", "超长" * 150, "正文" * 600, date=f"2024-04-0{i + 2}")
    from store.jekyll import open_archive
    from store.sync import sync_archive

    await sync_archive(bot.store, open_archive(bot.archive.root), workers=0)
    reply = await bot.api.ask(ALICE, "/latest 20")
    assert len(reply.text) <= 4096
    card_src = await bot.api.ask(ALICE, "/latest 1 markets")
    bot.api.press(card_src, "1")
    card = await bot.api.next_message(ALICE, card_src.message_id)
    assert len(card.text) <= 4096 and card.text.startswith("长标题")
    assert not bot.api.errors or all("not modified" in d for _, d in bot.api.errors), bot.api.errors


async def test_handler_error_gets_an_apology_not_a_traceback(bot, caplog):
    from telegram.error import BadRequest  # noqa: F401  (the server answers with a 500 below)

    from .botapi import ApiError

    bot.api.fail_next["sendMessage"] = ApiError("Internal Server Error: boom", 500)
    with caplog.at_level(logging.ERROR, logger="newsbot.bot"):
        reply = await bot.api.ask(ALICE, "/help")
    assert reply.text == "Sorry, something went wrong. Please try again in a moment."
    assert any("handler failed" in r.message for r in caplog.records)
    assert TOKEN not in caplog.text


def test_every_message_exists_in_every_locale_with_the_same_placeholders():
    i18n = I18n()
    assert set(i18n.languages) >= {"en", "zh"}
    keys = set(i18n.catalogs["en"])
    for lang in i18n.languages:
        assert set(i18n.catalogs[lang]) == keys, lang
        for key in keys:
            assert placeholders(i18n.catalogs[lang][key]) == placeholders(i18n.catalogs["en"][key]), (
                lang,
                key,
            )


def test_no_user_facing_strings_in_handlers():
    """Replies come from the catalogs: handler modules call i18n.t, never reply with literals."""
    import re
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[1] / "bot" / "handlers").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"reply(?:_html)?\(\s*update,\s*f?[\"'][A-Za-z\u4e00-\u9fff]", source), path
        assert not re.search(r"answer\(\s*[\"'][A-Za-z\u4e00-\u9fff]", source), path


def test_token_checks():
    with pytest.raises(ConfigError, match="not set"):
        check_token(Settings(bot_token=None))
    with pytest.raises(ConfigError, match="malformed"):
        check_token(Settings(bot_token="12345"))
    assert check_token(Settings(bot_token=TOKEN)) == TOKEN


def _logged(formatter: logging.Formatter, logger: str) -> str:
    """What `formatter` writes for a plain warning and for a failed request whose URL and error hold
    the token."""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger(logger)
    log.addHandler(handler)
    try:
        log.warning("plain line with %s", "参数")
        try:
            raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/getMe failed")
        except RuntimeError:
            log.exception("request to %s failed", f"https://api.telegram.org/bot{TOKEN}/sendMessage")
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_log_lines_and_tracebacks_never_show_the_token():
    from bot.logs import LOG_FORMAT, RedactingFormatter

    text = _logged(RedactingFormatter(LOG_FORMAT, TOKEN), "newsbot.test-redaction")
    assert "failed" in text and "<token>" in text and "Traceback" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


def test_json_log_lines_are_one_object_each_and_redacted():
    import json

    from bot.logs import JsonFormatter

    text = _logged(JsonFormatter(TOKEN), "newsbot.test-json")
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 2 and entries[0]["message"] == "plain line with 参数"
    assert entries[0]["level"] == "WARNING" and entries[0]["logger"] == "newsbot.test-json"
    assert "Traceback" in entries[1]["exception"] and "<token>" in entries[1]["message"]
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


def test_a_log_message_is_one_line_whatever_its_arguments_hold():
    """A line break or an escape sequence in a logged name or error (from a file name, an archive, a
    remote error) cannot forge a log line or reach the terminal showing the log, in either format."""
    import io
    import json

    from bot.logs import LOG_FORMAT, JsonFormatter, RedactingFormatter

    for formatter in (RedactingFormatter(LOG_FORMAT, TOKEN), JsonFormatter(TOKEN)):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        log = logging.getLogger("newsbot.test-controls")
        log.addHandler(handler)
        try:
            log.warning("skipped %s", "a.md\n2026-12-01 ERROR forged\x1b]0;owned\x07\x9b2J")
        finally:
            log.removeHandler(handler)
        text = stream.getvalue()
        assert len(text.splitlines()) == 1, text
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in text), text
        if isinstance(formatter, JsonFormatter):
            text = json.loads(text)["message"]
        assert "a.md\\x0a2026-12-01 ERROR forged\\x1b]0;owned\\x07\\x9b2J" in text


async def test_a_story_shows_once_with_its_other_reports(bot):
    from .test_stories import CUT, CUT_REWRITE

    bot.archive.post("2024-05-01-cut.md", *CUT, date="2024-05-01 10:00:00 +0800", categories="macro")
    bot.archive.post(
        "2024-05-01-cut-rewrite.md", *CUT_REWRITE, date="2024-05-01 10:40:00 +0800", categories="macro"
    )
    await bot.app.bot_data["svc"].follower.sync()
    reply = await bot.api.ask(ALICE, "/latest 3", language_code="en")
    assert reply.text.count(CUT[0]) == 1 and CUT_REWRITE[0] not in reply.text
    assert "+1 more reports of this story" in reply.text
    # the "+N reports" button lists every report, first report first
    before = reply.message_id
    bot.api.press(reply, "+1 reports (#1)")
    story = await bot.api.next_message(ALICE, before)
    assert "2 reports of this story" in story.text
    assert story.text.index(CUT[0]) < story.text.index(CUT_REWRITE[0])
    # a report's card lists the story's other reports
    bot.api.press(story, "2")
    card = await bot.api.next_message(ALICE, story.message_id)
    assert card.text.startswith(CUT_REWRITE[0]) and "Other reports" in card.text and CUT[0] in card.text
    # search gives the story one result
    found = await bot.api.ask(ALICE, "/search 存款准备金率", language_code="en")
    assert "1 found" in found.text and "+1 more reports" in found.text
    # inline: the story once, its card listing the other report
    hits = (await bot.api.inline_answer(bot.api.inline(ALICE, "存款准备金率")))["results"]
    assert len(hits) == 1 and "+1 more reports" in hits[0]["description"]
    assert CUT_REWRITE[0] in hits[0]["input_message_content"]["message_text"]


async def test_a_category_page_never_promises_a_page_the_stories_do_not_fill(bot):
    from .test_stories import CUT, CUT_REWRITE

    # 9 posts, 8 stories: one page of 8, although the post count alone would make two
    bot.archive.post("2024-05-01-cut.md", *CUT, date="2024-05-01 10:00:00 +0800", categories="macro")
    bot.archive.post(
        "2024-05-01-cut-rewrite.md", *CUT_REWRITE, date="2024-05-01 10:40:00 +0800", categories="macro"
    )
    for i in range(7):
        bot.archive.post(
            f"2024-05-0{i + 2}-m.md",
            f"宏观数据第{i + 1}期",
            f"第{i + 1}期数据发布。",
            date=f"2024-05-0{i + 2}",
            categories="macro",
        )
    await bot.app.bot_data["svc"].follower.sync()
    reply = await bot.api.ask(ALICE, "/categories", language_code="en")
    bot.api.press(reply, "macro (9)")
    await bot.api.wait_for(lambda: reply.edits == 1)
    assert "macro — 9 posts, page 1/1" in reply.text
    assert "›" not in [b["text"] for b in reply.buttons()]


async def test_the_segmenter_and_folding_tables_load_at_start_in_a_thread(bot):
    warming = bot.app.bot_data["svc"].warming
    assert warming is not None
    await asyncio.wait_for(warming, 30)  # (store.search.warm_up; what it loads: test_segment)
