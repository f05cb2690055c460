"""The Telegram side of newsbot (and its command line)."""

import importlib.metadata


def version() -> str:
    """The installed newsbot's version (pyproject.toml's), for --version and the start-up log line."""
    try:
        return importlib.metadata.version("newsbot")
    except importlib.metadata.PackageNotFoundError:  # (run from a checkout that was never installed)
        return "unknown"
