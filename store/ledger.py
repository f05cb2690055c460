"""Auto-post rules (from settings, admins and users' alerts) and the delivery ledger."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .base import StoreBase, _json_list, _locked, now_ts
from .text import fold


class LedgerStore(StoreBase):
    # --- auto-post rules and the delivery ledger ------------------------------------------------

    @_locked
    async def add_rule(
        self,
        chat: str,
        *,
        thread: int = 0,
        categories: Sequence[str] = (),
        query: str = "",
        origin: str = "admin",
        owner: int | None = None,
    ) -> tuple[int, bool]:
        """(rule id, created?). A new rule only sees posts first indexed after the current sync.
        Categories are kept as folded keys, as posts' categories are (post_terms)."""
        cats = _json_list(sorted({fold(c) for c in categories}))
        chat = await self.current_chat(chat)
        rows = await self._fetch(
            "SELECT id FROM rules WHERE chat=? AND thread=? AND categories=? AND query=? AND origin=?",
            (chat, thread, cats, query, origin),
        )
        if rows:
            return int(rows[0][0]), False
        cur = await self.conn.execute(
            "INSERT INTO rules (chat, thread, categories, query, origin, owner, since_seq, created)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (chat, thread, cats, query, origin, owner, await self.current_seq(), now_ts()),
        )
        return int(cur.lastrowid or 0), True

    async def current_chat(self, chat: str) -> str:
        """The chat's id now: the supergroup a group was upgraded to (move_chat), else the chat itself."""
        rows = await self._fetch("SELECT new FROM chat_moves WHERE old=?", (chat,))
        return str(rows[0][0]) if rows else chat

    @_locked
    async def move_chat(self, old: int, new: int) -> list[int]:
        """A group became a supergroup with a new id: its rules, deliveries, language and saved queries
        move to the new id, and a rule added later under the old id is stored under the new one. Returns
        the ids of the rules that moved (none when the move was already recorded)."""
        if old == new:
            return []
        was, now = str(old), str(new)
        async with self._transaction():
            await self.conn.execute("INSERT OR REPLACE INTO chat_moves (old, new) VALUES (?, ?)", (was, now))
            await self.conn.execute("UPDATE chat_moves SET new=? WHERE new=?", (now, was))
            moved = []
            for rule_id, thread, cats, query, origin in await self._fetch(
                "SELECT id, thread, categories, query, origin FROM rules WHERE chat=?", (was,)
            ):
                same = await self._fetch(
                    "SELECT id FROM rules WHERE chat=? AND thread=? AND categories=? AND query=? AND origin=?",
                    (now, thread, cats, query, origin),
                )
                if same:  # the new chat has this rule already: it takes the old one's deliveries
                    await self.conn.execute(
                        "UPDATE deliveries SET rule=? WHERE rule=?", (same[0][0], rule_id)
                    )
                    await self.conn.execute("DELETE FROM rules WHERE id=?", (rule_id,))
                else:
                    await self.conn.execute("UPDATE rules SET chat=? WHERE id=?", (now, rule_id))
                moved.append(int(rule_id))
            # a post the new chat already has stays with the old id, and is not sent again
            await self.conn.execute("UPDATE OR IGNORE deliveries SET chat=? WHERE chat=?", (now, was))
            await self.conn.execute(
                "UPDATE deliveries SET status='merged', updated=? WHERE chat=? AND status IN ('pending','sending')",
                (now_ts(), was),
            )
            await self.conn.execute(
                "INSERT OR IGNORE INTO chat_prefs (chat_id, language) SELECT ?, language FROM chat_prefs"
                " WHERE chat_id=?",
                (new, old),
            )
            await self.conn.execute("UPDATE OR IGNORE saved_queries SET chat=? WHERE chat=?", (new, old))
        return moved

    async def rules(self, origin: str | None = None, owner: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, chat, thread, categories, query, origin, owner, since_seq, paused FROM rules WHERE 1"
        )
        sql, params = _scoped(sql, [], origin, owner)
        rows = await self._fetch(sql + " ORDER BY id", params)
        keys = ("id", "chat", "thread", "categories", "query", "origin", "owner", "since_seq", "paused")
        out = []
        for r in rows:
            rule = dict(zip(keys, r, strict=True))
            rule["categories"] = json.loads(rule["categories"])
            out.append(rule)
        return out

    @_locked
    async def remove_rule(self, rule_id: int, origin: str | None = None, owner: int | None = None) -> bool:
        sql, params = _scoped("DELETE FROM rules WHERE id=?", [rule_id], origin, owner)
        cur = await self.conn.execute(sql, params)
        if cur.rowcount:
            await self.conn.execute(
                "UPDATE deliveries SET status='failed', error='rule removed', updated=? WHERE rule=? AND status"
                " IN ('pending','sending')",
                (now_ts(), rule_id),
            )
        return bool(cur.rowcount)

    @_locked
    async def pause_rules(self, chat: str, reason: str, thread: int | None = None) -> list[int]:
        """Pause the rules posting to a chat (or to one of its topics) that refused the bot; they resume
        with resume_chat_rules when the bot may post there again. Returns the ids newly paused."""
        where = "chat=? COLLATE NOCASE AND paused IS NULL"  # (an @username in any case)
        params: list[object] = [chat]
        if thread is not None:
            where += " AND thread=?"
            params.append(thread)
        rows = await self._fetch(
            f"UPDATE rules SET paused=?, paused_by='chat' WHERE {where} RETURNING id", [reason, *params]
        )
        return sorted(r[0] for r in rows)

    @_locked
    async def resume_chat_rules(self, chat: str) -> list[int]:
        """Resume the chat's rules that were paused because it refused the bot (not those whose filter
        cannot run). Returns their ids."""
        rows = await self._fetch(
            "UPDATE rules SET paused=NULL, paused_by=NULL WHERE chat=? COLLATE NOCASE AND paused_by='chat'"
            " RETURNING id",  # (an @username in any case)
            (chat,),
        )
        return sorted(r[0] for r in rows)

    @_locked
    async def pause_rule(self, rule_id: int, reason: str) -> None:
        """Pause a rule whose filter cannot run (it stays paused until an admin resumes it)."""
        await self.conn.execute("UPDATE rules SET paused=?, paused_by='filter' WHERE id=?", (reason, rule_id))

    @_locked
    async def resume_rule(self, rule_id: int) -> bool:
        cur = await self.conn.execute("UPDATE rules SET paused=NULL, paused_by=NULL WHERE id=?", (rule_id,))
        return bool(cur.rowcount)

    async def new_posts_since(self, seq: int) -> list[tuple[int, int, int]]:
        """(rowid, first_seen, ts) of posts first indexed after sync `seq`, oldest first."""
        return await self._fetch(
            "SELECT rowid, first_seen, ts FROM posts WHERE first_seen > ? ORDER BY ts, rowid", (seq,)
        )

    @_locked
    async def enqueue(self, items: Sequence[tuple[int, str, int, int]], delivered_seq: int) -> int:
        """Record (rule, chat, thread, post) deliveries as pending and move the watermark, atomically.
        Returns how many are pending (to be sent).

        A post goes to a chat/topic once even when several rules match it, and a story once: a later
        report of a story the chat/topic already has (pending, sent, or being sent) is recorded as
        'merged' and not sent. Items come oldest first, so a story's first report is the one sent.
        """
        now = now_ts()
        async with self._transaction():
            pending = "SELECT COUNT(*) FROM deliveries WHERE status='pending'"
            before = (await self._fetch(pending))[0][0]
            await self.conn.executemany(
                "INSERT OR IGNORE INTO deliveries (rule, chat, thread, post, status, created, updated)"
                f" SELECT ?1, ?2, ?3, ?4, CASE WHEN {_STORY_DELIVERED} THEN 'merged' ELSE 'pending' END, ?5, ?5",
                [(r, c, t, p, now) for r, c, t, p in items],
            )
            added = (await self._fetch(pending))[0][0] - before
            await self._put_meta("delivered_seq", str(delivered_seq))
        return int(added)

    async def due_deliveries(self) -> list[dict[str, Any]]:
        """Pending deliveries, and those left 'sending' by a crash (outcome unknown: they are sent again)."""
        rows = await self._fetch(
            "SELECT d.id, d.rule, d.chat, d.thread, d.post, d.attempts, d.created FROM deliveries d"
            " JOIN rules r ON r.id = d.rule"
            " WHERE d.status IN ('pending','sending') AND r.paused IS NULL ORDER BY d.chat, d.thread, d.id"
        )
        keys = ("id", "rule", "chat", "thread", "post", "attempts", "created")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @_locked
    async def mark_deliveries(
        self,
        ids: Sequence[int],
        status: str,
        *,
        error: str | None = None,
        message_id: int | None = None,
        attempt: bool = False,
    ) -> None:
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self.conn.execute(
            f"UPDATE deliveries SET status=?, error=?, message_id=COALESCE(?, message_id), updated=?,"
            f" attempts = attempts + ? WHERE id IN ({marks})",
            (status, error, message_id, now_ts(), 1 if attempt else 0, *ids),
        )

    @_locked
    async def forget_deliveries(self, older_than_seconds: int) -> int:
        """Forget the deliveries finished (sent, failed, merged into a story already sent, expired, or
        withdrawn)
        more than so many seconds ago; pending ones are kept however old. Returns how many were
        forgotten. (The partial index is named: the planner would otherwise walk every finished row by
        status.)"""
        cur = await self.conn.execute(
            "DELETE FROM deliveries INDEXED BY deliveries_done"
            " WHERE status IN ('sent', 'failed', 'merged', 'expired', 'withdrawn') AND updated < ?",
            (now_ts() - older_than_seconds,),
        )
        return cur.rowcount

    async def delivery_counts(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}


# Whether chat ?2 / thread ?3 has (or is sending) another report of post ?4's story.
_STORY_DELIVERED = (
    "EXISTS (SELECT 1 FROM post_story mine JOIN post_story other ON other.story = mine.story"
    " JOIN deliveries d ON d.post = other.rowid AND d.chat = ?2 AND d.thread = ?3"
    " WHERE mine.rowid = ?4 AND other.rowid != ?4 AND d.status IN ('pending', 'sending', 'sent'))"
)


def _scoped(sql: str, params: list[Any], origin: str | None, owner: int | None) -> tuple[str, list[Any]]:
    """Restrict a rules statement to one origin and/or owner."""
    if origin is not None:
        sql += " AND origin=?"
        params.append(origin)
    if owner is not None:
        sql += " AND owner=?"
        params.append(owner)
    return sql, params
