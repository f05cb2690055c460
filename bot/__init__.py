"""The Telegram side of newsbot (and its command line)."""


def version() -> str:
    """The installed newsbot's version (pyproject.toml's), for --version and the start-up log line."""
    import importlib.metadata  # (here: ~20 ms that `newsbot` loads before it can take a Ctrl-C, bot.entry)

    try:
        return importlib.metadata.version("newsbot")
    except importlib.metadata.PackageNotFoundError:  # (run from a checkout that was never installed)
        return "unknown"
