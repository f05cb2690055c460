"""`newsbot run`: the application's life (start-up, serving by long polling or webhooks, shutdown).

Run here rather than by PTB's `run_polling`/`run_webhook`: a start-up failure reaches `main_run` as one
exception (PTB's runners log it with a traceback first), and the webhook server is our own small tornado
server (PTB's webhooks extra installs tornado): every update must carry the secret (WEBHOOK_SECRET, or a
random one made for the run and given to Telegram by setWebhook), compared in constant time (PTB
compares with `!=`). Updates go to PTB's update queue either way.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update
from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.ext import Application

from store.settings import Settings

log = logging.getLogger("newsbot.webhook")
PATH = "/telegram"
MAX_BODY = 1 << 20  # an update is a few KB; Telegram's largest are far below this


class UpdateHandler(tornado.web.RequestHandler):
    def initialize(self, app: Application, secret: str) -> None:
        self.app, self.secret = app, secret.encode()

    async def post(self) -> None:
        given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not hmac.compare_digest(given, self.secret):
            self.set_status(403)
            return
        try:
            data = json.loads(self.request.body)
            update = Update.de_json(data, self.app.bot)
        except Exception:  # not JSON, or not an update
            self.set_status(400)
            return
        await self.app.update_queue.put(update)
        self.set_status(200)

    def log_exception(self, typ, value, tb) -> None:  # never log request details (headers hold the secret)
        log.warning("webhook request failed: %s", value)


class HealthHandler(tornado.web.RequestHandler):
    """GET /healthz for a load balancer or a monitor: 200 when the database answers and the last sync is
    recent (within three sync intervals), else 503; the JSON body says which."""

    def initialize(self, app: Application) -> None:
        self.app = app

    async def get(self) -> None:
        report = await health(self.app)
        self.set_status(200 if report["ok"] else 503)
        self.set_header("Cache-Control", "no-store")
        self.write(report)


async def health(app: Application) -> dict:
    svc = app.bot_data.get("svc")
    if svc is None:
        return {"ok": False, "database": "not open yet"}
    report: dict = {"indexing": svc.indexing() is not None}
    try:
        stats = await svc.store.stats()
        report.update(posts=stats["posts"], database="ok")
    except Exception as exc:  # the database does not answer
        report.update(ok=False, database=f"{type(exc).__name__}: {exc}")
        return report
    last = stats["last_sync"]
    age = round(time.time() - last["finished"]) if last else None
    report["last_sync_age"] = age
    interval = svc.settings.sync_interval
    stale = bool(interval) and not report["indexing"] and (age is None or age > 3 * interval + 60)
    report["ok"] = not stale
    return report


CONFLICT_LOG_EVERY = 600.0  # seconds between two log lines about the same polling conflict


def polling_errors(app: Application) -> Callable[[TelegramError], None]:
    """What long polling does with an error (PTB retries it, backing off up to 30 s, and by default logs
    each with a traceback): one line each. A Conflict means another program gets this bot's updates (a
    second deployment with the same token, or a webhook set elsewhere): every new post would be sent
    twice, so it is an error, logged at most every CONFLICT_LOG_EVERY seconds while it lasts, and the
    admins are told once."""
    logged, told = float("-inf"), False

    def on_error(exc: TelegramError) -> None:
        nonlocal logged, told
        if not isinstance(exc, Conflict):
            log.warning("polling for updates failed: %s", exc)
            return
        now = time.monotonic()
        if now - logged >= CONFLICT_LOG_EVERY:
            logged = now
            log.error("another program is getting this bot's updates: %s", exc)
        svc = app.bot_data.get("svc")
        if not told and svc is not None:
            told = True
            app.create_task(svc.notify("alert.conflict", error=str(exc)))  # (PTB keeps and awaits it)

    return on_error


TOKEN_CHECK_EVERY = 300.0  # seconds between two checks that Telegram still takes the bot's token


async def watch_token(app: Application, stop: asyncio.Event, every: float = TOKEN_CHECK_EVERY) -> None:
    """Stop the bot when Telegram no longer takes its token (revoked, or replaced with @BotFather). PTB's
    long polling ends on that without a word to the application, which went on running without updates
    and failing every send: a process that looks healthy to its service manager. Here it stops, and
    `newsbot run` exits 2 with one line saying why (a service manager then shows it failed)."""
    while True:
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except asyncio.TimeoutError:
            pass
        try:
            await app.bot.get_me()
        except InvalidToken as exc:
            log.error("Telegram refuses the bot's token now (revoked or replaced with @BotFather?): stopping")
            app.bot_data["token_refused"] = exc
            stop.set()
            return
        except TelegramError:  # the network or Telegram's servers: outages are handled where they matter
            continue


async def serve(
    app: Application,
    settings: Settings,
    webhook_secret: str | None = None,
    before_stop: Callable[[Application], Awaitable[None]] | None = None,
) -> None:
    """Initialize the application, poll (or, given a secret, serve webhooks) until SIGINT/SIGTERM, then
    shut down; `before_stop` runs first (work the application would otherwise wait for)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second SIGTERM/SIGINT: the operator wants out now
            log.warning("second stop signal: exiting without finishing the shutdown")
            os._exit(1)
        log.info("stopping: finishing the send in flight, then closing the database")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        server = None
        if webhook_secret is not None:
            assert settings.webhook_url
            await app.bot.set_webhook(
                settings.webhook_url.rstrip("/") + PATH,
                secret_token=webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
            routes: list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]] = [
                (rf"{PATH}/?", UpdateHandler, {"app": app, "secret": webhook_secret}),
                (r"/healthz", HealthHandler, {"app": app}),
            ]
            server = tornado.httpserver.HTTPServer(tornado.web.Application(routes), max_body_size=MAX_BODY)
            server.listen(settings.webhook_port, settings.webhook_listen)
            log.info("serving webhooks on %s:%s%s", settings.webhook_listen, settings.webhook_port, PATH)
        else:
            assert app.updater is not None
            await app.updater.start_polling(
                allowed_updates=Update.ALL_TYPES, error_callback=polling_errors(app)
            )
        await app.start()
        token_watch = asyncio.ensure_future(watch_token(app, stop))
        try:
            await stop.wait()
        finally:
            token_watch.cancel()
            if before_stop is not None:
                await before_stop(app)
            if server is not None:
                server.stop()
            elif app.updater is not None and app.updater.running:
                try:
                    await app.updater.stop()
                except InvalidToken:  # (its polling ended on it: the watch above said so)
                    pass
            await app.stop()
            if app.post_stop:
                await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
    refused = app.bot_data.get("token_refused")
    if refused is not None:
        raise refused  # (main_run: one line, exit 2)
