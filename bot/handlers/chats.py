"""Changes to the chats the bot posts in, as Telegram reports them: a group upgraded to a supergroup (a new
chat id: its rules follow it), and the bot removed from, blocked in, or allowed back into a chat (the
chat's rules pause, and resume). The deliverer finds the same changes when a send is refused
(bot.deliver.Deliverer); whichever comes first acts, the other finds nothing left to do."""

from __future__ import annotations

from telegram import Chat, ChatMember, ChatMemberUpdated, Update
from telegram.ext import ContextTypes

from ..deliver import chat_allowed, chat_refused, follow_move
from ..services import services


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The service messages of an upgrade: "migrated to" in the old group, "migrated from" in the new."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    svc = services(context)
    await follow_move(svc.store, svc.notify, old, new)
    svc.forget_language(new)
    svc.deliverer.kick()


def may_post(member: ChatMember, chat: Chat) -> bool:
    """Whether the bot, as this member of the chat, can send it messages."""
    if member.status in (ChatMember.LEFT, ChatMember.BANNED):
        return False
    if member.status == ChatMember.RESTRICTED:
        return bool(getattr(member, "is_member", False) and getattr(member, "can_send_messages", False))
    if member.status == ChatMember.ADMINISTRATOR and chat.type == Chat.CHANNEL:
        return bool(getattr(member, "can_post_messages", False))
    return True


async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The bot's own membership changed: removed, blocked or muted, its rules for the chat pause; allowed
    to post again, the rules paused because the chat refused the bot resume."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    before = may_post(change.old_chat_member, change.chat)
    after = may_post(change.new_chat_member, change.chat)
    if before == after:
        return
    svc = services(context)
    names = [str(change.chat.id)] + ([f"@{change.chat.username}"] if change.chat.username else [])
    if not after:
        reason = f"the bot may no longer post there ({change.new_chat_member.status})"
        await chat_refused(svc.store, svc.notify, names, reason)
    elif await chat_allowed(svc.store, svc.notify, names):
        svc.deliverer.kick()
