"""After an edit, the claim, entity and source page keys taken from the last build
(kb.changed) are the keys a build working out every one gives, and only the pages the edit can
reach have theirs worked out."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_incremental import (
    CHANGES,
    _claim_moved,
    _link_added,
    _snapshot_added,
    build,
    edit,
    first,
    git,
    needs_git,
    replace_first,
)

from kb.changed import Seen, _changed, to_key
from kb.incremental import Keys
from kb.manifest import load_manifest

GENERATED = (50, 3)  # as tests/test_incremental.py: its edits are written for this one


def _unit(root: Path) -> None:
    """A quantity claim in a unit of its own: the claims whose peers it was lose it, and
    nothing they show of themselves changes."""
    replace_first(root, "claims", r'unit: "[^"]+"', lambda m: 'unit: "bushels a fortnight"',
                  "quantity claim")


def _swap(root: Path, folder: str, field: str) -> None:
    """One record's `field` names another entity: the one it named loses it, that one gains it."""
    entities = sorted(f.stem for f in (root / "entities").glob("*.yaml"))
    replace_first(root, folder, rf"^{field}: (\S+)$",
                  lambda m: f"{field}: {next(e for e in entities if e != m.group(1))}",
                  f"{field} in {folder}", re.M)


def _link_removed(root: Path) -> None:
    """A claim no longer relates to others, which stay: their pages lose it."""
    replace_first(root, "claims", r"^related:\n(  - .*\n)+", lambda m: "", "related claims",
                  re.M)


EDITS: dict[str, Callable[[Path], None]] = {
    **CHANGES, "claim-moved": _claim_moved, "link-added": _link_added,
    "snapshot-added": _snapshot_added, "unit": _unit, "link-removed": _link_removed,
    "publisher": lambda root: _swap(root, "sources", "publisher"),
    "claimant": lambda root: _swap(root, "claims", "claimant")}
# Edits of one file that reach few pages: most keys must come from the last build.
LOCAL = {"evidence", "statement", "source", "entity", "snapshot", "quantity", "relation",
         "review", "comment", "tag", "period", "link-added", "deleted-claim", "added-claim",
         "unit", "link-removed", "publisher", "claimant"}


def page_keys(root: Path, site: Path) -> dict[str, str]:
    manifest = load_manifest(root, site)
    assert manifest is not None
    return {path: key for path, (key, _stat) in manifest.pages.items()}


def reference_keys(root: Path, tmp_path: Path) -> dict[str, str]:
    """Every key worked out: the first build of a copy (its own, empty, cache)."""
    copy, site = tmp_path / "copy", tmp_path / "reference"
    shutil.copytree(root, copy)
    build(copy, site)
    return page_keys(copy, site)


def counting(monkeypatch: pytest.MonkeyPatch, method: str = "claim") -> list[str]:
    """The ids whose page key Keys works out from now on (`method`: claim, entity_page or
    source_page)."""
    worked_out: list[str] = []
    work_out = getattr(Keys, method)

    def counted(self: Keys, id_: str) -> str:
        worked_out.append(id_)
        return str(work_out(self, id_))

    monkeypatch.setattr(Keys, method, counted)
    return worked_out


@pytest.mark.parametrize("change", sorted(EDITS))
def test_the_keys_taken_from_the_last_build_are_those_worked_out(
        kb: Path, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    build(kb, site)
    claims = len(list((site / "claims").glob("*/index.html")))
    entities = len(list((site / "entities").glob("*/index.html")))
    sources = len(list((site / "sources").glob("*/index.html")))
    EDITS[change](kb)
    worked_out, entity_pages = counting(monkeypatch), counting(monkeypatch, "entity_page")
    source_pages = counting(monkeypatch, "source_page")
    build(kb, site)
    count, entity_count, source_count = len(worked_out), len(entity_pages), len(source_pages)
    assert page_keys(kb, site) == reference_keys(kb, tmp_path)
    if change in LOCAL:
        assert 0 < count < claims / 2, (count, claims)
        # an edit of who is named reaches the pages of the entities named beside them
        named = change in ("entity", "claimant", "publisher")
        assert entity_count < (entities if named else entities / 2), (entity_count, entities)
        assert source_count < sources / 2, (source_count, sources)
    if change in ("kb.toml", "template"):  # in every page's key: every key is worked out
        assert count >= claims and entity_count >= entities and source_count >= sources


def test_a_commit_changes_the_keys_of_the_claims_it_touched(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_git()
    site = tmp_path / "site"
    git(kb, "init", "-q")
    git(kb, "add", "-A")
    git(kb, "commit", "-q", "-m", "First version")
    build(kb, site)
    claim = first(kb, "claims")
    text = claim.read_text(encoding="utf-8")
    edit(claim, "claim: \"", "claim: \"Reportedly, ")
    git(kb, "commit", "-q", "-am", "Reword a claim")
    claim.write_text(text, encoding="utf-8")  # the file as it was; its history is longer
    git(kb, "commit", "-q", "-am", "Undo")
    worked_out = counting(monkeypatch)
    build(kb, site)
    assert claim.stem in worked_out and len(worked_out) < 10, worked_out
    assert page_keys(kb, site) == reference_keys(kb, tmp_path)


def test_a_version_git_could_not_give_is_read_again_once_it_can(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status steps come from each version git gives back: the same commits with a
    version unreadable (a step of its own) and then readable make other keys."""
    needs_git()
    site = tmp_path / "site"
    git(kb, "init", "-q")
    git(kb, "add", "-A")
    git(kb, "commit", "-q", "-m", "First version")
    claim = first(kb, "claims")
    blob = subprocess.run(["git", "-C", str(kb), "rev-parse",
                           f"HEAD:{claim.relative_to(kb).as_posix()}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stored, away = kb / ".git" / "objects" / blob[:2] / blob[2:], tmp_path / "away"
    shutil.move(stored, away)
    build(kb, site)
    shutil.move(away, stored)
    worked_out = counting(monkeypatch)
    build(kb, site)
    assert claim.stem in worked_out
    assert page_keys(kb, site) == reference_keys(kb, tmp_path)


def test_nothing_changed_works_out_no_claim_entity_or_source_key(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    build(kb, site)
    claims, entities = counting(monkeypatch), counting(monkeypatch, "entity_page")
    sources = counting(monkeypatch, "source_page")
    assert build(kb, site).rendered == 0
    assert claims == [] and entities == [] and sources == []


def _seen(common: str) -> Seen:
    return Seen(common, rows={}, blocks={}, steps={}, sources={}, entities={}, related_in={},
                peers_key="peers", lists={}, source_lists={})


def test_what_is_compared() -> None:
    assert _changed({"a": 1, "b": 2}, {"a": 1, "b": 2}) == set()
    assert _changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b", "c"}
    assert _changed({"a": 1, "b": [2]}, {"a": 1}) == {"b"}
    seen = _seen("common")
    assert Seen.of_data(seen.as_data()) == seen
    assert Seen.of_data(("common", {}, {})) is None  # another version's: not trusted
    assert Seen.of_data(("common", {}, {}, {}, {}, {}, {}, {}, {}, {})) is None
    assert Seen.of_data(None) is None


def test_without_a_last_build_or_with_another_common_every_key_is_worked_out() -> None:
    now = _seen("this build")
    keys: Keys = None  # type: ignore[assignment]  # not read when there is nothing to compare
    assert to_key(None, now, keys) is None
    assert to_key(_seen("another day"), now, keys) is None


def test_without_the_graph_cache_no_key_is_taken(kb: Path, tmp_path: Path) -> None:
    """`--no-cache`: a claim's key holds its graph's block, not the cache's key of it, and
    kb.changed relies on that key; the manifest keeps nothing to take keys from."""
    site = tmp_path / "site"
    build(kb, site, incremental=False)  # trusts no cache, the graph cache included
    manifest = load_manifest(kb, site)
    assert manifest is not None and manifest.pages and manifest.seen is None
    build(kb, site)
    manifest = load_manifest(kb, site)
    assert manifest is not None and Seen.of_data(manifest.seen) is not None
