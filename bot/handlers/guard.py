"""Flood control: one user's burst of commands, searches and button presses must not use up the bot's
shared sending budget (about 30 messages/s for the whole bot), nor their searches the database's time
(one database thread answers every chat). Runs before every handler; inline queries, which send
nothing, have a looser count of their own and the same database budget (bot.handlers.inline)."""

from __future__ import annotations

import collections
import time

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from ..services import services
from .common import reply

WINDOW = 60.0
# A user's searches may keep the database busy this many times SEARCH_TIME_LIMIT a minute (5 s by default:
# a reader's searches take milliseconds; ten stopped for their cost use it up).
SEARCH_LIMITS_PER_MINUTE = 10
# Inline queries a user may send a minute, as a multiple of USER_UPDATES_PER_MINUTE (120 by default): a
# Telegram app sends one at each pause in typing, so a reader's stay well below; a client sending them
# faster would keep the bot building answers.
INLINE_PER_UPDATE = 4


class Flood:
    """A sliding one-minute window of the updates each user sent that the bot would answer (at most
    `per_minute`; 0: any number), and of the database time their searches took (at most
    `search_seconds`; 0: any)."""

    def __init__(self, per_minute: int, search_seconds: float = 0.0):
        self.per_minute = per_minute
        self.search_seconds = search_seconds
        self._seen: dict[int, collections.deque[float]] = {}
        self._spent: dict[int, collections.deque[tuple[float, float]]] = {}  # (when, seconds) a search
        self._spent_total: dict[int, float] = {}  # the seconds in each user's deque (kept, not summed)
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
            for uid in [u for u, q in self._spent.items() if not q or q[-1][0] <= now - WINDOW]:
                del self._spent[uid]
                self._spent_total.pop(uid, None)
        over = self.over_budget(user_id, now)
        if self.per_minute and not over:
            seen = self._seen.setdefault(user_id, collections.deque())
            while seen and seen[0] <= now - WINDOW:
                seen.popleft()
            over = len(seen) >= self.per_minute
            if not over:
                seen.append(now)
        if over:
            first = user_id not in self._warned
            self._warned.add(user_id)
            return False, first
        self._warned.discard(user_id)
        return True, False

    def charge(self, user_id: int, seconds: float, now: float | None = None) -> None:
        """Count a search's database time against the user's budget."""
        if self.search_seconds > 0 and seconds > 0:
            now = time.monotonic() if now is None else now
            self._spent.setdefault(user_id, collections.deque()).append((now, seconds))
            self._spent_total[user_id] = self._spent_total.get(user_id, 0.0) + seconds

    def over_budget(self, user_id: int, now: float | None = None) -> bool:
        """Whether the user's searches of the last minute used up their database time."""
        spent = self._spent.get(user_id)
        if not spent or self.search_seconds <= 0:
            return False
        now = time.monotonic() if now is None else now
        total = self._spent_total.get(user_id, 0.0)
        while spent and spent[0][0] <= now - WINDOW:
            total -= spent.popleft()[1]
        self._spent_total[user_id] = total if spent else 0.0
        return total >= self.search_seconds


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
