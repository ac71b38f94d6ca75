"""One build of a knowledge base at a time, across processes.

Two builds of one knowledge base at once (`kb serve` rebuilding while an editor runs `kb
build`, two terminals) each planned against the site and manifest they found, then committed
into the same folder: one's in-place commit could move its pages into the other's new site, and
the last manifest saved described only its own. A build now takes an exclusive lock on a file
beside its manifest (in the user's cache folder) before it reads the manifest, and keeps it
until the manifest it wrote is saved; another build of the same knowledge base waits for it.

A POSIX record lock (lockf), not flock: it belongs to the process alone, so the children a
build forks (page workers, the caches' savers, the process that deletes the last site for
minutes at 100,000 claims) do not hold it after the build, as they would hold an inherited
flock. The kernel drops it with its process: a build that was killed leaves none behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kb.cache import cache_path

POLL = 0.1  # seconds between tries while another build holds the lock


class LockWaitStopped(Exception):
    """`stop` was set while the build waited for another's lock."""


def lock_path(root: Path, folder: Path | None = None) -> Path:
    return cache_path(root, "build", folder).with_suffix(".lock")


@contextmanager
def build_lock(root: Path, waiting: Callable[[], None] | None = None,
               stop: threading.Event | None = None,
               folder: Path | None = None) -> Iterator[None]:
    """Hold the knowledge base's build lock; `waiting` is called once if another build holds
    it. Polled rather than blocked on, so that a signal (Ctrl-C) or `stop` ends the wait.
    Without a cache folder to put the lock in (a read-only home), builds are not kept apart."""
    path = lock_path(root, folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        told = False
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    break  # a file system without locks (ENOLCK): not kept apart, as above
                if stop is not None and stop.is_set():
                    raise LockWaitStopped from None
                if not told and waiting is not None:
                    waiting()
                    told = True
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)  # and with it the lock
