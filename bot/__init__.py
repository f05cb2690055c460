"""The Telegram side of newsbot (and its command line)."""
