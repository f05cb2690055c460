"""/start (with `post_<id>` deep links) and /help."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from ..services import services
from .browse import send_post_card
from .common import reply


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    if context.args and context.args[0].startswith("post_"):
        await send_post_card(update, context, context.args[0].removeprefix("post_"), lang)
        return
    if context.args and context.args[0] == "help":  # (from an inline answer's button)
        await reply(update, svc.i18n.t(lang, "help.text"))
        return
    await reply(update, svc.i18n.t(lang, "start.text", site=svc.site_name, bot=context.bot.username or "bot"))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    await reply(update, svc.i18n.t(await svc.language(update), "help.text"))
