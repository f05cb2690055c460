"""Wiring: settings → store → python-telegram-bot Application; `newsbot run`."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import secrets
import sqlite3
import sys

from telegram import BotCommand, BotCommandScopeChat, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, Defaults

from store.db import Store, database_problem
from store.jekyll import ArchiveError
from store.search import warm_up
from store.settings import Settings, archive_config

from . import version
from .deliver import Deliverer
from .flood import ChatFloodLimiter, FairUpdates
from .follow import Follower, sync_settings_rules
from .handlers import ADMIN_COMMANDS, USER_COMMANDS, register
from .handlers.guard import GROUP_ANSWERS_PER_MINUTE, INLINE_PER_UPDATE, SEARCH_LIMITS_PER_MINUTE, Flood
from .i18n import I18n
from .instance import AlreadyRunning, InstanceLock
from .logs import redact, setup_logging
from .serve import serve
from .services import Services

log = logging.getLogger("newsbot")
TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")
HTTP_POOL = 32
CONCURRENT_UPDATES = 16
COMMANDS = tuple(USER_COMMANDS)


class ConfigError(Exception):
    pass


def check_token(settings: Settings) -> str:
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not token:
        raise ConfigError("BOT_TOKEN is not set (create a bot with @BotFather and put its token in .env)")
    if not TOKEN_RE.match(token):
        raise ConfigError("BOT_TOKEN is malformed (expected <digits>:<35 letters, digits, - or _>)")
    return token


def build_application(settings: Settings, *, rate_limit: bool | None = None) -> Application:
    token = check_token(settings)
    builder: ApplicationBuilder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        )
        .post_init(setup)
        .post_stop(stop_work)
        .post_shutdown(teardown)
        .concurrent_updates(FairUpdates(CONCURRENT_UPDATES))
        # httpcore scans its whole pool on every request; a smaller pool is faster at the ~30 messages/s
        # Telegram allows (256, PTB's default, measured 2x slower on a burst of updates)
        .connection_pool_size(HTTP_POOL)
        .pool_timeout(30.0)
    )
    if settings.rate_limit if rate_limit is None else rate_limit:
        builder = builder.rate_limiter(ChatFloodLimiter())
    app = builder.build()
    app.bot_data["settings"] = settings
    register(app)
    return app


async def setup(app: Application) -> None:
    """Open the store, sync the archive, start following it, publish the localized command menus."""
    settings: Settings = app.bot_data["settings"]
    i18n = I18n(default=settings.default_language)
    if str(settings.database_path) != ":memory:":
        lock = app.bot_data["lock"] = InstanceLock(settings.database_path)
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            raise ConfigError(str(exc)) from None
    try:
        store, site = await _open_store(settings)
    except BaseException:
        _release_lock(app)
        raise
    svc = Services(
        store=store, i18n=i18n, settings=settings, site_name=site.split("//")[-1] or "newsbot", bot=app.bot
    )
    app.bot_data["svc"] = svc
    if settings.user_updates_per_minute or settings.search_time_limit:
        svc.flood = Flood(
            settings.user_updates_per_minute, SEARCH_LIMITS_PER_MINUTE * settings.search_time_limit
        )
    if settings.user_updates_per_minute:
        svc.inline_flood = Flood(INLINE_PER_UPDATE * settings.user_updates_per_minute)
    if app.bot.rate_limiter is not None:  # (it holds a group's answers past Telegram's limit: see guard)
        svc.group_flood = Flood(GROUP_ANSWERS_PER_MINUTE)
    svc.deliverer = Deliverer(app.bot, store, settings, i18n, svc.notify)
    svc.follower = Follower(store, settings, svc.notify, on_new=svc.deliverer.kick, tell=svc.tell)
    # The segmenter's dictionary, the folding tables and the snippets' table load in a thread now, not in
    # the first search (~0.2 s on the event loop, every other update waiting)
    svc.warming = asyncio.ensure_future(asyncio.to_thread(warm_up))
    # The first sync runs in the background: the bot answers at once from what is already indexed (a
    # first start on a large archive indexes for minutes), and searches say the index is being built.
    svc.first_sync = asyncio.ensure_future(_first_sync(app, svc))
    svc.deliverer.start()
    await _publish_commands(app, i18n, settings)


async def _open_store(settings: Settings) -> tuple[Store, str]:
    """The store, and the archive's site URL; a ConfigError when the archive cannot be read and nothing
    is indexed yet (with posts indexed, the bot serves them)."""
    store = await Store.open(settings.database_path)
    store.search_time_limit = settings.search_time_limit
    try:
        return store, archive_config(settings).site_url
    except ArchiveError as exc:
        if await store.count_posts() == 0:
            await store.close()
            raise ConfigError(f"archive: {exc}") from None
        log.warning(
            "archive not readable (%s); serving the %d posts already indexed", exc, await store.count_posts()
        )
        return store, settings.site_url or ""


async def _first_sync(app: Application, svc: Services) -> None:
    await svc.follower.sync()
    # rules from settings start after the first sync, so a new rule never floods its chat with the archive
    await sync_settings_rules(svc.store, svc.settings)
    svc.deliverer.kick()
    interval = svc.settings.sync_interval
    if interval and app.job_queue is not None:
        app.job_queue.run_repeating(_scheduled_sync, interval=interval, first=interval, name="sync")


async def _scheduled_sync(context) -> None:
    await context.application.bot_data["svc"].follower.sync()


async def _publish_commands(app: Application, i18n: I18n, settings: Settings) -> None:
    for lang in i18n.languages:
        commands = [BotCommand(c, i18n.t(lang, f"cmd.{c}")) for c in COMMANDS]
        await app.bot.set_my_commands(commands, language_code=lang)
    await app.bot.set_my_commands([BotCommand(c, i18n.t(i18n.default, f"cmd.{c}")) for c in COMMANDS])
    # admins see the admin commands too, in their private chat with the bot
    admin_menu = [BotCommand(c, i18n.t(i18n.default, f"cmd.{c}")) for c in COMMANDS + tuple(ADMIN_COMMANDS)]
    for admin in settings.admin_ids:
        try:
            await app.bot.set_my_commands(admin_menu, scope=BotCommandScopeChat(admin))
        except TelegramError as exc:
            log.warning("could not set the admin menu for %s: %s", admin, exc)


async def stop_syncing(app: Application) -> None:
    """Roll back a sync still running (the first, or one a schedule or /reload started: the next start
    syncs again). `newsbot run` does it as soon as it is told to stop, before the application waits for
    its jobs and updates: they would otherwise wait for the sync to end (minutes for a large one, past
    the service manager's patience)."""
    svc: Services | None = app.bot_data.get("svc")
    if svc is None:
        return
    if svc.first_sync is not None and not svc.first_sync.done():
        svc.first_sync.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await svc.first_sync
    if svc.follower is not None:
        await svc.follower.stop()


async def stop_work(app: Application) -> None:
    """After updates stop and before the bot's HTTP client closes: let the send in flight finish and be
    recorded (the deliverer starts no other), and roll back a sync still running (`stop_syncing`)."""
    svc: Services | None = app.bot_data.get("svc")
    if svc is None:
        return
    await stop_syncing(app)
    if svc.deliverer is not None:
        await svc.deliverer.stop()


async def teardown(app: Application) -> None:
    svc: Services | None = app.bot_data.get("svc")
    if svc is not None:
        await stop_work(app)  # (done already when the application stopped normally)
        await svc.store.close()
    _release_lock(app)


def _release_lock(app: Application) -> None:
    if (lock := app.bot_data.pop("lock", None)) is not None:
        lock.release()


def main_run(settings: Settings, *, webhook: bool = False) -> int:
    try:
        token = check_token(settings)
        if webhook and not settings.webhook_url:
            raise ConfigError("WEBHOOK_URL is required with --webhook")
    except ConfigError as exc:
        print(f"newsbot: configuration error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    setup_logging(token, settings.log_level, settings.log_format)
    log.info("newsbot %s starting (%s)", version(), "webhooks" if webhook else "polling")
    try:
        app = build_application(settings)
        asyncio.run(
            serve(app, settings, webhook_secret(settings) if webhook else None, before_stop=stop_syncing)
        )
    except Exception as exc:
        # Start-up problems end in one line (never the token) and an exit code saying whether starting
        # again may help; the traceback goes to the log at debug level only, through the redacting
        # formatter.
        log.debug("start-up failed", exc_info=exc)
        print(f"newsbot: {redact(startup_problem(exc, settings), token)}", file=sys.stderr)
        return startup_exit_code(exc)
    return 0


# Exit codes of `newsbot run` when it cannot start. EXIT_SETUP: the setup must change first (a setting, the
# token, the database file, a second bot on the same database); the systemd unit does not start it again
# (RestartPreventExitStatus), where restarting every few seconds would only fill the journal.
# EXIT_TEMPORARY (EX_TEMPFAIL): it may start by itself later (the network or Telegram down at boot, the
# database busy or its disk full); the unit starts it again.
EXIT_SETUP = 2
EXIT_TEMPORARY = 75
_TEMPORARY_DATABASE = ("locked", "busy", "disk is full", "disk i/o")
_TEMPORARY_OS = (errno.EADDRINUSE, errno.ENOSPC, errno.EAGAIN, errno.ENETUNREACH, errno.ECONNREFUSED)


def startup_exit_code(exc: BaseException) -> int:
    """EXIT_TEMPORARY for a start-up problem that may go away by itself, else EXIT_SETUP."""
    if isinstance(exc, (NetworkError, RetryAfter, Conflict)):  # (InvalidToken is none of them)
        return EXIT_TEMPORARY
    if isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in _TEMPORARY_DATABASE):
        return EXIT_TEMPORARY
    if isinstance(exc, OSError) and exc.errno in _TEMPORARY_OS:
        return EXIT_TEMPORARY
    return EXIT_SETUP


def webhook_secret(settings: Settings) -> str:
    """WEBHOOK_SECRET, or a random one for this run: Telegram sends it back with every update, and our
    webhook server (serve.UpdateHandler) answers 403 to a request without it, so updates cannot be
    forged by whoever reaches the port."""
    if settings.webhook_secret and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    log.info("WEBHOOK_SECRET is not set: using a random secret for this run")
    return secrets.token_urlsafe(32)


def startup_problem(exc: BaseException, settings: Settings) -> str:
    """One line saying what is wrong, in an operator's terms."""
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    if isinstance(exc, ConfigError):
        return detail
    if isinstance(exc, InvalidToken):
        return (
            f"Telegram rejected the bot token, or {settings.telegram_base_url} is not a Bot API server"
            f" ({detail})"
        )
    if isinstance(exc, NetworkError):
        return f"cannot reach the Bot API at {settings.telegram_base_url}: {detail}"
    if isinstance(exc, TelegramError):
        return f"the Bot API refused a start-up call: {detail}"
    if isinstance(exc, sqlite3.Error):
        return f"database {settings.database_path}: {database_problem(exc)}"
    if isinstance(exc, OSError):
        return detail
    return f"start-up failed: {type(exc).__name__}: {detail}"
