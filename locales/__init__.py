"""Message catalogs (gettext .po files, one folder per language). Installed as `bot.locales` (see
pyproject.toml); bot/i18n.py finds them there or, in a checkout, here."""
