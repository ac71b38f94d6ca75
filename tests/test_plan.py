"""kb.plan: the walk of the last site in a forked child gives what a walk here gives, and a
child that cannot be forked, fails or is not waited for changes nothing but the time taken."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kb import manifest, plan
from kb.forks import Forked, can_fork
from kb.manifest import scan_site
from kb.plan import SiteScanner

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def make_site(out: Path) -> None:
    for rel in ("index.html", "claims/a/index.html", "claims/a.ttl", "sources/s/index.html"):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


@needs_fork
def test_the_walk_in_a_child_is_the_walk_here(tmp_path: Path) -> None:
    out = tmp_path / "site"
    make_site(out)
    scanner = SiteScanner(out)
    assert scanner._child.started == can_fork()  # a test runner's thread: walked here
    scan = scanner.result(wait=True)
    assert scan is not None and scan == scan_site(out)
    assert sorted(scan.stats) == ["claims/a.ttl", "claims/a/index.html", "index.html",
                                  "sources/s/index.html"]
    assert not scan.foreign
    scanner.close()  # once read, nothing is left to stop


@needs_fork
def test_the_child_sees_what_is_not_a_build_s(tmp_path: Path) -> None:
    out = tmp_path / "site"
    make_site(out)
    (out / "link").symlink_to(out / "index.html")
    scan = SiteScanner(out).result(wait=True)
    assert scan is not None and scan.foreign
    assert SiteScanner(tmp_path / "missing").result(wait=True) is None  # no site yet


def test_beside_other_threads_the_walk_is_done_here(tmp_path: Path) -> None:
    out = tmp_path / "site"
    make_site(out)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        scanner = SiteScanner(out)
        assert not scanner._child.started
        assert scanner.result(wait=True) == scan_site(out)
    finally:
        stop.set()
        thread.join()


def _scanner_whose_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         does: Callable[[], object]) -> tuple[SiteScanner, Path]:
    """A SiteScanner of a new site whose forked child calls `does()` before its walk (this
    process walks as usual); and the site."""
    out = tmp_path / "site"
    make_site(out)
    parent = os.getpid()
    real = manifest.scan_site

    def in_the_child(folder: Path) -> manifest.SiteScan | None:
        if os.getpid() != parent:
            does()
        return real(folder)

    monkeypatch.setattr(plan, "scan_site", in_the_child)
    return SiteScanner(out), out


def _fail() -> None:
    raise RuntimeError("the child fails")


@needs_fork
def test_a_failing_child_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scanner, out = _scanner_whose_child(tmp_path, monkeypatch, _fail)
    assert scanner._child.started == can_fork()
    assert scanner.result(wait=True) == scan_site(out)  # walked here instead
    assert Forked(lambda: 1 / 0).result() == (False, None)
    assert Forked(lambda: {"a": (1, 2)}).result() == (True, {"a": (1, 2)})


@needs_fork
def test_a_walk_not_finished_when_needed_is_made_here(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # a busy machine: the child's walk never ends
    scanner, out = _scanner_whose_child(tmp_path, monkeypatch, threading.Event().wait)
    pid = scanner._child.pid
    assert scanner.result() == scan_site(out)  # not waited for: walked here
    if pid is not None:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # and the child was stopped and reaped


@needs_fork
def test_a_child_not_waited_for_is_stopped_and_reaped(tmp_path: Path) -> None:
    if not can_fork():
        pytest.skip("a thread runs beside the tests: nothing is forked")
    child = Forked(lambda: threading.Event().wait())  # would wait for ever
    pid = child.pid
    assert pid is not None
    child.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind
    assert child.result() == (False, None)
