"""The one error handler, unknown commands and buttons this bot does not know."""

from __future__ import annotations

import logging
import sqlite3

from telegram import Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import ContextTypes

from ..deliver import refusal
from ..flood import wait_of
from ..services import services
from .common import answer, reply, too_late

log = logging.getLogger("newsbot.bot")


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log with context; tell the user a short apology; never show a traceback."""
    where = ""
    if isinstance(update, Update):
        chat = update.effective_chat
        where = f" update={update.update_id} chat={chat.id if chat else None}"
    error = context.error
    if too_late(error):  # an answer to a press or an inline query nobody waits for any more
        log.info("answered too late:%s: %s", where, error)
        return
    if isinstance(error, RetryAfter):  # a flood wait longer than a reader waits for an answer (bot.flood)
        log.warning("answer dropped: Telegram asks to wait %.0f s in this chat:%s", wait_of(error), where)
        return
    pressed = isinstance(update, Update) and update.callback_query is not None
    if isinstance(error, TelegramError) and refusal(error) and not pressed:
        # the chat refuses the bot's messages (muted, removed): an apology would be refused too (a
        # button's answer is not a message: it still gets one)
        log.warning("the chat refused the answer:%s: %s", where, error)
        return
    log.error("handler failed:%s", where, exc_info=error)
    if isinstance(error, sqlite3.Error):  # a write the database refused: the admins hear once
        await services(context).write_failed(error)
    if not isinstance(update, Update):
        return
    try:
        svc = services(context)
        lang = await svc.language(update)
        text = svc.i18n.t(lang, "error.generic")
        if update.callback_query is not None:
            await answer(update.callback_query, text, alert=True)
        elif update.inline_query is not None:
            await update.inline_query.answer([], cache_time=5)  # answered, empty, rather than spinning
        elif update.effective_message is not None:
            await reply(update, text)
    except Exception:  # the apology itself failed: logged, nothing more to do
        log.exception("could not tell the user about the error")


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    if chat.type != chat.PRIVATE:
        # in groups only answer commands addressed to this bot explicitly
        command = (message.text or "").split()[0] if message.text else ""
        if "@" not in command or command.split("@", 1)[1].lower() != (context.bot.username or "").lower():
            return
    svc = services(context)
    await reply(update, svc.i18n.t(await svc.language(update), "unknown.command"))


async def on_unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    if update.callback_query is not None:
        await answer(
            update.callback_query, svc.i18n.t(await svc.language(update), "button.expired"), alert=True
        )
