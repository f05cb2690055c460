"""/lang: choose this chat's language (stored in the database), or follow each user's Telegram setting."""

from __future__ import annotations

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from .. import keyboards as kb
from ..i18n import LANGUAGE_NAMES
from ..services import services
from .common import answer, button, edit, reply


async def _may_change(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In a private chat anyone; in a group or channel its administrators (and the bot's admins)."""
    svc = services(context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return False
    if chat.type == chat.PRIVATE or svc.is_admin(update):
        return True
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError:
        return False
    return member.status in ("creator", "administrator")


async def lang_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    if not await _may_change(update, context):
        await reply(update, svc.i18n.t(lang, "lang.admins_only"))
        return
    rows = [[(LANGUAGE_NAMES.get(code, code), kb.language(code), False)] for code in svc.i18n.languages]
    rows.append([(svc.i18n.t(lang, "lang.auto"), kb.language("auto"), False)])
    await reply(update, svc.i18n.t(lang, "lang.choose"), kb.markup(rows))


async def on_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    choice = parts[0] if parts else ""
    if choice != "auto" and choice not in svc.i18n.catalogs:
        await answer(query, svc.i18n.t(lang, "button.expired"), alert=True)
        return
    if not await _may_change(update, context):
        await answer(query, svc.i18n.t(lang, "lang.admins_only"), alert=True)
        return
    assert query.message is not None  # pressed() answers buttons without a message
    await svc.set_language(query.message.chat.id, None if choice == "auto" else choice)
    lang = await svc.language(update)
    await answer(query)
    await edit(query, svc.i18n.t(lang, "lang.set_auto" if choice == "auto" else "lang.set"))
