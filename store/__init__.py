"""The archive store: Jekyll parsing, the SQLite database and search. Never imports Telegram."""
