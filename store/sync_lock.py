"""Syncs of one database in several processes (the bot's, `newsbot sync` from the command line) write
post by post, each batch in a transaction of its own, so they may run at the same time. A sync that
writes a fresh index (PostsStore.begin_fresh_index) may not: which of two indexes holds a post's entries
is known only to it. So every sync holds a shared lock on a file beside the database, and a sync writes
a fresh index only when it can hold it alone (else it writes post by post, as before); while one does,
the others wait for it. The kernel releases the lock with the process however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # (not POSIX: no lock, and so no fresh index)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("newsbot.sync")

WAIT_STEP = 0.2  # seconds between two looks at a lock another process holds
_told: set[str] = set()  # lock files this process could not use, said once (the bot syncs every few minutes)


def _cannot(path: str, why: object) -> None:
    log.log(
        logging.DEBUG if path in _told else logging.WARNING,
        "cannot lock %s (%s): this sync writes post by post",
        path,
        why,
    )
    _told.add(path)


class SyncLock:
    def __init__(self, database_path: str):
        # (an in-memory database has no other process)
        self.path = None if database_path == ":memory:" else f"{database_path}.sync.lock"
        self._fd: int | None = None

    async def share(self, waiting: Callable[[], None] | None = None) -> None:
        """Hold the lock with the other syncs; while a sync writing a fresh index holds it alone, wait
        (`waiting` is called once then). Without a lock file (it cannot be created) nothing is held."""
        if self._fd is None:
            if fcntl is None or self.path is None:
                return
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                _cannot(self.path, exc)
                return
        told = False
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not told and waiting is not None:
                    waiting()
                told = True
                await asyncio.sleep(WAIT_STEP)
            except OSError as exc:  # a file system without locks (some network ones: ENOLCK)
                _cannot(str(self.path), exc)
                self.release()
                return

    async def alone(self) -> bool:
        """Whether this sync now holds the lock alone (no other process is syncing): it may write a fresh
        index. If not, it shares the lock again (Linux drops a shared lock that fails to become
        exclusive) and says False."""
        if fcntl is None or self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            await self.share()
            return False
        except OSError:
            return False

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
