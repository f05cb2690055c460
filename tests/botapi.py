"""A Bot API test server on 127.0.0.1 that python-telegram-bot talks to over real HTTP.

It plays Telegram: it queues updates the test creates (the test plays the user), serves them through
getUpdates, records what the bot sends, edits and answers, and rejects what Telegram rejects: text over
4096 characters, broken or unsupported HTML, callback data over 64 bytes, more than 100 buttons, unknown
chats, and edits that change nothing ("message is not modified"). Also formatting Telegram does not
take whole: links whose URLs add up to more than ~9,000 characters ("entities too long", as Telegram
refuses them: its tdlib maintainer puts the limit near 9,500), and more than 100 entities, which
Telegram takes but whose formatting past the 100th it drops without a word (refused here, so a test
sees it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-spoiler",
    "span",
    "tg-emoji",
}
JSON_FIELDS = {
    "reply_markup",
    "results",
    "commands",
    "entities",
    "link_preview_options",
    "allowed_updates",
    "reply_parameters",
    "scope",
}
BAD_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")
BAD_LT = re.compile(r"<(?!/?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?>)")


_RESTRICTED_RIGHTS = (
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_post_messages",
)


class ApiError(Exception):
    def __init__(
        self, description: str, code: int = 400, retry_after: int | None = None, migrate_to: int | None = None
    ):
        super().__init__(description)
        self.description, self.code, self.retry_after = description, code, retry_after
        self.migrate_to = migrate_to


MAX_ENTITIES = 100
MAX_ENTITY_LINK_CHARS = 9000


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.entities = 0
        self.link_chars = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.entities += 1
        self.link_chars += len(attrs.get("href") or "") if tag == "a" else 0
        if tag not in ALLOWED_TAGS:
            raise ApiError(f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        if tag == "a" and not attrs.get("href"):
            raise ApiError("Bad Request: can't parse entities: a tag without href")
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise ApiError("Bad Request: can't parse entities: span without tg-spoiler class")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            raise ApiError(
                f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag {tag}"
            )
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(markup: str) -> str:
    """Validate Telegram HTML; return the plain text it shows."""
    if BAD_AMP.search(markup):
        raise ApiError("Bad Request: can't parse entities: Unsupported HTML entity or bare &")
    if BAD_LT.search(markup):
        raise ApiError("Bad Request: can't parse entities: Unsupported start tag or bare <")
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    if checker.stack:
        raise ApiError(f"Bad Request: can't parse entities: unclosed tag {checker.stack[-1]}")
    if checker.link_chars > MAX_ENTITY_LINK_CHARS:
        raise ApiError("Bad Request: entities too long")
    if checker.entities > MAX_ENTITIES:
        raise ApiError(
            f"Bad Request: {checker.entities} entities: Telegram drops the formatting past the 100th"
        )
    return "".join(checker.text)


def check_text(text: str, parse_mode: str | None) -> str:
    plain = parse_html(text) if parse_mode == "HTML" else text
    if not plain.strip():
        raise ApiError("Bad Request: message text is empty")
    if len(plain) > 4096:
        raise ApiError("Bad Request: message is too long")
    return plain


def check_markup(markup: dict | None) -> None:
    if not markup:
        return
    rows = markup.get("inline_keyboard", [])
    buttons = [b for row in rows for b in row]
    if len(buttons) > 100:
        raise ApiError("Bad Request: too many inline keyboard buttons")
    for b in buttons:
        if "callback_data" in b:
            data = b["callback_data"]
            if not 1 <= len(data.encode("utf-8")) <= 64:
                raise ApiError("Bad Request: BUTTON_DATA_INVALID")
        elif "url" in b:
            # Telegram refuses a button URL with a space, a control or non-ASCII character in it, or an
            # http(s) host without a dot (`http://localhost`), and with it the whole message
            url = b["url"]
            host = re.match(r"^https?://(?:[^/?#@]*@)?([^/?#:]*)", url)
            if (
                not re.match(r"^(https?|tg)://", url)
                or re.search(r"[^\x21-\x7e]", url)
                or (host is not None and "." not in host.group(1).strip("."))
            ):
                raise ApiError("Bad Request: BUTTON_URL_INVALID")
        elif "switch_inline_query" not in b and "switch_inline_query_current_chat" not in b:
            raise ApiError("Bad Request: can't parse inline keyboard button")
        if not b.get("text"):
            raise ApiError("Bad Request: button text is empty")


@dataclass
class Sent:
    chat_id: int
    message_id: int
    text: str  # plain text as shown
    html: str
    reply_markup: dict | None
    thread_id: int | None = None
    edits: int = 0

    def buttons(self) -> list[dict]:
        return [b for row in (self.reply_markup or {}).get("inline_keyboard", []) for b in row]

    def button(self, label: str) -> dict:
        for b in self.buttons():
            if b["text"] == label:
                return b
        raise AssertionError(f"no button {label!r} in {[b['text'] for b in self.buttons()]}")


@dataclass
class FakeBotAPI:
    token: str
    bot_id: int = 900001
    username: str = "newsbot_test_bot"
    chats: dict[int, dict] = field(default_factory=dict)
    messages: dict[tuple[int, int], Sent] = field(default_factory=dict)
    log: list[tuple[str, dict]] = field(default_factory=list)  # every call: (method, params)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (method, description) we answered with
    callback_answers: dict[str, dict] = field(default_factory=dict)
    inline_answers: dict[str, dict] = field(default_factory=dict)
    commands: dict[str, list] = field(default_factory=dict)
    fail_next: dict[str, ApiError] = field(default_factory=dict)
    webhook: dict | None = None
    hang_after: dict[int, int] = field(default_factory=dict)  # chat -> sends to let through, then hang
    slow: dict[int, float] = field(default_factory=dict)  # chat -> seconds each send to it takes
    admins: dict[int, set[int]] = field(default_factory=dict)  # chat -> its administrators' user ids
    refusing: dict[int, ApiError] = field(default_factory=dict)  # chat -> what every send to it gets
    gone_topics: set[tuple[int, int]] = field(default_factory=set)  # (chat, thread) deleted topics
    too_late: set[str] = field(default_factory=set)  # button presses and inline queries past answering
    conflicts: int = 0  # the next getUpdates calls answered 409 Conflict
    # chat -> the event loop's time until which every message to it gets 429 with the seconds left
    flood: dict[int, float] = field(default_factory=dict)

    def __post_init__(self):
        self._updates: list[dict] = []
        self._new = asyncio.Event()
        self._ids = itertools.count(1)
        self._msg_ids: dict[int, itertools.count] = {}
        self._changed = asyncio.Condition()
        self.base_url = ""
        self.hanging = asyncio.Event()
        self._release = asyncio.Event()

    # --- server ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"

    async def stop(self) -> None:
        self._new.set()
        self._release.set()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        form = await request.post() if request.can_read_body else {}
        params: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, str) and (key in JSON_FIELDS or value[:1] in ("[", "{")):
                try:
                    value = json.loads(value)
                except (TypeError, ValueError):
                    pass
            params[key] = value
        self.log.append((method, params))
        try:
            if method in self.fail_next:
                raise self.fail_next.pop(method)
            handler = getattr(self, "m_" + method, None)
            if handler is None:
                raise ApiError(f"Not Found: method {method} not found", 404)
            result = await handler(params)
        except ApiError as exc:
            self.errors.append((method, exc.description))
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after:
                body["parameters"] = {"retry_after": exc.retry_after}
            if exc.migrate_to:
                body["parameters"] = {"migrate_to_chat_id": exc.migrate_to}
            return web.json_response(body, status=exc.code)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"ok": True, "result": result})

    # --- Bot API methods ------------------------------------------------------------------------

    def bot_user(self) -> dict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "NewsBot",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    async def m_getMe(self, p):
        return self.bot_user()

    async def m_deleteWebhook(self, p):
        self.webhook = None
        return True

    async def m_setWebhook(self, p):
        self.webhook = p
        return True

    async def m_getChat(self, p):
        ref = p["chat_id"]
        chat = self.chats.get(int(ref)) if str(ref).lstrip("-").isdigit() else None
        if chat is None:
            raise ApiError("Bad Request: chat not found")
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11}

    async def m_getWebhookInfo(self, p):
        hook = self.webhook or {}
        return {"url": hook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def m_getChatMember(self, p):
        chat = self.chats.get(int(p["chat_id"]))
        if chat is None:
            raise ApiError("Bad Request: chat not found")
        user_id = int(p["user_id"])
        admins = self.admins.get(chat["id"], set())
        if user_id in admins:
            return {"status": "creator", "user": self.user(user_id), "is_anonymous": False}
        return {"status": "member", "user": self.user(user_id)}

    def make_text_update(self, chat_id: int, text: str, user_id: int | None = None) -> dict:
        """An update as Telegram would POST it to a webhook."""
        message = self.send_text(chat_id, text, user_id)
        update = self._updates.pop()
        assert update["message"] is message
        return update

    async def m_setMyCommands(self, p):
        scope = p.get("scope") or {}
        key = p.get("language_code", "")
        if scope.get("type") == "chat":
            self._chat(scope.get("chat_id"))  # Telegram: "chat not found" unless the user opened the bot
            key = f"chat:{scope['chat_id']}"
        self.commands[key] = p["commands"]
        return True

    async def m_getUpdates(self, p):
        if self.conflicts > 0:  # another program polls with this token
            self.conflicts -= 1
            raise ApiError(
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance"
                " is running",
                409,
            )
        offset = int(p.get("offset", 0) or 0)
        timeout = float(p.get("timeout", 0) or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), timeout=min(timeout, 2))
            except asyncio.TimeoutError:
                pass
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        return self._updates[: int(p.get("limit", 100) or 100)]

    def _chat(self, chat_id) -> dict:
        try:
            cid = int(chat_id)
        except (TypeError, ValueError):
            raise ApiError("Bad Request: chat not found") from None
        if cid not in self.chats:
            raise ApiError("Bad Request: chat not found")
        return self.chats[cid]

    def _message_json(self, sent: Sent) -> dict:
        msg = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": self.chats[sent.chat_id],
            "from": self.bot_user(),
            "text": sent.text,
        }
        if sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        if sent.thread_id:
            msg["message_thread_id"] = sent.thread_id
        return msg

    def _flood_wait(self, chat_id: int) -> None:
        left = self.flood.get(chat_id, 0.0) - asyncio.get_running_loop().time()
        if left > 0:
            wait = math.ceil(left)
            raise ApiError(f"Too Many Requests: retry after {wait}", 429, retry_after=wait)

    def set_flood(self, chat_id: int, seconds: float) -> None:
        """Telegram's flood control for one chat: messages to it are refused for `seconds`."""
        self.flood[chat_id] = asyncio.get_running_loop().time() + seconds

    async def m_sendMessage(self, p):
        chat = self._chat(p.get("chat_id"))
        self._flood_wait(chat["id"])
        if chat["id"] in self.refusing:
            raise self.refusing[chat["id"]]
        if (chat["id"], int(p.get("message_thread_id") or 0)) in self.gone_topics:
            raise ApiError("Bad Request: message thread not found")
        if chat["id"] in self.hang_after:
            if self.hang_after[chat["id"]] <= 0:
                # never answer, never deliver: the bot cannot know whether this send went through
                self.hanging.set()
                await self._release.wait()
                raise ApiError("Bad Gateway", 502)
            self.hang_after[chat["id"]] -= 1
        plain = check_text(p.get("text", ""), p.get("parse_mode"))
        check_markup(p.get("reply_markup"))
        if chat["id"] in self.slow:
            await asyncio.sleep(self.slow[chat["id"]])
        counter = self._msg_ids.setdefault(chat["id"], itertools.count(1000))
        thread = int(p["message_thread_id"]) if p.get("message_thread_id") else None
        sent = Sent(chat["id"], next(counter), plain, p.get("text", ""), p.get("reply_markup"), thread)
        self.messages[(chat["id"], sent.message_id)] = sent
        return self._message_json(sent)

    async def m_editMessageText(self, p):
        chat = self._chat(p.get("chat_id"))
        key = (chat["id"], int(p.get("message_id", 0)))
        if key not in self.messages:
            raise ApiError("Bad Request: message to edit not found")
        plain = check_text(p.get("text", ""), p.get("parse_mode"))
        check_markup(p.get("reply_markup"))
        sent = self.messages[key]
        if sent.html == p.get("text", "") and (sent.reply_markup or None) == (p.get("reply_markup") or None):
            raise ApiError(
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message"
            )
        sent.text, sent.html, sent.reply_markup = plain, p.get("text", ""), p.get("reply_markup")
        sent.edits += 1
        return self._message_json(sent)

    def _in_time(self, query_id: str) -> None:
        if query_id in self.too_late:
            raise ApiError(
                "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )

    async def m_answerCallbackQuery(self, p):
        self._in_time(p["callback_query_id"])
        if len(p.get("text", "") or "") > 200:
            raise ApiError("Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[p["callback_query_id"]] = p
        return True

    async def m_answerInlineQuery(self, p):
        self._in_time(p["inline_query_id"])
        results = p.get("results", [])
        if len(results) > 50:
            raise ApiError("Bad Request: RESULTS_TOO_MUCH")
        for r in results:
            content = r.get("input_message_content", {})
            check_text(content.get("message_text", ""), content.get("parse_mode"))
            check_markup(r.get("reply_markup"))
        button = p.get("button")
        if isinstance(button, str):
            button = json.loads(button)
        if button is not None:
            start = button.get("start_parameter")
            if not button.get("text") or (
                start is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start)
            ):
                raise ApiError("Bad Request: BUTTON_INVALID")
            p["button"] = button
        self.inline_answers[p["inline_query_id"]] = p
        return True

    # --- the user's side --------------------------------------------------------------------------

    def add_chat(self, chat_id: int, kind: str = "private", title: str | None = None, **extra) -> dict:
        chat = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = extra.get("first_name", "Reader")
        else:
            chat["title"] = title or f"chat {chat_id}"
        if extra.get("is_forum"):
            chat["is_forum"] = True
        if extra.get("username"):
            chat["username"] = extra["username"]
        self.chats[chat_id] = chat
        return chat

    def _push(self, update: dict) -> int:
        update["update_id"] = next(self._ids)
        self._updates.append(update)
        self._new.set()
        return update["update_id"]

    @staticmethod
    def user(user_id: int, language_code: str | None = "en") -> dict:
        u = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"}
        if language_code:
            u["language_code"] = language_code
        return u

    def send_text(
        self, chat_id: int, text: str, user_id: int | None = None, language_code: str | None = "en"
    ) -> dict:
        chat = self.chats[chat_id]
        msg_id = next(self._msg_ids.setdefault(chat_id, itertools.count(1000)))
        message = {
            "message_id": msg_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id or chat_id, language_code),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        self._push({"message": message})
        return message

    def edit_text(self, message: dict, text: str) -> None:
        """The user edits a message they sent (send_text's return value)."""
        edited = {**message, "text": text, "edit_date": int(time.time())}
        if text.startswith("/"):
            edited["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        else:
            edited.pop("entities", None)
        self._push({"edited_message": edited})

    def upgrade_group(self, old: int, new: int, title: str = "Group", tell_bot: bool = True) -> None:
        """A group becomes a supergroup with a new id, as Telegram does it: sends to the old id are
        refused with the new one, and (`tell_bot`; not when the bot was offline) both chats get their
        service message."""
        self.add_chat(new, "supergroup", title)
        self.refusing[old] = ApiError(
            "Bad Request: group chat was upgraded to a supergroup chat", migrate_to=new
        )
        if not tell_bot:
            return
        for chat, key, value in ((old, "migrate_to_chat_id", new), (new, "migrate_from_chat_id", old)):
            msg_id = next(self._msg_ids.setdefault(chat, itertools.count(1000)))
            when = int(time.time())
            message = {
                "message_id": msg_id,
                "date": when,
                "chat": self.chats[chat],
                "from": self.user(1),
                key: value,
            }
            self._push({"message": message})

    def member_change(
        self, chat_id: int, old: str, new: str, by: int = 1, old_rights: dict | None = None, **rights
    ) -> None:
        """Telegram's my_chat_member update: the bot's status in a chat went from `old` to `new`
        ("member", "administrator", "restricted", "left", "kicked"); `rights`, `old_rights`: the new and
        the old member's fields besides the defaults (every right granted)."""

        def member(status: str, extra: dict) -> dict:
            out = {"user": self.bot_user(), "status": status, **extra}
            if status == "kicked":
                out.setdefault("until_date", 0)
            if status == "restricted":
                out = {"is_member": True, "until_date": 0, "can_send_messages": True, **out}
                for right in _RESTRICTED_RIGHTS:
                    out.setdefault(right, out["can_send_messages"])
            if status == "administrator":
                for right in _ADMIN_RIGHTS:
                    out.setdefault(right, True)
            return out

        self._push(
            {
                "my_chat_member": {
                    "chat": self.chats[chat_id],
                    "from": self.user(by),
                    "date": int(time.time()),
                    "old_chat_member": member(old, old_rights or {}),
                    "new_chat_member": member(new, rights),
                }
            }
        )

    def press(
        self, sent: Sent, label: str, user_id: int | None = None, language_code: str | None = "en"
    ) -> str:
        data = sent.button(label)["callback_data"]
        return self.press_data(sent, data, user_id, language_code)

    def press_data(
        self, sent: Sent, data: str, user_id: int | None = None, language_code: str | None = "en"
    ) -> str:
        query_id = f"cb{next(self._ids)}"
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.user(user_id or sent.chat_id, language_code),
                    "chat_instance": "ci",
                    "data": data,
                    "message": self._message_json(sent),
                }
            }
        )
        return query_id

    def inline(self, user_id: int, query: str, offset: str = "", language_code: str | None = "en") -> str:
        query_id = f"iq{next(self._ids)}"
        self._push(
            {
                "inline_query": {
                    "id": query_id,
                    "from": self.user(user_id, language_code),
                    "query": query,
                    "offset": offset,
                }
            }
        )
        return query_id

    # --- waiting --------------------------------------------------------------------------------

    async def wait_for(self, predicate, timeout: float = 10.0):
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise AssertionError(
                        "timed out waiting for the bot; last calls: "
                        + repr([m for m, _ in self.log[-5:]])
                        + f" errors: {self.errors[-3:]}"
                    )
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    pass

    def sent_to(self, chat_id: int) -> list[Sent]:
        return sorted((m for (c, _), m in self.messages.items() if c == chat_id), key=lambda m: m.message_id)

    async def next_message(self, chat_id: int, after: int = 0, timeout: float = 10.0) -> Sent:
        """The first message the bot sent to `chat_id` with a message_id above `after`."""

        def found():
            new = [m for m in self.sent_to(chat_id) if m.message_id > after]
            return new[0] if new else None

        return await self.wait_for(found, timeout)

    async def ask(self, chat_id: int, text: str, **kw) -> Sent:
        """Send a message as the user and return the bot's reply."""
        before = max([m.message_id for m in self.sent_to(chat_id)], default=0)
        message = self.send_text(chat_id, text, **kw)
        return await self.next_message(chat_id, max(before, message["message_id"]))

    async def ask_until(self, chat_id: int, text: str, expect: str, timeout: float = 30.0, **kw) -> Sent:
        """Ask again until the reply contains `expect` (a bot whose first sync runs in the background
        answers at once, from what is indexed so far)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            reply = await self.ask(chat_id, text, **kw)
            if expect in reply.text or asyncio.get_running_loop().time() > deadline:
                return reply
            await asyncio.sleep(0.2)

    async def callback_answer(self, query_id: str, timeout: float = 10.0) -> dict:
        return await self.wait_for(lambda: self.callback_answers.get(query_id), timeout)

    async def inline_answer(self, query_id: str, timeout: float = 10.0) -> dict:
        return await self.wait_for(lambda: self.inline_answers.get(query_id), timeout)


def bot_settings(api: FakeBotAPI, database, archive_root, **overrides):
    """Settings for a bot talking to `api`, serving `archive_root` from `database`."""
    from store.settings import Settings

    values: dict[str, Any] = dict(
        bot_token=api.token, telegram_base_url=api.base_url, database_path=database, archive_dir=archive_root
    )
    return Settings(**{**values, **overrides})


async def start_bot(settings, poll_timeout: int = 1, synced: bool = True, rate_limit: bool = False):
    """Build the real Application for `settings`, run its setup, and start long polling; `synced`:
    once the first sync is done (else at once, while it runs); `rate_limit`: with the rate limiter
    `newsbot run` has (bot.flood; off elsewhere, so that tests are not held to 20 messages a minute
    in a group)."""
    from telegram import Update

    from bot.app import build_application, setup
    from bot.serve import polling_errors

    app = build_application(settings, rate_limit=rate_limit)
    await app.initialize()
    await setup(app)
    if synced:
        await app.bot_data["svc"].first_sync  # most tests start from a synced archive
    await app.start()
    assert app.updater is not None  # (built with one: bot.app.build_application)
    await app.updater.start_polling(
        poll_interval=0.0,
        timeout=poll_timeout,
        allowed_updates=Update.ALL_TYPES,
        error_callback=polling_errors(app),  # as `newsbot run` (bot.serve)
    )
    return app


async def stop_bot(app) -> None:
    from telegram.error import InvalidToken

    from bot.app import teardown

    try:
        await app.updater.stop()
    except InvalidToken:
        # its polling ended on a refused token, as `newsbot run` lets it when the bot learnt that the
        # token is refused (bot.serve): a test that revoked it mid-run
        if app.bot_data.get("token_refused") is None:
            raise
    await app.stop()
    await teardown(app)
    await app.shutdown()
