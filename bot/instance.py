"""One running bot per database. Two `newsbot run` over the same database (a service and a run by hand, or
a restart that overlaps the old process) would each send every pending delivery: the channel would get
every post twice. The running bot holds an exclusive lock on a file beside the database; a second one
refuses to start and says which process holds it. The lock goes with the process however it ends (the
kernel releases it), so a crashed bot never blocks the next start. Syncs from the command line
(`newsbot sync`) do not take it: they share the database with a running bot safely."""

from __future__ import annotations

import contextlib
import logging
import os

try:
    import fcntl
except ImportError:  # (not POSIX: no lock; one bot per database is then the operator's to ensure)
    fcntl = None  # type: ignore[assignment]


log = logging.getLogger("newsbot")


class AlreadyRunning(Exception):
    pass


class InstanceLock:
    def __init__(self, database_path: str | os.PathLike[str]):
        self.path = f"{os.fspath(database_path)}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunning naming the process that holds it."""
        if fcntl is None or self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only folder: the bot may still serve searches from the database
            log.warning(
                "cannot create %s (%s): running without the one-bot-per-database lock", self.path, exc
            )
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _pid_in(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"another newsbot (pid {holder}) is running on this database; stop it first"
                f" (two would send every post twice). Lock: {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def holder(self) -> str | None:
        """The process id of the bot running on this database, or None when none is."""
        if fcntl is None:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:  # no lock file: no bot ever ran here (or the folder is unreadable)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _pid_in(fd)
        finally:
            os.close(fd)
        return None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # (closing the file releases the lock)
            self._fd = None


def _pid_in(fd: int) -> str:
    return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
