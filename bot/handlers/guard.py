"""Flood control: one user's burst of commands, searches and button presses must not use up the bot's
shared sending budget (about 30 messages/s for the whole bot), nor their searches the database's time
(one database thread answers every chat). Runs before every handler; inline queries, which send
nothing, have a looser count of their own and the same database budget (bot.handlers.inline)."""

from __future__ import annotations

import collections
import logging
import time

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from ..services import services
from .common import answer, reply

log = logging.getLogger("newsbot.bot")

WINDOW = 60.0
# A user's searches may keep the database busy this many times SEARCH_TIME_LIMIT a minute (5 s by default:
# a reader's searches take milliseconds; ten stopped for their cost use it up).
SEARCH_LIMITS_PER_MINUTE = 10
# Inline queries a user may send a minute, as a multiple of USER_UPDATES_PER_MINUTE (120 by default): a
# Telegram app sends one at each pause in typing, so a reader's stay well below; a client sending them
# faster would keep the bot building answers.
INLINE_PER_UPDATE = 4
# Answers (replies, pages turned) the bot gives in one group a minute: Telegram takes 20 messages a minute
# in a group, and the rate limiter (bot.flood) holds each answer past that until the group has room. The
# answers past this are not attempted: they would come minutes late, behind a backlog that grows while
# the group keeps asking (and before bot.flood.FairUpdates, they took every handler of the bot with them).
GROUP_ANSWERS_PER_MINUTE = 20


class _Window:
    """A sum over the last WINDOW seconds: updates (each 1) or seconds of database time."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: collections.deque[tuple[float, float]] = collections.deque()  # (when, amount)
        self.total = 0.0

    def add(self, now: float, amount: float = 1.0) -> None:
        self.items.append((now, amount))
        self.total += amount

    def sum(self, now: float) -> float:
        """The amounts of the last WINDOW seconds (older ones are forgotten)."""
        items = self.items
        while items and items[0][0] <= now - WINDOW:
            self.total -= items.popleft()[1]
        if not items:
            self.total = 0.0  # (no float residue once empty)
        return self.total

    def quiet(self, now: float) -> bool:
        return not self.items or self.items[-1][0] <= now - WINDOW


class Flood:
    """Sliding one-minute windows of the updates each user sent that the bot would answer (at most
    `per_minute`; 0: any number), and of the database time their searches took (at most
    `search_seconds`; 0: any)."""

    def __init__(self, per_minute: int, search_seconds: float = 0.0):
        self.per_minute = per_minute
        self.search_seconds = search_seconds
        self._seen: dict[int, _Window] = {}
        self._spent: dict[int, _Window] = {}
        self._warned: set[int] = set()
        self._pruned = float("-inf")

    def allow(self, user_id: int, now: float | None = None) -> tuple[bool, bool]:
        """(allowed, first refusal in this burst: tell the user once)."""
        now = time.monotonic() if now is None else now
        if now - self._pruned > WINDOW:  # forget users who went quiet, once a window (not per update)
            self._pruned = now
            for windows in (self._seen, self._spent):
                for uid in [u for u, w in windows.items() if w.quiet(now)]:
                    del windows[uid]
                    if windows is self._seen:
                        self._warned.discard(uid)
        over = self.over_budget(user_id, now)
        if self.per_minute and not over:
            seen = self._seen.setdefault(user_id, _Window())
            over = seen.sum(now) >= self.per_minute
            if not over:
                seen.add(now)
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
            self._spent.setdefault(user_id, _Window()).add(now, seconds)

    def over_budget(self, user_id: int, now: float | None = None) -> bool:
        """Whether the user's searches of the last minute used up their database time."""
        spent = self._spent.get(user_id)
        if spent is None or self.search_seconds <= 0:
            return False
        return spent.sum(time.monotonic() if now is None else now) >= self.search_seconds


def _answerable(update: Update) -> bool:
    """Updates the bot replies to with a message: commands, private-chat text, button presses, and the
    same messages edited (the handlers answer an edit as a new message: editing one message over and
    over must count as sending it). (Group chatter is ignored anyway; inline queries are debounced by
    Telegram's clients and send nothing.)"""
    if update.callback_query is not None:
        return True
    message = update.message or update.edited_message
    if message is None:
        return False
    return message.chat.type == message.chat.PRIVATE or (message.text or "").startswith("/")


async def guard(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not isinstance(update, Update) or not _answerable(update):
        return
    svc = services(context)
    chat = update.effective_chat
    if svc.group_flood is not None and chat is not None and chat.type != chat.PRIVATE:
        allowed, first = svc.group_flood.allow(chat.id)
        if not allowed:
            if first:
                log.info(
                    "group %s: more than %d answers a minute asked for; the rest are not answered",
                    chat.id,
                    GROUP_ANSWERS_PER_MINUTE,
                )
            if update.callback_query is not None:  # (a button's answer is not a message in the group)
                await answer(
                    update.callback_query, svc.i18n.t(await svc.language(update), "flood.group_busy")
                )
            raise ApplicationHandlerStop
    user = update.effective_user
    if svc.flood is None or user is None or svc.is_admin(update):
        return
    allowed, first = svc.flood.allow(user.id)
    if allowed:
        return
    if first:
        text = svc.i18n.t(await svc.language(update), "flood.slow_down")
        if update.callback_query is not None:
            await answer(update.callback_query, text, alert=True)
        else:
            await reply(update, text)
    elif update.callback_query is not None:
        await answer(update.callback_query)
    raise ApplicationHandlerStop
