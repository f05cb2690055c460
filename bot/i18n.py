"""User-facing strings: gettext catalogs in `locales/<lang>/LC_MESSAGES/newsbot.po`, read with Babel.

Messages are looked up by a stable key (the msgid). Placeholders are `{name}`; their values are
HTML-escaped here, so callers can pass any user or archive text.
"""

from __future__ import annotations

import html
import string
from pathlib import Path

from babel.messages.pofile import read_po


def _locales_dir() -> Path:
    """The catalogs: inside the package when installed from a wheel (bot/locales), else the checkout's
    top-level locales/ folder."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "locales", here.parent / "locales"):
        if any(candidate.glob("*/LC_MESSAGES/*.po")):
            return candidate
    return here.parent / "locales"


LOCALES_DIR = _locales_dir()
DOMAIN = "newsbot"
LANGUAGE_NAMES = {"zh": "简体中文", "en": "English"}
# A placeholder value (a category, a query, an error text: anything a user or an archive wrote) is cut
# to this many characters, as plain text before it is escaped, so no message grows past Telegram's limit
# because of one field.
MAX_VALUE_CHARS = 300


class I18n:
    def __init__(self, locales_dir: Path = LOCALES_DIR, default: str = "zh"):
        self.catalogs: dict[str, dict[str, str]] = {}
        for po in sorted(locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
            lang = po.parent.parent.name
            with po.open("rb") as fh:
                catalog = read_po(fh)
            self.catalogs[lang] = {
                m.id: m.string
                for m in catalog
                if isinstance(m.id, str) and isinstance(m.string, str) and m.string
            }
        if not self.catalogs:
            raise RuntimeError(f"no message catalogs under {locales_dir}")
        self.default = default if default in self.catalogs else sorted(self.catalogs)[0]

    @property
    def languages(self) -> list[str]:
        return sorted(self.catalogs)

    def resolve(self, language_code: str | None) -> str:
        """A supported language for a Telegram language_code ('zh-hans', 'en-US', None…)."""
        if language_code:
            base = language_code.replace("_", "-").split("-")[0].lower()
            if base in self.catalogs:
                return base
        return self.default

    def t(self, lang: str, key: str, **values: object) -> str:
        catalog = self.catalogs.get(lang) or self.catalogs[self.default]
        template = catalog.get(key) or self.catalogs[self.default].get(key) or key
        if not values:
            return template
        return template.format(**{k: html.escape(_cut(str(v)), quote=False) for k, v in values.items()})


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}
