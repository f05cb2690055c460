"""/latest, /categories (paged, filterable), one category's posts, and post cards."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from store.db import PostRow
from store.text import fold

from .. import keyboards as kb
from .. import render
from ..services import Services, services
from .common import answer, ascii_int, button, edit, int_arg, reply, send_beside

LATEST_DEFAULT = 8
LATEST_MAX = 20
CATEGORIES_PER_PAGE = 10
POSTS_PER_PAGE = 8


def more_reports(svc: Services, lang: str, post: PostRow) -> str | None:
    """ "+N more reports of this story", or None for a story of one report."""
    return svc.i18n.t(lang, "story.more", count=post.reports - 1) if post.reports > 1 else None


def post_list(svc: Services, lang: str, header: str, posts: list[PostRow], first_number: int = 1) -> str:
    source = svc.i18n.t(lang, "post.source")
    blocks = [
        render.post_item(p, source, number=first_number + i, more=more_reports(svc, lang, p))
        for i, p in enumerate(posts)
    ]
    return render.join_blocks(header, blocks)


def list_buttons(svc: Services, lang: str, posts: list[PostRow], first_number: int = 1) -> list[list]:
    """Numbered buttons opening each post's card, and "+N reports" buttons for stories of several."""
    rows = [kb.open_posts([p.rowid for p in posts], first_number)]
    stories = kb.story_buttons(svc.i18n, lang, posts, first_number)
    rows += [stories[i : i + 2] for i in range(0, len(stories), 2)]
    return rows


async def latest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    args = list(context.args or [])
    limit = LATEST_DEFAULT
    if args and args[0].isascii() and args[0].isdigit():
        limit = int_arg(args.pop(0), LATEST_DEFAULT, 1, LATEST_MAX)
    category = " ".join(args).strip()
    key = None
    if category:
        key = fold(category)
        found = await svc.store.term_count("c", key)
        if found is None:
            await reply(update, svc.i18n.t(lang, "latest.no_category", name=category))
            return
        category = found[0]
    posts = await svc.store.latest(limit=limit, category_key=key)
    if not posts:
        await reply(
            update, "\n".join(filter(None, [svc.i18n.t(lang, "latest.empty"), svc.indexing_note(lang)]))
        )
        return
    header = (
        svc.i18n.t(lang, "latest.header_category", category=category)
        if key
        else svc.i18n.t(lang, "latest.header")
    )
    await reply(update, post_list(svc, lang, header, posts), kb.markup(list_buttons(svc, lang, posts)))


async def _categories_screen(svc: Services, lang: str, page: int, fragment: str):
    rows, total = await svc.store.terms(
        "c",
        fold(fragment) if fragment else None,
        limit=CATEGORIES_PER_PAGE,
        offset=page * CATEGORIES_PER_PAGE,
    )
    if total == 0:
        return svc.i18n.t(lang, "categories.empty"), None
    pages = (total + CATEGORIES_PER_PAGE - 1) // CATEGORIES_PER_PAGE
    if fragment:
        text = svc.i18n.t(
            lang, "categories.header_filtered", filter=fragment, total=total, page=page + 1, pages=pages
        )
    else:
        text = svc.i18n.t(lang, "categories.header", total=total, page=page + 1, pages=pages)
    buttons = [
        [(f"{render.truncate(name, render.BUTTON_CHARS)} ({n})", kb.category_posts(key, 0, page), False)]
        for key, name, n in rows
    ]
    buttons.append(
        kb.pager(
            kb.categories_page(page - 1, fragment) if page > 0 else None,
            kb.categories_page(page + 1, fragment) if page + 1 < pages else None,
        )
    )
    return text, kb.markup(buttons)


async def categories(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    lang = await svc.language(update)
    text, keyboard = await _categories_screen(svc, lang, 0, " ".join(context.args or []).strip())
    await reply(update, text, keyboard)


async def on_categories_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    page, fragment = (parts + ["", ""])[:2]
    await answer(query)
    text, keyboard = await _categories_screen(svc, lang, int_arg(page), fragment)
    await edit(query, text, keyboard)


async def on_category_posts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    if len(parts) != 3:
        await answer(query, svc.i18n.t(lang, "button.expired"), alert=True)
        return
    digest, page_s, list_page_s = parts
    page, list_page = int_arg(page_s), int_arg(list_page_s)
    found = await svc.category_by_hash(digest)
    if found is None:
        await answer(query, svc.i18n.t(lang, "button.expired"), alert=True)
        return
    key, name = found
    count = (await svc.store.term_count("c", key) or (name, 0))[1]
    # a story is listed once, so the category's post count can promise more pages than there are:
    # whether a next page exists is read, and the page total is the count's estimate kept consistent
    posts = await svc.store.latest(limit=POSTS_PER_PAGE + 1, offset=page * POSTS_PER_PAGE, category_key=key)
    has_next = len(posts) > POSTS_PER_PAGE
    posts = posts[:POSTS_PER_PAGE]
    await answer(query)
    estimate = max(1, (count + POSTS_PER_PAGE - 1) // POSTS_PER_PAGE)
    pages = max(estimate, page + 2) if has_next else page + 1
    header = svc.i18n.t(lang, "category.header", category=name, count=count, page=page + 1, pages=pages)
    text = post_list(svc, lang, header, posts, first_number=page * POSTS_PER_PAGE + 1)
    rows = [
        *list_buttons(svc, lang, posts, page * POSTS_PER_PAGE + 1),
        kb.pager(
            kb.category_posts(key, page - 1, list_page) if page > 0 else None,
            kb.category_posts(key, page + 1, list_page) if has_next else None,
        ),
        [(svc.i18n.t(lang, "nav.back"), kb.categories_page(list_page), False)],
    ]
    await edit(query, text, kb.markup(rows))


async def card(svc: Services, lang: str, post: PostRow) -> str:
    """A post's card, with the other reports of its story."""
    if post.story is None:
        await svc.store.attach_stories([post])
    others = []
    if post.story is not None and post.reports > 1:
        others = [p for p in await svc.store.story_posts(post.story) if p.rowid != post.rowid]
    return render.post_card(post, others, svc.i18n.t(lang, "story.others"))


async def send_post_card(update: Update, context: ContextTypes.DEFAULT_TYPE, ref: str, lang: str) -> None:
    svc = services(context)
    rowid = ascii_int(ref, 1)
    post = await svc.store.get_post(rowid) if rowid is not None else None
    if post is None:
        await reply(update, svc.i18n.t(lang, "post.not_found"))
        return
    await reply(update, await card(svc, lang, post), kb.post_links(svc.i18n, lang, post))


async def on_open_post(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    rowid = ascii_int(parts[0], 1) if parts else None
    post = await svc.store.get_post(rowid) if rowid is not None else None
    if post is None:
        await answer(query, svc.i18n.t(lang, "post.not_found"), alert=True)
        return
    await answer(query)
    await send_beside(query, context, await card(svc, lang, post), kb.post_links(svc.i18n, lang, post))


async def on_story(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A "+N reports" button: the story's reports, first report first, each with its source link."""
    got = await button(update, context)
    if got is None:
        return
    svc, lang, query, parts = got
    story = ascii_int(parts[0], 1) if parts else None
    posts = await svc.store.story_posts(story) if story is not None else []
    if not posts:
        await answer(query, svc.i18n.t(lang, "post.not_found"), alert=True)
        return
    await answer(query)
    text = render.join_blocks(
        svc.i18n.t(lang, "story.header", count=len(posts)),
        [render.report_line(p) for p in posts],
        separator="\n",
    )
    await send_beside(query, context, text, kb.markup([kb.open_posts([p.rowid for p in posts])]))
