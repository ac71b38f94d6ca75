"""The plan of a build: which pages to render, and which to keep from the last site.

After one edit, planning is most of a build. Its walk of the last site (kb.manifest.scan_site:
46,000 lstat calls, 0.4-0.5 s of CPU at 10,000 claims) is done by a child forked when the build
starts (`SiteScanner`), at a lower priority, on the core the check leaves idle; only the result
crosses the pipe, as marshal data (plain data, which loads fast and cannot run code: 0.04 s).
When it cannot be forked (no fork, or other threads running: `kb serve`, where a child could
wait for ever on a lock one of them held), fails, or has not finished when the plan needs it (a
busy machine), the walk is done here: the plan is the same either way (tests/test_plan.py).

The page keys are worked out here, not in a child as well: once the model is built, the dumps'
workers (kb.produce) keep the other core busy, and a child computing the claim pages' keys
made the planning slower, not faster (and repeated the parts both halves share).
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.incremental import Keys
from kb.manifest import Manifest, SiteScan, scan_site
from kb.write import Link

if TYPE_CHECKING:
    from kb.render import Extras, Spec

NICE = 10  # the walk's child: below the build's own work, on an idle core only


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


class SiteScanner:
    """scan_site(out), in a child forked now (when the build starts), at a lower priority: it
    takes an idle core, never this process's. When this process needs the walk and the child
    has not finished it (a busy machine), the child is stopped and the walk is made here, as
    without a child. A file edited by hand after the walk is no more missed than with a walk
    made during the planning: either way the last look at the site is before the pages are
    written."""

    def __init__(self, out: Path) -> None:
        self.out = out

        def walk() -> Any:
            scan = scan_site(out)
            return None if scan is None else (scan.stats, scan.foreign)

        self._child = Forked(walk, nice=NICE)

    def result(self, wait: bool = False) -> SiteScan | None:
        """The walk (the child's if it is done, or if asked to `wait` for it), or None when
        there is no site in `out`."""
        ok, value = self._child.result(wait)
        if ok and value is None:
            return None
        if (ok and isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], dict)
                and isinstance(value[1], bool)):
            return SiteScan(value[0], value[1])
        return scan_site(self.out)  # not forked, or the child failed: walk here

    def close(self) -> None:
        self._child.close()


def plan(all_specs: list[Spec], keys: Keys, manifest: Manifest | None, scan: SiteScan | None,
         extras: Extras, todo: list[Spec], kept: list[Link], keyed: dict[str, str]) -> None:
    """Sort the pages into those to render (`todo`) and those kept from the last site (`scan`:
    the walk of it, the files as they are now); `keyed`: each output file's page key."""
    from kb.render import outputs

    reusable = manifest.reusable if manifest is not None and scan is not None else None
    for spec in all_specs:
        key = keys.key(spec.path, spec.template, spec.extra)
        paths = outputs(spec, extras)
        for p in paths:
            keyed[p] = key
        found = [reusable(scan, p, key) for p in paths] if reusable and scan else [None]
        if all(found):
            kept += [link for link in found if link is not None]
        else:
            todo.append(spec)
