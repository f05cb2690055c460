"""Telegram handlers, one module per feature; `register` wires them all."""

from __future__ import annotations

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from . import admin, alerts, browse, errors, inline, lang, search, start


def register(app: Application) -> None:
    app.add_handler(CommandHandler("start", start.start))
    app.add_handler(CommandHandler("help", start.help_command))
    app.add_handler(CommandHandler("latest", browse.latest))
    app.add_handler(CommandHandler("categories", browse.categories))
    app.add_handler(CommandHandler("search", search.search_command))
    app.add_handler(CommandHandler("lang", lang.lang_command))
    app.add_handler(CommandHandler("reload", admin.reload_command))
    app.add_handler(CommandHandler("stats", admin.stats_command))
    app.add_handler(CommandHandler("autopost", admin.autopost_command))
    app.add_handler(CommandHandler("subscribe", alerts.subscribe_command))
    app.add_handler(CommandHandler("unsubscribe", alerts.unsubscribe_command))
    app.add_handler(CommandHandler("subscriptions", alerts.subscriptions_command))
    app.add_handler(CallbackQueryHandler(browse.on_categories_page, pattern=r"^cl:"))
    app.add_handler(CallbackQueryHandler(browse.on_category_posts, pattern=r"^cp:"))
    app.add_handler(CallbackQueryHandler(search.on_search_page, pattern=r"^sr:"))
    app.add_handler(CallbackQueryHandler(browse.on_open_post, pattern=r"^p:"))
    app.add_handler(CallbackQueryHandler(lang.on_language, pattern=r"^lg:"))
    app.add_handler(CallbackQueryHandler(errors.on_unknown_button))
    app.add_handler(InlineQueryHandler(inline.inline_query))
    app.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, search.search_text)
    )
    app.add_handler(MessageHandler(filters.COMMAND, errors.unknown_command))
    app.add_error_handler(errors.error_handler)
