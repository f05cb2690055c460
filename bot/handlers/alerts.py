"""Users' alerts: /subscribe <category | query>, /unsubscribe <id | all>, /subscriptions.

A subscription is an auto-post rule whose chat is the user's private chat: the same ledger and limits.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from store.search import MAX_QUERY_CHARS, MAX_TERMS, parse_query
from store.text import fold

from .. import render
from ..services import services
from .common import ascii_int, reply, reply_lines


async def subscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    user = update.effective_user
    text = " ".join(context.args or []).strip()
    if not text or user is None:
        await reply(update, svc.i18n.t(lang, "subscribe.usage"))
        return
    owned = await svc.store.rules(origin="subscription", owner=user.id)
    limit = svc.settings.max_subscriptions
    if len(owned) >= limit:
        await reply(update, svc.i18n.t(lang, "subscribe.too_many", limit=limit))
        return
    key = fold(text.removeprefix("cat:"))
    found = await svc.store.term_count("c", key) if len(key) <= MAX_QUERY_CHARS else None
    if found is not None:
        rule_id, created = await svc.store.add_rule(
            str(user.id), categories=[key], origin="subscription", owner=user.id
        )
        what = "cat:" + found[0]
    else:
        query = parse_query(text)
        if query.cut or query.is_empty:
            key = "subscribe.too_long" if query.cut else "subscribe.usage"
            await reply(update, svc.i18n.t(lang, key, chars=MAX_QUERY_CHARS, terms=MAX_TERMS))
            return
        if (await svc.search(update, text, limit=1)).too_costly:  # it would be paused at the next sync
            await reply(update, svc.i18n.t(lang, "subscribe.too_costly"))
            return
        rule_id, created = await svc.store.add_rule(
            str(user.id), query=text, origin="subscription", owner=user.id
        )
        what = text
    await reply(
        update, svc.i18n.t(lang, "subscribe.added" if created else "subscribe.exists", id=rule_id, what=what)
    )


async def subscriptions_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    user = update.effective_user
    rules = await svc.store.rules(origin="subscription", owner=user.id) if user is not None else []
    if not rules:
        await reply(update, svc.i18n.t(lang, "subscriptions.none"))
        return
    lines = [svc.i18n.t(lang, "subscriptions.header")]
    for r in rules:
        line = svc.i18n.t(lang, "subscriptions.line", id=r["id"], what=render.rule_filter(r))
        if r["paused"]:
            line += svc.i18n.t(lang, "autopost.paused", reason=r["paused"])
        lines.append(line)
    await reply_lines(update, lines)


async def unsubscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    user = update.effective_user
    arg = " ".join(context.args or []).strip().lower()
    if user is None:
        return
    rules = await svc.store.rules(origin="subscription", owner=user.id)
    if arg == "all":
        targets = [r["id"] for r in rules]
    elif (rule_id := ascii_int(arg, 1)) is not None:
        targets = [rule_id]
    else:
        await reply(update, svc.i18n.t(lang, "unsubscribe.usage"))
        return
    removed = 0
    for rule_id in targets:
        removed += await svc.store.remove_rule(rule_id, origin="subscription", owner=user.id)
    await reply(update, svc.i18n.t(lang, "unsubscribe.done", count=removed))
