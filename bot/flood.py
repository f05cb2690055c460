"""Telegram's flood limits: the rate limiter every Bot API call goes through, and how long a 429 is.

PTB's AIORateLimiter keeps the bot within Telegram's limits (30 messages a second, 20 a minute per
group), and that part is kept. What it does on a 429 is not: it holds every request of the bot, in every
chat, for as long as Telegram asked, and again at each of its retries. Telegram's 429s are mostly for
one chat (a busy group, one reader's chat), and they can ask for minutes, so one group's flood wait
froze every reader's answers and every channel's posts. Here a 429 waits in its own request only, and
only when the wait is short (FLOOD_WAIT_MAX): a longer one is raised at once, to the sender (which
leaves that chat's deliveries for after the wait: bot.deliver) or to a handler (whose reader would not
wait minutes for an answer: bot.handlers.errors drops it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

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
