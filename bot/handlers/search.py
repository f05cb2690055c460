"""/search and plain-text search in private chats, with ‹ › paging that edits the results in place."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from store.search import search

from .. import keyboards as kb
from .. import render
from ..services import Services, services
from .common import edit, int_arg, reply

PER_PAGE = 5


async def _results(svc: Services, lang: str, query_text: str, query_id: int, page: int):
    result = await search(svc.store, query_text, limit=PER_PAGE, offset=page * PER_PAGE)
    shown = render.truncate(query_text, 60)
    if not result.hits:
        return svc.i18n.t(lang, "search.nothing", query=shown), None
    header = svc.i18n.t(lang, "search.header", query=shown, page=page + 1)
    source = svc.i18n.t(lang, "post.source")
    blocks = [
        render.post_item(hit.post, source, render.snippet_html(hit), number=page * PER_PAGE + i + 1)
        for i, hit in enumerate(result.hits)
    ]
    rows = [
        kb.open_posts([h.post.rowid for h in result.hits], page * PER_PAGE + 1),
        kb.pager(
            kb.search_page(query_id, page - 1) if page > 0 else None,
            kb.search_page(query_id, page + 1) if result.has_more else None,
        ),
    ]
    return render.join_blocks(header, blocks), kb.markup(rows)


async def run_search(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    svc = services(context)
    lang = await svc.language(update)
    text = " ".join(text.split())
    if not text:
        await reply(update, svc.i18n.t(lang, "search.usage"))
        return
    query_id = await svc.store.save_query(text[:500])
    body, keyboard = await _results(svc, lang, text[:500], query_id, 0)
    await reply(update, body, keyboard)


async def search_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_search(update, context, " ".join(context.args or []))


async def search_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_search(update, context, update.effective_message.text or "")


async def on_search_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    query = update.callback_query
    lang = await svc.language(update)
    _, parts = kb.parse(query.data)
    text = await svc.store.saved_query(int_arg(parts[0], -1)) if len(parts) == 2 else None
    if text is None:
        await query.answer(svc.i18n.t(lang, "button.expired"), show_alert=True)
        return
    await query.answer()
    body, keyboard = await _results(svc, lang, text, int_arg(parts[0]), int_arg(parts[1]))
    await edit(query, body, keyboard)
