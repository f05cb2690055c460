"""/search and plain-text search in private chats, with ‹ › paging that edits the results in place."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from store.search import MAX_QUERY_CHARS, MAX_RESULTS, MAX_TERMS

from .. import keyboards as kb
from .. import render
from ..services import Services, services
from .browse import list_buttons, more_reports
from .common import answer, button, edit, int_arg, reply

PER_PAGE = 5


async def _results(
    svc: Services, update: Update, lang: str, query_text: str, query_id: int | None, page: int
):
    """The text and keyboard of one results page; without a saved query id (the database refused the
    write) the page has no ‹ › buttons."""
    result = await svc.search(update, query_text, limit=PER_PAGE, offset=page * PER_PAGE)
    shown = render.truncate(query_text, 60)
    if result.too_costly:
        return svc.i18n.t(lang, "search.too_costly", query=shown), None
    cut = svc.i18n.t(lang, "search.cut", chars=MAX_QUERY_CHARS, terms=MAX_TERMS) if result.query.cut else ""
    if not result.hits:
        nothing = svc.i18n.t(lang, "search.nothing", query=shown)
        return "\n".join(filter(None, [nothing, cut, svc.indexing_note(lang)])), None
    pages = max(1, -(-min(result.total, MAX_RESULTS) // PER_PAGE))
    header = svc.i18n.t(
        lang, "search.header", query=shown, total=result.total_text, page=page + 1, pages=f"{pages:,}"
    )
    capped = (
        svc.i18n.t(lang, "search.capped", reachable=f"{MAX_RESULTS:,}") if result.total > MAX_RESULTS else ""
    )
    header = "\n".join(filter(None, [header, capped, cut, svc.indexing_note(lang)]))
    source = svc.i18n.t(lang, "post.source")
    blocks = [
        render.post_item(
            hit.post,
            source,
            render.snippet_html(hit),
            number=page * PER_PAGE + i + 1,
            more=more_reports(svc, lang, hit.post),
        )
        for i, hit in enumerate(result.hits)
    ]
    rows = [
        *list_buttons(svc, lang, [h.post for h in result.hits], page * PER_PAGE + 1),
        kb.pager(
            kb.search_page(query_id, page - 1) if page > 0 and query_id is not None else None,
            kb.search_page(query_id, page + 1) if result.has_more and query_id is not None else None,
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
    text = text[:MAX_QUERY_CHARS]
    chat = update.effective_chat
    query_id = await svc.remember_query(chat.id, text) if chat is not None else None
    body, keyboard = await _results(svc, update, lang, text, query_id, 0)
    await reply(update, body, keyboard)


async def search_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_search(update, context, " ".join(context.args or []))


async def search_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    await run_search(update, context, (message.text if message is not None else None) or "")


async def on_search_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    assert query.message is not None  # pressed() answers buttons without a message
    text = (
        await svc.store.saved_query(query.message.chat.id, int_arg(parts[0], -1)) if len(parts) == 2 else None
    )
    if text is None:
        await answer(query, svc.i18n.t(lang, "button.expired"), alert=True)
        return
    await answer(query)
    body, keyboard = await _results(svc, update, lang, text, int_arg(parts[0]), int_arg(parts[1]))
    await edit(query, body, keyboard)
