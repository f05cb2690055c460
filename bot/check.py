"""`newsbot check`: is this setup ready to run? One line per item, `ok` or `FAIL`, and an exit code.

Settings are loaded by the CLI before this runs (invalid settings end there, exit 2). Never prints the
token: Telegram's errors are redacted.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from store.db import SCHEMA_VERSION, Store, database_problem
from store.jekyll import ArchiveError, Walk, dated_name, iter_post_files
from store.settings import Settings, archive_config
from store.text import escaped_controls

from .app import ConfigError, check_token
from .deliver import chat_ref
from .instance import InstanceLock
from .logs import redact
from .serve import PATH


class Report:
    def __init__(self, out: Callable[[str], None]):
        self._out, self.failed = out, 0

    def out(self, line: str) -> None:
        """One line, whatever a chat's title or a remote error holds (control characters escaped)."""
        self._out(escaped_controls(line))

    def ok(self, what: str, detail: str) -> None:
        self.out(f"ok    {what}: {detail}")

    def warn(self, what: str, detail: str) -> None:
        """Something readers notice, which the bot runs with (not a failure: the exit code stays 0)."""
        self.out(f"warn  {what}: {detail}")

    def fail(self, what: str, detail: str) -> None:
        self.failed += 1
        self.out(f"FAIL  {what}: {detail}")


async def run_check(settings: Settings, out: Callable[[str], None], webhook: bool = False) -> int:
    """0 when every item is ok, 1 otherwise."""
    report = Report(out)
    report.ok("settings", "valid")
    _check_archive(settings, report)
    chats = await _check_database(settings, report)
    await _check_telegram(settings, report, chats, webhook)
    return 1 if report.failed else 0


def _check_archive(settings: Settings, report: Report) -> None:
    try:
        cfg = archive_config(settings)
    except ArchiveError as exc:
        report.fail("archive", str(exc))
        return
    walk = Walk()
    folders: set[str] = set()  # the site's _posts folders that hold posts (news/_posts…)
    files = 0
    undated: list[str] = []  # post files Jekyll itself does not publish (no YYYY-MM-DD- name)
    for rel, _, _ in iter_post_files(cfg, walk):
        files += 1
        folders.add(rel.split("/_posts/", 1)[0] if "/_posts/" in rel else "")
        if not dated_name(rel):
            undated.append(rel)
    config = "_config.yml found" if (cfg.root / "_config.yml").is_file() else "no _config.yml"
    # dates without offset are read in it (and held posts wait for it): a wrong zone shifts every post
    if settings.timezone:
        zone = f"dates without offset in {cfg.timezone} (TIMEZONE)"
    elif cfg.timezone != "UTC":
        zone = f"dates without offset in {cfg.timezone} (_config.yml)"
    else:
        zone = "dates without offset in UTC (no other time zone in _config.yml or TIMEZONE)"
    where = f" in {len(folders)} _posts folders" if len(folders) > 1 else ""
    detail = f"{cfg.root} ({files:,} post files{where}, {config}, {zone}"
    detail += f", {len(walk.problems)} skipped: newsbot sync lists them)" if walk.problems else ")"
    if files:
        report.ok("archive", detail)
    else:
        report.fail("archive", detail + ": no posts to serve")
    if undated:
        # newsbot serves them (dated by their front matter): sites with a plugin that drops Jekyll's rule
        # (jekyll-theme-chirpy's no_date.rb) publish them, plain Jekyll skips them without a word
        examples = ", ".join(sorted(undated)[:3])
        report.warn(
            "post names",
            f"{len(undated):,} post file{'s' if len(undated) > 1 else ''} without YYYY-MM-DD- in the name"
            f" ({examples}): Jekyll publishes such posts only with a plugin, else their archive links"
            " lead nowhere (rename them)",
        )


async def _check_database(settings: Settings, report: Report) -> list[str]:
    """Checks the database is usable and writable; returns the chats its rules post to."""
    path = settings.database_path  # (`~` expanded by the settings)
    if not path.exists():
        parent = path.resolve().parent
        if parent.is_dir() and _writable(parent):
            report.ok("database", f"{path} does not exist yet (the first sync creates it)")
        else:
            report.fail("database", f"{path} does not exist and its folder {parent} is not writable")
        return []
    try:
        store = await Store.open(path)
    except sqlite3.Error as exc:
        report.fail("database", f"{path}: {database_problem(exc)}")
        return []
    try:
        try:
            await store.conn.execute("BEGIN IMMEDIATE")
            await store.conn.execute("ROLLBACK")
            writable = "writable"
        except sqlite3.Error as exc:
            writable = ""
            report.fail("database", f"{path}: not writable ({database_problem(exc)})")
        stats = await store.stats()
        rules = [r for r in await store.rules() if r["origin"] != "subscription"]
        shared, examples = await store.shared_archive_urls()
    finally:
        await store.close()
    if writable:
        running = InstanceLock(path).holder()
        report.ok(
            "database",
            f"{path} (schema {SCHEMA_VERSION}, {stats['db_bytes'] / 2**20:.1f} MB, {stats['posts']:,} posts,"
            f" {writable}; "
            + (f"a bot is running on it: pid {running})" if running else "no bot running on it)"),
        )
    if shared:
        report.warn(
            "archive URLs",
            (f"{shared:,} archive URLs are each" if shared > 1 else "1 archive URL is")
            + " given to several posts (Jekyll publishes one page at each"
            " and reports a conflict; the other posts' links lead to it: change their file names or"
            " permalink): "
            + "; ".join(f"{url} <- {', '.join(paths)}" for url, paths in examples)
            + ("; …" if shared > len(examples) else ""),
        )
    for rule in rules:  # (an auto-post rule paused: why a chat gets nothing)
        if rule["paused"]:
            report.fail(
                f"auto-post rule #{rule['id']} to {rule['chat']}",
                f"paused: {rule['paused']} (it resumes when the bot may post there again, or with"
                f" /autopost resume {rule['id']})",
            )
    return sorted({r["chat"] for r in rules})


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


async def _check_telegram(settings: Settings, report: Report, chats: list[str], webhook: bool) -> None:
    try:
        token = check_token(settings)
    except ConfigError as exc:
        report.fail("telegram", str(exc))
        return
    bot = Bot(token, base_url=settings.telegram_base_url)
    try:
        try:
            await asyncio.wait_for(bot.initialize(), 30)
        except InvalidToken:
            report.fail("telegram", f"the token was rejected ({settings.telegram_base_url})")
            return
        except (TelegramError, asyncio.TimeoutError, OSError) as exc:
            report.fail("telegram", redact(f"cannot reach {settings.telegram_base_url}: {exc}", token))
            return
        report.ok("telegram", f"token accepted: @{bot.username}")
        for admin in settings.admin_ids:
            await _check_chat(
                bot, token, report, f"admin {admin}", admin, "the admin must open a chat with the bot"
            )
        targets = {str(r.chat_id) for r in settings.autopost_chats} | set(chats)
        for chat in sorted(targets):
            ref = chat_ref(chat)
            await _check_chat(
                bot,
                token,
                report,
                f"auto-post chat {chat}",
                ref,
                "add the bot to it (as an admin of a channel)",
            )
        if webhook:
            await _check_webhook(bot, settings, report)
    finally:
        try:
            await bot.shutdown()
        except Exception:  # nothing to shut down after a failed start
            pass


async def _check_chat(bot: Bot, token: str, report: Report, what: str, chat: int | str, hint: str) -> None:
    try:
        found = await bot.get_chat(chat)
    except TelegramError as exc:
        report.fail(what, redact(f"{exc} ({hint})", token))
        return
    except Exception as exc:  # an answer this version of PTB cannot read: say so, check the rest
        report.fail(what, redact(f"unexpected answer: {type(exc).__name__}: {exc}", token))
        return
    name = found.title or found.username or found.first_name or ""
    report.ok(what, f"reachable ({found.type}{', ' + name if name else ''})")


async def _check_webhook(bot: Bot, settings: Settings, report: Report) -> None:
    if not settings.webhook_url:
        report.fail("webhook", "WEBHOOK_URL is not set")
        return
    expected = settings.webhook_url.rstrip("/") + PATH
    info = await bot.get_webhook_info()
    secret = (
        "WEBHOOK_SECRET set"
        if settings.webhook_secret and settings.webhook_secret.get_secret_value()
        else "no WEBHOOK_SECRET: a random one is made at each start"
    )
    if info.url and info.url != expected:
        report.fail("webhook", f"Telegram posts to {info.url}, this setup serves {expected}")
    elif info.last_error_message:
        report.fail("webhook", f"{expected}: Telegram's last error: {info.last_error_message}")
    else:
        state = "set" if info.url else "not set yet (newsbot run --webhook sets it)"
        report.ok("webhook", f"{expected} {state}; {info.pending_update_count} pending; {secret}")
