"""One build of a knowledge base at a time, across processes and threads.

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
# What `kb build` and `kb serve` say when their build waits (BuildOptions.waiting)
WAITING = "kb: another build of this knowledge base is running; waiting for it to end"


class LockWaitStopped(Exception):
    """`stop` was set while the build waited for another's lock."""


def lock_path(root: Path, folder: Path | None = None) -> Path:
    return cache_path(root, "build", folder).with_suffix(".lock")


# lockf's locks are the process's: two threads of one process would both get one, and the
# first to close its descriptor would drop the other's. So a thread takes this lock first.
_THREADS: dict[str, threading.Lock] = {}
_THREADS_LOCK = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREADS_LOCK:
        return _THREADS.setdefault(str(path), threading.Lock())


@contextmanager
def build_lock(root: Path, waiting: Callable[[], None] | None = None,
               stop: threading.Event | None = None,
               folder: Path | None = None) -> Iterator[None]:
    """Hold the knowledge base's build lock; `waiting` is called once if another build (of this
    process or another) holds it. Polled rather than blocked on, so that a signal (Ctrl-C) or
    `stop` ends the wait (LockWaitStopped). Without a cache folder to put the lock in (a
    read-only home) or locks on its file system, builds of other processes are not kept apart."""
    path = lock_path(root, folder)
    told = False

    def wait() -> None:
        nonlocal told
        if stop is not None and stop.is_set():
            raise LockWaitStopped
        if not told and waiting is not None:
            waiting()
            told = True

    threads = _thread_lock(path)
    held = threads.acquire(blocking=False)
    while not held:
        wait()
        held = threads.acquire(timeout=POLL)
    try:
        fd: int | None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            fd = None
        try:
            while fd is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        break  # a file system without locks (ENOLCK)
                wait()
                time.sleep(POLL)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # and with it the lock
    finally:
        threads.release()
