"""`newsbot run` as a real process against the loopback Bot API server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from .botapi import FakeBotAPI
from .test_bot import ALICE, TOKEN


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "TELEGRAM_", "ARCHIVE_", "DATABASE_"))
    }
    env.update(extra)
    return env


async def _spawn_bot(tmp_path, api, *args, stdout=asyncio.subprocess.PIPE, **settings):
    """`newsbot run ARGS` talking to `api`, with these settings on top of the token and base URL."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        *args,
        cwd=tmp_path,
        env=_env(BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api.base_url, **settings),
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )


async def _api_with_alice() -> FakeBotAPI:
    """A started fake Bot API server that knows ALICE's private chat."""
    api = FakeBotAPI(TOKEN)
    await api.start()
    api.add_chat(ALICE)
    return api


async def test_run_polls_answers_and_never_prints_the_token(tmp_path, archive):
    archive.post("2024-05-01-a.md", "运行测试", "正文内容。", categories="demo")
    api = await _api_with_alice()
    proc = await _spawn_bot(
        tmp_path, api, ARCHIVE_DIR=str(archive.root), DATABASE_PATH=str(tmp_path / "run.sqlite3")
    )
    try:
        reply = await api.ask_until(ALICE, "/latest", "运行测试")
        assert "运行测试" in reply.text
        # the store was synced at start and the command menus were set
        assert {"", "en", "zh"} <= set(api.commands)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = (out + err).decode()
    assert "sync: added 1" in logs
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs


def test_run_refuses_a_missing_or_malformed_token(tmp_path):
    for value, expected in (("", "BOT_TOKEN is not set"), ("not-a-token", "BOT_TOKEN is malformed")):
        r = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=_env(BOT_TOKEN=value),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2
        assert r.stderr.strip().count("\n") == 0 and expected in r.stderr
        assert "not-a-token" not in r.stderr + r.stdout


def test_webhook_mode_needs_a_url(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--webhook"],
        cwd=tmp_path,
        env=_env(BOT_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "WEBHOOK_URL" in r.stderr and TOKEN not in r.stderr


async def _webhook_bot(tmp_path, archive, port: int | None = None, **settings):
    """`newsbot run --webhook` on `port` (by default a free one), talking to a new test server: (api,
    proc, update URL)."""
    import socket

    archive.post("2024-05-01-a.md", "网络钩子", "正文内容。", categories="demo")
    api = await _api_with_alice()
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = await _spawn_bot(
        tmp_path,
        api,
        "--webhook",
        ARCHIVE_DIR=str(archive.root),
        DATABASE_PATH=str(tmp_path / "hook.sqlite3"),
        WEBHOOK_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_PORT=str(port),
        **settings,
    )
    return api, proc, f"http://127.0.0.1:{port}/telegram"


async def _until_listening(http, url: str) -> None:
    """The webhook server may start listening just after setWebhook."""
    import aiohttp

    for _ in range(100):
        try:
            async with http.get(url.rsplit("/", 1)[0] + "/"):
                return
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.1)


async def test_webhook_mode_serves_updates_with_the_secret(tmp_path, archive):
    import aiohttp

    api, proc, url = await _webhook_bot(
        tmp_path, archive, WEBHOOK_LISTEN="127.0.0.1", WEBHOOK_SECRET="s3cret-token"
    )
    try:
        hook = await api.wait_for(lambda: api.webhook, timeout=30)
        assert hook["url"] == url and hook["secret_token"] == "s3cret-token"
        async with aiohttp.ClientSession() as http:
            await _until_listening(http, url)
            update = api.make_text_update(ALICE, "/help")
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 403
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
            ) as r:
                assert r.status == 200
        reply = await api.next_message(ALICE, update["message"]["message_id"])
        assert "/search" in reply.text  # the help, answered through the webhook
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert TOKEN not in (out + err).decode()


class _Channel:
    """A channel with an auto-post rule, and `newsbot run` processes started against it."""

    admin, channel = 777, -1009999999999

    def __init__(self, tmp_path, archive):
        import json

        archive.post("2024-01-01-old.md", "旧文章", "已经在档案里。", date="2024-01-01")
        self.tmp_path, self.archive = tmp_path, archive
        self.api = FakeBotAPI(TOKEN)
        self.settings = dict(
            ARCHIVE_DIR=str(archive.root),
            DATABASE_PATH=str(tmp_path / "ledger.sqlite3"),
            ADMIN_IDS=str(self.admin),
            SYNC_INTERVAL="0",
            DIGEST_THRESHOLD="100",
            AUTOPOST_CHATS=json.dumps([{"chat_id": self.channel}]),
            DELIVER_MAX_AGE_HOURS="0",  # (its posts are dated 2024)
        )

    async def open(self) -> FakeBotAPI:
        await self.api.start()
        self.api.add_chat(self.admin)
        self.api.add_chat(self.channel, "channel", "News")
        return self.api

    async def start(self):
        """A bot process, once its first sync (in the background) and its rules are done."""
        api = self.api
        api.commands.clear()
        proc = await _spawn_bot(self.tmp_path, api, stdout=asyncio.subprocess.DEVNULL, **self.settings)
        await api.wait_for(lambda: "chat:777" in api.commands, timeout=60)
        for _ in range(150):
            stats = await api.ask(self.admin, "/stats", user_id=self.admin)
            if "Indexing" not in stats.text and "索引" not in stats.text:
                break
            await asyncio.sleep(0.2)
        return proc

    def new_posts(self, n: int = 8) -> list[str]:
        titles = [f"快讯第{i}条" for i in range(n)]
        for i, title in enumerate(titles):
            self.archive.post(f"2024-05-0{i + 1}-n{i}.md", title, f"内容{i}。", date=f"2024-05-0{i + 1}")
        return titles

    def delivered(self) -> list[str]:
        return [m.text.split("\n")[0] for m in self.api.sent_to(self.channel)]


async def test_killed_mid_burst_then_restarted_delivers_every_post_exactly_once(tmp_path, archive):
    env = _Channel(tmp_path, archive)
    api, channel = await env.open(), env.channel
    first = await env.start()
    try:
        titles = env.new_posts()
        api.hang_after[channel] = 3  # three cards go through, the fourth send never returns
        api.send_text(env.admin, "/reload", user_id=env.admin)
        await asyncio.wait_for(api.hanging.wait(), 60)
        first.kill()  # kill -9 while a send's outcome is unknown
        await first.wait()
        assert len(api.sent_to(channel)) == 3
        del api.hang_after[channel]
        second = await env.start()
        try:
            await api.wait_for(lambda: len(api.sent_to(channel)) >= 8, timeout=60)
            await asyncio.sleep(1.0)  # nothing more arrives
            assert sorted(env.delivered()) == sorted(titles), env.delivered()
        finally:
            second.send_signal(signal.SIGINT)
            await asyncio.wait_for(second.communicate(), 30)
    finally:
        if first.returncode is None:
            first.kill()
        await api.stop()


async def test_run_with_an_unreadable_archive_and_no_posts_exits_with_a_clear_message(tmp_path):
    api = FakeBotAPI(TOKEN)
    await api.start()
    try:
        proc = await _spawn_bot(
            tmp_path,
            api,
            ARCHIVE_DIR=str(tmp_path / "missing"),
            DATABASE_PATH=str(tmp_path / "empty.sqlite3"),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await api.stop()
    text = (out + err).decode()
    assert proc.returncode == 2, text[-2000:]
    assert "archive not found" in text and "Traceback" not in text and TOKEN not in text


async def test_webhook_without_a_secret_uses_a_random_one_and_refuses_updates_without_it(tmp_path, archive):
    import aiohttp

    api, proc, url = await _webhook_bot(tmp_path, archive)
    try:
        hook = await api.wait_for(lambda: api.webhook, timeout=30)
        secret = hook["secret_token"]
        assert len(secret) >= 32
        async with aiohttp.ClientSession() as http:
            await _until_listening(http, url)
            health_url = url.rsplit("/", 1)[0] + "/healthz"
            for _ in range(100):  # the first sync runs in the background
                async with http.get(health_url) as r:
                    health = await r.json()
                if not health["indexing"]:
                    break
                await asyncio.sleep(0.1)
            assert r.status == 200 and health["ok"] and health["database"] == "ok" and health["posts"] == 1
            assert 0 <= health["last_sync_age"] < 60
            # an update "from" anyone, without the secret or with a wrong one, is refused
            update = api.make_text_update(ALICE, "/help")
            for headers in (
                {},
                {"X-Telegram-Bot-Api-Secret-Token": ""},
                {"X-Telegram-Bot-Api-Secret-Token": "x"},
            ):
                async with http.post(url, json=update, headers=headers) as r:
                    assert r.status == 403
            good = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(url, data=b"{not json", headers=good) as r:
                assert r.status == 400
            async with http.post(url, json=update, headers=good) as r:
                assert r.status == 200
        reply = await api.next_message(ALICE, update["message"]["message_id"])
        assert "/search" in reply.text  # the help, answered through the webhook
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert proc.returncode == 0
    assert TOKEN not in (out + err).decode() and secret not in (out + err).decode()


async def _start_failure(tmp_path, api_base: str, **settings) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=_env(BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api_base, **settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    return proc.returncode, err.decode()


async def test_start_up_problems_are_one_line_without_the_token_and_say_whether_to_start_again(
    tmp_path, archive
):
    import socket

    archive.post("2024-05-01-a.md", "启动", "正文。")
    other = FakeBotAPI("987654321:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJi")  # knows another token: 401
    await other.start()
    api = FakeBotAPI(TOKEN)
    await api.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    folder = tmp_path / "a-folder.sqlite3"
    folder.mkdir()
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database" * 100)
    good = dict(ARCHIVE_DIR=str(archive.root), DATABASE_PATH=str(tmp_path / "ok.sqlite3"))
    # exit code 2: the setup must change (systemd does not start it again); 75: it may start later
    cases = [
        (other.base_url, good, "rejected the bot token", 2),
        ("not a url", good, "TELEGRAM_BASE_URL", 2),
        (other.base_url.replace("http://", "https://"), good, "cannot reach the Bot API", 75),
        (f"http://127.0.0.1:{closed_port}/bot", good, "cannot reach the Bot API", 75),
        (other.base_url, {**good, "AUTOPOST_CHATS": "[{"}, "AUTOPOST_CHATS", 2),
        (other.base_url, {**good, "ADMIN_IDS": "[1,"}, "ADMIN_IDS", 2),
        (api.base_url, {**good, "DATABASE_PATH": str(folder)}, "database", 2),
        (api.base_url, {**good, "DATABASE_PATH": str(corrupt)}, "not a database", 2),
    ]
    try:
        for base, settings, expected, exit_code in cases:
            code, err = await _start_failure(tmp_path, base, **settings)
            lines = [line for line in err.splitlines() if line.startswith("newsbot:")]
            assert code == exit_code and len(lines) == 1 and expected in lines[0], (base, settings, err)
            assert "Traceback" not in err, err
    finally:
        await other.stop()
        await api.stop()


async def test_json_logs_from_a_real_run(tmp_path, archive):
    import json

    archive.post("2024-05-01-a.md", "日志", "正文内容。")
    api = await _api_with_alice()
    proc = await _spawn_bot(
        tmp_path, api, ARCHIVE_DIR=str(archive.root), DATABASE_PATH=str(tmp_path / "j.sqlite3"),
        LOG_FORMAT="json", LOG_LEVEL="debug",
    )  # fmt: skip
    try:
        assert "日志" in (await api.ask_until(ALICE, "/latest", "日志")).text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e["level"] == "DEBUG" for e in entries) and any("sync" in e["message"] for e in entries)
    assert any(e["message"].startswith("newsbot ") and "starting (polling)" in e["message"] for e in entries)
    assert TOKEN not in (out + err).decode() and TOKEN.split(":")[1] not in (out + err).decode()


async def test_sigterm_mid_burst_finishes_the_send_in_flight_and_loses_nothing(tmp_path, archive):
    import time

    env = _Channel(tmp_path, archive)
    api, channel = await env.open(), env.channel
    first = await env.start()
    try:
        titles = env.new_posts()
        api.slow[channel] = 0.6  # each card takes a while to go out
        api.send_text(env.admin, "/reload", user_id=env.admin)
        await api.wait_for(lambda: len(api.sent_to(channel)) >= 2, timeout=60)
        first.send_signal(signal.SIGTERM)  # a third card is on its way
        t = time.monotonic()
        _, err = await asyncio.wait_for(first.communicate(), 30)
        assert first.returncode == 0 and time.monotonic() - t < 10, err.decode()[-1500:]
        assert 3 <= len(api.sent_to(channel)) < 8  # the send in flight finished; no new one started
        del api.slow[channel]
        second = await env.start()
        try:
            await api.wait_for(lambda: len(api.sent_to(channel)) >= 8, timeout=60)
            await asyncio.sleep(1.0)  # nothing more arrives
            assert sorted(env.delivered()) == sorted(titles), env.delivered()  # each exactly once
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.communicate(), 30)
    finally:
        if first.returncode is None:
            first.kill()
        await api.stop()


async def test_a_second_sigterm_exits_at_once(tmp_path, archive):
    archive.post("2024-05-01-a.md", "第二次信号", "正文。")
    api = await _api_with_alice()
    proc = await _spawn_bot(
        tmp_path, api, ARCHIVE_DIR=str(archive.root), DATABASE_PATH=str(tmp_path / "s.sqlite3")
    )
    try:
        await api.ask_until(ALICE, "/latest", "第二次信号")
        api.slow[ALICE] = 20  # a reply that takes long to send: the first SIGTERM waits for it
        api.send_text(ALICE, "/help")
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
        assert proc.returncode != 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await api.stop()


async def test_a_second_bot_on_the_same_database_refuses_to_start_and_a_killed_one_never_blocks(
    tmp_path, archive
):
    archive.post("2024-05-01-a.md", "一个就够", "正文内容。", categories="demo")
    api = await _api_with_alice()
    settings = dict(ARCHIVE_DIR=str(archive.root), DATABASE_PATH=str(tmp_path / "one.sqlite3"))
    procs = [await _spawn_bot(tmp_path, api, **settings)]
    try:
        await api.ask_until(ALICE, "/latest", "一个就够")
        procs.append(await _spawn_bot(tmp_path, api, **settings))
        _, err = await asyncio.wait_for(procs[1].communicate(), 60)
        assert procs[1].returncode == 2
        # (the log's first line names the version; the problem is one line of its own)
        problem = [line for line in err.decode().splitlines() if line.startswith("newsbot:")]
        assert len(problem) == 1 and f"another newsbot (pid {procs[0].pid})" in problem[0], err.decode()
        assert "Traceback" not in err.decode()
        procs[0].kill()  # SIGKILL: no clean-up at all; the lock goes with the process
        await procs[0].wait()
        procs.append(await _spawn_bot(tmp_path, api, **settings))
        before = len(api.sent_to(ALICE))
        reply = await api.ask_until(ALICE, "/latest", "一个就够")
        assert "一个就够" in reply.text and len(api.sent_to(ALICE)) > before
        procs[2].send_signal(signal.SIGINT)
        await asyncio.wait_for(procs[2].communicate(), 30)
        assert procs[2].returncode == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await api.stop()


async def test_a_webhook_port_held_by_another_program_is_a_problem_that_may_go_away(tmp_path, archive):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        api, proc, _ = await _webhook_bot(
            tmp_path, archive, port=holder.getsockname()[1], WEBHOOK_LISTEN="127.0.0.1"
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await api.stop()
    lines = [line for line in err.decode().splitlines() if line.startswith("newsbot:")]
    assert proc.returncode == 75 and len(lines) == 1, err.decode()[-2000:]
    assert "in use" in lines[0] and "Traceback" not in err.decode()
