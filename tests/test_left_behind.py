"""A killed build leaves nothing behind for long: its staging folder (the size of the site) is
removed by the next build, and `kill` (SIGTERM) stops a build as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb import write
from kb.write import remove_left_behind

from conftest import MakeKB, alive, children, until

GENERATED = (60, 5)

# `kb build`, each page slowed down, so that a test can stop it while it renders; with
# SLOW_WORKERS, in worker processes from 10 pages (not 400).
SLOW_BUILD = """
import os, sys, time
import kb.render as render
if os.environ.get("SLOW_WORKERS"):
    render.PARALLEL_FROM = 10
made = render.render_one
def slow(spec):
    time.sleep(0.05)
    return made(spec)
render.render_one = slow
from kb.cli import main
main(sys.argv[1:])
"""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _beside(site: Path) -> set[str]:
    return {p.name for p in site.parent.iterdir() if p.name.startswith(f".{site.name}.")}


def test_only_folders_of_builds_that_are_gone_are_removed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    ns, dead = write._where(), _dead_pid()
    gone = [f".site.new-{dead}.{ns}-a1", f".site.old-{dead}.{ns}-b2"]
    kept = [f".site.new-{os.getppid()}.{ns}-c3",  # a build that runs
            f".site.new-{os.getpid()}.{ns}-d4",  # this process's own
            f".site.new-{dead}.other-e5",  # another pid namespace: its ids mean nothing here
            ".site.new-f6g7h8",  # an older version's name: who knows
            f".sitex.new-{dead}.{ns}-i9",  # another site's
            f".site.new.new-{dead}.{ns}-j0",  # the site `site.new`'s
            f".site.new-\u00b2.{ns}-k1",  # not a process id, though str.isdigit says so
            f".site.new-{10**30}.{ns}-l2"]  # no such process id
    for name in gone + kept:
        (tmp_path / name / "claims").mkdir(parents=True)
        (tmp_path / name / "claims" / "index.html").write_text("x")
    (tmp_path / f".site.new-{dead}.{ns}-file").write_text("a file, not a folder")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("kept")
    (tmp_path / f".site.old-{dead}.{ns}-link").symlink_to(elsewhere)  # never followed
    assert sorted(p.name for p in remove_left_behind(site)) == sorted(gone)
    assert until(lambda: not any((tmp_path / name).exists() for name in gone))
    assert all((tmp_path / name / "claims" / "index.html").is_file() for name in kept)
    assert (tmp_path / f".site.new-{dead}.{ns}-file").is_file()
    assert (elsewhere / "keep.txt").read_text() == "kept"
    assert (site).is_dir()


def test_nothing_is_removed_where_the_process_ids_cannot_be_placed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /proc (no pid namespace, no boot id to read) a process id could be another
    machine's or container's: nothing is taken for left behind."""
    (tmp_path / f".site.new-{_dead_pid()}.0-a1").mkdir()
    monkeypatch.setattr(write, "_where", lambda: "0")
    assert remove_left_behind(tmp_path / "site") == []


def test_a_stop_between_the_two_renames_puts_the_old_site_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("old")
    staging = write.Staging(site)
    (staging.path / "index.html").write_text("new")
    rename = Path.rename

    def stopped(self: Path, target: Path) -> Path:
        if self == staging.path:
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", stopped)
    with pytest.raises(KeyboardInterrupt):
        staging.commit()
    assert (site / "index.html").read_text() == "old"
    assert not any(n.startswith(".site.old-") for n in _beside(site))


def test_an_aborted_staging_folder_is_set_aside_at_once_and_deleted_apart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C does not wait for the deletion of a staging folder the size of the site."""
    site = tmp_path / "site"
    staging = write.Staging(site)
    for n in range(50):
        (staging.path / f"p{n}").mkdir()
        (staging.path / f"p{n}" / "index.html").write_text("page")
    handed: list[Path] = []
    real = write.remove_later
    monkeypatch.setattr(write, "remove_later", lambda folder: handed.append(folder) or real(folder))
    staging.abort()
    assert not staging.path.exists()
    assert [p.name.startswith(".site.old-") for p in handed] == [True]
    assert until(lambda: not _beside(site))


def test_an_abort_that_cannot_set_aside_deletes_in_place_and_never_raises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    staging = write.Staging(site)
    (staging.path / "index.html").write_text("page")

    def full(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write.tempfile, "mkdtemp", full)
    staging.abort()
    assert not staging.path.exists()


def test_aborting_a_staging_folder_that_is_gone_does_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    staging = write.Staging(site)
    staging.path.rmdir()
    staging.abort()
    assert not _beside(site)


def test_children_forked_within_get_sigterms_default_action() -> None:
    """So that the build stops them at once (multiprocessing's terminate()), rather than
    each raising KeyboardInterrupt wherever it is."""
    import multiprocessing

    from kb.forks import raise_interrupt, sigterm_interrupts

    context = multiprocessing.get_context("fork")
    with sigterm_interrupts():
        assert signal.getsignal(signal.SIGTERM) is raise_interrupt
        child = context.Process(target=time.sleep, args=(60,))
        child.start()
        time.sleep(0.2)
        child.terminate()
        child.join(10)
    assert child.exitcode == -signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is not raise_interrupt


def _slow_build(kb: Path, site: Path, workers: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, **({"SLOW_WORKERS": "1"} if workers else {})}
    return subprocess.Popen([sys.executable, "-c", SLOW_BUILD, "--root", str(kb), "build",
                             "--out", str(site), "--full"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _staging_appears(site: Path, proc: subprocess.Popen[bytes]) -> None:
    assert until(lambda: any(n.startswith(".site.new-") for n in _beside(site))
                  or proc.poll() is not None, 60.0)
    assert proc.poll() is None, "the build ended before it could be stopped"
    time.sleep(0.3)  # into the rendering


@pytest.fixture
def built(kb: Path, tmp_path: Path) -> Path:
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-c", "import sys; from kb.cli import main; "
                             "main(sys.argv[1:])", "--root", str(kb), "build", "--out",
                             str(site)], capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def _pages(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*.html"))}


def test_the_staging_folder_of_a_killed_build_goes_with_the_next_build(
        kb: Path, built: Path) -> None:
    before = _pages(built)
    proc = _slow_build(kb, built)
    _staging_appears(built, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = {n for n in _beside(built) if n.startswith(".site.new-")}
    assert left and _pages(built) == before  # killed: the old site stands, its staging stays
    proc = _slow_build(kb, built)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert until(lambda: not left & _beside(built))
    assert _pages(built) == before


def test_sigterm_stops_a_build_as_ctrl_c_does(kb: Path, built: Path) -> None:
    """`kill`, a CI job cancelled, `timeout`: the build stops, removes its staging folder and
    its children, and the old site stands."""
    before = _pages(built)
    proc = _slow_build(kb, built, workers=True)
    _staging_appears(built, proc)
    kids = children(proc.pid)
    assert kids  # its page worker at least
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"Traceback" not in out, out
    assert b"kb: the build was stopped before it ended" in out
    assert not {n for n in _beside(built) if n.startswith(".site.new-")}
    assert _pages(built) == before
    assert until(lambda: not any(alive(pid) for pid in kids), 10.0)


def test_pagefind_folders_a_killed_build_left_in_memory_are_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pagefind's stubs and output live on tmpfs (memory) while it runs; a killed build's stay
    until the machine restarts, unless a later build's indexing removes them."""
    from kb import search

    monkeypatch.setattr(search, "_scratch_parent", lambda: str(tmp_path))
    ns, dead = write._where(), _dead_pid()
    gone = [f"kb-pagefind-{dead}.{ns}-a1", f"kb-pagefind-out-{dead}.{ns}-b2"]
    kept = [f"kb-pagefind-{os.getppid()}.{ns}-c3", "kb-pagefind-d4e5f6"]
    for name in gone + kept:
        (tmp_path / name / "claims").mkdir(parents=True)
    search.remove_left_behind()
    assert until(lambda: not any((tmp_path / name).exists() for name in gone))
    assert all((tmp_path / name).is_dir() for name in kept)
    # a build's own folders are named so
    indexing = search.start_pagefind("/nonexistent/pagefind", [], tmp_path / "out")
    assert indexing.folder.name.startswith(f"kb-pagefind-{os.getpid()}.{ns}-")
    with pytest.raises(search.SearchError):
        indexing.wait()


def test_every_indexing_removes_what_killed_builds_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb import searchshards

    calls: list[int] = []
    monkeypatch.setattr(searchshards, "remove_left_behind", lambda: calls.append(1))
    running = searchshards.start_shards("/nonexistent/pagefind", [0], 1, [], tmp_path / "out")
    with pytest.raises(searchshards.SearchError):
        running.wait()
    assert calls == [1]


def test_a_build_without_pagefind_removes_what_killed_pagefind_builds_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_kb: MakeKB) -> None:
    from kb import search
    from kb.build import BuildOptions, build_site

    scratch = tmp_path / "shm"
    scratch.mkdir()
    monkeypatch.setattr(search, "_scratch_parent", lambda: str(scratch))
    gone = scratch / f"kb-pagefind-{_dead_pid()}.{write._where()}-a1"
    (gone / "claims").mkdir(parents=True)
    result = build_site(make_kb(), tmp_path / "site", BuildOptions(search="json"))
    assert result.ok and result.search == "json"
    assert until(lambda: not gone.exists())


@pytest.mark.parametrize("with_rm", [True, False])
def test_remove_later_deletes_the_folder_in_another_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_rm: bool) -> None:
    """With the system's rm (started in ~1 ms), or Python's where there is none: the folder
    goes, whatever its files are called, and nothing beside it."""
    folder = tmp_path / ".site.old-1"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "index.html").write_text("page")
    (folder / "-rf").write_text("a name like an option")
    (tmp_path / "site").mkdir()
    if not with_rm:
        monkeypatch.setattr(write, "_rm", lambda: None)
    write.remove_later(folder)
    assert until(lambda: not folder.exists())
    assert (tmp_path / "site").is_dir()


def test_a_set_aside_folder_of_another_boot_is_removed_once_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reboot stops a set-aside folder's removal (it holds an old site, or old dumps); its
    boot is not this one, so its process cannot be asked after: once it has not changed for
    write.STALE seconds it is trash. A staging folder of another boot is never taken."""
    site = tmp_path / "site"
    site.mkdir()
    dead = _dead_pid()
    old = tmp_path / f".site.old-{dead}.4026531836.0123456789ab-a1"
    new = tmp_path / f".site.new-{dead}.4026531836.0123456789ab-b2"
    for folder in (old, new):
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "kb.nt.gz").write_text("an old dump")
    assert remove_left_behind(site) == []  # just changed: it may be another machine's, at work
    monkeypatch.setattr(write, "STALE", -1.0)
    assert remove_left_behind(site) == [old]
    assert until(lambda: not old.exists())
    assert (new / "data" / "kb.nt.gz").is_file()
