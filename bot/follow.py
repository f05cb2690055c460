"""Following the archive: git pull + sync (never two at once), and turning new posts into deliveries
(the sender that works through the delivery ledger is bot.deliver).

Exactly-once delivery: a delivery row is written (pending) in the same transaction that advances the
"delivered_seq" watermark, so a crash can neither lose new posts nor enqueue them twice. Before a send the
row becomes "sending", after it "sent". A row still "sending" after a crash has an unknown outcome
(Telegram may or may not have received it); it is sent again on restart: a rare duplicate is preferred
to a silent loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from typing import NamedTuple

from store.candidates import TooCostly
from store.db import Store, database_problem, now_ts
from store.jekyll import ArchiveError
from store.search import matching
from store.settings import Settings, archive_config
from store.sync import Parsing, SyncResult, sync_archive

log = logging.getLogger("newsbot.follow")
QUERY_BUTTONS_TTL = 7 * 86400
# Finished deliveries are kept this long (/stats counts them), and at least a day longer than the story
# window: a story's later reports are matched against the deliveries of its first.
DELIVERIES_KEPT_DAYS = 30
# A sync that has done no file for this long is reported to the admins (looked at every STALL_CHECK_EVERY
# seconds): a first sync of 100,000 large posts does a chunk of files every few seconds.
STALL_ALERT_AFTER = 600.0
STALL_CHECK_EVERY = 30.0


@dataclass
class SyncReport:
    result: SyncResult | None
    seconds: float
    pull_error: str | None = None
    error: str | None = None
    queued: int = 0
    too_old: int = 0  # new posts not pushed for their date (enqueue_new_posts)


STOPPED = "stopped: the bot is stopping (the next start syncs again)"
GIT_STOP_WAIT = 5.0  # seconds git is given to end on SIGTERM (removing its lock files) before SIGKILL


async def _end_git(proc: asyncio.subprocess.Process) -> None:
    """Stop a git pull that timed out or whose sync the bot stops: SIGTERM to its process group first,
    which git answers by removing its lock files (`.git/index.lock`) and exiting; SIGKILL only if it is
    still there GIT_STOP_WAIT seconds later. Killed at once, or left running when the bot exited, it
    could leave the lock behind, and every later pull failed with "index.lock exists" until someone
    removed it by hand."""
    for sig, wait in ((signal.SIGTERM, GIT_STOP_WAIT), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), wait)
            return
        except asyncio.TimeoutError:
            continue


def deliveries_kept(settings: Settings) -> int:
    """How long finished deliveries are kept, in seconds."""
    return max(DELIVERIES_KEPT_DAYS * 86400, (settings.story_window_hours + 24) * 3600)


async def sync_settings_rules(store: Store, settings: Settings) -> None:
    """Make the 'settings' rules in the database match AUTOPOST_CHATS (new ones start from now)."""
    wanted = set()
    for rule in settings.autopost_chats:
        rid, _ = await store.add_rule(
            str(rule.chat_id),
            thread=rule.thread_id or 0,
            categories=rule.categories,
            query=(rule.query or "").strip(),
            origin="settings",
        )
        wanted.add(rid)
    for stored in await store.rules(origin="settings"):
        if stored["id"] not in wanted:
            await store.remove_rule(stored["id"])


class Queued(NamedTuple):
    queued: int  # deliveries queued
    broken: list[tuple[dict, str]]  # (rule, reason) of the rules paused because their filter failed
    too_old: int  # new posts not pushed for their date (see enqueue_new_posts)


async def enqueue_new_posts(store: Store, max_age: float = 0) -> Queued:
    """Record a pending delivery for every (rule, post first indexed after the rule existed) match.

    A new post dated more than `max_age` seconds ago (0: any date) is indexed but not pushed: a backfill
    of old posts, or files edited and moved (one moved unchanged keeps its post: store.sync), would otherwise
    push the archive's past to every chat as news, one digest after another. Their number is returned.

    Rules with the same filter (readers subscribe to the same categories and words) are matched once, over
    the new posts any of them may get: each distinct filter costs a database read, not each rule. A
    filter that cannot be run pauses its rules, with the reason, returned in the second list (rule,
    reason); every other rule is enqueued as usual. Deliveries are recorded oldest post first, whichever
    rule found them, so the report of a story a chat gets is its first (LedgerStore.enqueue)."""
    delivered = int(await store.get_meta("delivered_seq", "0") or 0)
    current = await store.current_seq()
    if current <= delivered:
        return Queued(0, [], 0)
    rules = [rule for rule in await store.rules() if not rule["paused"]]
    new = await store.new_posts_since(delivered) if rules else []
    oldest = now_ts() - max_age if max_age > 0 else None
    too_old = 0
    if oldest is not None:
        too_old = sum(1 for _, _, ts in new if ts < oldest)
        new = [post for post in new if post[2] >= oldest]
    by_filter: dict[tuple[tuple[str, ...], str], list[tuple[dict, list[int]]]] = {}
    for rule in rules:
        eligible = [rowid for rowid, first_seen, _ in new if first_seen > rule["since_seq"]]
        if eligible:
            by_filter.setdefault((tuple(rule["categories"]), rule["query"]), []).append((rule, eligible))
    items: list[tuple[int, str, int, int]] = []
    broken: list[tuple[dict, str]] = []
    for (categories, query), members in by_filter.items():
        candidates = sorted({rowid for _, eligible in members for rowid in eligible})
        try:
            keep = set(candidates)
            if categories:
                keep &= await store.posts_in_categories(candidates, list(categories))
            if query:
                keep &= await matching(store, query, candidates)
        except Exception as exc:  # this filter, not the sync, is broken
            if isinstance(exc, TooCostly):  # its query would hold the database at every sync
                reason = f"its query is too costly to check: {exc}"
            else:
                reason = f"filter failed: {type(exc).__name__}: {str(exc)[:200]}"
            for rule, _ in members:
                log.warning("rule %s paused: %s", rule["id"], reason)
                await store.pause_rule(rule["id"], reason)
                broken.append((rule, reason))
            continue
        for rule, eligible in members:
            items += [
                (rule["id"], rule["chat"], rule["thread"], rowid) for rowid in eligible if rowid in keep
            ]
    order = {rowid: i for i, (rowid, _, _) in enumerate(new)}  # (new posts come oldest first)
    items.sort(key=lambda item: order[item[3]])
    if too_old:
        log.info("%d new posts dated more than %.0f h ago: indexed, not pushed", too_old, max_age / 3600)
    return Queued(await store.enqueue(items, current), broken, too_old)


class Follower:
    """Runs syncs one at a time; a sync asked for while one runs joins it. A sync that loads many posts
    leaves its index merge (store.merge_index) to a task of its own: the new posts are searchable as soon
    as they are written, and searches go between the merge's steps (merged in one go, the connection
    was busy ~5 s at 100,000 finews-sized posts, ~20 s at 100,000 large ones)."""

    def __init__(self, store: Store, settings: Settings, notify, on_new=None, tell=None):
        self.store, self.settings, self.notify, self.on_new = store, settings, notify, on_new
        self.tell = tell  # tell(chat_id, key, **values): a message to one user (a subscription's owner)
        self._task: asyncio.Task | None = None
        self._reported: set[tuple[str, str]] = set()  # skipped files the admins were told about
        self._failing: dict[str, tuple[str, str]] = {}  # "sync"/"pull" -> (alert, error) last told
        self._refused = 0  # the refused mass deletion the admins were last told about
        self._told_held = False  # whether the admins were told that posts dated in the future are held
        self.progress: tuple[int, int] | None = None  # (files done, files to do) of the sync running
        self.parsing = Parsing()  # the files the sync running is parsing
        self.merging: asyncio.Task | None = None  # the index merge a large sync left
        self._stopping = False  # the bot is stopping: a sync stopped for it is not a failure

    async def sync(self, pull: bool | None = None) -> SyncReport:
        """Run a sync, or wait for the one running. When the bot stops it (`stop`), its waiters (a
        /reload, the schedule) get a report saying so instead of a cancellation: a handler cancelled
        half-way would leave its update unfinished, and the application waits for every update. Once
        the bot is stopping, no sync starts (a schedule's turn coming meanwhile)."""
        if self._stopping:
            return SyncReport(None, 0.0, None, STOPPED)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(
                self._run(self.settings.archive_git_pull if pull is None else pull)
            )
        task = self._task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._stopping and task.cancelled():
                return SyncReport(None, 0.0, None, STOPPED)
            raise

    async def _run(self, pull: bool) -> SyncReport:
        started = time.monotonic()
        # a merge and a sync never overlap (a merge finishing during a bulk load would put the index
        # back in incremental mode under it): the merge stops, losing at most its step in flight, and
        # goes on after the sync
        await self.stop_merging()
        pull_error = await self.git_pull() if pull else None
        if pull_error:
            await self._alert_once("pull", "alert.pull_failed", pull_error)
        elif pull:
            self._failing.pop("pull", None)
        self.progress, self.parsing.file = None, None
        watchdog = asyncio.ensure_future(self._watch_progress())
        try:
            cfg = archive_config(self.settings)
            result = await sync_archive(
                self.store,
                cfg,
                progress=self._on_progress,
                parsing=self.parsing,
                allow_mass_delete=self.settings.allow_mass_delete,
                merge=False,
            )
            queued, broken, too_old = await enqueue_new_posts(
                self.store, self.settings.deliver_max_age_hours * 3600
            )
            await self.store.load_maps()  # (not by the first search after the sync)
            await self._merge_in_background()  # after the new posts' deliveries are queued
        except ArchiveError as exc:
            log.error("sync: %s", exc)
            await self._alert_once("sync", "alert.archive_error", str(exc))
            return SyncReport(None, round(time.monotonic() - started, 2), pull_error, str(exc))
        except Exception as exc:  # a full disk, a corrupt database…: a human must look
            log.exception("sync failed")
            error = (
                database_problem(exc) if isinstance(exc, sqlite3.Error) else f"{type(exc).__name__}: {exc}"
            )
            await self._alert_once("sync", "alert.sync_failed", error)
            return SyncReport(None, round(time.monotonic() - started, 2), pull_error, error)
        finally:
            watchdog.cancel()
        self._failing.pop("sync", None)
        await self._report(result, broken)
        await self.store.forget_queries(QUERY_BUTTONS_TTL)  # their paging buttons then say "expired"
        await self.store.forget_deliveries(deliveries_kept(self.settings))
        if queued and self.on_new:
            self.on_new()
        report = SyncReport(result, round(time.monotonic() - started, 2), pull_error, None, queued, too_old)
        log.info(
            "sync: added %d, updated %d, deleted %d, unchanged %d, skipped %d; %d deliveries queued",
            result.added,
            result.updated,
            result.deleted,
            result.unchanged,
            result.skipped,
            queued,
        )
        return report

    async def _watch_progress(self) -> None:
        """Tell the admins, once, when the sync running has done no file for STALL_ALERT_AFTER seconds (a
        file the parser cannot finish, a disk that hangs): it would otherwise wait without a word, and
        every sync asked for meanwhile (scheduled or /reload) with it. When it is stuck on files being
        parsed (in this process, or by a large sync's workers), they are named and remembered as failing
        in these bytes: the next start skips them (they would stall that sync too) until they change."""
        seen, since = (self.progress, self.parsing.files()), time.monotonic()
        while True:
            await asyncio.sleep(STALL_CHECK_EVERY)
            now = (self.progress, self.parsing.files())
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since >= STALL_ALERT_AFTER:
                minutes = max(1, round((time.monotonic() - since) / 60))
                if now[1]:  # stuck on these files (each worker's, or this process's)
                    reason = (
                        f"reading and parsing it did not finish in {minutes} min (skipped until it changes)"
                    )
                    for path, mtime_ns, size in now[1]:
                        log.error("sync: stuck on %s for %d min: skipped from the next start", path, minutes)
                        await self.store.remember_failed(path, mtime_ns, size, reason)
                    paths = ", ".join(path for path, _, _ in now[1])
                    await self.notify("alert.sync_stalled_file", minutes=minutes, path=paths)
                    return
                done, total = self.progress or (0, 0)
                log.error("sync: no progress for %d min (%d of %d files done)", minutes, done, total)
                await self.notify("alert.sync_stalled", minutes=minutes, done=f"{done:,}", total=f"{total:,}")
                return

    async def _merge_in_background(self) -> None:
        """Start merging the index when a sync (this one or one stopped before) left a merge pending."""
        if not self.is_merging and await self.store.merge_pending():
            self.merging = asyncio.ensure_future(self._merge())

    async def _merge(self) -> None:
        started = time.monotonic()
        try:
            steps = await self.store.merge_index()
        except Exception:  # a full disk…: the index stays searchable, the next sync tries again
            log.exception("index merge stopped")
            return
        log.info("index merged in %d steps, %.1f s", steps, time.monotonic() - started)

    @property
    def is_merging(self) -> bool:
        """Whether the index merge a large sync left is running."""
        return self.merging is not None and not self.merging.done()

    async def stop_merging(self) -> None:
        """Stop the index merge running (its step in progress rolls back; the next sync or start goes
        on from the steps done)."""
        if self.merging is not None and not self.merging.done():
            self.merging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.merging

    async def stop(self) -> None:
        """Stop the sync running, if any (its transaction in progress rolls back: the next start syncs
        what it had not written), and the index merge. Callers of `sync` only stop waiting for it when
        they are cancelled; without this it went on while the bot shut down, and failed on the closed
        database with a "sync failed" error, and an alert, at every stop that came during a sync."""
        self._stopping = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stop_merging()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)

    async def _alert_once(self, what: str, key: str, error: str) -> None:
        """Tell the admins a sync (or its git pull: `what`) failed, once until it fails differently or
        works again (a scheduled sync would otherwise repeat it every few minutes)."""
        if self._failing.get(what) != (key, error):
            self._failing[what] = (key, error)
            await self.notify(key, error=error)

    async def _report(self, result: SyncResult, broken: list[tuple[dict, str]]) -> None:
        """Tell the admins what needs a human, once: newly skipped files, a refused mass deletion, rules
        paused because their filter failed (and the owner of such a subscription)."""
        seen = {(e["path"], e["reason"]) for e in result.errors}
        new = [e for e in result.errors if (e["path"], e["reason"]) not in self._reported]
        self._reported = seen
        if new:
            first = "; ".join(f"{e['path']}: {e['reason']}" for e in new[:3])
            await self.notify("alert.skipped", count=len(new), first=first)
        if result.held_files and not self._told_held:
            # once a run: scheduled posts are held every day, but so are all new posts when their dates
            # are read in the wrong time zone (a post of 10:00 +0800 written as a plain 10:00 in UTC)
            self._told_held = True
            one = result.held_files[0]
            await self.notify("alert.held", count=result.held, first=f"{one['path']}: {one['reason']}")
        if result.refused_deletes and result.refused_deletes != self._refused:
            await self.notify("alert.mass_delete", count=result.refused_deletes)
        self._refused = result.refused_deletes  # told again only when it changes
        for rule, reason in broken:
            await self.notify("alert.rule_paused", id=rule["id"], reason=reason)
            if rule["origin"] == "subscription" and rule["owner"] and self.tell is not None:
                await self.tell(rule["owner"], "subscribe.paused", id=rule["id"], reason=reason)

    async def git_pull(self) -> str | None:
        """`git pull --ff-only` in the archive; an error message, or None when it worked or is not a repo."""
        root = str(self.settings.archive_dir)
        if not os.path.isdir(root):
            return None
        try:
            probe = await asyncio.create_subprocess_exec(
                "git",
                "-C",
                root,
                "rev-parse",
                "--is-inside-work-tree",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await probe.communicate()
        except FileNotFoundError:
            return "git is not installed"
        if probe.returncode != 0 or out.strip() != b"true":
            return None
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            root,
            "pull",
            "--ff-only",
            "--quiet",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            start_new_session=True,  # (its own process group: git pull runs fetch and merge as children)
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.settings.git_pull_timeout)
        except asyncio.TimeoutError:
            await _end_git(proc)
            return f"git pull timed out after {self.settings.git_pull_timeout}s"
        except asyncio.CancelledError:  # the bot is stopping (Follower.stop)
            await _end_git(proc)
            raise
        if proc.returncode != 0:
            lines = [line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
            return (lines[0] if lines else f"exit code {proc.returncode}")[:300]
        return None
