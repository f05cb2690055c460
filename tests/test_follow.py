"""Following the archive end to end: /reload, /stats, auto-posting, digests, topics, 429s, Forbidden,
subscriptions, overlapping syncs, git pull failures."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from store.search import search
from store.settings import AutopostRule, Settings

from .botapi import ApiError, FakeBotAPI, start_bot, stop_bot
from .test_bot import ALICE, TOKEN, WANG

ADMIN = 777
CHANNEL = -1009999999999
FORUM = -1008888888888


class Env:
    def __init__(self, api, app, archive):
        self.api, self.app, self.archive = api, app, archive

    @property
    def svc(self):
        return self.app.bot_data["svc"]

    def channel_posts(self, chat=CHANNEL):
        return self.api.sent_to(chat)

    async def settle(self):
        """Wait until no delivery is pending (and the sender has finished its round)."""

        async def idle():
            counts = await self.svc.store.delivery_counts()
            return counts.get("pending", 0) + counts.get("sending", 0) == 0

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
        "Deliveries: 0 pending, 0 failed",
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


async def test_rule_with_thread_posts_into_the_topic_and_filters_by_category(make_env):
    env = await make_env(autopost_chats=[AutopostRule(chat_id=FORUM, thread_id=42, categories=["Tech"])])
    env.archive.post("2024-05-01-t.md", "科技新闻", "芯片。", date="2024-05-01", categories="tech")
    env.archive.post("2024-05-02-m.md", "市场新闻", "股票。", date="2024-05-02", categories="markets")
    await env.svc.follower.sync()
    await env.settle()
    posts = env.channel_posts(FORUM)
    assert [p.text.split("\n")[0] for p in posts] == ["科技新闻"]
    assert posts[0].thread_id == 42


async def test_429_is_retried_after_the_wait(make_env):
    env = await make_env()
    env.api.fail_next["sendMessage"] = ApiError("Too Many Requests: retry after 1", 429, retry_after=1)
    env.archive.post("2024-05-01-new.md", "限流之后", "内容。", date="2024-05-01")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await env.svc.follower.sync()
    await env.settle()
    assert [p.text.split("\n")[0] for p in env.channel_posts()] == ["限流之后"]
    assert loop.time() - started >= 1.0
    assert ("sendMessage", "Too Many Requests: retry after 1") in env.api.errors


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
    await env.api.ask(ADMIN, f"/autopost resume {rules[0]['id']}", user_id=ADMIN)
    await env.settle()
    assert [p.text.split("\n")[0] for p in env.channel_posts()] == ["被踢出"]


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
    alice = [m.text.split("\n")[0] for m in env.api.sent_to(ALICE)[before_alice:]]
    wang = [m.text.split("\n")[0] for m in env.api.sent_to(WANG)[before_wang:]]
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
    assert [p.text.split("\n")[0] for p in env.channel_posts()] == ["利率决议"]
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
    loads = env.svc.store._story_map.loads
    await env.svc.follower.sync()
    await env.settle()
    # the sync read the story map again (the first search after it does not wait for that)
    assert env.svc.store._story_map.loads == loads + 1
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
