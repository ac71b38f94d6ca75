"""What a build keeps in the user's cache besides the parse cache — the manifest, the model's
memo, the templates' compiled code — is never trusted blindly: damaged, stale or foreign files
are ignored, and the site is still byte for byte the one a build without any cache makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_incremental import assert_same_site, build

import kb.manifest as manifest_module
from kb.cache import cache_path
from kb.manifest import load_manifest, manifest_path, scan_site
from kb.memo import read_memo, write_memo
from kb.modelmemo import MEMO_MODULES, load_memo, memo_path
from kb.pages import SiteModel

GENERATED = (30, 7)  # claims, seed: the conftest's `generated` and `kb`


def test_memo_files_refuse_damage_and_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "x.memo"
    write_memo(path, ("k", 1), {"a": [1, 2]})
    assert read_memo(path, ("k", 1)) == {"a": [1, 2]}
    assert read_memo(path, ("k", 2)) is None  # another version or format
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # cut short
    assert read_memo(path, ("k", 1)) is None
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit changed
    assert read_memo(path, ("k", 1)) is None
    assert read_memo(tmp_path / "missing", ("k", 1)) is None


def test_a_manifest_of_another_version_is_ignored(kb: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    everything = build(kb, site).rendered
    assert load_manifest(kb, site) is not None
    monkeypatch.setattr(manifest_module, "FORMAT", manifest_module.FORMAT + 1)
    assert load_manifest(kb, site) is None
    assert build(kb, site).rendered == everything
    path = manifest_path(kb)
    path.write_bytes(path.read_bytes()[:-10])  # cut short: its digest tells
    assert load_manifest(kb, site) is None
    assert build(kb, site).rendered == everything
    build(kb, tmp_path / "fresh", incremental=False)
    assert_same_site(site, tmp_path / "fresh")


def test_a_link_added_by_hand_means_a_whole_new_folder(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    scan = scan_site(site)
    assert scan is not None and not scan.foreign
    inode = site.stat().st_ino
    os.symlink("index.html", site / "elsewhere.html")
    scan = scan_site(site)
    assert scan is not None and scan.foreign
    build(kb, site)
    assert site.stat().st_ino != inode  # swapped whole, as a full build does
    assert not (site / "elsewhere.html").exists()
    build(kb, tmp_path / "fresh", incremental=False)
    assert_same_site(site, tmp_path / "fresh")


def test_a_damaged_or_stale_model_memo_is_not_used(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    memo = load_memo(kb)
    assert memo.located and memo.peers_key  # the quotes were found, the peers worked out
    # a memo that says every quote is elsewhere, under the right key: it is keyed by the
    # texts' digests, so it is only used for those texts; change every text
    path = memo_path(kb)
    for snap in sorted((kb / "sources").glob("*.txt")):
        snap.write_text("Foreword.\n" + snap.read_text("utf-8"), "utf-8")
    build(kb, site)
    build(kb, tmp_path / "fresh", incremental=False)
    assert_same_site(site, tmp_path / "fresh")
    path.write_bytes(b"claimkb-memo\n" + b"\0" * 40)  # damaged
    assert not load_memo(kb).located
    build(kb, site)
    assert_same_site(site, tmp_path / "fresh")


def test_the_model_memo_is_keyed_by_every_module_of_the_site_model() -> None:
    """The memo holds what SiteModel and its mixins work out (quotes' places, chart peers): a
    change to any of their modules must make it stale."""
    defining = {cls.__module__.removeprefix("kb.") for cls in SiteModel.__mro__
                if cls.__module__.startswith("kb.")}
    assert defining == {"pages", "quantities"} and defining <= set(MEMO_MODULES)


def test_templates_compiled_code_is_kept_and_an_edit_is_seen(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (kb / "templates").mkdir()
    about = Path(__file__).parent.parent / "kb" / "templates" / "about.html"
    (kb / "templates" / "about.html").write_text(about.read_text("utf-8"), "utf-8")
    build(kb, site, incremental=False)
    build(kb, site)
    folder = cache_path(kb, "templates").with_suffix("")
    codes = sorted(folder.glob("*.code"))
    assert codes  # compiled once, kept for the next build
    (kb / "templates" / "about.html").write_text(
        about.read_text("utf-8").replace("<h1>", "<h1>Edited: "), "utf-8")
    for f in codes:  # damaged: compiled again, never run
        f.write_bytes(f.read_bytes()[:-5])
    build(kb, site)
    assert b"<h1>Edited: " in (site / "about" / "index.html").read_bytes()
    build(kb, tmp_path / "fresh", incremental=False)
    assert_same_site(site, tmp_path / "fresh")
