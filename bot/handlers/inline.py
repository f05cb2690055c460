"""Inline mode: `@bot words` in any chat returns article cards, paged with next_offset."""

from __future__ import annotations

from telegram import (
    InlineQuery,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Update,
)
from telegram.ext import ContextTypes

from .. import keyboards as kb
from .. import render
from ..services import services
from .browse import card, more_reports
from .common import int_arg

PER_ANSWER = 20  # Telegram allows 50
MAX_OFFSET = 1000


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    query = update.inline_query
    if query is None:
        return
    lang = await svc.language(update)
    offset = int_arg(query.offset or "0", 0, 0, MAX_OFFSET)
    text = " ".join((query.query or "").split())
    if not svc.inline_allowed(update):
        # too many inline queries, or searches' database time, this minute (handlers.guard)
        await _refuse(query, svc.i18n.t(lang, "inline.slow_down"))
        return
    if text:
        page = await svc.search(update, text, limit=PER_ANSWER, offset=offset)
        if page.too_costly:
            await _refuse(query, svc.i18n.t(lang, "inline.too_costly"))
            return
        posts, more = [h.post for h in page.hits], page.has_more
    else:
        posts = await svc.store.latest(limit=PER_ANSWER + 1, offset=offset)
        more = len(posts) > PER_ANSWER
        posts = posts[:PER_ANSWER]
    # each story once (latest and search collapse them); its card lists the other reports, since a
    # "+N reports" button cannot work on an inline message (pressed() refuses buttons without a chat)
    results = [
        InlineQueryResultArticle(
            id=str(p.rowid),
            title=render.truncate(p.title, 100),
            description=" · ".join(
                filter(None, [more_reports(svc, lang, p), render.one_line(p.summary or p.body, 120)])
            ),
            input_message_content=InputTextMessageContent(await card(svc, lang, p)),
            reply_markup=kb.post_links(svc.i18n, lang, p),
            url=render.web_url(p.archive_url),
        )
        for p in posts
    ]
    # No next_offset at all means "no more results" (PTB 22 would send an empty string as "[]").
    next_offset = str(offset + PER_ANSWER) if more and offset + PER_ANSWER <= MAX_OFFSET else None
    await query.answer(results, cache_time=30, is_personal=False, next_offset=next_offset)


async def _refuse(query: InlineQuery, why: str) -> None:
    """No results, and why above them: a button that opens the bot at /help. Not cached (it is this
    user's answer, for now)."""
    button = InlineQueryResultsButton(text=render.truncate(why, 64), start_parameter="help")
    await query.answer([], cache_time=0, is_personal=True, button=button)
