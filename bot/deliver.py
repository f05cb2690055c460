"""The sender: works through the delivery ledger (bot.follow queues the deliveries), one card per post or
a digest when a chat has many waiting, within Telegram's limits; and what it does when Telegram refuses a
send: wait out a 429 or an outage, pause the rules of a chat or topic that refuses the bot, follow a
group upgraded to a supergroup."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from store.db import Store, now_ts
from store.settings import Settings

from . import keyboards as kb
from . import render
from .flood import wait_of

log = logging.getLogger("newsbot.deliver")
MAX_ATTEMPTS = 5
# A send that fails for the network or Telegram's servers (a timeout, a 5xx) is not the message's fault:
# it waits for them to come back, rounds further apart (from ROUND_SECONDS doubling up to
# MAX_ROUND_SECONDS), for up to GIVE_UP_AFTER seconds from when the post was queued (news a day late is
# no news; the admins are told). Other errors fail the delivery after MAX_ATTEMPTS sends.
ROUND_SECONDS = 30.0
MAX_ROUND_SECONDS = 600.0
GIVE_UP_AFTER = 24 * 3600
FAILURE_TOLD_FOR = 3600.0  # seconds the admins are not told again of the same failure in the same chat
STOP_TIMEOUT = 15.0  # seconds a stop waits for the send in flight


def chat_ref(chat: str) -> int | str:
    """A rule's chat as the Bot API wants it: an int id, or an @username."""
    return int(chat) if chat.lstrip("-").isdigit() else chat


# How Telegram words a send it refuses for the whole chat, or for the topic, whatever the message: the
# bot was removed or blocked (any 403), lost its rights, or the chat or topic is gone or closed. The rules
# posting there are paused (not each post failed, the admins told at every post) until the bot may post
# there again (bot.handlers.chats) or an admin resumes them.
CHAT_REFUSALS = (
    "chat not found",
    "rights",  # not enough rights to send…, have no rights to send…, need administrator rights…
    "chat_write_forbidden",
    "chat_restricted",
    "channel_private",
    "deactivated",
    "peer_id_invalid",
    "not a member",
)
TOPIC_REFUSALS = ("thread not found", "topic_closed", "topic_deleted", "topic_id_invalid")


def refusal(exc: TelegramError) -> str | None:
    """'chat' or 'topic' when Telegram refused the send for the whole chat or topic, else None (this
    message's own fault)."""
    text = str(exc).lower()
    if isinstance(exc, Forbidden) or any(words in text for words in CHAT_REFUSALS):
        return "chat"
    if any(words in text for words in TOPIC_REFUSALS):
        return "topic"
    return None


def is_user(chat: str) -> bool:
    """Whether a rule's chat is a user's private chat (a subscription): positive ids are users."""
    return chat.isdigit()


async def chat_refused(
    store: Store, notify, names: list[str], reason: str, thread: int | None = None
) -> list[int]:
    """A chat (named by its id or @username: rules use either), or one of its topics, refuses the bot:
    pause the rules posting there and tell the admins once (only rules not paused yet are returned).
    Returns the rules paused."""
    paused = [rule for name in names for rule in await store.pause_rules(name, reason, thread)]
    if paused and not is_user(names[0]):  # (a reader blocking the bot is theirs to decide)
        await notify("alert.paused", chat=names[0], reason=reason, rules=", ".join(map(str, paused)))
    return paused


async def chat_allowed(store: Store, notify, names: list[str]) -> list[int]:
    """The bot may post to a chat again: resume the rules paused because it refused the bot (not those
    whose filter cannot run) and tell the admins. Returns the rules resumed."""
    resumed = [rule for name in names for rule in await store.resume_chat_rules(name)]
    if resumed and not is_user(names[0]):  # (a reader unblocking the bot is theirs to decide)
        await notify("alert.resumed", chat=names[0], rules=", ".join(map(str, resumed)))
    return resumed


async def follow_move(store: Store, notify, old: int, new: int) -> list[int]:
    """A group was upgraded to a supergroup (a new chat id): its rules, deliveries, language and saved
    queries follow it (store.move_chat), and the admins are told once. Returns the rules that moved."""
    moved = await store.move_chat(old, new)
    if moved:
        log.info("chat %s moved to %s: rules %s follow it", old, new, moved)
        await notify("alert.chat_moved", old=old, new=new, rules=", ".join(map(str, moved)))
    return moved


class Deliverer:
    """Sends due deliveries: one card per post, or a digest when a chat has many waiting."""

    def __init__(self, bot, store: Store, settings: Settings, i18n, notify):
        self.bot, self.store, self.settings, self.i18n, self.notify = bot, store, settings, i18n, notify
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._outage = False  # the last send failed for the network or Telegram's servers
        self.wait = ROUND_SECONDS  # between rounds (unless kicked): longer while the outage lasts
        self._told: dict[tuple[str, str], float] = {}  # (chat, failure) -> when the admins were told
        # chat -> when Telegram lets the bot send to it again (a 429 longer than bot.flood waits in place)
        self._resting: dict[str, float] = {}

    async def _failed(self, chat: str, reason: str) -> None:
        """Tell the admins a delivery failed; the same failure in the same chat again within
        FAILURE_TOLD_FOR seconds is only logged (one broken card template would fail every post)."""
        now = time.monotonic()
        if now - self._told.get((chat, reason), float("-inf")) < FAILURE_TOLD_FOR:
            log.warning("delivery to %s failed again: %s", chat, reason)
            return
        self._told = {key: when for key, when in self._told.items() if now - when < FAILURE_TOLD_FOR}
        self._told[(chat, reason)] = now
        await self.notify("alert.send_failed", chat=chat, reason=reason)

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Finish the send in flight and record it in the ledger, start no other; after `timeout` the
        round is cancelled (a send cut off then stays 'sending' and is sent again at the next start)."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.wait)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def run_once(self) -> None:
        async with self._lock:
            self._outage = False
            due = await self.store.due_deliveries()
            now = time.monotonic()
            self._resting = {chat: until for chat, until in self._resting.items() if until > now}
            for (chat, thread), group in itertools.groupby(due, key=lambda d: (d["chat"], d["thread"])):
                if self._stopping or self._outage:  # (Telegram is unreachable: no use trying other chats)
                    break
                if chat not in self._resting:  # (a chat in a flood wait: its posts wait, the others go)
                    await self._deliver_group(chat, thread, list(group))
            self.wait = min(self.wait * 2, MAX_ROUND_SECONDS) if self._outage else ROUND_SECONDS
            if self._resting:  # the next round when the first flood wait ends
                self.wait = min(self.wait, max(min(self._resting.values()) - time.monotonic(), 0.1))

    async def _deliver_group(self, chat: str, thread: int, items: list[dict]) -> None:
        posts = {p.rowid: p for p in await self.store.get_posts([i["post"] for i in items])}
        gone = [i["id"] for i in items if i["post"] not in posts]
        # (deleted, or withdrawn with `published: false`, before its chat could take it: nothing failed)
        await self.store.mark_deliveries(gone, "withdrawn", error="post no longer in the archive")
        items = [i for i in items if i["post"] in posts]
        hours = self.settings.deliver_max_age_hours
        if hours:  # (a chat that refused the bot for a week and takes it back gets this week's news only)
            oldest = now_ts() - hours * 3600
            stale = [i["id"] for i in items if posts[i["post"]].ts < oldest]
            if stale:
                log.info("%d posts for %s are older than %d h now: not sent", len(stale), chat, hours)
                await self.store.mark_deliveries(
                    stale, "expired", error=f"older than {hours} h when it could be sent"
                )
                items = [i for i in items if posts[i["post"]].ts >= oldest]
        if not items:
            return
        lang = self.i18n.default
        if len(items) > self.settings.digest_threshold:
            blocks = [render.digest_item(posts[i["post"]]) for i in items]
            messages = render.split_blocks(self.i18n.t(lang, "digest.header", count=len(items)), blocks)
            ids = [i["id"] for i in items]
            await self.store.mark_deliveries(ids, "sending", attempt=True)
            for text in messages:
                if not await self._send(chat, thread, text, None, items):
                    return
            await self.store.mark_deliveries(ids, "sent")
            return
        for item in items:
            if self._stopping:
                return  # the rest stay pending for the next start
            post = posts[item["post"]]
            await self.store.mark_deliveries([item["id"]], "sending", attempt=True)
            message = await self._send(
                chat,
                thread,
                render.post_card(post),
                kb.post_links(self.i18n, lang, post),
                [item],
            )
            if message is None:
                return  # chat paused or retry later: leave the rest of this chat for later
            await self.store.mark_deliveries(
                [item["id"]], "sent", message_id=getattr(message, "message_id", None)
            )

    async def _send(self, chat: str, thread: int, text: str, keyboard, items: list[dict]):
        """Send one message for the deliveries `items`. On a refusal: pause the chat's rules when it is
        the chat's, leave the chat's deliveries for after a flood wait or an outage, fail the delivery
        when it is the message's own fault. The message, or None."""
        ids = [i["id"] for i in items]
        try:
            return await self.bot.send_message(
                chat_ref(chat), text, reply_markup=keyboard, message_thread_id=thread or None
            )
        except RetryAfter as exc:  # a 429 longer than the rate limiter waits in place (bot.flood)
            wait = wait_of(exc)
            self._resting[chat] = time.monotonic() + wait
            log.info("Telegram asks to wait %.0f s before sending to %s: its posts wait", wait, chat)
            await self._not_now(chat, items, f"flood wait of {wait:.0f} s")
        except ChatMigrated as exc:  # a group became a supergroup: send to its new id
            await self.store.mark_deliveries(ids, "pending")
            ref = chat_ref(chat)
            if isinstance(ref, int):
                await follow_move(self.store, self.notify, ref, int(exc.new_chat_id))
            self.kick()  # the next round reads the deliveries under the new id
        except (Forbidden, BadRequest) as exc:
            reason = str(exc)
            scope = refusal(exc)
            if scope is not None:
                await self.store.mark_deliveries(ids, "pending", error=reason)
                topic = thread if scope == "topic" else None
                await chat_refused(self.store, self.notify, [chat], reason, topic)
            else:
                await self.store.mark_deliveries(ids, "failed", error=reason)
                await self._failed(chat, reason)
        except (NetworkError, TelegramError) as exc:
            if isinstance(exc, NetworkError):  # (PTB's for timeouts and 5xx answers)
                self._outage = True
                await self._not_now(chat, items, str(exc))
            elif max(i["attempts"] for i in items) + 1 >= MAX_ATTEMPTS:
                await self.store.mark_deliveries(ids, "failed", error=str(exc))
                await self._failed(chat, str(exc))
            else:
                await self.store.mark_deliveries(ids, "pending", error=str(exc))
        return None

    async def _not_now(self, chat: str, items: list[dict], reason: str) -> None:
        """Telegram cannot take the chat's posts now (an outage, a flood wait), through no fault of
        theirs: they wait for a later round, up to GIVE_UP_AFTER seconds from when they were queued."""
        ids = [i["id"] for i in items]
        if now_ts() - min(i["created"] for i in items) >= GIVE_UP_AFTER:
            await self.store.mark_deliveries(ids, "failed", error=reason)
            await self._failed(chat, reason)
        else:
            await self.store.mark_deliveries(ids, "pending", error=reason)
