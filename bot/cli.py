"""The `newsbot` command line: sync, search, latest, categories, show, run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import version
from bot.render import fmt_date
from store.db import BackupError, PostRow, Store, backup, database_problem
from store.jekyll import ArchiveError
from store.search import MAX_QUERY_CHARS, MAX_RESULTS, MAX_TERMS, day_start, parse_day, search
from store.settings import Settings, SettingsError, archive_config, is_text, load_settings
from store.sync import SyncResult, sync_archive
from store.text import fold

MAX_LIMIT = 100  # results per search or latest call


class CliError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="newsbot", description="A Jekyll news archive in the terminal and on Telegram."
    )
    p.add_argument("--version", action="version", version=f"newsbot {version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, json_flag: bool = True) -> None:
        sp.add_argument("--db", help="database file (default: DATABASE_PATH or ./newsbot.sqlite3)")
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("sync", help="index the archive (incremental)")
    s.add_argument("--archive", help="archive root or its _posts folder (default: ARCHIVE_DIR or .)")
    s.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="delete posts even when more than half of the indexed ones are gone (normally refused)",
    )
    common(s)

    s = sub.add_parser("search", help="search the archive; '-' reads one query per line from stdin")
    s.add_argument("query", nargs="+")
    s.add_argument("--limit", type=int, default=10)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument(
        "--with-count",
        action="store_true",
        help="with --json: an object with the match count and the hits, instead of the list of hits",
    )
    common(s)

    s = sub.add_parser("latest", help="newest posts, overall or in one category")
    s.add_argument("--category")
    s.add_argument("--limit", type=int, default=10)
    common(s)

    s = sub.add_parser("categories", help="categories with post counts")
    s.add_argument("--filter", help="only categories whose name contains TEXT")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--offset", type=int, default=0)
    common(s)

    s = sub.add_parser("show", help="one post in full")
    s.add_argument(
        "id", help="post id (the file name without extension) or its path (news/_posts/2024-05-01-x.md)"
    )
    common(s)

    s = sub.add_parser("stories", help="recent stories (reports of one event) with their reports")
    s.add_argument("--since", help="only stories with a report on or after this day (YYYY-MM-DD)")
    s.add_argument("--limit", type=int, default=20, help="at most this many stories (1-1000)")
    common(s)

    s = sub.add_parser(
        "check", help="is this setup ready to run? one line per item, exit code 1 on a failure"
    )
    s.add_argument("--archive", help="archive root or its _posts folder")
    s.add_argument("--webhook", action="store_true", help="also check the webhook against getWebhookInfo")
    common(s, json_flag=False)

    s = sub.add_parser("backup", help="copy the live database to PATH (safe while the bot runs)")
    s.add_argument("path", help="where to write the copy (restore: stop the bot, copy it back)")
    common(s, json_flag=False)

    s = sub.add_parser("run", help="run the Telegram bot")
    s.add_argument("--archive", help="archive root or its _posts folder")
    s.add_argument("--webhook", action="store_true", help="serve webhooks instead of long polling")
    common(s, json_flag=False)
    return p


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        archive_dir=getattr(args, "archive", None),
        database_path=getattr(args, "db", None),
    )


async def _open_existing(settings: Settings) -> Store:
    path = settings.database_path
    if not Path(path).exists():
        raise CliError(f"no database at {path}; run `newsbot sync --archive DIR` first")
    store = await Store.open(path)
    store.search_time_limit = settings.search_time_limit
    return store


def _human_post(p: PostRow, snippet: str | None = None) -> str:
    lines = [f"\033[1m{p.title}\033[0m" if sys.stdout.isatty() else p.title]
    meta = [fmt_date(p.date)]
    if p.categories:
        meta.append(" / ".join(p.categories))
    if p.tags:
        meta.append("#" + " #".join(p.tags))
    lines.append("  " + " · ".join(meta) + f"  [{p.id}]")
    if snippet:
        lines.append("  " + snippet)
    elif p.summary:
        lines.append("  " + p.summary)
    if p.url:
        lines.append("  " + p.url)
    lines.append("  " + p.archive_url)
    if p.reports > 1:
        lines.append(f"  +{p.reports - 1} more reports of this story (story {p.story})")
    return "\n".join(lines)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


async def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    try:
        cfg = archive_config(settings)
    except ArchiveError as exc:
        raise CliError(str(exc), code=2) from None
    bar = None
    progress = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="post", desc="sync", file=sys.stderr, leave=False)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

    store = await Store.open(settings.database_path)
    try:
        with _stopped_by_sigterm():
            result: SyncResult = await sync_archive(
                store,
                cfg,
                progress=progress,
                allow_mass_delete=args.allow_mass_delete or settings.allow_mass_delete,
            )
    finally:
        await store.close()
        if bar is not None:
            bar.close()
    if args.json:
        _print_json(result.to_json())
    else:
        print(
            f"added {result.added}, updated {result.updated}, deleted {result.deleted}, "
            f"unchanged {result.unchanged}, skipped {result.skipped} in {result.seconds:.1f}s"
            f" → {settings.database_path}"
        )
        for err in result.errors[:20]:
            print(f"  skipped {err['path']}: {err['reason']}")
        if len(result.errors) > 20:
            print(f"  … and {len(result.errors) - 20} more (use --json for all)")
        if result.unsettled:
            print(f"  {result.unsettled} file(s) still being written: left for the next sync")
        if result.unpublished:
            print(f"  {result.unpublished} post(s) marked published: false: not indexed")
        if result.moved:
            print(f"  {result.moved} post(s) moved or renamed: kept as the same posts (in `updated`)")
        if result.held:
            print(
                f"  {result.held} post(s) dated in the future: held until their date (Jekyll's `future: false`)"
            )
        if result.refused_deletes:
            print(
                f"newsbot: {result.refused_deletes} indexed posts are gone from the archive, more than half:"
                " nothing was deleted (a wrong ARCHIVE_DIR or an unmounted volume?). If they were really"
                " removed, run `newsbot sync --allow-mass-delete`.",
                file=sys.stderr,
            )
    return 0


@contextlib.contextmanager
def _stopped_by_sigterm(
    message: str = "stopped by SIGTERM; what was written stays, and the next sync goes on from there",
) -> Iterator[None]:
    """SIGTERM (`timeout`, `kill`, a service manager) stops the command in the block as Ctrl-C does: its
    task is cancelled, so a sync's batch being written is rolled back and its worker processes are
    stopped, where the process used to die at once and leave them running (and a backup left its
    partial copy). Then a one-line CliError with `message` (exit code 143, as a process killed by
    SIGTERM)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    got: list[bool] = []

    def stop() -> None:
        got.append(True)
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, stop)
    except (NotImplementedError, RuntimeError, ValueError):  # (not the main thread; no signals there)
        yield
        return
    try:
        yield
    except asyncio.CancelledError:
        if not got or task is None:
            raise
        raise CliError(message, code=128 + signal.SIGTERM) from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _limit(value: int) -> int:
    """--limit within 1..MAX_LIMIT; says so on stderr when it was not."""
    if 1 <= value <= MAX_LIMIT:
        return value
    used = MAX_LIMIT if value > MAX_LIMIT else 1
    print(f"newsbot: --limit is between 1 and {MAX_LIMIT}; using {used}", file=sys.stderr)
    return used


def _too_costly(store: Store) -> str:
    return (
        f"the search took over {store.search_time_limit:g} s and was stopped (SEARCH_TIME_LIMIT):"
        " use fewer or more specific words"
    )


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    limit, offset = _limit(args.limit), max(0, args.offset)
    store = await _open_existing(settings)
    try:
        if args.query == ["-"]:
            # batch: one JSON line out per line in, whatever the line holds
            for raw in sys.stdin.buffer:  # (UTF-8 whatever the locale says)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    _print_json({"error": "not valid UTF-8 (bytes of another encoding?)"})
                    continue
                try:
                    page = await search(store, line.strip(), limit=limit, offset=offset)
                    if page.too_costly:
                        _print_json({"error": _too_costly(store)})
                    else:
                        _print_json([h.to_json() for h in page.hits])
                except sqlite3.Error:
                    raise
                except Exception as exc:  # one bad line answers with an error object; the batch goes on
                    _print_json({"error": f"search failed: {type(exc).__name__}: {exc}"})
                sys.stdout.flush()
            return 0
        page = await search(store, " ".join(args.query), limit=limit, offset=offset)
        if page.too_costly:
            raise CliError(_too_costly(store))
        if page.query.cut:
            print(
                f"newsbot: the query was shortened (at most {MAX_QUERY_CHARS} characters, {MAX_TERMS} words)",
                file=sys.stderr,
            )
        if args.json:
            hits = [h.to_json() for h in page.hits]
            if args.with_count:
                # total: matching stories (exact up to MAX_RESULTS; MAX_RESULTS + 1 means more than that)
                _print_json(
                    {"total": page.total, "total_text": page.total_text, "more": page.has_more, "hits": hits}
                )
            else:
                _print_json(hits)  # the list shape scripts already read
            return 0
        if not page.hits:
            print(
                "nothing found" if not page.total else f"{page.total_text} found; none at --offset {offset}"
            )
            return 0
        print(f"{page.total_text} found; {offset + 1}–{offset + len(page.hits)}:")
        bold = ("\033[1;33m", "\033[0m") if sys.stdout.isatty() else ("[", "]")
        for i, hit in enumerate(page.hits, start=offset + 1):
            print(f"{i}. " + _human_post(hit.post, hit.marked_snippet(*bold)))
        if page.has_more:
            print(f"… more: --offset {offset + limit}")
        elif page.total > MAX_RESULTS:
            print(
                f"… only the first {MAX_RESULTS:,} can be paged: add words, or narrow with since:, cat: or #tag"
            )
        return 0
    finally:
        await store.close()


async def cmd_latest(args: argparse.Namespace, settings: Settings) -> int:
    store = await _open_existing(settings)
    try:
        posts = await store.latest(
            limit=_limit(args.limit),
            category_key=fold(args.category) if args.category else None,
        )
        if args.json:
            _print_json([p.to_json() for p in posts])
        elif not posts:
            print("no posts" + (f" in category {args.category!r}" if args.category else ""))
        else:
            print("\n".join(_human_post(p) for p in posts))
        return 0
    finally:
        await store.close()


async def cmd_categories(args: argparse.Namespace, settings: Settings) -> int:
    store = await _open_existing(settings)
    try:
        rows, total = await store.terms(
            "c",
            fold(args.filter) if args.filter else None,
            limit=max(1, min(args.limit, 10**6)),
            offset=max(0, min(args.offset, 10**9)),
        )
        if args.json:
            _print_json([{"name": name, "count": n} for _, name, n in rows])
            return 0
        for _, name, n in rows:
            print(f"{n:7d}  {name}")
        shown = args.offset + len(rows)
        print(f"({shown} of {total} categories)" if total > shown else f"({total} categories)")
        return 0
    finally:
        await store.close()


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    store = await _open_existing(settings)
    try:
        post, namesakes = await store.find_post(args.id)
        if post is None:
            raise CliError(f"no post with id or path {args.id!r}")
        if namesakes:
            print(
                f"{len(namesakes)} posts have the id {args.id!r}; the newest is shown (give a path to"
                f" choose): {', '.join(namesakes)}",
                file=sys.stderr,
            )
        await store.attach_stories([post])
        others = []
        if post.story is not None and post.reports > 1:
            others = [p for p in await store.story_posts(post.story) if p.rowid != post.rowid]
        if args.json:
            _print_json(
                post.to_json() | {"body": post.body, "path": post.path, "story_posts": [p.id for p in others]}
            )
        else:
            print(_human_post(post))
            print()
            print(post.body)
            if others:
                print("\nOther reports of this story:")
                print("\n".join(_human_post(p) for p in others))
        return 0
    finally:
        await store.close()


async def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    day = parse_day(args.since) if args.since else None
    if args.since and day is None:
        raise CliError(f"--since: not a day (YYYY-MM-DD): {args.since!r}", code=2)
    store = await _open_existing(settings)
    try:
        since_ts = day_start(day, ZoneInfo(await store.archive_timezone()))
        stories = await store.recent_stories(since_ts, max(1, min(args.limit, 1000)))
        if args.json:
            _print_json(
                [
                    {
                        "story": posts[0].story,
                        "first": posts[0].date,
                        "last": max(p.date for p in posts),
                        "posts": [p.to_json() for p in posts],
                    }
                    for posts in stories
                ]
            )
        elif not stories:
            print("no stories")
        else:
            for posts in stories:
                print(f"story {posts[0].story} · {len(posts)} report{'s' if len(posts) > 1 else ''}")
                print("\n".join(_human_post(p) for p in posts))
                print()
        return 0
    finally:
        await store.close()


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    source = Path(settings.database_path)
    if not source.exists():
        raise CliError(f"no database at {source}", code=2)
    try:
        with _stopped_by_sigterm(
            "backup stopped by SIGTERM; no copy was made, the database itself is untouched"
        ):
            copy, size = await _copied_unless_stopped(source, args.path)
    except BackupError as exc:
        raise CliError(f"backup to {args.path} failed: {exc}; the database itself is untouched", 2) from None
    print(f"backed up {source} → {copy} ({size / 2**20:.1f} MB)")
    return 0


async def _copied_unless_stopped(source: Path, dest: str) -> tuple[Path, int]:
    """store.db.backup in a thread. Cancelled (Ctrl-C, SIGTERM), it stops the copy within a step (a few
    MB), waits until the copy has removed what it wrote, and raises CancelledError; the copy used to go
    on to its end before the command exited. A copy that was complete by then is kept and returned."""
    stop = threading.Event()
    copying = asyncio.ensure_future(asyncio.to_thread(backup, source, dest, stop))
    try:
        return await asyncio.shield(copying)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([copying])
        if copying.exception() is not None:
            raise
        return copying.result()


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.check import run_check

    return await run_check(settings, print, webhook=args.webhook)


COMMANDS = {
    "sync": cmd_sync,
    "search": cmd_search,
    "latest": cmd_latest,
    "categories": cmd_categories,
    "show": cmd_show,
    "stories": cmd_stories,
    "backup": cmd_backup,
    "check": cmd_check,
}


PATH_ARGUMENTS = ("archive", "db", "path")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # `newsbot search 人民币 -汇率`: an unknown "-word" is part of the query, not a flag.
        if args.command != "search":
            parser.error("unrecognized arguments: " + " ".join(unknown))
        args.query = list(args.query) + unknown
    for name, value in vars(args).items():  # (paths may be any bytes; the rest is text)
        if name not in PATH_ARGUMENTS and not is_text(value):
            parser.error(f"{name}: not valid UTF-8 (bytes of another encoding?)")
    try:
        settings = _settings(args)
        if args.command == "run":
            from bot.app import main_run

            return main_run(settings, webhook=args.webhook)
        return asyncio.run(COMMANDS[args.command](args, settings))
    except SettingsError as exc:
        print(f"newsbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"newsbot: {exc}", file=sys.stderr)
        return exc.code
    except sqlite3.Error as exc:  # read-only, corrupt, a folder, a full disk: nothing was half-written
        path = getattr(locals().get("settings"), "database_path", "")
        print(f"newsbot: database {path}: {database_problem(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
