"""Small helpers shared by handlers: replying, editing in place, answering buttons."""

from __future__ import annotations

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest


async def reply(update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message | None:
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_html(text, reply_markup=keyboard, do_quote=False)


async def edit(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Edit the button's message in place; pressing a button that changes nothing is not an error."""
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


def int_arg(value: str, default: int = 0, low: int = 0, high: int = 10**9) -> int:
    try:
        return max(low, min(high, int(value)))
    except (TypeError, ValueError):
        return default
