"""kb.forks: one forked process waits until a sibling has gone (the build's children that
each read the whole build run one after the other); Ctrl-C and SIGTERM wait for work that
must be done whole (signals_held)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from kb.forks import ChildPipe, signals_held, sigterm_interrupts, wait_for_ends


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


def test_a_signal_within_signals_held_is_acted_on_at_its_end() -> None:
    done: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # a handler would have run by now
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is before


def test_signals_held_raises_nothing_without_a_signal() -> None:
    with signals_held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigterm_held_reaches_the_handler_set_before() -> None:
    done: list[str] = []
    with sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            done.append("after the signal")
        pytest.fail("the held SIGTERM was lost")  # pragma: no cover
    assert done == ["after the signal"]


def test_a_signal_held_while_the_block_fails_is_not_lost() -> None:
    with pytest.raises(KeyboardInterrupt) as stopped, signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        raise OSError("the disk is full")
    assert isinstance(stopped.value.__context__, OSError)


def test_signals_held_outside_the_main_thread_holds_nothing() -> None:
    seen: list[object] = []

    def run() -> None:
        with signals_held():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_of_both_signals_held_sigterm_is_acted_on_first() -> None:
    """SIGTERM's action may be to end the process: a Ctrl-C held with it must not hide it; and
    when SIGTERM's handler returns, the Ctrl-C is acted on after it."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt), signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_as_the_handlers_are_put_back_leaves_none_on_hold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """signal.signal runs the handlers of pending signals before it sets a new one: a Ctrl-C
    pending as SIGTERM's handler is put back raises there. SIGTERM's handler must still be put
    back, and the SIGTERM held must still be acted on."""
    import collections
    import ctypes
    import functools
    import operator
    import types

    import kb.forks

    raise_now = getattr(ctypes.CDLL(None), "raise")  # C's raise(): no Python runs after it
    real = signal.signal
    seen: list[int] = []

    def on_term(signum: int, frame: object) -> None:
        seen.append(signum)

    tripped: list[bool] = []

    def setting(signum: int, handler: object) -> object:
        if signum == signal.SIGTERM and handler is on_term and not tripped:
            tripped.append(True)  # a Ctrl-C comes just before SIGTERM's handler is put back
            steps = [functools.partial(raise_now, signal.SIGINT),
                     functools.partial(real, signum, handler)]
            return collections.deque(map(operator.call, steps), 1)[0]
        return real(signum, handler)  # type: ignore[arg-type]

    shim = types.SimpleNamespace(**{k: getattr(signal, k) for k in dir(signal)
                                    if not k.startswith("__")})
    shim.signal = setting
    monkeypatch.setattr(kb.forks, "signal", shim)
    previous = real(signal.SIGTERM, on_term)
    try:
        with pytest.raises(KeyboardInterrupt), signals_held():
            os.kill(os.getpid(), signal.SIGTERM)  # held
            time.sleep(0.01)
        assert tripped
        assert signal.getsignal(signal.SIGTERM) is on_term
        assert seen == [signal.SIGTERM]
    finally:
        real(signal.SIGTERM, previous)
