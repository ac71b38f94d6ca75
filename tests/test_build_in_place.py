"""An incremental build changes the last site in place: it moves in only what changed.

The site folder is then the same folder (same inode) with the same files as a full build; a site
someone touched by hand, or a build that fails, is handled as the contract says: a full build
replaces the first, the second leaves the site as it was; a build stopped during its commit
ends the commit first.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from test_incremental import SEARCH, TODAY, assert_same_site, build, files

from kb import search, write

from conftest import until

GENERATED = (40, 5)  # claims, seed: the conftest's `generated` and `kb`


def a_claim(root: Path) -> Path:
    return sorted((root / "claims").rglob("*.yaml"))[0]


def reword(root: Path, start: str) -> Path:
    """Put `start` before the statement of a_claim(root): that claim file, changed."""
    f = a_claim(root)
    f.write_text(f.read_text("utf-8").replace("claim: \"", f"claim: \"{start}", 1), "utf-8")
    return f


def manifest_files(kb: Path) -> bytes:
    """The manifest as saved: its file and its journal (kb.memo.write_journaled)."""
    from kb.manifest import manifest_path
    from kb.memo import journal_path

    path = manifest_path(kb)
    journal = journal_path(path)
    return path.read_bytes() + (journal.read_bytes() if journal.exists() else b"")


def test_an_edit_is_moved_into_the_same_folder(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    inode = site.stat().st_ino
    before = {p: p.stat().st_ino for p in site.rglob("*") if p.is_file()}
    f = reword(kb, "Newly worded, ")
    result = build(kb, site)
    assert result.written is not None
    assert site.stat().st_ino == inode  # changed in place, not swapped
    same = [p for p, ino in before.items() if p.is_file() and p.stat().st_ino == ino]
    assert len(same) > len(before) / 2  # what did not change was not touched
    assert result.rendered < 40
    assert b"Newly worded" in (site / "claims" / f.stem / "index.html").read_bytes()
    assert not list(site.rglob(".*"))  # the replaced search index was set aside elsewhere
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]  # no staging left


def test_a_deleted_claim_leaves_no_folder(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    gone = next(f for f in sorted((kb / "claims").rglob("*.yaml"))  # one no claim refers to
                if not any(f.stem in g.read_text("utf-8")
                           for g in (kb / "claims").rglob("*.yaml") if g != f))
    gone.unlink()
    build(kb, site)
    assert not (site / "claims" / gone.stem).exists()
    assert not (site / "claims" / f"{gone.stem}.ttl").exists()
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


def test_a_file_added_by_hand_means_a_full_build(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    inode = site.stat().st_ino
    (site / "claims" / "stray.html").write_text("left here by hand")
    build(kb, site)
    assert site.stat().st_ino != inode  # swapped whole
    assert not (site / "claims" / "stray.html").exists()
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


def test_a_failed_incremental_build_changes_nothing(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    before = files(site)
    reword(kb, "Changed, ")
    (kb / "templates").mkdir()
    (kb / "templates" / "claim.html").write_text("{{ no_such_variable }}")  # fails to render
    with pytest.raises(Exception, match="no_such_variable"):
        build(kb, site)
    assert files(site) == before
    # the staging folder was set aside at once, and a detached process deletes it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.new-")]
    assert until(lambda: not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")])


def test_a_failed_commit_keeps_the_last_manifest(kb: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest is written once the commit has succeeded: a commit that fails leaves the
    last build's, which the next build still keeps pages by."""
    from kb.write import Staging, WriteError

    site = tmp_path / "site"
    build(kb, site)
    recorded = manifest_files(kb)
    reword(kb, "Changed, ")

    def fail(self: Staging, *args: object) -> None:
        raise WriteError("the disk is full")

    with monkeypatch.context() as patched, pytest.raises(WriteError, match="the disk is full"):
        patched.setattr(Staging, "commit_in_place", fail)
        build(kb, site)
    assert manifest_files(kb) == recorded
    assert build(kb, site).rendered < 40  # the last manifest, still true of the site
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")
    assert manifest_files(kb) != recorded


def test_a_statement_edit_makes_only_its_own_graph_files_again(kb: Path, tmp_path: Path) -> None:
    """The pages of claims related to the edited one are made again (they show its statement);
    their .ttl and .jsonld, written from their own graphs alone, are kept (Keys.alternates)."""
    site = tmp_path / "site"
    build(kb, site)
    claims = sorted((kb / "claims").rglob("*.yaml"))
    edited, other = next((f, g) for f in claims for g in claims
                         if g != f and f"{{claim: {f.stem}," in g.read_text("utf-8"))
    before = {p: p.stat().st_ino for p in site.rglob("*") if p.is_file()}
    edited.write_text(edited.read_text("utf-8").replace('claim: "', 'claim: "Reworded, ', 1),
                      "utf-8")
    build(kb, site)

    def same(path: Path) -> bool:
        return path.stat().st_ino == before[path]

    claims_dir = site / "claims"
    assert not same(claims_dir / other.stem / "index.html")  # shows the new statement
    assert same(claims_dir / f"{other.stem}.ttl") and same(claims_dir / f"{other.stem}.jsonld")
    assert not same(claims_dir / f"{edited.stem}.ttl")
    assert not same(claims_dir / f"{edited.stem}.jsonld")
    if SEARCH == "pagefind" and search._scratch_parent() is not None:
        index = [p for p in before if p.parent.parent.name == "pagefind"
                 or p.parent.parent.parent.name == "pagefind"]
        kept = [p for p in index if p.is_file() and same(p)]
        assert len(kept) > len(index) / 2  # re-indexed, and linked where unchanged
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


@pytest.mark.skipif(SEARCH != "pagefind" and not os.environ.get("CI"),
                    reason="pagefind is not installed")
def test_after_an_edit_pagefind_starts_before_the_claims_csv(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no page worker to fork, pagefind starts as soon as the pages are planned: its
    shard runs beside the claims' CSV, the rows read back and the files written."""
    from kb import build as building
    from kb import searchshards

    site = tmp_path / "site"
    build(kb, site)
    reword(kb, "Changed, ")
    order: list[str] = []
    start, csv = searchshards.start_shards, building._claims_csv

    def starting(*args: object, **kwargs: object) -> object:
        order.append("pagefind")
        return start(*args, **kwargs)  # type: ignore[arg-type]

    def making(*args: object, **kwargs: object) -> object:
        order.append("csv")
        return csv(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(searchshards, "start_shards", starting)
    monkeypatch.setattr(building, "_claims_csv", making)
    assert build(kb, site).rendered < 40
    assert order == ["pagefind", "csv"]
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


def test_ctrl_c_within_an_in_place_commit_waits_for_it_and_its_manifest(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped at its first rename, the commit went on to the end and so did the manifest:
    the site is the new one whole, and the next build keeps every page by that manifest."""
    from kb.build import BuildOptions, build_command
    from kb.check import CheckOptions
    from kb.write import Staging

    site = tmp_path / "site"
    build(kb, site)
    recorded = manifest_files(kb)
    reword(kb, "Stopped, ")
    commit, replace = Staging.commit_in_place, os.replace
    renamed: list[str] = []

    def stopped_at_first_rename(src: str, dst: str) -> None:
        replace(src, dst)
        renamed.append(dst)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
            time.sleep(0.01)  # its handler would have run by now

    def commit_stopped(self: Staging, *args: object) -> None:
        with monkeypatch.context() as patched:
            patched.setattr(os, "replace", stopped_at_first_rename)
            commit(self, *args)

    with monkeypatch.context() as patched:
        patched.setattr(Staging, "commit_in_place", commit_stopped)
        outcome = build_command(kb, site, BuildOptions(
            check=CheckOptions(today=TODAY), search=SEARCH, incremental=True))
    assert outcome.code == 2
    assert outcome.lines == [f"kb: the build was stopped; {site} was written before it stopped"]
    assert len(renamed) > 1
    assert manifest_files(kb) != recorded
    assert build(kb, site).rendered == 0  # the manifest records the site as it is
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


def test_a_build_told_to_stop_stops_before_its_commit(kb: Path, tmp_path: Path) -> None:
    """`kb serve` ending: its rebuild under way stops before the commit, the site unchanged."""
    import threading

    from kb.build import COMMITTING, BuildOptions, BuildStopped, build_site
    from kb.check import CheckOptions

    site = tmp_path / "site"
    build(kb, site)
    before = files(site)
    reword(kb, "Stopped, ")
    stop = threading.Event()
    stop.set()
    with pytest.raises(BuildStopped):
        build_site(kb, site, BuildOptions(check=CheckOptions(today=TODAY), search=SEARCH,
                                          stop=stop))
    assert files(site) == before
    assert not COMMITTING.locked()
    assert until(lambda: not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")])
    assert build(kb, site).rendered < 40  # the last manifest still holds


def test_the_commit_and_its_manifest_are_made_holding_the_commit_lock(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb import manifest as manifests
    from kb.build import COMMITTING
    from kb.write import Staging

    site = tmp_path / "site"
    build(kb, site)
    reword(kb, "Locked, ")
    held: list[str] = []
    commit, save = Staging.commit_in_place, manifests.save_manifest

    def committing(self: Staging, *args: object) -> None:
        held.append(f"commit {COMMITTING.locked()}")
        commit(self, *args)

    def saving(*args: object, **kwargs: object) -> None:
        held.append(f"manifest {COMMITTING.locked()}")
        save(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Staging, "commit_in_place", committing)
    monkeypatch.setattr(manifests, "save_manifest", saving)
    build(kb, site)
    assert held == ["commit True", "manifest True"]
    assert not COMMITTING.locked()


def test_a_stop_held_while_the_commit_fails_says_both(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during a commit that then fails (a full disk): the build stops, says why the
    commit failed, releases the commit's lock and puts Ctrl-C's handler back."""
    from kb.build import COMMITTING, BuildOptions, build_command
    from kb.check import CheckOptions
    from kb.write import Staging, WriteError

    site = tmp_path / "site"
    build(kb, site)
    reword(kb, "Full, ")

    def full(self: Staging, *args: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        raise WriteError("the disk is full")

    monkeypatch.setattr(Staging, "commit_in_place", full)
    outcome = build_command(kb, site, BuildOptions(check=CheckOptions(today=TODAY),
                                                   search=SEARCH))
    assert outcome.code == 2
    assert outcome.lines == ["kb: the disk is full", "kb: the build was stopped before it ended"]
    assert not COMMITTING.locked()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_commit_lock_is_released_when_the_cleanup_fails(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.build import COMMITTING
    from kb.write import Staging, WriteError

    site = tmp_path / "site"
    build(kb, site)
    reword(kb, "Again, ")

    def fail(self: Staging, *args: object) -> None:
        raise WriteError("the disk is full")

    def fail_too(self: Staging) -> None:
        raise RuntimeError("and so is the cleanup")

    monkeypatch.setattr(Staging, "commit_in_place", fail)
    monkeypatch.setattr(Staging, "abort", fail_too)
    with pytest.raises(RuntimeError, match="cleanup"):
        build(kb, site)
    assert not COMMITTING.locked()


def _staged(site: Path, files: dict[str, bytes]) -> write.Staging:
    staging = write.Staging(site)
    for name, data in files.items():
        (staging.path / name).parent.mkdir(parents=True, exist_ok=True)
        (staging.path / name).write_bytes(data)
    return staging


def test_a_large_file_replaced_in_place_is_freed_by_the_detached_removal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a dump freed its blocks during the commit (6-8 ms each on ext4 at 10,000
    claims): it is linked into the set-aside folder first, which remove_later deletes."""
    site = tmp_path / "site"
    (site / "data").mkdir(parents=True)
    large, small = b"old dump " * (write.LARGE // 8), b"<p>old</p>"
    (site / "data" / "kb.nt.gz").write_bytes(large)
    (site / "index.html").write_bytes(small)
    (site / "data" / "gone.nt.gz").write_bytes(large)  # a large file the build removes
    old_inode = (site / "data" / "kb.nt.gz").stat().st_ino
    gone_inode = (site / "data" / "gone.nt.gz").stat().st_ino
    set_aside: list[Path] = []
    monkeypatch.setattr(write, "remove_later", set_aside.append)
    _staged(site, {"data/kb.nt.gz": b"new dump", "index.html": b"<p>new</p>"}).commit_in_place(
        ["data/gone.nt.gz"])
    assert (site / "data" / "kb.nt.gz").read_bytes() == b"new dump"
    assert (site / "index.html").read_bytes() == b"<p>new</p>"
    assert not (site / "data" / "gone.nt.gz").exists()
    [folder] = set_aside
    aside = {f.stat().st_ino: f.read_bytes() for f in folder.rglob("*") if f.is_file()}
    assert aside == {old_inode: large, gone_inode: large}  # the large ones only
    assert not list(tmp_path.glob("*new*"))  # the staging folder is gone


def test_a_file_that_cannot_be_linked_aside_is_replaced_all_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "big.json").write_bytes(b"x" * write.LARGE)

    def refused(*args: object) -> None:
        raise PermissionError("no links here")

    monkeypatch.setattr(os, "link", refused)
    _staged(site, {"big.json": b"{}"}).commit_in_place()
    assert (site / "big.json").read_bytes() == b"{}"


def test_the_manifest_after_an_edit_records_every_file_as_a_whole_save_would(
        kb: Path, tmp_path: Path) -> None:
    """After an edit in place, the manifest's entries are the last ones with those of the files
    made set and those of the files gone removed (kb.build._recorded), and its journal is
    written from that change alone: read back, it is what the files are."""
    from kb.manifest import load_manifest, scan_site

    site = tmp_path / "site"
    build(kb, site)
    first = load_manifest(kb, site)
    assert first is not None
    text = a_claim(kb).read_text("utf-8")
    (kb / "claims" / "gone-by-hand.yaml").write_text(
        re.sub(r"^id: .*$", "id: gone-by-hand", text, count=1, flags=re.M), "utf-8")
    build(kb, site)  # a claim more; then it goes, and a statement changes
    inode = site.stat().st_ino
    (kb / "claims" / "gone-by-hand.yaml").unlink()
    reword(kb, "Newly worded, ")
    result = build(kb, site)
    assert result.written is not None and site.stat().st_ino == inode  # in place
    page_keys = result.held[3]
    whole = {p: (page_keys.get(p, ""), st) for p, st in result.written.stats.items()
             if not p.startswith(search.OUTPUT + "/")}
    saved = load_manifest(kb, site)
    assert saved is not None and saved.pages == whole
    scan = scan_site(site)  # every file as it is: the Stat the manifest records
    assert scan is not None
    assert {p: st for p, (_key, st) in saved.pages.items()} | saved.search_files == scan.stats
    assert not any("gone-by-hand" in p for p in saved.pages)
