"""What the bot remembers about chats: each chat's language, and the search queries behind paging
buttons (bound to the chat they were sent to)."""

from __future__ import annotations

from .base import StoreBase, _locked, now_ts

SAVED_PER_CHAT = 200


class ChatStore(StoreBase):
    # --- what the bot remembers ------------------------------------------------------------

    async def chat_language(self, chat_id: int) -> str | None:
        rows = await self._fetch("SELECT language FROM chat_prefs WHERE chat_id=?", (chat_id,))
        return rows[0][0] if rows else None

    @_locked
    async def set_chat_language(self, chat_id: int, language: str | None) -> None:
        await self.conn.execute(
            "INSERT INTO chat_prefs (chat_id, language) VALUES (?, ?)"
            " ON CONFLICT(chat_id) DO UPDATE SET language=excluded.language",
            (chat_id, language),
        )

    @_locked
    async def save_query(self, chat_id: int, text: str) -> int:
        """A short id for a query text sent to a chat (for buttons, whose data is limited to 64 bytes).
        The id is only valid in that chat. A chat keeps its SAVED_PER_CHAT latest queries: older buttons
        say "expired" (one user's stream of distinct searches must not fill the disk)."""
        async with self._transaction():
            rows = await self._fetch(
                "INSERT INTO saved_queries (chat, text, used) VALUES (?, ?, ?)"
                " ON CONFLICT(chat, text) DO UPDATE SET used=excluded.used RETURNING id",
                (chat_id, text, now_ts()),
            )
            await self.conn.execute(
                "DELETE FROM saved_queries WHERE chat=? AND id NOT IN"
                " (SELECT id FROM saved_queries WHERE chat=? ORDER BY used DESC, id DESC LIMIT ?)",
                (chat_id, chat_id, SAVED_PER_CHAT),
            )
        return int(rows[0][0])

    async def saved_query(self, chat_id: int, query_id: int) -> str | None:
        rows = await self._fetch("SELECT text FROM saved_queries WHERE id=? AND chat=?", (query_id, chat_id))
        return rows[0][0] if rows else None

    @_locked
    async def forget_queries(self, older_than_seconds: int) -> int:
        cur = await self.conn.execute(
            "DELETE FROM saved_queries WHERE used < ?", (now_ts() - older_than_seconds,)
        )
        return cur.rowcount
