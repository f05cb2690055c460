"""All configuration, from the environment and `.env` (documented key by key in `.env.example`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from .candidates import SEARCH_TIME_LIMIT
from .text import has_controls, is_utf8


class SettingsError(Exception):
    """A bad configuration value; the message is one line naming the key."""


class AutopostRule(BaseModel):
    """Where new posts go: a chat (id or @name), optionally only some categories and/or a query, and a
    forum topic."""

    chat_id: int | str
    categories: list[str] = Field(default_factory=list)
    query: str | None = None
    thread_id: int | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- archive and store ---
    archive_dir: Path = Field(Path("."), description="Jekyll archive root (or its _posts folder)")
    database_path: Path = Field(Path("./newsbot.sqlite3"), description="SQLite database file")
    timezone: str | None = Field(None, description="zone for naive dates; default: _config.yml, else UTC")
    site_url: str | None = Field(None, description="archive site URL incl. baseurl; default: _config.yml")
    permalink: str | None = Field(
        None, description="Jekyll permalink style or template; default: _config.yml"
    )
    summary_chars: int = Field(200, ge=40, le=2000, description="summary length limit in characters")
    max_post_bytes: int = Field(
        2 << 20, ge=0, description="post files larger than this are skipped and reported (0: no limit)"
    )
    allow_mass_delete: bool = Field(
        False, description="let a sync delete more than half of the indexed posts (normally refused)"
    )
    story_window_hours: int = Field(
        48,
        ge=0,
        le=24 * 30,
        description="reports of one event within this many hours form one story (0: off)",
    )
    search_pairs: Literal["auto", "common", "all"] = Field(
        "all",
        description="adjacent Chinese characters indexed as pairs: all, or the archive's most common ones;"
        " auto: all for long posts, common for short ones",
    )

    # --- Telegram ---
    bot_token: SecretStr | None = Field(None, description="token from @BotFather (secret)")
    telegram_base_url: str = Field(
        "https://api.telegram.org/bot", description="Bot API base URL (before the token)"
    )
    rate_limit: bool = Field(
        True, description="keep within Telegram's sending limits (off only for local benchmarks)"
    )
    default_language: str = Field("zh", description="language when the user's is unknown: zh or en")
    webhook_url: str | None = Field(
        None, description="public HTTPS URL Telegram posts updates to (--webhook)"
    )
    webhook_listen: str = Field("127.0.0.1", description="address the webhook server binds")
    webhook_port: int = Field(8443, ge=1, le=65535, description="port the webhook server binds")
    webhook_secret: SecretStr | None = Field(
        None, description="secret token Telegram sends with each webhook call"
    )

    # --- operations ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="least important log lines shown by `newsbot run`"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as text or one JSON object each"
    )

    # --- following the archive ---
    sync_interval: int = Field(300, ge=0, description="seconds between syncs while running; 0 disables")
    archive_git_pull: bool = Field(
        False, description="run `git pull --ff-only` in the archive before each sync"
    )
    git_pull_timeout: int = Field(60, ge=1, description="seconds before a git pull is abandoned")
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Telegram user ids allowed to /reload, /stats, /autopost"
    )
    autopost_chats: list[AutopostRule] = Field(
        default_factory=list, description="JSON list of auto-post rules"
    )
    max_subscriptions: int = Field(20, ge=0, description="alerts (/subscribe) one user may have")
    user_updates_per_minute: int = Field(
        30,
        ge=0,
        description="commands, searches and button presses one user may send per minute; 0: no limit",
    )
    search_time_limit: float = Field(
        SEARCH_TIME_LIMIT,
        ge=0,
        le=60,
        description="seconds one search (or alert query) may keep the database busy; then it is stopped"
        " and the reply says so (0: no limit)",
    )
    digest_threshold: int = Field(
        5, ge=1, description="more pending posts than this for one chat → one digest"
    )
    deliver_max_age_hours: int = Field(
        72,
        ge=0,
        description="a new post dated more than this many hours ago is indexed but not auto-posted or"
        " alerted (a backfill of old posts, files renamed or moved); 0: whatever its date",
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _ids(cls, value):
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
        return value

    @field_validator("*")
    @classmethod
    def _text(cls, value):
        # (first of the validators: the others may quote the value)
        if not is_text(value):
            raise ValueError("not valid UTF-8 (bytes of another encoding?)")
        if any(has_controls(text) for text in _strings(value)):
            # (a quoted "\n" in .env: a line break in every archive URL, or in a log line)
            raise ValueError("holds a control character (a line break, a tab or an escape sequence)")
        return value

    @field_validator("archive_dir", "database_path")
    @classmethod
    def _home(cls, value: Path) -> Path:
        # `~` as a shell would: nothing expands it in a .env file or a systemd unit, and SQLite would
        # look for a folder named `~`
        return value.expanduser()

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value, info):
        if isinstance(value, str):
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError(f"not an http(s) URL: {value[:80]!r}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value[:80]!r}")
        return value or None

    @field_validator("site_url", "permalink")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


def is_text(value: object) -> bool:
    """Whether a setting's strings are all text (store.text.is_utf8): a SITE_URL of other bytes failed
    every sync, at the first post written. (Paths are left alone: a folder's name may be any bytes.)"""
    return all(is_utf8(text) for text in _strings(value))


def _strings(value: object) -> Iterator[str]:
    """The strings of a setting's value (in lists and models too; not paths)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            yield from _strings(item)


def load_settings(**overrides) -> Settings:
    """Load settings; turn a validation error into a one-line SettingsError naming the key."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SourceError as exc:  # a complex value (a JSON list) that does not parse
        cause = exc.__cause__
        detail = f": {' '.join(str(cause).split())[:120]}" if cause else ""
        field = str(exc).split("for field ", 1)[-1].split(" ", 1)[0] if "for field " in str(exc) else ""
        raise SettingsError(f"{field.upper() or 'settings'}: not valid JSON{detail}") from None
    except RecursionError:  # json.loads of `[[[[…` thousands deep
        raise SettingsError("ADMIN_IDS or AUTOPOST_CHATS: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:  # (the .env file)
        raise SettingsError(
            f".env: not valid UTF-8 (byte {exc.object[exc.start]:#04x} at {exc.start})"
        ) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        raise SettingsError(f"{key.upper()}: {msg}") from None


def archive_config(settings: Settings):
    """The archive described by the settings (flags and settings override `_config.yml`).

    Raises store.jekyll.ArchiveError when the archive cannot be used.
    """
    from .jekyll import open_archive

    return open_archive(
        settings.archive_dir,
        site_url=settings.site_url,
        timezone_name=settings.timezone,
        permalink=settings.permalink,
        summary_chars=settings.summary_chars,
        max_post_bytes=settings.max_post_bytes,
        story_window_hours=settings.story_window_hours,
        search_pairs=settings.search_pairs,
    )
