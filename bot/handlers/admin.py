"""Admin commands: /reload, /stats, /autopost. Anyone else is refused and nothing changes."""

from __future__ import annotations

import functools
import time
from datetime import datetime

from telegram import Update
from telegram.ext import ContextTypes

from store.search import MAX_FILTERS, MAX_QUERY_CHARS, MAX_TERMS, parse_query

from .. import render
from ..follow import deliveries_kept
from ..services import services
from .common import ascii_int, chat_arg, reply, reply_lines

SHOW_SKIPPED = 5


def admin_only(handler):
    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        svc = services(context)
        if not svc.is_admin(update):
            await reply(update, svc.i18n.t(await svc.language(update), "admin.refused"))
            return
        await handler(update, context)

    return wrapper


@admin_only
async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    report = await svc.follower.sync()
    lines = []
    if report.pull_error:
        lines.append(svc.i18n.t(lang, "reload.pull_failed", error=report.pull_error))
    if report.result is None:
        lines.append(svc.i18n.t(lang, "alert.sync_failed", error=report.error or "?"))
    else:
        r = report.result
        lines.append(
            svc.i18n.t(
                lang,
                "reload.done",
                added=r.added,
                updated=r.updated,
                deleted=r.deleted,
                unchanged=r.unchanged,
                skipped=r.skipped,
                seconds=f"{report.seconds:.1f}",
                queued=report.queued,
            )
        )
        for err in r.errors[:SHOW_SKIPPED]:
            lines.append(svc.i18n.t(lang, "reload.skipped_item", path=err["path"], reason=err["reason"]))
        if len(r.errors) > SHOW_SKIPPED:
            lines.append(svc.i18n.t(lang, "reload.more_skipped", count=len(r.errors) - SHOW_SKIPPED))
        if r.unsettled:
            lines.append(svc.i18n.t(lang, "reload.unsettled", count=r.unsettled))
        if r.unpublished:
            lines.append(svc.i18n.t(lang, "reload.unpublished", count=r.unpublished))
        if r.moved:
            lines.append(svc.i18n.t(lang, "reload.moved", count=r.moved))
        if r.held:
            lines.append(svc.i18n.t(lang, "reload.held", count=r.held))
        if report.too_old:
            hours = svc.settings.deliver_max_age_hours
            lines.append(svc.i18n.t(lang, "reload.too_old", count=report.too_old, hours=hours))
    await reply(update, "\n".join(lines))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


@admin_only
async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    stats = await svc.store.stats()
    counts = await svc.store.delivery_counts()
    rules = await svc.store.rules()
    last = stats["last_sync"]
    if last:
        when = datetime.fromtimestamp(last["finished"]).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        last_text = svc.i18n.t(
            lang,
            "stats.last_sync",
            when=when,
            seconds=f"{last.get('seconds', 0):.1f}",
            added=last["added"],
            updated=last["updated"],
            deleted=last["deleted"],
            skipped=last["skipped"],
        )
        if last.get("held"):  # (a summary from before held posts has no such key)
            last_text += "\n" + svc.i18n.t(lang, "stats.held", count=last["held"])
    else:
        last_text = svc.i18n.t(lang, "stats.never")
    indexing = svc.indexing_note(lang, "stats.indexing")
    if svc.follower is not None and svc.follower.is_merging:
        indexing = "\n".join(filter(None, (indexing, svc.i18n.t(lang, "stats.merging"))))
    await reply(
        update,
        svc.i18n.t(
            lang,
            "stats.text",
            posts=stats["posts"],
            categories=stats["categories"],
            db=f"{stats['db_bytes'] / 2**20:.1f} MB",
            last=last_text,
            pending=counts.get("pending", 0) + counts.get("sending", 0),
            failed=counts.get("failed", 0),
            sent=counts.get("sent", 0),
            merged=counts.get("merged", 0),
            expired=counts.get("expired", 0),
            withdrawn=counts.get("withdrawn", 0),
            days=deliveries_kept(svc.settings) // 86400,
            rules=sum(r["origin"] != "subscription" for r in rules),
            alerts=sum(r["origin"] == "subscription" for r in rules),
            paused=sum(bool(r["paused"]) for r in rules),
            uptime=_duration(time.time() - svc.started),
        )
        + ("\n" + indexing if indexing else ""),
    )


def _describe(svc, lang: str, rule: dict) -> str:
    return render.rule_filter(rule) or svc.i18n.t(lang, "filter.all")


@admin_only
async def autopost_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/autopost | /autopost add [CHAT] [cat:NAME…] [thread:N] [query…] | /autopost remove ID | resume ID"""
    svc = services(context)
    lang = await svc.language(update)
    args = list(context.args or [])
    action = args.pop(0).lower() if args else "list"
    if action == "list":
        rules = [r for r in await svc.store.rules() if r["origin"] != "subscription"]
        if not rules:
            await reply(update, svc.i18n.t(lang, "autopost.none"))
            return
        lines = [svc.i18n.t(lang, "autopost.list_header")]
        for r in rules:
            status = svc.i18n.t(lang, "autopost.paused", reason=r["paused"]) if r["paused"] else ""
            lines.append(
                svc.i18n.t(
                    lang,
                    "autopost.rule_line",
                    id=r["id"],
                    chat=r["chat"],
                    thread=r["thread"] or "-",
                    filter=_describe(svc, lang, r),
                    origin=r["origin"],
                )
                + status
            )
        await reply_lines(update, lines)
        return
    rule_id = ascii_int(args[0], 1) if action in ("remove", "resume") and args else None
    if rule_id is not None:
        if action == "remove":
            ok = await svc.store.remove_rule(rule_id, origin="admin")
        else:
            ok = await svc.store.resume_rule(rule_id)
            svc.deliverer.kick()
        key = (
            ("autopost.removed" if action == "remove" else "autopost.resumed") if ok else "autopost.not_found"
        )
        await reply(update, svc.i18n.t(lang, key, id=rule_id))
        return
    if action != "add":
        await reply(update, svc.i18n.t(lang, "autopost.usage"))
        return
    chat = update.effective_chat
    target = chat_arg(args[0]) if args else None
    if target is not None:
        args.pop(0)
    elif args and (args[0][:1] in "-@" or args[0][:1].isdigit()):
        target = None  # looks like a chat but is not a valid one (0, -0, other digits, a bad @name)
    elif chat is not None and chat.type != chat.PRIVATE:
        target = str(chat.id)
    if target is None:
        await reply(update, svc.i18n.t(lang, "autopost.usage"))
        return
    thread = 0
    message = update.effective_message
    if message is not None and message.is_topic_message and message.message_thread_id:
        thread = message.message_thread_id
    categories, words = [], []
    for arg in args:
        low = arg.lower()
        if low.startswith("cat:") and len(arg) > 4:
            categories.append(arg[4:])
        elif low.startswith("thread:"):
            number = ascii_int(arg[7:], 1, 2**31 - 1)
            if number is None:
                await reply(update, svc.i18n.t(lang, "autopost.usage"))
                return
            thread = number
        else:
            words.append(arg)
    query = parse_query(" ".join(words))
    if query.cut or len(categories) > MAX_FILTERS:
        await reply(update, svc.i18n.t(lang, "subscribe.too_long", chars=MAX_QUERY_CHARS, terms=MAX_TERMS))
        return
    if words and (await svc.search(update, " ".join(words), limit=1)).too_costly:  # paused at every sync
        await reply(update, svc.i18n.t(lang, "subscribe.too_costly"))
        return
    target = await svc.store.current_chat(target)  # (a group since upgraded: its supergroup)
    rule_id, created = await svc.store.add_rule(
        target, thread=thread, categories=categories, query=" ".join(words), origin="admin"
    )
    await reply(
        update, svc.i18n.t(lang, "autopost.added" if created else "autopost.exists", id=rule_id, chat=target)
    )
