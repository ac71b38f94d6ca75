"""An incremental build changes the last site in place: it moves in only what changed.

The site folder is then the same folder (same inode) with the same files as a full build; a site
someone touched by hand, or a build that fails, is handled as the contract says: a full build
replaces the first, the second leaves the site as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_incremental import assert_same_site, build, files

GENERATED = (40, 5)  # claims, seed: the conftest's `generated` and `kb`


def a_claim(root: Path) -> Path:
    return sorted((root / "claims").rglob("*.yaml"))[0]


def test_an_edit_is_moved_into_the_same_folder(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    inode = site.stat().st_ino
    before = {p: p.stat().st_ino for p in site.rglob("*") if p.is_file()}
    f = a_claim(kb)
    f.write_text(f.read_text("utf-8").replace("claim: \"", "claim: \"Newly worded, ", 1), "utf-8")
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
    f = a_claim(kb)
    f.write_text(f.read_text("utf-8").replace("claim: \"", "claim: \"Changed, ", 1), "utf-8")
    (kb / "templates").mkdir()
    (kb / "templates" / "claim.html").write_text("{{ no_such_variable }}")  # fails to render
    with pytest.raises(Exception, match="no_such_variable"):
        build(kb, site)
    assert files(site) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]
