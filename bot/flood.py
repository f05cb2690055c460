"""Telegram's flood limits, and fairness between chats: the rate limiter every Bot API call goes through,
what a 429 holds up, and how many of one chat's updates are handled at once.

PTB's AIORateLimiter keeps the bot within Telegram's limits (30 messages a second, 20 a minute per
group), and that part is kept. What it does on a 429 is not: it holds every request of the bot, in every
chat, for as long as Telegram asked, and again at each of its retries. Telegram's 429s are mostly for
one chat (a busy group, one reader's chat), and they can ask for minutes, so one group's flood wait
froze every reader's answers and every channel's posts. Here a 429 waits in its own request only, and
only when the wait is short (FLOOD_WAIT_MAX): a longer one is raised at once, to the sender (which
leaves that chat's deliveries for after the wait: bot.deliver) or to a handler (whose reader would not
wait minutes for an answer: bot.handlers.errors drops it).

And so that a chat whose answers wait (a short flood wait waited out in place, a group past its limit, a
slow search) cannot hold every one of the bot's concurrent handlers, one chat's updates are handled at
most PER_CHAT_UPDATES at a time (FairUpdates)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import Any

from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

log = logging.getLogger("newsbot.flood")

FLOOD_WAIT_MAX = 10.0  # seconds a request waits out a 429 in place; a longer wait is raised at once
FLOOD_RETRIES = 3  # times a request is tried again after a short 429
DEFAULT_WAIT = 5.0  # seconds, when Telegram's 429 names none


def wait_of(exc: RetryAfter) -> float:
    """The seconds a 429 asks for (RetryAfter.retry_after: an int in PTB 22, a timedelta from PTB 23 on,
    or with PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait or DEFAULT_WAIT)


class ChatFloodLimiter(AIORateLimiter):
    """AIORateLimiter's throttling, with a 429 that holds only its own request (see the module)."""

    def __init__(self, max_wait: float = FLOOD_WAIT_MAX, retries: int = FLOOD_RETRIES) -> None:
        super().__init__()
        self.max_wait, self.retries = max_wait, retries

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        # (as AIORateLimiter: a group's limit for negative ids and @usernames, the overall one for any chat)
        group = chat_id if (isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str) else False
        retries = self.retries if rate_limit_args is None else rate_limit_args
        for attempt in range(retries + 1):
            try:
                return await self._run_request(
                    chat=chat_id is not None,
                    group=group,
                    allow_paid_broadcast=bool(data.get("allow_paid_broadcast", False)),
                    callback=callback,
                    args=args,
                    kwargs=kwargs,
                )
            except RetryAfter as exc:
                wait = wait_of(exc)
                if attempt == retries or wait > self.max_wait:
                    raise
                log.info("%s to %s: Telegram asks to wait %.0f s; trying again then", endpoint, chat_id, wait)
                await asyncio.sleep(wait + 0.1)
        raise AssertionError("unreachable")  # (the last attempt returns or raises)


PER_CHAT_UPDATES = 3  # updates of one chat (or one user, without a chat) handled at the same time


class FairUpdates(BaseUpdateProcessor):
    """Handles up to `total` updates at once, at most `per_chat` of them from one chat (inline queries,
    which have none: from one user). PTB's own processor took updates in arrival order up to `total`:
    a burst from one chat whose answers then waited (Telegram asking that chat to wait a few seconds)
    took every handler, and every other chat waited with it. An update waiting for its chat's turn
    holds none of the `total`."""

    def __init__(self, total: int, per_chat: int = PER_CHAT_UPDATES) -> None:
        # (PTB's semaphore only bounds the updates waiting here: the `total` is this class's own)
        super().__init__(max_concurrent_updates=max(total * 64, 1024))
        self.per_chat = per_chat
        self._running = asyncio.Semaphore(total)
        self._chats: dict[int, _Turns] = {}  # the chats with updates running or waiting

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    async def do_process_update(self, update: object, coroutine: Any) -> None:
        key = _chat_key(update)
        if key is None:
            async with self._running:
                await coroutine
            return
        turns = self._chats.get(key)
        if turns is None:
            turns = self._chats[key] = _Turns(self.per_chat)
        turns.held += 1
        try:
            async with turns.slots, self._running:
                await coroutine
        finally:
            turns.held -= 1
            if not turns.held:
                del self._chats[key]  # (the chats with nothing waiting are not kept)


class _Turns:
    """One chat's turns in FairUpdates: its slots, and how many of its updates run or wait for one."""

    __slots__ = ("held", "slots")

    def __init__(self, per_chat: int) -> None:
        self.slots = asyncio.Semaphore(per_chat)
        self.held = 0


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None
