"""Siblings among the build's forked processes: one waits until another has gone.

Each child forked from the build copies the pages of the build's heap it reads; children that
each read the whole build (the graph cache's saver, the RDF dumps' process, the claims' CSV),
run one after the other, do not hold their copies at once. Apart from kb.cache, whose code
decides the parse and rule caches' keys: a change to this plumbing must not throw them away.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterable
from contextlib import suppress

SIBLING_WAIT = 120.0  # seconds at most: a sibling that hangs must not hang the build


def wait_for_ends(fds: Iterable[int], seconds: float) -> None:
    """Wait until each pipe end reads as ended, `seconds` at most in all: the write end, held
    by one sibling only (ChildPipe), ends when that sibling exits or execs (os.pipe's ends are
    not inherited across exec)."""
    deadline = time.monotonic() + seconds
    for fd in fds:
        with suppress(OSError, ValueError):  # ValueError: select cannot watch fds ≥ 1024
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([fd], [], [], left)
                if ready and not os.read(fd, 1):
                    break  # ended


class ChildPipe:
    """A pipe whose write end one forked child alone keeps, so that its read end, waited on
    with wait_for_ends, tells its siblings when that child has exited or exec'd.

    Made before the fork; `after_fork` then closes this process's write end at once (a copy
    kept here, or inherited by a later sibling, would make the wait last its whole limit).
    In the child, `child_side` drops the read end it needs not hold, and `release` lets the
    siblings go before the child ends. Each end is closed once: closing a number twice could
    close a descriptor that has since been given the same number."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()  # OSError when no descriptors are left

    def _close(self, which: str) -> None:
        fd = getattr(self, which)
        if fd >= 0:
            setattr(self, which, -1)
            with suppress(OSError):
                os.close(fd)

    def child_side(self) -> None:
        self._close("read")

    def release(self) -> None:
        """In the child: the siblings need not wait any longer."""
        self._close("write")

    def after_fork(self, forked: bool) -> int | None:
        """In this process, once the child is forked (or failed to be): the read end to wait
        on, now the caller's to close, or None, both ends closed, when there is no child."""
        self._close("write")
        if not forked:
            self._close("read")
            return None
        read, self.read = self.read, -1
        return read
