"""Logging for operators: text or JSON lines (LOG_FORMAT), a level (LOG_LEVEL), and the bot token
redacted from every line in both formats, tracebacks included. A message is one line: control characters
in it (a line break or an escape sequence in a name or an error from outside) are escaped, so nothing can
forge a log line or reach the terminal that shows the log."""

from __future__ import annotations

import json
import logging
import time

from store.text import escaped_controls

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str, token: str) -> str:
    """The text with the token (and its secret half) replaced by <token>."""
    for secret in (token, token.split(":", 1)[-1]):
        if secret:
            text = text.replace(secret, "<token>")
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then replaces the bot token wherever it appears: in messages, in exception texts
    and tracebacks (a failed request's URL contains the token)."""

    def __init__(self, fmt: str, token: str):
        super().__init__(fmt)
        self.token = token

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escaped_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.token)


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, and the traceback when
    there is one; redacted like the text format."""

    def __init__(self, token: str):
        super().__init__("%(message)s", token)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": escaped_controls(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False), self.token)


def setup_logging(token: str, level: str = "INFO", fmt: str = "text") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)
    # httpx logs every request URL at INFO, and the URL contains the token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    formatter = JsonFormatter(token) if fmt == "json" else RedactingFormatter(LOG_FORMAT, token)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
