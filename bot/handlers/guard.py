"""Flood control: one user's burst of commands, searches and button presses must not use up the bot's
shared sending budget (about 30 messages/s for the whole bot). Runs before every handler."""

from __future__ import annotations

import collections
import time

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from ..services import services
from .common import reply

WINDOW = 60.0


class Flood:
    """A sliding one-minute window of the updates each user sent that the bot would answer."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: dict[int, collections.deque[float]] = {}
        self._warned: set[int] = set()
        self._pruned = float("-inf")

    def allow(self, user_id: int, now: float | None = None) -> tuple[bool, bool]:
        """(allowed, first refusal in this burst: tell the user once)."""
        now = time.monotonic() if now is None else now
        if now - self._pruned > WINDOW:  # forget users who went quiet, once a window (not per update)
            self._pruned = now
            for uid in [u for u, q in self._seen.items() if not q or q[-1] <= now - WINDOW]:
                del self._seen[uid]
                self._warned.discard(uid)
        seen = self._seen.setdefault(user_id, collections.deque())
        while seen and seen[0] <= now - WINDOW:
            seen.popleft()
        if len(seen) >= self.per_minute:
            first = user_id not in self._warned
            self._warned.add(user_id)
            return False, first
        seen.append(now)
        self._warned.discard(user_id)
        return True, False


def _answerable(update: Update) -> bool:
    """Updates the bot replies to with a message: commands, private-chat text, button presses. (Group
    chatter is ignored anyway; inline queries are debounced by Telegram's clients and send nothing.)"""
    if update.callback_query is not None:
        return True
    message = update.message
    if message is None:
        return False
    return message.chat.type == message.chat.PRIVATE or (message.text or "").startswith("/")


async def guard(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not isinstance(update, Update) or not _answerable(update):
        return
    svc = services(context)
    user = update.effective_user
    if svc.flood is None or user is None or svc.is_admin(update):
        return
    allowed, first = svc.flood.allow(user.id)
    if allowed:
        return
    if first:
        text = svc.i18n.t(await svc.language(update), "flood.slow_down")
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        else:
            await reply(update, text)
    elif update.callback_query is not None:
        await update.callback_query.answer()
    raise ApplicationHandlerStop
