"""Wiring: settings → store → python-telegram-bot Application; `newsbot run`."""

from __future__ import annotations

import logging
import re
import sys

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from store.db import Store
from store.jekyll import ArchiveError, open_archive
from store.settings import Settings
from store.sync import sync_archive

from .handlers import register
from .i18n import I18n
from .services import Services

log = logging.getLogger("newsbot")
TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")
HTTP_POOL = 32
CONCURRENT_UPDATES = 16
COMMANDS = ("start", "help", "latest", "categories", "search", "lang")


class ConfigError(Exception):
    pass


class RedactToken(logging.Filter):
    """Replace the bot token wherever it would appear in a log line (URLs of failed requests…)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg = message.replace(self.token, "<token>")
                record.args = ()
        return True


def check_token(settings: Settings) -> str:
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not token:
        raise ConfigError("BOT_TOKEN is not set (create a bot with @BotFather and put its token in .env)")
    if not TOKEN_RE.match(token):
        raise ConfigError("BOT_TOKEN is malformed (expected <digits>:<35 letters, digits, - or _>)")
    return token


def setup_logging(token: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL, and the URL contains the token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact = RedactToken(token)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)


def build_application(settings: Settings, *, rate_limit: bool = True) -> Application:
    token = check_token(settings)
    builder: ApplicationBuilder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        )
        .post_init(setup)
        .post_shutdown(teardown)
        .concurrent_updates(CONCURRENT_UPDATES)
        # httpcore scans its whole pool on every request; a smaller pool is faster at the ~30 messages/s
        # Telegram allows (256, PTB's default, measured 2x slower on a burst of updates)
        .connection_pool_size(HTTP_POOL)
        .pool_timeout(30.0)
    )
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    app = builder.build()
    app.bot_data["settings"] = settings
    register(app)
    return app


async def setup(app: Application) -> None:
    """Open the store, sync the archive if it is empty or stale, publish the localized command menus."""
    settings: Settings = app.bot_data["settings"]
    i18n = I18n(default=settings.default_language)
    store = await Store.open(settings.database_path)
    site = "newsbot"
    try:
        cfg = open_archive(
            settings.archive_dir,
            site_url=settings.site_url,
            timezone_name=settings.timezone,
            permalink=settings.permalink,
            summary_chars=settings.summary_chars,
        )
        site = cfg.site_url.split("//")[-1] or cfg.root.name
        result = await sync_archive(store, cfg)
        log.info(
            "sync: added %d, updated %d, deleted %d, unchanged %d, skipped %d",
            result.added,
            result.updated,
            result.deleted,
            result.unchanged,
            result.skipped,
        )
    except ArchiveError as exc:
        if await store.count_posts() == 0:
            await store.close()
            raise ConfigError(f"archive: {exc}") from None
        log.warning(
            "archive not readable (%s); serving the %d posts already indexed", exc, await store.count_posts()
        )
    app.bot_data["svc"] = Services(store=store, i18n=i18n, settings=settings, site_name=site)
    for lang in i18n.languages:
        commands = [BotCommand(c, i18n.t(lang, f"cmd.{c}")) for c in COMMANDS]
        await app.bot.set_my_commands(commands, language_code=lang)
    default = [BotCommand(c, i18n.t(i18n.default, f"cmd.{c}")) for c in COMMANDS]
    await app.bot.set_my_commands(default)


async def teardown(app: Application) -> None:
    svc: Services | None = app.bot_data.get("svc")
    if svc is not None:
        await svc.store.close()


def main_run(settings: Settings, *, webhook: bool = False) -> int:
    try:
        token = check_token(settings)
        if webhook and not settings.webhook_url:
            raise ConfigError("WEBHOOK_URL is required with --webhook")
    except ConfigError as exc:
        print(f"newsbot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(token)
    app = build_application(settings)
    try:
        if webhook:
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            app.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path="telegram",
                webhook_url=settings.webhook_url.rstrip("/") + "/telegram",
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES)
    except ConfigError as exc:
        print(f"newsbot: {exc}", file=sys.stderr)
        return 2
    return 0
