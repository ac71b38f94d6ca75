"""kb.forks: one forked process waits until a sibling has gone (the build's children that
each read the whole build run one after the other)."""

from __future__ import annotations

import os
import time

from kb.forks import ChildPipe, wait_for_ends


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_child_pipe_ends_when_its_child_exits_and_only_then() -> None:
    go = os.pipe()  # the child keeps the write end until told to go
    pipe = ChildPipe()
    write = pipe.write
    pid = os.fork()
    if pid == 0:
        pipe.child_side()
        os._exit(0 if os.read(go[0], 1) else 1)
    end = pipe.after_fork(True)
    try:
        assert end is not None and not _open(write)
        started = time.monotonic()
        wait_for_ends([end], 0.3)  # the child is alive: the wait runs out
        assert time.monotonic() - started >= 0.25
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
        os.write(go[1], b"x")
        started = time.monotonic()
        wait_for_ends([end], 30)
        assert time.monotonic() - started < 10  # ended by the exit, not the limit
        assert os.waitpid(pid, 0)[1] == 0
    finally:
        for fd in (*go, *([end] if end is not None else [])):
            os.close(fd)


def test_a_child_pipe_without_a_child_leaves_no_descriptor() -> None:
    pipe = ChildPipe()
    ends = (pipe.read, pipe.write)
    assert pipe.after_fork(False) is None
    assert not any(map(_open, ends))


def test_a_child_pipe_closes_each_end_once() -> None:
    """A second close could shut a descriptor that has since been given the same number."""
    pipe = ChildPipe()
    end = pipe.after_fork(True)
    assert end is not None
    pipe.release()
    pipe.child_side()
    assert pipe.after_fork(False) is None
    assert _open(end)  # the read end is the caller's now: not closed under it
    os.close(end)
