"""The installed form: a wheel built from the repo, installed with its dependencies into a fresh
virtualenv, run from outside the checkout. `.ci/run` builds and installs it and points
NEWSBOT_INSTALLED at that virtualenv's `newsbot`; without it these tests are skipped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from .botapi import FakeBotAPI
from .conftest import REPO
from .test_bot import ALICE, TOKEN

NEWSBOT = os.environ.get("NEWSBOT_INSTALLED")
pytestmark = pytest.mark.skipif(not NEWSBOT, reason="NEWSBOT_INSTALLED (an installed wheel) not given")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "TELEGRAM_", "ARCHIVE_", "DATABASE_", "PYTHON"))
    }
    env.update(extra)
    return env


def test_the_installed_cli_works_from_any_folder(tmp_path: Path):
    assert NEWSBOT and not Path(NEWSBOT).resolve().is_relative_to(REPO)
    db = str(tmp_path / "i.sqlite3")
    demo = str(REPO / "examples" / "demo")
    for args, expect in [
        (["sync", "--archive", demo, "--db", db], "added 19"),
        (["search", "汇率", "--db", db], "found"),
        (["latest", "--limit", "2", "--db", db], "20"),
        (["categories", "--db", db], "categories"),
        (["show", "2026-11-23-rates-en", "--db", db], "Yen"),
        (["backup", str(tmp_path / "copy.sqlite3"), "--db", db], "backed up"),
        (["search", "汇率", "--db", str(tmp_path / "copy.sqlite3")], "found"),
    ]:
        r = subprocess.run(
            [NEWSBOT, *args], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0 and expect in r.stdout, (args, r.stdout, r.stderr)
    # check runs from the wheel too (no token here: that item fails, the others are reported)
    r = subprocess.run(
        [NEWSBOT, "check", "--archive", demo, "--db", db],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1 and "ok    archive" in r.stdout, r.stdout + r.stderr
    assert "FAIL  telegram: BOT_TOKEN is not set" in r.stdout
    probe = subprocess.run(
        [str(Path(NEWSBOT).with_name("python")), "-c", "import bot, bot.i18n; print(bot.__file__, bot.i18n.I18n().languages)"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "site-packages" in probe.stdout and "['en', 'zh']" in probe.stdout, probe.stderr


async def test_the_installed_bot_answers(tmp_path: Path, archive):
    archive.post("2024-05-01-a.md", "安装后的机器人", "正文内容。", categories="demo")
    api = FakeBotAPI(TOKEN)
    await api.start()
    api.add_chat(ALICE)
    assert NEWSBOT
    proc = await asyncio.create_subprocess_exec(
        NEWSBOT,
        "run",
        cwd=tmp_path,
        env=_env(
            BOT_TOKEN=TOKEN,
            TELEGRAM_BASE_URL=api.base_url,
            ARCHIVE_DIR=str(archive.root),
            DATABASE_PATH=str(tmp_path / "bot.sqlite3"),
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        reply = await api.ask_until(ALICE, "/latest", "安装后的机器人")
        assert "安装后的机器人" in reply.text
        reply = await api.ask(ALICE, "/help")
        assert reply.text and "help.text" not in reply.text  # the catalogs were found
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert TOKEN not in (out + err).decode()
