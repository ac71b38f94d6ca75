"""The benchmark sets the last run's outputs aside before a timed run and deletes them at the end.

Deleting a whole site just before a cold build made the build pay for the file system's scan
past recently freed inodes (bench.stages.set_aside); these tests pin the behaviour that avoids it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.run import empty_trash
from bench.stages import STAGES, TRASH, Bench


def _bench(tmp_path: Path) -> Bench:
    work = tmp_path / "work-10" / "build"
    work.mkdir(parents=True)
    return Bench(root=tmp_path / "kb", claims=10, files=13, work=work,
                 env={"KB_CACHE_DIR": str(tmp_path / "cache")})


def test_a_cold_build_sets_the_last_site_aside_and_the_end_deletes_it(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    page = b.work / "site" / "claims" / "c1" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("last run")
    inode = page.stat().st_ino
    cached = Path(b.env["KB_CACHE_DIR"]) / "claimkb" / "parse-x" / "00.pickle"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"last run's cache")
    cached_inode = cached.stat().st_ino

    prepare = STAGES["build"].prepare
    assert prepare is not None
    prepare(b)

    assert not (b.work / "site").exists()  # the build starts with no site, as before
    moved = list((b.work / TRASH).rglob("index.html"))
    assert [p.stat().st_ino for p in moved] == [inode]  # renamed, not copied nor deleted
    assert not Path(b.env["KB_CACHE_DIR"]).exists()  # and with no cache: that too set aside
    assert [p.stat().st_ino for p in (b.work / TRASH).rglob("00.pickle")] == [cached_inode]
    prepare(b)  # nothing to set aside the second time: no error, nothing new
    assert len(list((b.work / TRASH).rglob("index.html"))) == 1

    empty_trash(tmp_path)
    assert not (b.work / TRASH).exists()
    assert b.work.is_dir()  # only the set-aside outputs go


def test_two_runs_set_aside_keep_both(tmp_path: Path) -> None:
    from bench.stages import set_aside

    b = _bench(tmp_path)
    for text in ("first", "second"):
        (b.work / "site").mkdir()
        (b.work / "site" / "index.html").write_text(text)
        set_aside(b, b.work / "site")
    kept = sorted(p.read_text() for p in (b.work / TRASH).rglob("index.html"))
    assert kept == ["first", "second"]


def test_an_edit_stage_waits_for_the_last_site_to_be_deleted(tmp_path: Path) -> None:
    """A whole build leaves its previous site to a detached deleting process: the timed edit
    build starts once that is done, or, when it never ends, once the stage has deleted it."""
    import threading
    import time

    from bench.stages import _wait_for_removal

    site = tmp_path / "edit-site"
    site.mkdir()
    old = tmp_path / ".edit-site.old-abc"
    (old / "claims").mkdir(parents=True)
    threading.Timer(0.3, lambda: shutil.rmtree(old)).start()
    t = time.monotonic()
    _wait_for_removal(site)
    assert not old.exists() and time.monotonic() - t >= 0.25
    assert site.is_dir()
    (old / "claims").mkdir(parents=True)  # nobody deletes this one
    _wait_for_removal(site, patience=0.0)
    assert not old.exists() and site.is_dir()


def test_a_run_waits_a_while_after_the_last_run_emptied_its_trash(tmp_path: Path) -> None:
    """The file system keeps skipping the inodes the last run freed for a few minutes: a run
    started sooner waits out the rest (bench.run.settle_time), and no deletion means no wait."""
    from bench.run import SETTLE, settle_time

    assert settle_time(tmp_path) == 0.0  # no run here yet
    empty_trash(tmp_path)  # nothing to delete: no wait either
    assert settle_time(tmp_path) == 0.0

    b = _bench(tmp_path)
    (b.work / "site").mkdir()
    (b.work / "site" / "index.html").write_text("last run")
    prepare = STAGES["build"].prepare
    assert prepare is not None
    prepare(b)
    empty_trash(tmp_path)
    import time

    now = time.time()
    left = settle_time(tmp_path, now)
    assert SETTLE - 60 < left <= SETTLE
    assert settle_time(tmp_path, now + SETTLE / 2) == pytest.approx(left - SETTLE / 2)
    assert settle_time(tmp_path, now + SETTLE) == 0.0
    assert settle_time(tmp_path, now - 3600) == SETTLE  # a clock set back: never longer
