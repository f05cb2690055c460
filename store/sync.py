"""Incremental sync of a Jekyll archive into the store.

Keyed by the post's path: a file whose (mtime, size) did not change is not read; one whose bytes did not
change (same hash) is not re-parsed; new and changed files are parsed (in worker processes when there are
many) and written in batches; files gone from the archive leave the store. A post that cannot be parsed is
reported with its reason and skipped; if an earlier version of it was indexed, that version is kept until
the file is fixed or removed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import errno
import gc
import hashlib
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from . import jekyll
from .base import in_order
from .db import IndexedPost, Store
from .jekyll import (
    ArchiveConfig,
    Post,
    PostError,
    Walk,
    inside,
    iter_post_files,
    parse_post,
)
from .posts import BULK_LOAD_AT, MOVED, Failed, IndexEntry, index_entries
from .segment import ALL_PAIRS, PAIR_MIN_POSTS, PAIR_SAMPLE_POSTS, RANK_LABELS, analyse, pair_chars, warm_up
from .stories import (
    Grouper,
    StoryWrites,
    assign_batch,
    hold_stored,
    process_assign,
    process_hold,
    process_start,
)
from .sync_lock import SyncLock

log = logging.getLogger("newsbot.sync")

# Posts are parsed in chunks (one worker task each) and written in batches (one transaction each) of at
# most so many posts or so many bytes of post files, whichever comes first: a parsed post holds ~3× its
# file in memory (its text and index texts), so for large posts the byte bounds keep the sync's memory
# flat (100,000 posts of ~10 KB HTML: peak RSS ~320 → ~200 MB) where finews-sized posts meet the counts.
# Each batch's transaction writes its index entries as at least one new FTS segment: 4 MB rather than
# 2 MB of large posts a batch made those segments fewer and larger: a sync of 100,000 large posts with
# every pair indexed (SEARCH_PAIRS=all) 570 → 807–900 posts/s until searchable in three runs (23.0 GB
# written instead of 24.8), for ~20 MB more memory. (Those runs wrote so many segments that FTS5 merged
# them mid-load in some: session 12 found that and bounded the segments, see PostsStore.set_bulk_load.)
BATCH = 1000
BATCH_BYTES = 4 << 20
PARALLEL_THRESHOLD = 400  # fewer changed files than this are parsed in-process
CHUNK = 250
CHUNK_BYTES = 512 << 10
# A sync of this many changed files groups stories in a process of its own, at the lowest priority: it
# groups with the CPU time the sync leaves idle, at most MAX_GROUPING_BEHIND batches behind the writes
# (further behind, the sync waits for it), and catches up during the index merge that ends a bulk load:
# the one `optimize` of sync_archive(merge=True), or, when the merge is left for later (merge=False, as
# the bot syncs), the merge's first steps (store.merge_index), taken while the sync waits for the
# grouper, the rest left for later. (Kept 8 batches behind instead, without those steps, grouping
# throttled the bot's loads: 100,000 finews-sized posts, alternating, written in 32.4-34.7 s instead of
# 30.6-34.2, grouped and merged in 37.7-40.5 instead of 35.3-39.1; for ~35 MB more peak memory.)
GROUP_APART_AT = BULK_LOAD_AT
MAX_GROUPING_BEHIND = 40
# A bulk load that writes at least this share of the stored posts again writes a fresh index
# (PostsStore.begin_fresh_index) instead of deleting their old entries one by one
FRESH_SHARE = 0.5
PAIR_SAMPLE_BYTES = 20_000  # of each sampled file, when choosing the pair characters
# A file changed less than SETTLE_SECONDS before the walk looked at it may still be being written (a scraper
# writing into the archive, a post copied in): the sync waits until it is that old and reads it only if it
# did not change meanwhile; one still changing is left for the next sync (SyncResult.unsettled). Else a
# half-written post would be indexed, and pushed to every chat that follows the archive, cut short.
# Not in a bulk load (a first sync or a fresh clone: every file is new, and nothing is pushed).
SETTLE_SECONDS = 2.0
# A sync that would delete more than this share of the indexed posts (and at least MASS_DELETE_MIN of
# them) deletes nothing unless allowed: an unmounted volume or a wrong ARCHIVE_DIR looks like that, and
# deleted posts that come back are new posts, auto-posted again.
MASS_DELETE_SHARE = 0.5
MASS_DELETE_MIN = 10


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    # when the last post was written (every post searchable), in seconds from the start; a large sync
    # may then still be grouping stories (store.stories) and merging its index
    searchable: float = 0.0
    new_rowids: list[int] = field(default_factory=list)
    # posts a mass deletion would have removed (refused: nothing was deleted), see MASS_DELETE_*
    refused_deletes: int = 0
    # files still being written (changed again while the sync waited for them to settle): left for the
    # next sync, see SETTLE_SECONDS
    unsettled: int = 0
    # new or edited posts dated in the future, which Jekyll does not publish yet (`future: false`):
    # indexed at the first sync after their date (an edited post's indexed version stays until then)
    held: int = 0
    held_files: list[dict[str, str]] = field(default_factory=list)  # their paths and reasons (the date)
    # posts marked `published: false` (not errors); an indexed one that gets it is taken out (`deleted`)
    unpublished: int = 0
    # indexed posts whose file moved or was renamed (found by its bytes, or by its name when edited on the
    # way): the same post at its new path (counted as updated, not deleted and added: not pushed again)
    moved: int = 0

    def skip(self, rel: str, reason: str) -> None:
        self.skipped += 1
        self.errors.append({"path": rel, "reason": reason})

    def not_indexed(self, rel: str, why: Failed) -> None:
        """Count a file this sync did not index, by why (Failed.kind): held, unpublished, or skipped."""
        if why.kind == "held":
            self.held += 1
            self.held_files.append({"path": rel, "reason": why.reason})
        elif why.kind == "unpublished":
            self.unpublished += 1
        else:
            self.skip(rel, why.reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "errors": self.errors,
            "refused_deletes": self.refused_deletes,
            "unsettled": self.unsettled,
            "held": self.held,
            "unpublished": self.unpublished,
            "moved": self.moved,
        }


def index_post(
    post: Post,
    tz_name: str,
    mtime_ns: int,
    size: int,
    digest: str,
    stories: bool = True,
    pair_chars: str = "",
) -> IndexedPost:
    """A parsed post plus its folded, segmented index texts, and its story key (store.stories.StoryKey)
    unless story grouping is off."""
    local = post.date.astimezone(ZoneInfo(tz_name))
    fts, heads, rank, category_keys, tag_keys, opening = analyse(
        post.title, post.body, post.categories, post.tags, pair_chars
    )
    return IndexedPost(
        path=post.path,
        id=post.id,
        title=post.title,
        date=local.isoformat(),
        ts=int(post.date.timestamp()),
        categories=post.categories,
        tags=post.tags,
        category_keys=category_keys,
        tag_keys=tag_keys,
        url=post.url,
        archive_url=post.archive_url,
        summary=post.summary,
        body=post.body,
        mtime_ns=mtime_ns,
        size=size,
        hash=digest,
        fts=fts,
        heads=heads,
        rank_text=rank,
        story_key=(rank.partition(RANK_LABELS)[0], opening) if stories else None,
    )


@dataclass
class Parsing:
    """The files the sync is reading and parsing now, each (path, mtime_ns, size): what a watchdog names
    when the sync stalls (bot.follow), and remembers as a failure of these bytes so that the next start
    skips them. `file` is the one this process parses (an incremental sync); the parsing workers of a
    large sync each note theirs in a slot of shared memory (`_Workers.busy_files`)."""

    file: tuple[str, int, int] | None = None
    workers: _Workers | None = None

    def files(self) -> list[tuple[str, int, int]]:
        here = [self.file] if self.file is not None else []
        return here + (self.workers.busy_files() if self.workers is not None else [])


def _prepare(
    cfg: ArchiveConfig, items: list[tuple[str, str, int, int, str | None]], parsing: Parsing | None = None
) -> list[tuple]:
    """Worker: read, hash and parse files. Returns per item ('ok', rel, IndexedPost) | ('same', rel, None)
    | ('not', rel, (Failed, whether to remember it: the reason is a property of these bytes)) for a file
    not indexed. Notes each file in `parsing` while it is at it."""
    out: list[tuple] = []
    for rel, abspath, mtime_ns, size, old_hash in items:
        if parsing is not None:
            parsing.file = (rel, mtime_ns, size)
        elif _slot is not None:  # (a parsing worker)
            _note_file(f"{mtime_ns} {size} {rel}".encode())
        try:
            raw = _read(abspath, cfg)
        except (OSError, _Unusable) as exc:
            reason = str(exc) if isinstance(exc, _Unusable) else f"cannot read file: {exc.strerror or exc}"
            out.append(("not", rel, (Failed(mtime_ns, size, reason), False)))
            continue
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        if old_hash is not None and digest == old_hash:
            out.append(("same", rel, None))
            continue
        try:
            post = parse_post(cfg, rel, raw)
            grouped = cfg.story_window_hours > 0
            indexed = index_post(post, cfg.timezone, mtime_ns, len(raw), digest, grouped, cfg.pair_chars)
            out.append(("ok", rel, indexed))
        except PostError as exc:  # looked at again when it changes, or once `until` has come
            until = None if exc.until is None else math.ceil(exc.until)
            out.append(("not", rel, (Failed(mtime_ns, size, str(exc), until, exc.kind), True)))
        except Exception as exc:  # a bug or an exotic file must not abort the sync
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            out.append(("not", rel, (Failed(mtime_ns, size, reason), True)))
    if parsing is not None:
        parsing.file = None
    elif _slot is not None:
        _note_file(b"")
    return out


class _Unusable(Exception):
    """A file that changed into something that must not be read since the walk looked at it."""


def _read(path: str, cfg: ArchiveConfig) -> bytes:
    """A post file's bytes, read with plain os calls (a third faster than open().read() for small files).

    Opened without following a symlink and without blocking (a FIFO swapped in since the walk must not
    hang the sync); a symlink is read only when its real path is inside the archive; at most
    MAX_POST_BYTES are read."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EMLINK):
            raise
        real = os.path.realpath(path)  # a symlink the walk found inside the archive: check again
        if not inside(real, cfg.roots):
            raise _Unusable("symlink to outside the archive (not followed)") from None
        fd = os.open(real, os.O_RDONLY | _NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unusable("not a regular file (a FIFO, device or socket)")
        cap = cfg.max_post_bytes or (1 << 62)
        chunks, total = [], 0
        while chunk := os.read(fd, max(min(st.st_size + 1, cap + 1 - total), 1)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise _Unusable(f"file too large (over MAX_POST_BYTES {cap} bytes)")
        return b"".join(chunks)
    finally:
        os.close(fd)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


# What the stored posts were read with (meta key): the settings that change what a post file gives (its
# time, local date, archive URL, summary) or whether it is indexed yet, and the reader's version.
READ_WITH = "read_with"


def _reading(cfg: ArchiveConfig) -> dict[str, Any]:
    return {
        "timezone": cfg.timezone,
        "site_url": cfg.site_url,
        "permalink": cfg.permalink,
        "summary_chars": cfg.summary_chars,
        "future": cfg.future,
        "reader": jekyll.READER_VERSION,
        # (front matter defaults: compared by a digest; their values may be dates, which JSON lacks)
        "defaults": hashlib.blake2b(repr(cfg.defaults).encode(), digest_size=8).hexdigest()
        if cfg.defaults
        else "",
    }


async def _read_otherwise(store: Store, cfg: ArchiveConfig, reading: dict[str, Any]) -> str:
    """What changed since the stored posts were read (`reading` against READ_WITH: "timezone, permalink"),
    or "". A date without offset is read in the archive's time zone, local dates and archive URLs follow
    it, and so on: with any of them changed, the sync reads every post again. (Stored at a sync's end: a
    sync stopped before that reads them all again the next time. A database from before READ_WITH compares
    its time zone alone.)"""
    stored = await store.get_meta(READ_WITH)
    if stored is None:
        before: dict[str, Any] = {"timezone": await store.get_meta("timezone", cfg.timezone)}
    else:
        try:
            before = json.loads(stored)
        except ValueError:
            before = {}
    return ", ".join(sorted(key for key in reading if before.get(key, reading[key]) != reading[key]))


def _compare(
    cfg: ArchiveConfig,
    states: dict[str, tuple[int, int, int]],
    failed: dict[str, Failed],
    on_many: Callable[[], None],
    every: bool = False,
) -> tuple[list[tuple[str, int, int]], int, list[str], Walk, list[tuple[str, Failed]]]:
    """Walk the archive against the indexed state: (new or changed files as (path, mtime_ns, size) in
    path order, the number of unchanged files, indexed paths gone from the archive, the walk's problems,
    files that failed before and have not changed since, unless the time to look at them again has come).
    `every`: every indexed file counts as changed. `on_many` is called as soon as enough changed
    files were found to need worker processes.

    Unchanged files are only counted, so a re-sync of a large archive holds no list of its files. A path
    is gone only when the walk saw that it is not there: posts under a folder that could not be read, or
    files that could not be stat'ed, are kept."""
    changed: list[tuple[str, int, int]] = []
    still_failing: list[tuple[str, Failed]] = []
    now = jekyll.now_utc().timestamp()
    unchanged = 0
    present: set[int] = set()  # rowids of indexed posts still in the archive
    walk = Walk()
    for rel, mtime_ns, size in iter_post_files(cfg, walk):
        state = states.get(rel)
        if state is not None:
            present.add(state[0])
            if state[1] == mtime_ns and state[2] == size and not every:
                unchanged += 1
                continue
        bad = failed.get(rel)
        if (
            bad is not None
            and (bad.mtime_ns, bad.size) == (mtime_ns, size)
            and (bad.until is None or bad.until > now)
        ):
            still_failing.append((rel, bad))  # not parsed again until it changes (or until `until`)
            continue
        changed.append((rel, mtime_ns, size))
        if len(changed) == PARALLEL_THRESHOLD:
            on_many()
    changed.sort()
    gone = []
    if len(present) != len(states):
        gone = [p for p, st in states.items() if st[0] not in present and not walk.keeps(p)]
    return changed, unchanged, gone, walk, still_failing


async def _settled(
    cfg: ArchiveConfig, changed: list[tuple[str, int, int]], settle: float
) -> tuple[list[tuple[str, int, int]], int]:
    """The changed files that can be read now, and how many cannot yet (see SETTLE_SECONDS): each one
    changed less than `settle` seconds ago is looked at again once it is that old, and kept only if its
    (mtime, size) did not change meanwhile. (An mtime in the future is taken as it is: such a file is
    read at once, as it would otherwise never settle.)"""
    now = time.time_ns()
    window = int(settle * 1e9)
    fresh = {rel: (mtime_ns, size) for rel, mtime_ns, size in changed if now - window < mtime_ns <= now}
    if not fresh:
        return changed, 0
    await asyncio.sleep((max(mtime for mtime, _ in fresh.values()) + window - now) / 1e9)
    root = str(cfg.root)

    def moved(rel: str) -> bool:
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError:
            return True  # removed or unreadable meanwhile: the next sync sees what it is then
        return (st.st_mtime_ns, st.st_size) != fresh[rel]

    loop = asyncio.get_running_loop()
    unsettled = set(await loop.run_in_executor(None, lambda: [rel for rel in fresh if moved(rel)]))
    for rel in sorted(unsettled):
        log.info("%s is still being written: left for the next sync", rel)
    return [item for item in changed if item[0] not in unsettled], len(unsettled)


ProgressFn = Callable[[int, int], None]


async def sync_archive(
    store: Store,
    cfg: ArchiveConfig,
    *,
    progress: ProgressFn | None = None,
    parsing: Parsing | None = None,
    workers: int | None = None,
    allow_mass_delete: bool = False,
    merge: bool = True,
    settle: float = SETTLE_SECONDS,
) -> SyncResult:
    """Bring the store up to date with the archive (see the module's docstring).

    A bulk load (BULK_LOAD_AT changed files or more, or an index rebuild) leaves its index in many
    segments: with `merge` they are merged before this returns (and so is what an earlier sync left
    unmerged); without, the store is left with a merge pending for `store.merge_index()`, which the
    caller runs when it likes (the bot: in the background, between searches) — the posts are searchable
    as soon as this returns (100,000 large posts: ~20 s sooner).

    Files changed less than `settle` seconds ago are waited for (see SETTLE_SECONDS). `parsing` is kept
    told which files are being parsed (see Parsing)."""
    started = time.monotonic()
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    procs = _Workers(n_workers)
    if parsing is not None:
        parsing.workers = procs
    lock = SyncLock(store.path)
    try:
        # (a warning: `newsbot sync` shows it, instead of a silent wait of minutes)
        await lock.share(
            lambda: log.warning("waiting for another process's sync, which writes the index anew")
        )
        await store.drop_leftovers()  # (none is being filled: a sync filling one holds the lock alone)
        if not await store.index_is_current():
            # after an upgrade that changed the index format: a rebuild that "auto" chooses anew for
            posts = await store.count_posts()
            await _choose_pair_chars(
                store, cfg, [], posts, procs.pool_for(posts), anew=cfg.search_pairs == "auto"
            )
            await _rebuild_index(store, procs, progress, merge)
        if await store.stories_stale():
            await store.regroup(cfg.story_window_hours, progress)  # after the upgrade that added stories
        states = await store.file_states()
        return await _sync(
            store, cfg, states, procs, lock, progress, parsing, started, allow_mass_delete, merge, settle
        )
    finally:
        store.abandon_fresh_index()  # (a sync that stopped while writing one)
        lock.release()
        procs.close()


async def _rebuild_index(store: Store, workers: _Workers, progress: ProgressFn | None, merge: bool) -> None:
    """Rebuild the store's index (PostsStore.rebuild_index), its texts made in the worker processes when
    there are many posts (100,000 finews-sized posts: ~46 s in-process, with the event loop held ~0.25 s
    at a time)."""
    index_texts = None
    pool = workers.pool_for(await store.count_posts())
    if pool is not None:
        pair_chars = await store.pair_chars()
        loop = asyncio.get_running_loop()

        async def index_texts(rows: list[tuple]) -> list[IndexEntry]:
            return await loop.run_in_executor(pool, index_entries, rows, pair_chars)

    await store.rebuild_index(progress, index_texts, merge)


# Signals a sync's worker processes leave to the main process (see _child_start)
_PARENTS_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Processes(concurrent.futures.ProcessPoolExecutor):
    """A process pool whose processes start with SIGINT and SIGTERM blocked, until `_child_start`
    ignores them: one still importing its modules when Ctrl-C reached the terminal's process group
    printed a traceback, and one killed by SIGTERM broke the pool. (The pool starts its processes as
    tasks are submitted; a process started with signals blocked keeps them blocked.)"""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        if not hasattr(signal, "pthread_sigmask"):
            return super().submit(fn, *args, **kwargs)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENTS_SIGNALS)
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class _Workers:
    """A sync's worker processes: the parsing workers, started when the archive walk finds enough
    changed files (they load their dictionaries while the walk goes on) and stopped when all files are
    parsed, and the story grouper's process of a large sync; all are stopped when the sync ends."""

    def __init__(self, n: int):
        self.n = n
        self._pool: _Processes | None = None
        self._grouping: _Processes | None = None
        self._slots: Any = None  # shared memory: the file each parsing worker is at (see _note_file)
        self._numbers: Any = None  # the pipe the parsing workers take their slot numbers from

    def grouping(self, window: int, next_story: int) -> concurrent.futures.Executor:
        """A process of its own with a story grouper (store.stories.process_*); one process, so its
        tasks run in the order they are given."""
        if self._grouping is None:
            self._grouping = _Processes(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_grouper_start,
                initargs=(window, next_story),
            )
        return self._grouping

    def pool_for(self, items: int) -> _Processes | None:
        """The parsing workers (started) when `items` are enough to parse there; None: in this process."""
        return self.start() if self.n > 0 and items >= PARALLEL_THRESHOLD else None

    def start(self) -> _Processes:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._slots = ctx.Array(ctypes.c_char, self.n * SLOT_BYTES, lock=False)
            # each worker takes the number of its slot from a pipe, one byte each: a worker reads one
            # whole, and nothing of the main process need still exist when it does (a shared counter's
            # lock did: a sync stopped while its workers started left them failing to find it)
            self._numbers, give = ctx.Pipe(duplex=False)
            with give:
                os.write(give.fileno(), bytes(range(min(self.n, 256))))
            self._pool = _Processes(
                max_workers=self.n,
                mp_context=ctx,
                initializer=_worker_start,
                initargs=(self._slots, self._numbers),
            )
            for _ in range(self.n):
                self._pool.submit(warm_up)  # (the dictionaries load while the walk goes on)
        return self._pool

    def busy_files(self) -> list[tuple[str, int, int]]:
        """(path, mtime_ns, size) of the file each parsing worker is reading and parsing now."""
        if self._slots is None:
            return []
        out = []
        raw = self._slots.raw
        for at in range(0, len(raw), SLOT_BYTES):
            parts = raw[at : at + SLOT_BYTES].split(b"\0", 1)[0].decode("utf-8", "replace").split(" ", 2)
            if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                out.append((parts[2], int(parts[0]), int(parts[1])))
        return out

    def stop(self) -> None:
        """Stop the parsing workers. Without waiting for their processes to exit: joining them held the
        event loop (the bot's replies) ~100 ms; idle, they exit on their own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._slots = None
            if self._numbers is not None:
                self._numbers.close()
                self._numbers = None

    def close(self) -> None:
        self.stop()
        if self._grouping is not None:
            self._grouping.shutdown(wait=False, cancel_futures=True)
            self._grouping = None


# The sync's critical path is the main process writing the index (one SQLite thread): its other
# processes run below it. With as many parsing workers as cores, workers at the same priority took turns
# with it; the story grouper only uses what everything else leaves idle.
WORKER_NICE = 5


def _lower_priority(nice: int, idle: bool = False) -> None:
    """Lower this process's CPU priority by `nice` (or, `idle`, to SCHED_IDLE where Linux has it, else
    the highest nice value); where the system allows neither, it stays as it is."""
    if idle:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError):
            nice = 19
    try:
        os.nice(nice)
    except (AttributeError, OSError):
        pass


# Each parsing worker notes the file it is at ("mtime_ns size path", UTF-8, NUL-padded; empty between
# chunks) in its slot of shared memory, for a watchdog to name a file that stalls the sync (Parsing):
# a copy of a few hundred bytes a file, where a message to the main process would cost a round trip.
SLOT_BYTES = 4096
_slot: tuple[Any, int] | None = None  # (the shared slots, this worker's offset in them)


def _child_start() -> None:
    """What each of a sync's worker processes does first.
    - SIGINT and SIGTERM are ignored: they are the main process's to handle (it stops the sync, then its
      workers). Ctrl-C reaches the terminal's whole process group, and a worker used to print a
      KeyboardInterrupt traceback there; a worker killed by SIGTERM broke the pool under the stopping sync.
    - The process exits once the main process is gone (SIGKILL, the OOM killer). It used to wait for its
      next task forever, 80–100 MB each: concurrent.futures' workers hold their task queue's writing end
      too, so they never see it close."""
    for number in _PARENTS_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENTS_SIGNALS)  # (blocked by _Processes)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """Exit this process once the main process is gone: `sentinel` (multiprocessing's, the pipe it
    started this process through) then reads as closed, also when it died before this process got
    this far."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _worker_start(slots: Any, numbers: Any) -> None:
    """A parsing worker: below the main process, with a slot of `slots` to note its file in (its number
    read from the pipe `numbers`, one byte each: a read of one byte is never shared)."""
    global _slot
    _child_start()
    _lower_priority(WORKER_NICE)
    number = os.read(numbers.fileno(), 1)
    numbers.close()
    if number and (number[0] + 1) * SLOT_BYTES <= len(slots):  # (a worker past the slots notes nothing)
        _slot = (slots, number[0] * SLOT_BYTES)


def _note_file(note: bytes) -> None:
    """Note in this worker's slot the file it is at (b"": none). A path too long for the slot is not noted."""
    assert _slot is not None
    slots, at = _slot
    if len(note) >= SLOT_BYTES:
        note = b""
    slots[at : at + len(note) + 1] = note + b"\0"  # (the reader stops at the first NUL)


def _grouper_start(window: int, next_story: int) -> None:
    _child_start()
    _lower_priority(19, idle=True)
    process_start(window, next_story)


async def _sync(
    store: Store,
    cfg: ArchiveConfig,
    states: dict[str, tuple[int, int, int]],
    workers: _Workers,
    lock: SyncLock,
    progress: ProgressFn | None,
    parsing: Parsing | None,
    started: float,
    allow_mass_delete: bool,
    merge: bool,
    settle: float,
) -> SyncResult:
    result = SyncResult()
    loop = asyncio.get_running_loop()
    parallel = workers.n > 0

    def on_many() -> None:
        if parallel:
            loop.call_soon_threadsafe(workers.start)

    failed_before = await store.failed_files()
    reading = _reading(cfg)
    reread = await _read_otherwise(store, cfg, reading)
    if reread:
        # every post is read again (its time, local date, archive URL, summary), and every file that was
        # not indexed (one held for its date) is looked at again
        log.warning("the archive is read otherwise now (%s): every post is read again", reread)
        failed_before = {}
    changed, result.unchanged, gone_paths, walk, still_failing = await loop.run_in_executor(
        None, _compare, cfg, states, failed_before, on_many, bool(reread)
    )
    if settle > 0 and len(changed) < BULK_LOAD_AT:
        changed, result.unsettled = await _settled(cfg, changed, settle)
    if gone_paths and changed:
        moves = await _moves(store, cfg, changed, gone_paths, states)
        if moves:
            await store.move_posts([(states[old][0], new) for old, new in moves])
            for old, new in moves:
                rowid, _, size = states.pop(old)
                states[new] = (rowid, MOVED, size)  # (as stored: read again even if this sync stops)
            moved_from = {old for old, _ in moves}
            gone_paths = [path for path in gone_paths if path not in moved_from]
            result.moved = len(moves)
            log.info("%d posts moved or renamed: kept as the same posts at their new paths", len(moves))
    # files that fail to parse are remembered with their (mtime, size): not parsed again until they change
    failing: list[tuple[str, Failed]] = list(still_failing)
    for rel, reason in walk.problems + walk.unread_problems(states):
        result.skip(rel, reason)
    for rel, bad in still_failing:
        result.not_indexed(rel, bad)
    if (
        not allow_mass_delete
        and len(gone_paths) >= MASS_DELETE_MIN
        and len(gone_paths) > MASS_DELETE_SHARE * len(states)
    ):
        result.refused_deletes = len(gone_paths)
        gone_paths = []
    seq = await store.begin_sync()

    root = str(cfg.root)
    known = await store.hashes([rel for rel, _, _ in changed if rel in states])
    todo = [
        (
            rel,
            os.path.join(root, rel),
            mtime_ns,
            size,
            # (a moved post is parsed again, its bytes unchanged: its folders may give it more)
            known[rel][0] if rel in known and not reread and states[rel][1] != MOVED else None,
        )
        for rel, mtime_ns, size in changed
    ]
    del changed
    deletes = [states[path][0] for path in gone_paths]
    result.deleted = len(deletes)
    total = len(todo)
    sample = [abspath for _, abspath, _, _, _ in todo[:: max(1, total // PAIR_SAMPLE_POSTS)]]
    # the parsing workers, when there are enough files: they count the pair characters too (this process
    # makes no index texts then)
    pool = workers.pool_for(total)
    if await _choose_pair_chars(store, cfg, sample, len(states) + total, pool) and states:
        await _rebuild_index(store, workers, progress, merge)  # the posts indexed so far have no pairs
    cfg = dataclasses.replace(cfg, pair_chars=await store.pair_chars())
    bulk = total + len(deletes) >= BULK_LOAD_AT
    if total or deletes:
        await store.set_bulk_load(bulk)
    # most stored posts written again (every one, when the archive is read otherwise): into a fresh index
    # (and no other process syncing meanwhile: see store.sync_lock)
    fresh = bulk and sum(rel in states for rel, _, _, _, _ in todo) >= FRESH_SHARE * len(states) > 0
    if fresh and not await lock.alone():
        log.info("another process is syncing this database: the posts are written again one by one")
        fresh = False
    if fresh:
        await store.begin_fresh_index()
    if progress:
        progress(0, total)

    pending_posts: list[IndexedPost] = []
    pending_bytes = 0  # file bytes of pending_posts
    touches: list[tuple[int, int, int]] = []
    done = 0

    next_rowid = await store.next_rowid()
    stories = _StoryWindow(
        store,
        cfg.story_window_hours * 3600,
        await store.next_story_id(),
        # stored posts this sync changes or deletes are not anyone's neighbours
        skip={*deletes, *(states[rel][0] for rel, _, _, _, _ in todo if rel in states)} if states else None,
        grouping=workers.grouping if total >= GROUP_APART_AT and parallel else None,
        behind=MAX_GROUPING_BEHIND,
    )
    writing: asyncio.Task | None = None
    # (path, rowid, mtime_ns, size) of the posts written and touched, for the file states this process
    # remembers for its next sync; a bulk load keeps none (the next sync reads them: ~0.2 s at 100k posts)
    written: list[tuple[str, int, int, int]] | None = None if bulk else []

    async def flush(final: bool = False) -> None:
        """Hand a batch to the database; the write runs while the next results are being received."""
        nonlocal pending_posts, pending_bytes, touches, deletes, next_rowid, writing
        if not final and len(pending_posts) + len(touches) < BATCH and pending_bytes < BATCH_BYTES:
            return
        if writing is not None:
            if (
                not final
                and not writing.done()
                and len(pending_posts) < 2 * BATCH
                and pending_bytes < 2 * BATCH_BYTES
            ):
                return  # keep the workers busy while the previous batch is being written
            await writing
            writing = None
        if not (pending_posts or touches or deletes):
            return
        rows = []
        for p in pending_posts:
            state = states.get(p.path)
            if state is None:
                result.new_rowids.append(next_rowid)
                rows.append((p, next_rowid, seq))
                next_rowid += 1
            else:
                rows.append((p, state[0], known[p.path][1]))
        story_writes, behind = await stories.assign(rows)
        writing = asyncio.ensure_future(
            store.write_batch(
                rows, touches, deletes, next_rowid=next_rowid, stories=story_writes, stories_behind=behind
            )
        )
        if written is not None:
            written.extend((p.path, rowid, p.mtime_ns, p.size) for p, rowid, _ in rows)
        pending_posts, touches, deletes = [], [], []
        pending_bytes = 0
        if final:
            await writing
            writing = None

    def take(outcomes: list[tuple]) -> None:
        nonlocal done, pending_bytes
        for kind, rel, value in outcomes:
            done += 1
            if kind == "ok":
                pending_posts.append(value)
                pending_bytes += value.size
                if rel in states:
                    result.updated += 1
                else:
                    result.added += 1
            elif kind == "same":
                state = states[rel]
                st = os.stat(os.path.join(cfg.root, rel))
                touches.append((state[0], st.st_mtime_ns, st.st_size))
                if written is not None:
                    written.append((rel, state[0], st.st_mtime_ns, st.st_size))
                result.unchanged += 1
            else:
                why, remember = value
                result.not_indexed(rel, why)
                if remember:
                    failing.append((rel, why))
                if why.kind == "held":
                    log.info("%s: %s", rel, why.reason)
                elif why.kind == "unpublished" and rel in states:
                    # taken out, as a deleted post (its editors withdrew it)
                    deletes.append(states[rel][0])
                    gone_paths.append(rel)
                    result.deleted += 1
                    log.info("%s: unpublished (published: false): taken out of the index", rel)

    chunks = _chunks(todo)
    try:
        if pool is not None:
            parsed = (loop.run_in_executor(pool, _prepare, cfg, chunk) for chunk in chunks)
            async for outcomes in in_order(parsed, workers.n * 3):
                take(outcomes)
                if progress:
                    progress(done, total)
                await flush()
            workers.stop()
        else:
            for chunk in chunks:
                take(await loop.run_in_executor(None, _prepare, cfg, chunk, parsing))
                if progress:
                    progress(done, total)
                await flush()
        await flush(final=True)
    except BaseException:
        # stopped (the bot stopping, SIGTERM) or failed: the batch being written is rolled back before
        # the sync returns, not left running on a store its caller then closes ("no active connection")
        if writing is not None:
            writing.cancel()
            with contextlib.suppress(BaseException):
                await writing
        raise
    if fresh:
        await store.end_fresh_index()
    result.searchable = round(time.monotonic() - started, 3)

    if bulk or (merge and await store.merge_pending()):
        await store.end_bulk_load(merge)  # its index segments merged now, or left to store.merge_index
    if not merge and not stories.caught_up():
        # the grouper catches up on one core: merge the index on the other meanwhile, as far as it goes
        await store.merge_index(until=stories.caught_up)
    story_writes, behind = await stories.finish()  # a grouper process may have kept on during the merge
    if story_writes or behind is not None:
        await store.write_batch([], stories=story_writes, stories_behind=behind)
    result.seconds = round(time.monotonic() - started, 3)
    summary = result.to_json() | {
        "seconds": result.seconds,
        "finished": time.time(),
        "errors": result.errors[:20],
        "error_count": len(result.errors),
    }
    await store.set_meta("timezone", cfg.timezone)
    await store.set_meta(READ_WITH, json.dumps(reading, sort_keys=True))
    await store.finish_sync(summary, failing)
    if written is not None:
        for path in gone_paths:
            del states[path]
        for path, rowid, mtime_ns, size in written:
            states[path] = (rowid, mtime_ns, size)
        await store.remember_file_states(states)
    else:
        states.clear()
        _return_freed_memory()
    return result


async def _moves(
    store: Store,
    cfg: ArchiveConfig,
    changed: list[tuple[str, int, int]],
    gone_paths: list[str],
    states: dict[str, tuple[int, int, int]],
) -> list[tuple[str, str]]:
    """(old path, new path) of the indexed posts whose file is gone and is at a new path: a file moved
    into another folder (a scraper sorting posts into `_posts/2024/05/`) or renamed, found by its exact
    bytes; or moved and edited at once, found by its file name when no other file gone or new has that
    name. Before, such a post was deleted and indexed again as a new one: a new identity (its deliveries
    and story lost) and, when recent, pushed to every chat again; moving a whole archive looked like a
    mass deletion. Only new files of a gone post's size are read (once each)."""
    new_files = [(rel, size) for rel, _, size in changed if rel not in states]
    by_size: dict[int, list[str]] = {}
    for path in gone_paths:
        by_size.setdefault(states[path][2], []).append(path)
    candidates = [(rel, size) for rel, size in new_files if size in by_size]
    moves: list[tuple[str, str]] = []
    if candidates:
        sizes = {size for _, size in candidates}
        hashes = await store.hashes([path for size in sizes for path in by_size[size]])
        moves = await asyncio.get_running_loop().run_in_executor(
            None, _match_moves, cfg, candidates, by_size, {path: h for path, (h, _) in hashes.items()}
        )
    return moves + _moves_by_name(gone_paths, [rel for rel, _ in new_files], moves)


def _moves_by_name(
    gone_paths: list[str], new_files: list[str], found: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Gone posts and new files left unmatched by their bytes that share a file name no other of them
    has (`_posts/2024-05-01-x.md` gone, `news/_posts/2024-05-01-x.md` new, edited on the way)."""
    matched_old = {old for old, _ in found}
    matched_new = {new for _, new in found}
    gone_by_name: dict[str, list[str]] = {}
    for path in gone_paths:
        if path not in matched_old:
            gone_by_name.setdefault(os.path.basename(path), []).append(path)
    new_by_name: dict[str, list[str]] = {}
    for rel in new_files:
        if rel not in matched_new and os.path.basename(rel) in gone_by_name:
            new_by_name.setdefault(os.path.basename(rel), []).append(rel)
    return [
        (gone_by_name[name][0], rels[0])
        for name, rels in sorted(new_by_name.items())
        if len(rels) == 1 and len(gone_by_name[name]) == 1
    ]


def _match_moves(
    cfg: ArchiveConfig,
    candidates: list[tuple[str, int]],
    by_size: dict[int, list[str]],
    hashes: dict[str, str],
) -> list[tuple[str, str]]:
    gone_by_content: dict[tuple[int, str], list[str]] = {}
    for size, paths in by_size.items():
        for path in reversed(paths):  # (popped from the end: the first gone path first)
            if path in hashes:
                gone_by_content.setdefault((size, hashes[path]), []).append(path)
    out: list[tuple[str, str]] = []
    for rel, size in candidates:  # (in path order: the same pairs at every try)
        try:
            raw = _read(os.path.join(cfg.root, rel), cfg)
        except (OSError, _Unusable):
            continue  # (the sync reports it when it parses it)
        same = gone_by_content.get((size, hashlib.blake2b(raw, digest_size=16).hexdigest()))
        if same:
            out.append((same.pop(), rel))
    return out


def _chunks(
    todo: list[tuple[str, str, int, int, str | None]],
) -> Iterator[list[tuple[str, str, int, int, str | None]]]:
    """The files to parse, in order, as chunks of at most CHUNK files and CHUNK_BYTES bytes (a chunk
    holds at least one file)."""
    chunk: list[tuple[str, str, int, int, str | None]] = []
    size = 0
    for item in todo:
        if chunk and (len(chunk) >= CHUNK or size + item[3] > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item[3]
    if chunk:
        yield chunk


class _StoryWindow:
    """A sync's story grouping (store.stories). A sync groups each batch in this process before the
    batch is written, so posts and their stories land in one transaction. A large one (given `grouping`,
    which starts a grouper process, see GROUP_APART_AT) groups in that process, behind the writes: each
    batch's transaction writes the story changes of the batches grouped since the last one (in order),
    and the sync writes the rest when all are grouped (`finish`); meanwhile the store is marked
    `stories_stale`, so a sync that stops halfway is regrouped by the next one. When the archive had posts before this sync (`skip` is then the
    set of stored posts it changes or deletes), the grouper is given the stored posts around each
    batch's dates."""

    def __init__(
        self,
        store: Store,
        window: int,
        next_story: int,
        skip: set[int] | None,
        grouping: Callable[[int, int], concurrent.futures.Executor] | None,
        behind: int = MAX_GROUPING_BEHIND,
    ):
        self.store = store
        self.max_behind = behind  # batches the grouper process may be behind the writes
        self.window = window
        self.skip = skip if window > 0 else None
        self._held: tuple[int, int] | None = None  # the date range of stored posts given to the grouper
        self._grouper: Grouper | None = None
        self._process: concurrent.futures.Executor | None = None
        if grouping is not None and window > 0:
            self._process = grouping(window, next_story)
        else:
            self._grouper = Grouper(window, next_story)
        self._grouping: collections.deque[asyncio.Future[StoryWrites | None]] = collections.deque()
        self.behind = False  # posts were written whose stories are not yet
        self.failed = False  # the grouper process failed: no more stories this sync

    async def assign(self, rows: list[tuple[IndexedPost, int, int]]) -> tuple[list[StoryWrites], bool | None]:
        """Group a batch's posts: the story changes to write with the batch (in order) and the batch's
        `stories_behind` (see PostsStore.write_batch)."""
        if rows and self.skip is not None:
            ts = [post.ts for post, _, _ in rows]
            await self._hold(min(ts) - self.window, max(ts) + self.window, self.skip)
        items = [(rowid, post.ts, post.story_key) for post, rowid, _ in rows]
        if self._grouper is not None:
            return [assign_batch(self._grouper, items)], None
        if items and not self.failed:
            loop = asyncio.get_running_loop()
            self._grouping.append(_quiet(loop.run_in_executor(self._process, process_assign, items)))
        return await self._take(self.max_behind)

    def caught_up(self) -> bool:
        """Whether the grouper process has grouped every batch given to it (or failed)."""
        return self.failed or all(task.done() for task in self._grouping)

    async def finish(self) -> tuple[list[StoryWrites], bool | None]:
        """The story changes not written yet, once all are grouped."""
        return await self._take(0)

    async def _take(self, behind: int) -> tuple[list[StoryWrites], bool | None]:
        """The grouper process's results, in order: those ready, waiting for more while over `behind`
        tasks are pending.
        If the process fails (killed, out of memory), the sync goes on without stories: the posts are
        written, the store stays marked `stories_stale` and the next sync groups them."""
        done = []
        while (
            not self.failed and self._grouping and (self._grouping[0].done() or len(self._grouping) > behind)
        ):
            try:
                writes = await self._grouping.popleft()
            except Exception as exc:  # the process or its task failed: its state is lost
                log.warning(
                    "story grouping stopped (%s: %s); the next sync groups the posts", type(exc).__name__, exc
                )
                self.failed = True
                for pending in self._grouping:
                    pending.cancel()
                self._grouping.clear()
                break
            if writes is not None:  # a task that held neighbours returns nothing
                done.append(writes)
        was_behind, self.behind = self.behind, bool(self._grouping) or self.failed
        return done, True if self.behind else (False if was_behind else None)

    async def _hold(self, lo: int, hi: int, skip: set[int]) -> None:
        """Give the grouper the stored posts dated lo..hi it was not given yet."""
        held = self._held
        ranges = [(lo, hi)]
        if held is not None:
            ranges = [r for r in ((lo, held[0] - 1), (held[1] + 1, hi)) if r[0] <= r[1]]
            lo, hi = min(lo, held[0]), max(hi, held[1])
        self._held = (lo, hi)
        for a, b in ranges:
            posts, spans = await self.store.stored_neighbours(a, b, skip)
            if self._grouper is not None:
                hold_stored(self._grouper, posts, spans)
            elif posts and not self.failed:
                loop = asyncio.get_running_loop()
                self._grouping.append(_quiet(loop.run_in_executor(self._process, process_hold, posts, spans)))


T = TypeVar("T")


def _quiet(future: asyncio.Future[T]) -> asyncio.Future[T]:
    """`future`, whose exception is not logged as never retrieved when nothing awaits it any more (the
    grouper's pending tasks of a sync that was stopped, their process killed with it); awaiting it
    still raises it."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


async def _choose_pair_chars(
    store: Store,
    cfg: ArchiveConfig,
    files: list[str],
    posts: int,
    executor: concurrent.futures.Executor | None = None,
    anew: bool = False,
) -> bool:
    """Choose the archive's pair characters (store.segment) as `cfg.search_pairs` asks. "all": every
    CJK character (ALL_PAIRS). "common": the most common ones, from a sample of the stored posts and of
    `files` (new ones), once the archive has PAIR_MIN_POSTS `posts`; they never change after ("" when
    the archive had no CJK text then), unless the setting does. "auto": as "common", but every
    character when the sample's posts are long (see `pair_chars`), and whatever was chosen before is
    kept, but for a rebuild (`anew`: the index is made again whatever they are). True when they
    changed now (the posts indexed so far need their index texts made again).
    They are counted in `executor`, by default a thread: reading and counting take ~0.3 s the bot's
    replies need not wait."""
    chosen = await store.get_meta("pair_chars")
    if cfg.search_pairs == "all":
        if chosen == ALL_PAIRS:
            return False
        await _set_pair_chars(store, ALL_PAIRS, cfg)
        return True
    # chosen anew when the setting went from "all" to "common", or for a rebuild
    changed = (chosen == ALL_PAIRS and cfg.search_pairs == "common") or (anew and chosen is not None)
    if changed:
        await store.set_pair_chars(None)
    elif chosen is not None:
        return False
    if posts < PAIR_MIN_POSTS:
        return changed
    stored = await store.sample_texts(PAIR_SAMPLE_POSTS, PAIR_SAMPLE_BYTES)
    wanted = files[: max(0, PAIR_SAMPLE_POSTS - len(stored))]

    loop = asyncio.get_running_loop()
    counted = await loop.run_in_executor(executor, _count_pair_chars, stored, wanted, cfg)
    await _set_pair_chars(store, counted, cfg)
    return True


async def _set_pair_chars(store: Store, chars: str, cfg: ArchiveConfig) -> None:
    """Store the chosen pair characters and say what the index holds from then on (how an operator sees
    what SEARCH_PAIRS=auto chose)."""
    await store.set_pair_chars(chars)
    if chars == ALL_PAIRS:
        held = "every pair of adjacent CJK characters"
    elif chars:
        held = f"the pairs of its {len(chars)} most common CJK characters"
    else:
        held = "no pairs (no CJK text)"
    log.info("search index: %s (SEARCH_PAIRS=%s)", held, cfg.search_pairs)


def _count_pair_chars(stored: list[str], files: list[str], cfg: ArchiveConfig) -> str:
    """The pair characters of stored texts and of the start of `files` (see `_choose_pair_chars`)."""
    return pair_chars(stored + _read_texts(files, cfg), cfg.search_pairs)


def _read_texts(paths: list[str], cfg: ArchiveConfig) -> list[str]:
    """The start of each file as text, read as the sync reads posts (`_read`: no FIFO, no link out of
    the archive, no file over MAX_POST_BYTES); a sample for counting characters, so files that cannot
    be read are left out."""
    out = []
    for path in paths:
        try:
            out.append(_read(path, cfg)[:PAIR_SAMPLE_BYTES].decode("utf-8", "ignore"))
        except (OSError, _Unusable):
            continue
    return out


def _return_freed_memory() -> None:
    """Hand the memory a bulk load freed back to the OS. glibc keeps freed heap pages for reuse; a
    long-running bot would otherwise carry the load's peak (~20 MB more at 100k posts) into every later
    sync and search. Elsewhere (no glibc) this does nothing."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    gc.collect()
    trim(0)
