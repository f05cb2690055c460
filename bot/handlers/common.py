"""Small helpers shared by handlers: replying, editing in place, answering buttons."""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from .. import keyboards as kb
from .. import render
from ..services import Services, services

log = logging.getLogger("newsbot.bot")


async def reply(update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message | None:
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_html(text, reply_markup=keyboard, do_quote=False)


def too_late(exc: BaseException | None) -> bool:
    """Whether Telegram refused to take an answer to a button press or an inline query because it came
    too late (some seconds after the press: the bot was restarting, or busy): nobody waits for it."""
    text = str(exc).lower()
    return isinstance(exc, BadRequest) and ("query is too old" in text or "query id is invalid" in text)


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Answer a button press: stop its spinner, or show `text`. An answer refused as too late is
    dropped, so what the press does (the next page…) is still done: its spinner stopped by itself."""
    try:
        await query.answer(text, show_alert=alert)
    except BadRequest as exc:
        if not too_late(exc):
            raise
        log.info("a button press was answered too late: %s", exc)


async def pressed(update: Update, expired_text: str) -> tuple[CallbackQuery, list[str]] | None:
    """The pressed button's query and its data's fields (see keyboards.parse). None, after answering
    `expired_text`, for a button that is not on a message in a chat (the bot puts its navigation buttons
    only there; a forged one on an inline message finds nothing) or whose data this bot did not make."""
    query = update.callback_query
    if query is None:
        return None
    parsed = kb.parse(query.data)
    if query.message is None or parsed is None:
        await answer(query, expired_text, alert=True)
        return None
    return query, parsed[1]


async def send_beside(
    query: CallbackQuery, context, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    """A new message in the chat (and forum topic) of the pressed button's message (see pressed())."""
    message = query.message
    assert message is not None  # pressed() answers buttons without a message
    await context.bot.send_message(
        message.chat.id,
        text,
        reply_markup=keyboard,
        message_thread_id=getattr(message, "message_thread_id", None),
    )


class Button(NamedTuple):
    svc: Services
    lang: str  # the chat's language
    query: CallbackQuery
    parts: list[str]  # the fields of the button's data (keyboards.parse)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Button | None:
    """Every button handler's start: the pressed button with the services and the chat's language;
    None when pressed() answered it as expired."""
    svc = services(context)
    lang = await svc.language(update)
    got = await pressed(update, svc.i18n.t(lang, "button.expired"))
    return None if got is None else Button(svc, lang, *got)


async def reply_lines(update: Update, lines: list[str], max_messages: int = 5) -> None:
    """A list (a header line, then one line per item) in as many messages as Telegram's length limit
    needs, at most `max_messages` (a list longer than that is cut, with "…" at the end)."""
    messages = render.split_blocks(lines[0], lines[1:], render.MESSAGE_LIMIT - 8) if lines else []
    if len(messages) > max_messages:
        messages = messages[:max_messages]
        messages[-1] += "\n…"
    for text in messages:
        await reply(update, text)


async def edit(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Edit the button's message in place; pressing a button that changes nothing is not an error."""
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


_ASCII_INT = re.compile(r"-?[0-9]{1,18}")
CHAT_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")


def ascii_int(text: str | None, low: int = 0, high: int = 10**15) -> int | None:
    """An integer written with ASCII digits within [low, high], else None. (str.isdigit() accepts '²'
    and Arabic-Indic digits, and int() accepts '1_000': neither is an id a user means.)"""
    if not text or not _ASCII_INT.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def chat_arg(text: str) -> str | None:
    """A chat a rule may target: a non-zero numeric id (negative for groups and channels) or an
    @username; None for anything else."""
    if CHAT_USERNAME.fullmatch(text):
        return text
    value = ascii_int(text, -(10**15), 10**15)
    return str(value) if value else None


def int_arg(value: str, default: int = 0, low: int = 0, high: int = 10**9) -> int:
    try:
        return max(low, min(high, int(value)))
    except (TypeError, ValueError):
        return default
