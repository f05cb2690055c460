"""The `newsbot` command's entry point. It loads the command line's modules (~0.25 s) where a Ctrl-C
can be taken: one in that time printed Python's traceback of the imports, where a later one exits
quietly with 130. (This module and `bot` itself import nothing that takes time.)"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from bot.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        return 130
