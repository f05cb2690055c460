"""Following the archive end to end: /reload, /stats, auto-posting, digests, topics, 429s, Forbidden,
subscriptions, overlapping syncs, git pull failures."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from store.search import search
from store.settings import AutopostRule, Settings

from .botapi import ApiError, FakeBotAPI, start_bot, stop_bot
from .test_bot import ALICE, TOKEN, WANG

ADMIN = 777
CHANNEL = -1009999999999
FORUM = -1008888888888


def first_lines(messages) -> list[str]:
    return [m.text.split("\n")[0] for m in messages]


async def take_back(env) -> None:
    """The channel that refused the bot takes it back and an admin resumes its paused rule: what is still
    queued for it goes out."""
    env.api.refusing.pop(CHANNEL, None)
    (rule,) = await env.svc.store.rules()
    await env.api.ask(ADMIN, f"/autopost resume {rule['id']}", user_id=ADMIN)
    await env.settle()


class Env:
    def __init__(self, api, app, archive):
        self.api, self.app, self.archive = api, app, archive

    @property
    def svc(self):
        return self.app.bot_data["svc"]

    def channel_posts(self, chat=CHANNEL):
        return self.api.sent_to(chat)

    async def settle(self):
        """Wait until no delivery is due (pending for a rule not paused) and the sender finished its round."""

        async def idle():
            return not await self.svc.store.due_deliveries()

        for _ in range(300):
            await self.svc.deliverer.run_once()
            if await idle():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"deliveries still pending: {await self.svc.store.delivery_counts()}")


@pytest.fixture
async def make_env(tmp_path, archive):
    started: list[Env] = []

    async def start(**overrides) -> Env:
        archive.post(
            "2024-01-01-old.md", "旧文章", "已经在档案里的文章。", date="2024-01-01", categories="markets"
        )
        api = FakeBotAPI(TOKEN)
        await api.start()
        for chat in (ALICE, WANG, ADMIN):
            api.add_chat(chat)
        api.add_chat(CHANNEL, "channel", "News channel")
        api.add_chat(FORUM, "supergroup", "Forum", is_forum=True)
        values = dict(
            bot_token=TOKEN,
            telegram_base_url=api.base_url,
            database_path=tmp_path / "follow.sqlite3",
            archive_dir=archive.root,
            admin_ids=[ADMIN],
            sync_interval=0,
            digest_threshold=3,
            autopost_chats=[AutopostRule(chat_id=CHANNEL)],
            default_language="en",
            deliver_max_age_hours=0,  # (the posts here are dated 2024; the age rule has a test of its own)
        )
        values.update(overrides)
        app = await start_bot(Settings(**values))
        env = Env(api, app, archive)
        started.append(env)
        return env

    yield start
    for env in started:
        await stop_bot(env.app)
        await env.api.stop()


async def test_new_post_and_admin_reload_posts_exactly_once(make_env):
    env = await make_env()
    assert env.channel_posts() == []  # the archive that was already there is not flooded
    env.archive.post(
        "2024-05-01-new.md", "新文章来了", "新的内容。\n\n<https://src.example/new>", date="2024-05-01"
    )
    reply = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "1 added" in reply.text and "1 deliveries queued" in reply.text
    await env.settle()
    posts = env.channel_posts()
    assert len(posts) == 1 and posts[0].text.startswith("新文章来了")
    assert {b["text"]: b["url"] for b in posts[0].buttons()}["Source"] == "https://src.example/new"
    again = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "0 added" in again.text
    await env.settle()
    assert len(env.channel_posts()) == 1


async def test_a_pushed_post_moved_into_a_folder_is_not_pushed_again(make_env):
    env = await make_env()
    path = env.archive.post("2024-05-01-new.md", "新文章来了", "新的内容。", date="2024-05-01")
    await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    await env.settle()
    assert len(env.channel_posts()) == 1
    (env.archive.root / "news" / "_posts").mkdir(parents=True)
    path.rename(env.archive.root / "news" / "_posts" / path.name)  # the site sorts it into a folder
    reply = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "1 post(s) moved or renamed" in reply.text and "0 added" in reply.text
    await env.settle()
    assert len(env.channel_posts()) == 1  # before: deleted and added again, so pushed again


async def test_non_admin_reload_is_refused_and_nothing_syncs(make_env):
    env = await make_env()
    env.archive.post("2024-05-01-new.md", "不该同步", "内容。", date="2024-05-01")
    seq = await env.svc.store.current_seq()
    for command in ("/reload", "/stats", "/autopost", "/autopost add -100123"):
        reply = await env.api.ask(ALICE, command, user_id=ALICE)
        assert "only the bot's admins" in reply.text
    assert await env.svc.store.current_seq() == seq
    assert await env.svc.store.count_posts() == 1
    assert len(await env.svc.store.rules()) == 1
    assert "chat:777" in env.api.commands  # the admin menu went to the admin only
    assert "reload" in [c["command"] for c in env.api.commands["chat:777"]]


async def test_reload_reports_skipped_posts_and_stats(make_env):
    env = await make_env()
    env.archive.write("broken.md", "---\ntitle: x\n---\n", dedent=False)
    env.api.send_text(ADMIN, "/reload", user_id=ADMIN)
    found = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "1 skipped" in m.text])
    reply = found[0]
    assert "_posts/broken.md" in reply.text and "no usable date" in reply.text
    # the admins were alerted about the newly skipped file once, not again at the next sync
    alerts = [m for m in env.api.sent_to(ADMIN) if "newly skipped" in m.text]
    assert len(alerts) == 1 and "_posts/broken.md" in alerts[0].text
    again = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "1 skipped" in again.text
    assert len([m for m in env.api.sent_to(ADMIN) if "newly skipped" in m.text]) == 1
    stats = await env.api.ask(ADMIN, "/stats", user_id=ADMIN)
    for part in (
        "Posts: 1",
        "Categories: 1",
        "Database:",
        "MB",
        "Last sync:",
        "Rules: 1 auto-post (/autopost), 0 readers' alerts; 0 paused",
        "Deliveries: 0 pending; in the last 30 days 0 sent, 0 failed",
        "Uptime:",
    ):
        assert part in stats.text, part


async def test_burst_above_threshold_becomes_a_digest(make_env):
    env = await make_env()
    for i in range(5):
        env.archive.post(f"2024-05-0{i + 1}-b{i}.md", f"快讯{i}", f"内容{i}。", date=f"2024-05-0{i + 1}")
    await env.svc.follower.sync()
    await env.settle()
    posts = env.channel_posts()
    assert len(posts) == 1
    assert posts[0].text.startswith("5 new posts") and all(f"快讯{i}" in posts[0].text for i in range(5))
    counts = await env.svc.store.delivery_counts()
    assert counts == {"sent": 5}


async def test_a_digest_of_posts_with_long_tracking_urls_is_sent_in_messages_telegram_takes(make_env):
    # (scraped source links carry long tracking queries: 40 posts' links in one digest message were
    # ~48,000 characters of URLs, which Telegram refuses as "entities too long", every retry; and 80
    # links past its 100 entities lose their formatting)
    env = await make_env()
    tracking = "?utm_source=feed&ref=" + "x" * 1000
    for i in range(40):
        env.archive.post(
            f"2024-05-{i % 28 + 1:02d}-t{i}.md",
            f"长链接快讯{i}",
            f"内容{i}。",
            date=f"2024-05-{i % 28 + 1:02d}",
            extra=f"source: https://src.example/{i}{tracking}",
        )
    await env.svc.follower.sync()
    await env.settle()
    posts = env.channel_posts()
    assert len(posts) > 1 and all(p.text.startswith("40 new posts") for p in posts)
    shown = [
        line.split()[1] for p in posts for line in p.text.splitlines() if line.startswith("• 长链接快讯")
    ]
    assert sorted(int(title.removeprefix("长链接快讯")) for title in shown) == list(range(40))
    assert await env.svc.store.delivery_counts() == {"sent": 40}


async def test_rule_with_thread_posts_into_the_topic_and_filters_by_category(make_env):
    env = await make_env(autopost_chats=[AutopostRule(chat_id=FORUM, thread_id=42, categories=["Tech"])])
    env.archive.post("2024-05-01-t.md", "科技新闻", "芯片。", date="2024-05-01", categories="tech")
    env.archive.post("2024-05-02-m.md", "市场新闻", "股票。", date="2024-05-02", categories="markets")
    await env.svc.follower.sync()
    await env.settle()
    posts = env.channel_posts(FORUM)
    assert first_lines(posts) == ["科技新闻"]
    assert posts[0].thread_id == 42


async def test_429_is_retried_after_the_wait(make_env):
    env = await make_env()
    env.api.fail_next["sendMessage"] = ApiError("Too Many Requests: retry after 1", 429, retry_after=1)
    env.archive.post("2024-05-01-new.md", "限流之后", "内容。", date="2024-05-01")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts()) == ["限流之后"]
    assert loop.time() - started >= 1.0
    assert ("sendMessage", "Too Many Requests: retry after 1") in env.api.errors


async def test_a_flood_wait_in_one_chat_does_not_hold_up_the_others(make_env):
    # Telegram asks the bot to wait before writing to the channel again: its post waits that long (and the
    # channel is not asked again meanwhile), a reader's alert for the same post goes out at once
    env = await make_env()
    await env.api.ask(ALICE, "/subscribe markets", user_id=ALICE)
    before = len(env.api.sent_to(ALICE))
    env.api.set_flood(CHANNEL, 3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    env.archive.post("2024-05-01-new.md", "限流的频道", "内容。", date="2024-05-01", categories="markets")
    await env.svc.follower.sync()
    await env.api.wait_for(lambda: len(env.api.sent_to(ALICE)) > before)
    assert loop.time() - started < 2.5
    assert env.channel_posts() == []
    await env.api.wait_for(lambda: env.channel_posts(), timeout=15)
    assert loop.time() - started >= 3.0
    assert first_lines(env.channel_posts()) == ["限流的频道"]
    await env.settle()
    assert env.api.errors.count(("sendMessage", "Too Many Requests: retry after 3")) == 1
    assert await env.svc.store.delivery_counts() == {"sent": 2}


async def test_a_post_still_being_written_is_pushed_only_once_it_is_complete(make_env):
    env = await make_env()
    path = env.archive.posts / "2024-05-01-half.md"
    head = '---\ntitle: "写到一半"\ndate: 2024-05-01 10:00:00 +0800\ncategories: news\n---\n\n'
    path.write_text(head + "开头", encoding="utf-8")  # written now: the scraper is still at it
    reload = asyncio.ensure_future(env.api.ask(ADMIN, "/reload", user_id=ADMIN))
    await asyncio.sleep(0.5)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("，然后写完了全文。\n")
    reply = await reload
    assert "0 added" in reply.text and "1 file(s) still being written" in reply.text
    await env.settle()
    assert env.channel_posts() == []
    await asyncio.sleep(2.1)  # (it settles)
    await env.svc.follower.sync()
    await env.settle()
    (posted,) = env.channel_posts()
    assert "开头，然后写完了全文。" in posted.text


async def test_new_posts_dated_long_ago_are_indexed_but_not_pushed(make_env):
    # a backfill of old posts, or files moved to new paths: the archive's past is not news
    env = await make_env(deliver_max_age_hours=72)
    await env.api.ask(ALICE, "/subscribe 回填", user_id=ALICE)
    before = len(env.api.sent_to(ALICE))
    now = datetime.now(timezone.utc)
    recent = (now - timedelta(hours=70)).strftime("%Y-%m-%d %H:%M:%S +0000")
    for i in range(3):
        env.archive.post(
            f"2020-01-0{i + 1}-old{i}.md", f"回填旧闻{i}", "回填的内容。", date=f"2020-01-0{i + 1}"
        )
    env.archive.post(f"{recent[:10]}-recent.md", "回填的近闻", "回填的内容。", date=recent)
    reply = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "4 added" in reply.text and "3 new post(s) dated more than 72 h ago" in reply.text
    await env.settle()
    assert first_lines(env.channel_posts()) == ["回填的近闻"]
    assert first_lines(env.api.sent_to(ALICE)[before:]) == ["回填的近闻"]
    page = await search(env.svc.store, "回填旧闻")  # (indexed all the same)
    assert page.total == 3


async def test_a_post_dated_in_the_future_is_pushed_once_its_date_has_come(make_env, monkeypatch):
    import store.jekyll as jekyll

    env = await make_env(deliver_max_age_hours=72)
    soon = datetime.now(timezone.utc) + timedelta(hours=3)
    env.archive.post(
        f"{soon:%Y-%m-%d}-scheduled.md", "定时发布的新闻", "内容。", date=f"{soon:%Y-%m-%d %H:%M:%S} +0000"
    )
    await env.svc.follower.sync()  # (a scheduled sync)
    await env.settle()
    assert env.channel_posts() == []
    (told,) = [m.text for m in env.api.sent_to(ADMIN) if "are held until their date" in m.text]
    assert "-scheduled.md" in told and "time zone" in told
    reply = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)  # held again: the admins were told once
    assert "0 added" in reply.text and "1 post(s) dated in the future: held until their date" in reply.text
    assert len([m for m in env.api.sent_to(ADMIN) if "are held until their date" in m.text]) == 1
    stats = await env.api.ask(ADMIN, "/stats", user_id=ADMIN)
    assert "1 post(s) dated in the future, held until their date" in stats.text
    monkeypatch.setattr(
        jekyll, "now_utc", lambda: soon + timedelta(minutes=5)
    )  # the next sync after its date
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts()) == ["定时发布的新闻"]


async def test_a_post_withdrawn_before_its_chat_could_take_it_is_not_sent(make_env):
    env = await make_env()
    env.api.refusing[CHANNEL] = ApiError("Forbidden: bot was kicked from the channel chat", 403)
    path = env.archive.post("2024-05-01-a.md", "将被撤回", "内容。")
    env.archive.post("2024-05-02-b.md", "照常发布", "内容。")
    await env.svc.follower.sync()
    await env.svc.deliverer.run_once()
    assert await env.svc.store.delivery_counts() == {"pending": 2}
    env.archive.post("2024-05-01-a.md", "将被撤回", "内容。", extra="published: false")
    env.archive.touch(path)
    reply = await env.api.ask(ADMIN, "/reload", user_id=ADMIN)
    assert "1 deleted" in reply.text and "1 post(s) marked published: false" in reply.text
    assert not [m for m in env.api.sent_to(ADMIN) if "skipped" in m.text and "⚠️" in m.text]
    await take_back(env)
    assert first_lines(env.channel_posts()) == ["照常发布"]
    assert await env.svc.store.delivery_counts() == {"sent": 1, "withdrawn": 1}
    stats = await env.api.ask(ADMIN, "/stats", user_id=ADMIN)
    assert "0 failed" in stats.text and "1 withdrawn (their post left the archive first)" in stats.text


async def test_posts_grown_too_old_while_their_chat_refused_the_bot_are_not_sent(make_env, monkeypatch):
    # a channel that removed the bot for days gets, once it takes it back, the news that is still news
    import bot.deliver as deliver

    env = await make_env(deliver_max_age_hours=72)
    env.api.refusing[CHANNEL] = ApiError("Forbidden: bot was kicked from the channel chat", 403)
    now = datetime.now(timezone.utc)
    for name, title, hours in (("older", "三天前的新闻", 71), ("newer", "一小时前的新闻", 1)):
        date = (now - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S +0000")
        env.archive.post(f"{date[:10]}-{name}.md", title, "内容。", date=date)
    await env.svc.follower.sync()
    await env.svc.deliverer.run_once()
    assert await env.svc.store.delivery_counts() == {"pending": 2}  # (both still news when queued)
    later = deliver.now_ts() + 2 * 3600  # two hours later the bot is taken back
    monkeypatch.setattr(deliver, "now_ts", lambda: later)
    await take_back(env)
    assert first_lines(env.channel_posts()) == ["一小时前的新闻"]
    assert await env.svc.store.delivery_counts() == {"sent": 1, "expired": 1}
    stats = await env.api.ask(ADMIN, "/stats", user_id=ADMIN)
    assert "1 too old by the time the chat could take them" in stats.text


async def test_forbidden_pauses_the_rule_and_tells_admins(make_env):
    env = await make_env()
    env.api.fail_next["sendMessage"] = ApiError("Forbidden: bot was kicked from the channel chat", 403)
    env.archive.post("2024-05-01-new.md", "被踢出", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.svc.deliverer.run_once()
    alert = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "paused" in m.text])
    assert str(CHANNEL) in alert[0].text and "kicked" in alert[0].text
    rules = await env.svc.store.rules()
    assert rules[0]["paused"] and env.channel_posts() == []
    # the delivery is kept; resuming the rule sends it
    listing = await env.api.ask(ADMIN, "/autopost", user_id=ADMIN)
    assert "paused" in listing.text
    await take_back(env)
    assert first_lines(env.channel_posts()) == ["被踢出"]


async def test_subscriptions_deliver_matching_posts_only(make_env):
    env = await make_env(autopost_chats=[])
    r = await env.api.ask(ALICE, "/subscribe markets", user_id=ALICE)
    assert "Alert #" in r.text and "cat:markets" in r.text
    r = await env.api.ask(WANG, "/subscribe 芯片", user_id=WANG)
    listing = await env.api.ask(WANG, "/subscriptions", user_id=WANG)
    assert "芯片" in listing.text
    before_alice, before_wang = len(env.api.sent_to(ALICE)), len(env.api.sent_to(WANG))
    env.archive.post("2024-05-01-a.md", "股市收涨", "大盘上涨。", date="2024-05-01", categories="markets")
    env.archive.post(
        "2024-05-02-b.md", "芯片出口", "半导体芯片订单增长。", date="2024-05-02", categories="tech"
    )
    env.archive.post("2024-05-03-c.md", "天气", "晴。", date="2024-05-03", categories="life")
    await env.svc.follower.sync()
    await env.settle()
    alice = first_lines(env.api.sent_to(ALICE)[before_alice:])
    wang = first_lines(env.api.sent_to(WANG)[before_wang:])
    assert alice == ["股市收涨"] and wang == ["芯片出口"]
    r = await env.api.ask(ALICE, "/unsubscribe all", user_id=ALICE)
    assert "1 alert(s) removed" in r.text
    assert await env.svc.store.rules(origin="subscription", owner=ALICE) == []


async def test_autopost_add_list_remove_at_runtime(make_env):
    env = await make_env(autopost_chats=[])
    r = await env.api.ask(ADMIN, f"/autopost add {CHANNEL} cat:world 利率", user_id=ADMIN)
    assert "Rule #" in r.text
    listing = await env.api.ask(ADMIN, "/autopost", user_id=ADMIN)
    assert f"→ {CHANNEL}" in listing.text and "cat:world 利率" in listing.text
    env.archive.post(
        "2024-05-01-a.md", "利率决议", "央行维持利率不变。", date="2024-05-01", categories="world"
    )
    env.archive.post("2024-05-02-b.md", "其他世界新闻", "无关。", date="2024-05-02", categories="world")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts()) == ["利率决议"]
    rule_id = (await env.svc.store.rules())[0]["id"]
    r = await env.api.ask(ADMIN, f"/autopost remove {rule_id}", user_id=ADMIN)
    assert "removed" in r.text and await env.svc.store.rules() == []


async def test_syncs_never_overlap(make_env):
    env = await make_env()
    env.archive.post("2024-05-01-a.md", "并发", "内容。", date="2024-05-01")
    seq = await env.svc.store.current_seq()
    a, b = await asyncio.gather(env.svc.follower.sync(), env.svc.follower.sync())
    assert a is b and a.result.added == 1
    assert await env.svc.store.current_seq() == seq + 1


async def test_failed_git_pull_is_reported_and_sync_continues(make_env):
    env = await make_env(archive_git_pull=True)
    root = env.archive.root
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", "add", "-A"], check=True
    )
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "x"],
        check=True,
    )
    env.archive.post("2024-05-01-a.md", "拉取失败也同步", "内容。", date="2024-05-01")
    env.api.send_text(ADMIN, "/reload", user_id=ADMIN)
    reply = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "added" in m.text])
    assert "git pull failed: There is no tracking information" in reply[0].text and "1 added" in reply[0].text
    alert = await env.api.wait_for(
        lambda: [m for m in env.api.sent_to(ADMIN) if "⚠️ git pull failed" in m.text]
    )
    assert "The sync went on" in alert[0].text
    for _ in range(2):  # the next syncs fail the same way: the admins were told already
        await env.svc.follower.sync()
    assert len([m for m in env.api.sent_to(ADMIN) if "⚠️ git pull failed" in m.text]) == 1


async def test_a_git_pull_stopped_with_the_bot_is_ended_gracefully_and_leaves_no_lock(
    make_env, tmp_path, monkeypatch
):
    """A git that takes its lock and hangs (a slow remote): when the bot stops the sync, git gets SIGTERM
    and removes its lock, as git does; left running, or killed at once, it could leave the lock behind
    and every later pull failed."""
    env = await make_env(archive_git_pull=True)
    fake = tmp_path / "bin"
    fake.mkdir()
    lock = env.archive.root / "index.lock"
    (fake / "git").write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *rev-parse*) echo true; exit 0;;\n"
        f"  *pull*) touch '{lock}'; trap \"rm -f '{lock}'; exit 143\" TERM; sleep 60 & wait $!; exit 0;;\n"
        "esac\n"
    )
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    syncing = asyncio.ensure_future(env.svc.follower.sync())
    for _ in range(200):
        if lock.exists():
            break
        await asyncio.sleep(0.05)
    assert lock.exists()
    await env.svc.follower.stop()
    assert not lock.exists()  # git ended on SIGTERM and removed its lock
    assert (await syncing).error is not None and "stopping" in (await syncing).error
    seq = await env.svc.store.current_seq()
    assert "stopping" in ((await env.svc.follower.sync()).error or "")  # none starts from then on
    assert await env.svc.store.current_seq() == seq


async def test_periodic_sync_picks_up_new_posts_without_reload(make_env):
    env = await make_env(sync_interval=1)
    env.archive.post("2024-05-01-a.md", "定时同步", "内容。", date="2024-05-01")
    found = await env.api.wait_for(lambda: env.channel_posts(), timeout=15)
    assert found[0].text.startswith("定时同步")


async def test_old_search_buttons_expire_after_a_week(make_env):
    env = await make_env()
    reply = await env.api.ask(ALICE, "/search 文章", user_id=ALICE)
    saved = await env.svc.store.save_query(ALICE, "文章")  # the id behind that reply's buttons
    await env.svc.store.conn.execute(
        "UPDATE saved_queries SET used = used - 8 * 86400 WHERE id = ?", (saved,)
    )
    await env.svc.follower.sync()
    assert await env.svc.store.saved_query(ALICE, saved) is None
    qid = env.api.press_data(reply, f"sr:{saved}:1")
    assert "expired" in (await env.api.callback_answer(qid))["text"]


async def test_a_failed_sync_is_reported_to_admins_and_reload(make_env):
    env = await make_env()
    env.archive.root.rename(env.archive.root.with_name("moved-away"))
    env.api.send_text(ADMIN, "/reload", user_id=ADMIN)
    replies = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "sync failed" in m.text])
    assert "archive not found" in replies[0].text
    alert = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "cannot be read" in m.text])
    assert "archive not found" in alert[0].text
    assert await env.svc.store.count_posts() == 1  # what was indexed stays served


async def test_rule_categories_are_kept_as_folded_keys(store):
    rule_id, created = await store.add_rule("1", categories=["ＴＥＣＨ", "tech", "銀行"])
    assert created
    assert (await store.rules())[0]["categories"] == ["tech", "银行"]
    assert await store.add_rule("1", categories=["Tech", "银行"]) == (rule_id, False)


async def test_a_chat_keeps_its_latest_saved_queries_only(store):
    from store.chats import SAVED_PER_CHAT

    other = await store.save_query(2, "另一个聊天")
    ids = [await store.save_query(1, f"查询 {i}") for i in range(SAVED_PER_CHAT + 50)]
    assert [await store.saved_query(1, i) for i in ids[:50]] == [None] * 50  # their buttons: "expired"
    assert await store.saved_query(1, ids[50]) == "查询 50" and await store.saved_query(1, ids[-1])
    assert await store.saved_query(2, other) == "另一个聊天"  # other chats keep theirs
    rows = await store._fetch("SELECT COUNT(*) FROM saved_queries WHERE chat = 1")
    assert rows == [(SAVED_PER_CHAT,)]


async def test_moving_a_chat_merges_what_the_new_chat_has_and_is_done_once(store):
    r1, _ = await store.add_rule("-1", query="a")
    r2, _ = await store.add_rule("-2", query="a")  # the new chat has this rule already
    r3, _ = await store.add_rule("-1", query="b")
    await store.enqueue([(r1, "-1", 0, 10), (r1, "-1", 0, 11), (r2, "-2", 0, 11), (r3, "-1", 0, 12)], 1)
    await store.set_chat_language(-1, "zh")
    query_id = await store.save_query(-1, "芯片")
    assert await store.move_chat(-1, -2) == [r1, r3]
    assert {r["id"]: r["chat"] for r in await store.rules()} == {r2: "-2", r3: "-2"}
    due = await store.due_deliveries()
    assert sorted((d["chat"], d["post"], d["rule"]) for d in due) == [
        ("-2", 10, r2),
        ("-2", 11, r2),
        ("-2", 12, r3),
    ]
    assert await store.delivery_counts() == {"pending": 3, "merged": 1}  # post 11 is sent once
    assert await store.chat_language(-2) == "zh" and await store.saved_query(-2, query_id) == "芯片"
    assert await store.move_chat(-1, -2) == []  # told again (both service messages): nothing to do
    assert await store.current_chat("-1") == "-2"
    r4, created = await store.add_rule("-1", query="c")  # a rule naming the old id goes to the new
    assert created and {r["id"]: r["chat"] for r in await store.rules()}[r4] == "-2"


async def test_finished_deliveries_are_forgotten_after_a_while_and_pending_ones_never(store):
    rule, _ = await store.add_rule("-1")
    await store.enqueue([(rule, "-1", 0, post) for post in range(1, 8)], 1)
    finished = ((1, "sent"), (2, "failed"), (3, "merged"), (4, "sent"), (6, "expired"), (7, "withdrawn"))
    for post, status in finished:
        await store.conn.execute("UPDATE deliveries SET status=? WHERE post=?", (status, post))
    # all but post 4 were finished (or queued: the pending post 5) 40 days ago, post 4 yesterday
    await store.conn.execute("UPDATE deliveries SET updated = updated - 40 * 86400 WHERE post != 4")
    await store.conn.execute("UPDATE deliveries SET updated = updated - 86400 WHERE post = 4")
    assert await store.forget_deliveries(30 * 86400) == 5
    rows = await store._fetch("SELECT post, status FROM deliveries ORDER BY post")
    assert rows == [(4, "sent"), (5, "pending")]


async def test_a_sync_forgets_old_deliveries_but_keeps_those_of_a_long_story_window(make_env):
    from bot.follow import deliveries_kept

    env = await make_env(story_window_hours=24 * 30)  # the longest allowed
    assert deliveries_kept(env.svc.settings) == 31 * 86400  # the story window and a day
    env.archive.post("2024-05-01-a.md", "旧推送", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    store = env.svc.store
    await store.conn.execute("UPDATE deliveries SET updated = updated - 30 * 86400 - 3600")
    await env.svc.follower.sync()
    assert await store.delivery_counts() == {"sent": 1}  # within the 31 days
    await store.conn.execute("UPDATE deliveries SET updated = updated - 86400")
    await env.svc.follower.sync()
    assert await store.delivery_counts() == {}


async def test_rules_paused_before_version_11_keep_why_they_were_paused(tmp_path):
    import sqlite3

    from store.db import Store
    from store.schema import MIGRATIONS, _statements

    path = tmp_path / "v10.sqlite3"
    with sqlite3.connect(path) as conn:
        for migration in MIGRATIONS[:10]:
            for statement in _statements(migration):
                conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', '10')")
        for rule_id, chat, paused in (
            (1, "-1", "filter failed: ValueError: x"),
            (2, "-1", "its query is too costly to check: 0.5 s"),
            (3, "-1", "Forbidden: bot was kicked from the channel chat"),
            (4, "-1", None),
        ):
            conn.execute(
                "INSERT INTO rules (id, chat, query, origin, since_seq, paused, created) VALUES (?,?,?,?,0,?,0)",
                (rule_id, chat, f"q{rule_id}", "admin", paused),
            )
    async with await Store.open(path) as s:
        assert await s.resume_chat_rules("-1") == [3]  # the chat's refusal, not the filters
        assert [r["id"] for r in await s.rules() if r["paused"]] == [1, 2]


async def test_a_channel_hears_a_story_once(make_env):
    from .test_stories import CUT, CUT_REWRITE, RATING_A, RATING_B

    env = await make_env()
    env.archive.post("2024-05-01-cut.md", *CUT, date="2024-05-01 10:00:00 +0800")
    env.archive.post("2024-05-01-rating-a.md", *RATING_A, date="2024-05-01 10:05:00 +0800")
    await env.svc.follower.sync()
    await env.settle()
    # a later sync: a rewrite of the first event, and a look-alike that is another event
    env.archive.post("2024-05-01-cut-rewrite.md", *CUT_REWRITE, date="2024-05-01 10:40:00 +0800")
    env.archive.post("2024-05-01-rating-b.md", *RATING_B, date="2024-05-01 10:45:00 +0800")
    loads, heads = env.svc.store._story_map.loads, env.svc.store._head_map.loads
    await env.svc.follower.sync()
    await env.settle()
    # the sync read the story map and the titles' map again (the first search after it does not wait)
    assert env.svc.store._story_map.loads == loads + 1
    assert env.svc.store._head_map.loads == heads + 1
    page = await search(env.svc.store, "存款准备金")
    assert [h.post.reports for h in page.hits] == [2]
    texts = [m.text for m in env.channel_posts()]
    assert len(texts) == 3
    assert [t.split("\n")[0] for t in texts] == [CUT[0], RATING_A[0], RATING_B[0]]
    counts = await env.svc.store.delivery_counts()
    assert counts == {"sent": 3, "merged": 1}  # the rewrite is in the ledger, not sent
    # nothing more on the next sync
    await env.svc.follower.sync()
    await env.settle()
    assert len(env.channel_posts()) == 3
    await search(env.svc.store, "存款准备金")
    assert env.svc.store._story_map.loads == loads + 1  # the stories did not change
    assert env.svc.store._head_map.loads == heads + 1  # nor did the posts


def write_a_bulk_load(env: Env, monkeypatch, n: int, title: str, body: str = "正文。") -> None:
    """`n` new posts that make a bulk load (its threshold lowered to 10 posts)."""
    import store.sync as sync_module

    monkeypatch.setattr(sync_module, "BULK_LOAD_AT", 10)
    for i in range(n):
        env.archive.post(
            f"2024-05-{i % 28 + 1:02d}-b{i:02d}.md", f"{title}{i}", body.format(i=i), date="2024-05-02"
        )


class HeldMerge:
    """The store's merge_index, made to wait until released: the bot's background merge caught running."""

    def __init__(self, env: Env, monkeypatch):
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.real = env.svc.store.merge_index

        async def held(*args, **kwargs):
            self.started.set()
            await self.release.wait()
            return await self.real(*args, **kwargs)

        monkeypatch.setattr(env.svc.store, "merge_index", held)


async def test_a_large_sync_merges_its_index_in_the_background(make_env, monkeypatch):
    import store.sync as sync_module

    env = await make_env()
    monkeypatch.setattr(sync_module, "BATCH", 5)  # in several batches: several index segments
    monkeypatch.setattr(sync_module, "CHUNK", 5)
    write_a_bulk_load(env, monkeypatch, 30, "合并", "正文{i}：批量。")
    report = await env.svc.follower.sync()
    assert report.result.added == 30
    merging = env.svc.follower.merging
    assert merging is not None  # the sync returned with its posts written and searchable
    await merging
    assert not await env.svc.store.merge_pending()
    env.api.send_text(ALICE, "/search 批量")
    reply = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ALICE) if "合并" in m.text])
    assert "30 found" in reply[0].text


async def test_stats_say_while_the_index_is_being_merged(make_env, monkeypatch):
    env = await make_env()
    write_a_bulk_load(env, monkeypatch, 12, "统计")
    held = HeldMerge(env, monkeypatch)
    await env.svc.follower.sync()
    env.api.send_text(ADMIN, "/stats", user_id=ADMIN)
    stats = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "posts" in m.text.lower()])
    assert "being merged" in stats[-1].text
    held.release.set()
    await env.svc.follower.merging
    assert not await env.svc.store.merge_pending()
    before = len(env.api.sent_to(ADMIN))
    env.api.send_text(ADMIN, "/stats", user_id=ADMIN)
    again = await env.api.wait_for(
        lambda: [m for m in env.api.sent_to(ADMIN)[before:] if "posts" in m.text.lower()]
    )
    assert "being merged" not in again[0].text


async def test_a_sync_pauses_the_index_merge_and_it_goes_on_after(make_env, monkeypatch):
    env = await make_env()
    write_a_bulk_load(env, monkeypatch, 12, "暂停")
    held = HeldMerge(env, monkeypatch)  # a long merge, still running when the next sync starts
    await env.svc.follower.sync()
    await held.started.wait()
    first = env.svc.follower.merging
    monkeypatch.setattr(env.svc.store, "merge_index", held.real)
    env.archive.post("2024-05-20-next.md", "下一次同步", "正文。", date="2024-05-20")
    report = await env.svc.follower.sync()
    assert report.result.added == 1
    assert first.cancelled()  # stopped for the sync, then started again after it
    await env.svc.follower.merging
    assert not await env.svc.store.merge_pending()


GROUP, SUPERGROUP = -4001, -1004001


async def test_a_group_upgraded_while_the_bot_was_away_is_followed_at_the_first_send(make_env):
    env = await make_env(autopost_chats=[AutopostRule(chat_id=GROUP)])
    env.api.add_chat(GROUP, "group", "Readers")
    await env.svc.store.set_chat_language(GROUP, "zh")
    env.api.upgrade_group(GROUP, SUPERGROUP, tell_bot=False)
    env.archive.post("2024-05-01-a.md", "升级之后", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts(SUPERGROUP)) == ["升级之后"]
    assert ("sendMessage", "Bad Request: group chat was upgraded to a supergroup chat") in env.api.errors
    [told] = [m.text for m in env.api.sent_to(ADMIN) if "supergroup" in m.text]
    assert str(GROUP) in told and str(SUPERGROUP) in told and "AUTOPOST_CHATS" in told
    store = env.svc.store
    assert [r["chat"] for r in await store.rules()] == [str(SUPERGROUP)]
    assert await store.chat_language(SUPERGROUP) == "zh"
    assert await store.delivery_counts() == {"sent": 1}
    # AUTOPOST_CHATS still names the old id: after a restart the rule is the same one, posting to the new
    rule_id = (await store.rules())[0]["id"]
    await stop_bot(env.app)
    env.app = await start_bot(env.app.bot_data["settings"])
    assert [(r["id"], r["chat"]) for r in await env.svc.store.rules()] == [(rule_id, str(SUPERGROUP))]
    env.archive.post("2024-05-02-b.md", "重启之后", "内容。", date="2024-05-02")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts(SUPERGROUP)) == ["升级之后", "重启之后"]


async def test_the_upgrade_message_moves_a_groups_rules_before_anything_is_sent(make_env):
    env = await make_env(autopost_chats=[])
    env.api.add_chat(GROUP, "group", "Readers")
    reply = await env.api.ask(ADMIN, f"/autopost add {GROUP} 芯片", user_id=ADMIN)
    assert "Rule #" in reply.text
    env.api.upgrade_group(GROUP, SUPERGROUP)  # both service messages reach the bot

    async def moved():
        return [r["chat"] for r in await env.svc.store.rules()] == [str(SUPERGROUP)]

    for _ in range(100):
        if await moved():
            break
        await asyncio.sleep(0.05)
    assert await moved()
    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "supergroup" in m.text])
    env.archive.post("2024-05-01-a.md", "芯片新闻", "芯片订单。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts(SUPERGROUP)) == ["芯片新闻"]
    assert not [e for e in env.api.errors if "upgraded" in e[1]]  # nothing was sent to the old id
    assert len([m for m in env.api.sent_to(ADMIN) if "supergroup" in m.text]) == 1  # told once
    # an admin naming the old id gets a rule for the new one (the same rule)
    again = await env.api.ask(ADMIN, f"/autopost add {GROUP} 芯片", user_id=ADMIN)
    assert "already" in again.text and str(SUPERGROUP) in again.text


async def test_a_chat_that_took_the_bots_rights_pauses_once_and_resumes_when_they_are_back(make_env):
    env = await make_env()
    env.api.refusing[CHANNEL] = ApiError("Bad Request: not enough rights to send text messages to the chat")
    for i in range(3):
        env.archive.post(f"2024-05-0{i + 1}-r{i}.md", f"无权{i}", "内容。", date=f"2024-05-0{i + 1}")
    await env.svc.follower.sync()
    for _ in range(4):
        await env.svc.deliverer.run_once()
    alerts = [m.text for m in env.api.sent_to(ADMIN) if "⚠️" in m.text]
    assert len(alerts) == 1 and "paused" in alerts[0] and "not enough rights" in alerts[0].lower()
    assert await env.svc.store.delivery_counts() == {"pending": 3}  # kept, not failed
    assert (await env.svc.store.rules())[0]["paused"]
    # the channel's admins give the bot its right to post again: Telegram tells the bot
    del env.api.refusing[CHANNEL]
    env.api.member_change(CHANNEL, "administrator", "administrator", old_rights={"can_post_messages": False})
    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "✅" in m.text])
    await env.settle()
    assert first_lines(env.channel_posts()) == ["无权0", "无权1", "无权2"]
    assert not (await env.svc.store.rules())[0]["paused"]


async def test_removing_the_bot_pauses_the_chats_rules_but_not_a_filters_pause(make_env, monkeypatch):
    env = await make_env(
        autopost_chats=[AutopostRule(chat_id=CHANNEL), AutopostRule(chat_id=CHANNEL, query="x")]
    )
    store = env.svc.store
    by_query = {r["query"]: r["id"] for r in await store.rules()}
    await store.pause_rule(by_query["x"], "filter failed: broken")
    env.api.member_change(CHANNEL, "administrator", "left")

    async def paused():
        return all(r["paused"] for r in await store.rules())

    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "may no longer post" in m.text])
    assert await paused()
    env.api.member_change(CHANNEL, "left", "administrator")
    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "✅" in m.text])
    rules = {r["query"]: r["paused"] for r in await store.rules()}
    assert rules == {"": None, "x": "filter failed: broken"}  # only the chat's own pause is lifted


async def test_rules_naming_a_channel_by_its_username_pause_and_resume_with_it(make_env):
    named = -1007777777777
    env = await make_env(autopost_chats=[AutopostRule(chat_id="@NewsChan")])
    env.api.add_chat(named, "channel", "Named", username="newschan")
    env.api.member_change(named, "administrator", "left")
    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "may no longer post" in m.text])
    assert (await env.svc.store.rules())[0]["paused"]
    env.api.member_change(named, "left", "administrator")
    await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "✅" in m.text])
    assert not (await env.svc.store.rules())[0]["paused"]


async def test_a_deleted_topic_pauses_only_the_rules_posting_into_it(make_env):
    env = await make_env(
        autopost_chats=[AutopostRule(chat_id=FORUM, thread_id=42), AutopostRule(chat_id=FORUM, thread_id=7)]
    )
    env.api.gone_topics.add((FORUM, 42))
    env.archive.post("2024-05-01-a.md", "话题新闻", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    rules = {r["thread"]: r["paused"] for r in await env.svc.store.rules()}
    assert rules[7] is None and "thread not found" in rules[42]
    assert [(p.thread_id, p.text.split("\n")[0]) for p in env.channel_posts(FORUM)] == [(7, "话题新闻")]
    assert not [m for m in env.api.sent_to(ADMIN) if "could not" in m.text.lower()]


async def test_a_reader_who_unblocks_the_bot_gets_alerts_again_and_admins_hear_nothing(make_env):
    env = await make_env(autopost_chats=[])
    await env.api.ask(ALICE, "/subscribe 芯片", user_id=ALICE)
    env.api.refusing[ALICE] = ApiError("Forbidden: bot was blocked by the user", 403)
    env.api.member_change(ALICE, "member", "kicked", by=ALICE)
    env.archive.post("2024-05-01-a.md", "芯片一", "芯片。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    assert (await env.svc.store.rules())[0]["paused"]
    del env.api.refusing[ALICE]
    env.api.member_change(ALICE, "kicked", "member", by=ALICE)

    async def resumed():
        return not (await env.svc.store.rules())[0]["paused"]

    for _ in range(100):
        if await resumed():
            break
        await asyncio.sleep(0.05)
    assert await resumed()
    before = len(env.api.sent_to(ALICE))
    env.archive.post("2024-05-02-b.md", "芯片二", "芯片。", date="2024-05-02")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.api.sent_to(ALICE)[before:]) == ["芯片二"]
    assert env.api.sent_to(ADMIN) == []  # a reader blocking the bot is not the admins' business


async def test_deliveries_wait_out_a_telegram_outage_and_go_out_after_it(make_env):
    from bot.deliver import MAX_ATTEMPTS, MAX_ROUND_SECONDS, ROUND_SECONDS

    env = await make_env()
    env.api.refusing[CHANNEL] = ApiError("Bad Gateway", 502)  # Telegram's servers, for a while
    env.archive.post("2024-05-01-a.md", "断网之后", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    for _ in range(MAX_ATTEMPTS + 3):
        await env.svc.deliverer.run_once()
    assert await env.svc.store.delivery_counts() == {"pending": 1}  # not failed: it waits
    assert env.svc.deliverer.wait == MAX_ROUND_SECONDS  # rounds further apart, up to a cap
    assert not [m for m in env.api.sent_to(ADMIN) if "⚠️" in m.text]
    del env.api.refusing[CHANNEL]
    await env.settle()
    assert first_lines(env.channel_posts()) == ["断网之后"]
    assert env.svc.deliverer.wait == ROUND_SECONDS


async def test_a_post_unsent_after_a_day_of_outage_is_given_up_and_reported(make_env):
    env = await make_env()
    env.api.refusing[CHANNEL] = ApiError("Bad Gateway", 502)
    env.archive.post("2024-05-01-a.md", "太晚了", "内容。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.svc.store.conn.execute("UPDATE deliveries SET created = created - 86400")  # queued a day ago
    await env.svc.deliverer.run_once()
    assert await env.svc.store.delivery_counts() == {"failed": 1}
    [told] = [m.text for m in env.api.sent_to(ADMIN) if "⚠️" in m.text]
    assert "Bad Gateway" in told and str(CHANNEL) in told


async def test_readers_with_the_same_alert_are_matched_once_and_each_gets_the_post(make_env, monkeypatch):
    import bot.follow as follow

    env = await make_env(autopost_chats=[])
    readers = (ALICE, WANG, ADMIN)
    for reader in readers:
        await env.api.ask(reader, "/subscribe 芯片", user_id=reader)
    await env.api.ask(ALICE, "/subscribe 银行", user_id=ALICE)
    queries: list[str] = []
    real = follow.matching

    async def counted(store, text, rowids, tz=None):
        queries.append(text)
        return await real(store, text, rowids, tz)

    monkeypatch.setattr(follow, "matching", counted)
    before = {reader: len(env.api.sent_to(reader)) for reader in readers}
    env.archive.post("2024-05-01-a.md", "芯片出口增长", "半导体芯片。", date="2024-05-01")
    await env.svc.follower.sync()
    await env.settle()
    assert sorted(queries) == ["芯片", "银行"]  # one read per distinct alert, not per reader
    for reader in readers:
        assert first_lines(env.api.sent_to(reader)[before[reader] :]) == ["芯片出口增长"]


async def test_a_chat_gets_a_storys_first_report_whichever_of_its_rules_found_it(make_env):
    from .test_stories import CUT, CUT_REWRITE

    env = await make_env(
        autopost_chats=[
            AutopostRule(chat_id=CHANNEL, categories=["a"]),
            AutopostRule(chat_id=CHANNEL, categories=["b"]),
        ]
    )
    # the later report matches the first rule, the first report the second rule; both come in one sync
    env.archive.post("2024-05-01-cut.md", *CUT, date="2024-05-01 10:00:00 +0800", categories="b")
    env.archive.post("2024-05-01-re.md", *CUT_REWRITE, date="2024-05-01 10:40:00 +0800", categories="a")
    await env.svc.follower.sync()
    await env.settle()
    assert first_lines(env.channel_posts()) == [CUT[0]]
    assert await env.svc.store.delivery_counts() == {"sent": 1, "merged": 1}


@pytest.fixture
def quick_stall_alerts(monkeypatch):
    """The stall watchdog (bot.follow) alerting after 0.4 s without progress instead of 10 minutes."""
    import bot.follow as follow

    monkeypatch.setattr(follow, "STALL_ALERT_AFTER", 0.4)
    monkeypatch.setattr(follow, "STALL_CHECK_EVERY", 0.05)


async def test_a_sync_that_stops_making_progress_is_reported_once_and_the_bot_still_answers(
    make_env, monkeypatch, quick_stall_alerts
):
    import bot.follow as follow
    from store.sync import SyncResult

    env = await make_env()
    stuck = asyncio.Event()

    async def hangs(store, cfg, progress=None, **kw):  # a file the parser never finishes
        progress(250, 1000)
        await stuck.wait()
        return SyncResult()

    monkeypatch.setattr(follow, "sync_archive", hangs)
    syncing = asyncio.ensure_future(env.svc.follower.sync())
    told = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "no file" in m.text])
    assert "250 of 1,000 done" in told[0].text
    reply = await env.api.ask(ALICE, "/search 旧文章", user_id=ALICE)  # searches still answer
    assert "旧文章" in reply.text
    await asyncio.sleep(0.6)
    assert len([m for m in env.api.sent_to(ADMIN) if "no file" in m.text]) == 1  # once
    stuck.set()
    assert (await syncing).result is not None


async def test_a_file_the_parser_never_finishes_is_named_and_skipped_from_the_next_start(
    make_env, monkeypatch, quick_stall_alerts
):
    import threading

    import store.sync as sync_module
    from store.settings import archive_config
    from store.sync import sync_archive

    env = await make_env()
    release = threading.Event()
    parse = sync_module.parse_post

    def stalls_on_one(cfg, rel, raw):  # (a parser that never finishes this file, until the test ends)
        if rel.endswith("-stuck.md"):
            release.wait(30)
        return parse(cfg, rel, raw)

    monkeypatch.setattr(sync_module, "parse_post", stalls_on_one)
    env.archive.post("2024-05-01-stuck.md", "解析不完", "内容。", date="2024-05-01")
    syncing = asyncio.ensure_future(env.svc.follower.sync())
    try:
        told = await env.api.wait_for(lambda: [m for m in env.api.sent_to(ADMIN) if "stuck.md" in m.text])
        assert "_posts/2024-05-01-stuck.md" in told[0].text and "restart" in told[0].text
        # the bot restarts: its first sync skips the file (it would stall again) and does the others
        env.archive.post("2024-05-02-next.md", "下一篇", "内容。", date="2024-05-02")
        again = await sync_archive(env.svc.store, archive_config(env.svc.settings), settle=0)
        assert again.added == 1 and [e["path"] for e in again.errors] == ["_posts/2024-05-01-stuck.md"]
        assert "did not finish" in again.errors[0]["reason"]
    finally:
        release.set()
    assert (await syncing).result is not None


async def test_every_post_failing_the_same_way_is_one_admin_alert(make_env):
    env = await make_env(digest_threshold=10)
    env.api.refusing[CHANNEL] = ApiError("Bad Request: can't parse entities: unsupported start tag")
    for i in range(3):
        env.archive.post(f"2024-05-0{i + 1}-f{i}.md", f"坏模板{i}", "内容。", date=f"2024-05-0{i + 1}")
    await env.svc.follower.sync()
    await env.settle()
    assert await env.svc.store.delivery_counts() == {"failed": 3}  # each post failed, none waits
    alerts = [m.text for m in env.api.sent_to(ADMIN) if "⚠️" in m.text]
    assert len(alerts) == 1 and "can't parse entities" in alerts[0].lower()
