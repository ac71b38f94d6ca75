"""The build's forked children: work done in a child beside the build (`Forked`), and siblings
that wait until another has gone (`ChildPipe`).

Each child forked from the build copies the pages of the build's heap it reads; children that
each read the whole build (the graph cache's saver, the RDF dumps' process, the claims' CSV),
run one after the other from kb.build.STAGGERED_FROM claims, do not hold their copies at once.
The named queries' child (kb.extras.LaterResults) is forked below that size only. Apart from
kb.cache, whose code decides the parse and rule caches' keys: a change to this plumbing must
not throw them away.
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

SIBLING_WAIT = 120.0  # seconds at most: a sibling that hangs must not hang the build
PIPE_BYTES = 1 << 20  # a pipe from a child that may write much (widen_pipe)


def widen_pipe(stream: IO[bytes] | None) -> None:
    """Give a child's pipe 1 MiB rather than 64 KiB: what it writes then crosses in a
    sixteenth of the reads and context switches, and a child that writes before it is read
    (kb.history.GitLog) waits later. Where Linux refuses, the default serves."""
    import fcntl

    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if stream is not None and set_size is not None:
        with suppress(OSError):
            fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)


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


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class Forked:
    """`work()` run in a forked child; `result()` is (True, its value) — marshal data — or
    (False, None) when the child failed or was never forked (the caller then does the work
    itself)."""

    def __init__(self, work: Callable[[], Any], nice: int = 0) -> None:
        self.pid: int | None = None
        self._fd: int | None = None
        if not can_fork():
            return
        reader, writer = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            os.close(reader)
            os.close(writer)
            return
        if pid == 0:  # the child: never return into the build, never run its exit hooks
            code = 0
            try:
                os.close(reader)
                gc.disable()  # it lives briefly; collecting would only copy the parent's pages
                if nice:
                    os.nice(nice)
                data = marshal.dumps((True, work()))
                with os.fdopen(writer, "wb") as fh:
                    fh.write(data)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(writer)
        self.pid, self._fd = pid, reader

    @property
    def started(self) -> bool:
        return self.pid is not None

    def result(self, wait: bool = True) -> tuple[bool, Any]:
        """(True, the child's value) once it is done, or (False, None) when it failed, or,
        not to `wait`, when it has not finished its work yet (it is then stopped)."""
        if self._fd is None:
            return False, None
        if not wait and not select.select([self._fd], [], [], 0)[0]:
            self.close()  # still working (it writes its value only at the end)
            return False, None
        with os.fdopen(self._fd, "rb") as fh:
            self._fd = None
            data = fh.read()
        if self._wait() != 0:
            return False, None
        try:
            value = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return False, None
        if isinstance(value, tuple) and len(value) == 2 and value[0] is True:
            return True, value[1]
        return False, None

    def _wait(self) -> int:
        pid, self.pid = self.pid, None
        if pid is None:
            return -1
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            return -1

    def close(self) -> None:
        """Stop the child if its result was not read (a build that ended early)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._wait()


def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop as Ctrl-C does (`kb build`, `kb serve`)."""
    raise KeyboardInterrupt


def _default_in_child() -> None:
    if signal.getsignal(signal.SIGTERM) is raise_interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_in_child)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within it, SIGTERM (`kill`, a cancelled CI job, `timeout`) stops this process as Ctrl-C
    does (KeyboardInterrupt), so that what a build would clean up on an error is cleaned up:
    its staging folder (the size of the site), its children. Children forked meanwhile get the
    default action back, so that one stopped with SIGTERM ends at once. Only from the main
    thread, and not where SIGTERM is ignored (the caller's choice)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_held() -> Iterator[None]:
    """Within it, Ctrl-C and SIGTERM wait until its end, and are then acted on as they would
    have been (KeyboardInterrupt, or the default action): for work that must be done whole or
    not at all, such as an in-place commit of the site and the manifest that records it. A
    held signal is acted on even when the block raises; of both, SIGTERM first (its action may
    be to end the process), then Ctrl-C, if SIGTERM's handler returned. Only from the main
    thread (the only one where Python runs signal handlers); elsewhere the block runs as it
    is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: object) -> None:
        held.append(signum)

    previous: list[tuple[int, Any]] = []
    try:
        for signum in HELD:
            handler = signal.getsignal(signum)
            # None: a handler not set from Python; SIG_IGN: ignored by the caller's choice
            if handler is not None and handler is not signal.SIG_IGN:
                previous.append((signum, handler))  # first: put back whatever comes next
                signal.signal(signum, hold)
        yield
    finally:
        try:
            _restore(previous)
        finally:  # their handlers run now: KeyboardInterrupt (or the end) from here
            for number in sorted(set(held), key=lambda n: n != signal.SIGTERM):
                signal.raise_signal(number)


def _restore(handlers: list[tuple[int, Any]]) -> None:
    """Put each handler back, even when a signal arrives in between and its handler raises.
    (signal.signal runs the handlers of signals pending before it sets the new one: one that
    raises leaves the old one set, so it is set again.)"""
    if handlers:
        try:
            try:
                signal.signal(*handlers[0])
            except BaseException:
                signal.signal(*handlers[0])
                raise
        finally:
            _restore(handlers[1:])
