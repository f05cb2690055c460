"""Telegram handlers, one module per feature; `register` wires them all."""

from __future__ import annotations

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from . import admin, alerts, browse, chats, errors, guard, inline, lang, search, start

# Commands, in the order of the command menus. The admin ones only appear in admins' own menus.
USER_COMMANDS = {
    "start": start.start,
    "help": start.help_command,
    "latest": browse.latest,
    "categories": browse.categories,
    "search": search.search_command,
    "lang": lang.lang_command,
    "subscribe": alerts.subscribe_command,
    "unsubscribe": alerts.unsubscribe_command,
    "subscriptions": alerts.subscriptions_command,
}
ADMIN_COMMANDS = {
    "reload": admin.reload_command,
    "stats": admin.stats_command,
    "autopost": admin.autopost_command,
}
# Buttons, by the prefix of their callback data (see keyboards.py).
BUTTONS = {
    "cl": browse.on_categories_page,
    "cp": browse.on_category_posts,
    "sr": search.on_search_page,
    "p": browse.on_open_post,
    "st": browse.on_story,
    "lg": lang.on_language,
}


def register(app: Application) -> None:
    app.add_handler(TypeHandler(object, guard.guard), group=-1)  # flood control before everything
    for name, handler in {**USER_COMMANDS, **ADMIN_COMMANDS}.items():
        app.add_handler(CommandHandler(name, handler))
    for prefix, handler in BUTTONS.items():
        app.add_handler(CallbackQueryHandler(handler, pattern=f"^{prefix}:"))
    app.add_handler(CallbackQueryHandler(errors.on_unknown_button))
    app.add_handler(InlineQueryHandler(inline.inline_query))
    # (only messages to the bot and their edits: not a business account's chats with its customers, which
    # a user who connected the bot to their account would otherwise find answered with search results)
    messages = filters.UpdateType.MESSAGES
    app.add_handler(
        MessageHandler(
            messages & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, search.search_text
        )
    )
    app.add_handler(MessageHandler(messages & filters.COMMAND, errors.unknown_command))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, chats.on_migrate))
    app.add_handler(ChatMemberHandler(chats.on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(errors.error_handler)
