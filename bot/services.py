"""Long-lived services the handlers share (kept in `application.bot_data["svc"]`), and the one place
that decides a chat's language."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from store.db import Store
from store.search import SearchPage, search
from store.settings import Settings

from .i18n import I18n
from .keyboards import cat_hash

log = logging.getLogger("newsbot")
LANGUAGES_CACHED = 10_000  # chats whose language is kept in memory (the others are read when they write)


@dataclass
class Services:
    store: Store
    i18n: I18n
    settings: Settings
    site_name: str = "newsbot"
    bot: Any = None
    follower: Any = None
    deliverer: Any = None
    flood: Any = None  # handlers.guard.Flood, or None when neither flood limit is set
    inline_flood: Any = None  # handlers.guard.Flood for inline queries, or None (USER_UPDATES_PER_MINUTE 0)
    group_flood: Any = None  # handlers.guard.Flood of the answers in each group, or None (no rate limiter)
    first_sync: asyncio.Task | None = None  # the sync started with the bot (in the background)
    warming: asyncio.Future | None = None  # what a first search needs, loading (store.search.warm_up)
    started: float = field(default_factory=time.time)
    _languages: dict[int, str | None] = field(default_factory=dict)
    _categories: dict[str, tuple[str, str]] = field(default_factory=dict)  # hash -> (key, name)
    _write_failure_reported: bool = False

    async def language(self, update: Update) -> str:
        """The chat's chosen language (/lang), else the user's Telegram language, else the default."""
        chat = update.effective_chat
        if chat is not None:
            if chat.id not in self._languages:
                if len(self._languages) >= LANGUAGES_CACHED:  # forget the chat read longest ago
                    del self._languages[next(iter(self._languages))]
                self._languages[chat.id] = await self.store.chat_language(chat.id)
            chosen = self._languages[chat.id]
            if chosen in self.i18n.catalogs:
                return chosen
        user = update.effective_user
        return self.i18n.resolve(user.language_code if user else None)

    def forget_language(self, chat_id: int) -> None:
        """Read the chat's language from the store again at its next update (it was moved there)."""
        self._languages.pop(chat_id, None)

    async def set_language(self, chat_id: int, lang: str | None) -> None:
        await self.store.set_chat_language(chat_id, lang)
        self._languages[chat_id] = lang

    async def category_by_hash(self, digest: str) -> tuple[str, str] | None:
        """(key, name) of a category from the short hash used in buttons."""
        if digest not in self._categories:
            rows, _ = await self.store.terms("c", limit=1_000_000)
            self._categories = {cat_hash(key): (key, name) for key, name, _ in rows}
        return self._categories.get(digest)

    async def remember_query(self, chat_id: int, text: str) -> int | None:
        """The id of a search query for its paging buttons, or None when the database refuses writes
        (read-only, full disk): the search still answers, without paging."""
        try:
            return await self.store.save_query(chat_id, text)
        except sqlite3.Error as exc:
            await self.write_failed(exc)
            return None

    async def write_failed(self, exc: BaseException) -> None:
        """A database write failed while reads go on: logged each time, admins told once per process."""
        log.warning("database write failed: %s", exc)
        if not self._write_failure_reported:
            self._write_failure_reported = True
            await self.notify("alert.db_write_failed", error=str(exc))

    def indexing(self) -> tuple[int, int] | None:
        """(done, total) while the first sync is still building the index, else None."""
        if self.first_sync is None or self.first_sync.done() or self.follower is None:
            return None
        return self.follower.progress or (0, 0)

    def indexing_note(self, lang: str, key: str = "search.indexing") -> str:
        """The message `key` with the first sync's progress while it runs; "" once the index is built."""
        progress = self.indexing()
        if progress is None:
            return ""
        done, total = progress
        return self.i18n.t(lang, key, done=f"{done:,}", total=f"{total:,}" if total else "?")

    def is_admin(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and user.id in self.settings.admin_ids

    async def search(self, update: Update, text: str, *, limit: int, offset: int = 0) -> SearchPage:
        """A user's search (store.search.search); the time it kept the database busy counts against the
        user's budget (handlers.guard.Flood)."""
        page = await search(self.store, text, limit=limit, offset=offset)
        user = update.effective_user
        if self.flood is not None and user is not None:
            self.flood.charge(user.id, page.seconds)
        return page

    def inline_allowed(self, update: Update) -> bool:
        """Whether the user may have this inline query answered: within their inline queries a minute and
        their searches' database time (admins always are)."""
        user = update.effective_user
        if user is None or self.is_admin(update):
            return True
        if self.inline_flood is not None and not self.inline_flood.allow(user.id)[0]:
            return False
        return self.flood is None or not self.flood.over_budget(user.id)

    async def tell(self, chat_id: int, key: str, **values: object) -> None:
        """Send one message to one user (in the chat's language if chosen, else the default)."""
        lang = await self.store.chat_language(chat_id)
        text = self.i18n.t(lang if lang in self.i18n.catalogs else self.i18n.default, key, **values)
        try:
            await self.bot.send_message(chat_id, text)
        except Exception as exc:
            log.warning("could not tell %s: %s", chat_id, exc)

    async def notify(self, key: str, **values: object) -> None:
        """Tell every admin something that needs a human (in the default language)."""
        text = self.i18n.t(self.i18n.default, key, **values)
        for admin in self.settings.admin_ids:
            try:
                await self.bot.send_message(admin, text)
            except Exception as exc:  # an admin who never opened a chat with the bot, etc.
                log.warning("could not notify admin %s: %s", admin, exc)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["svc"]
