"""The site model's indexes, patched after an edit (kb.modelindex), equal the ones made afresh.

Each case makes the model of a generated knowledge base and keeps its indexes, changes one
thing, then makes the model twice: from the kept indexes and from nothing. The two must hold
the same indexes, in the same order where anything reads their order. (tests/test_incremental.py
compares whole sites built both ways after the same changes.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_incremental import CHANGES, _claim_moved, _link_added, _snapshot_added

from kb.check import CheckOptions, check
from kb.graph import build_graph
from kb.load import read_inputs
from kb.modelindex import (
    PATCH_AT_MOST,
    IndexMemo,
    index_path,
    load_index,
    peers_key_of,
    save_index,
    to_patch,
)
from kb.pages import SiteModel, build_model
from kb.quantities import PEERS

TODAY = dt.date(2026, 11, 28)
GENERATED = (50, 3)  # claims, seed: the conftest's `generated` and `kb`

ORDERED = ("by_status", "by_kind", "by_tag")  # Keys and the listings read these in order
UNORDERED = ("made_by", "about", "appears_in", "evidence_from", "related_in", "spans",
             "located", "assessments", "published_by")


def make_model(root: Path, last: IndexMemo | None, today: dt.date = TODAY) -> SiteModel:
    """The model, as a build makes it (on another day, a prediction past its date is an error
    a build would stop at: the model is made all the same)."""
    inputs = read_inputs(root)
    checked = check(root, CheckOptions(today=today), inputs)
    assert today != TODAY or not checked.report.errors, [str(p) for p in checked.report.errors]
    g = build_graph(checked, {})
    return build_model(checked.kb, checked.config, checked.context.today, {},
                       g.network.independent_sources, g.assessments, None, last,
                       {f.path: f.digest for f in inputs.records})


def assert_same_indexes(patched: SiteModel, fresh: SiteModel) -> None:
    for name in ORDERED:
        assert list(getattr(patched, name).items()) == list(getattr(fresh, name).items()), name
    for name in UNORDERED:
        assert getattr(patched, name) == getattr(fresh, name), name
    assert patched.index is not None and fresh.index is not None
    assert patched.index.as_data() == fresh.index.as_data()
    assert peers_key_of(patched.index.indexes, PEERS) == peers_key_of(fresh.index.indexes, PEERS)


EDITS: dict[str, Callable[[Path], None]] = {
    **CHANGES, "claim-moved": _claim_moved, "link-added": _link_added,
    "snapshot-added": _snapshot_added}
# what changes no claim's entries in the indexes, or all of them (a text snapshot)
NOT_PATCHED = {"snapshot", "text-moved", "snapshot-added"}
NO_CLAIM = {"source", "entity", "kb.toml", "template"}


@pytest.mark.parametrize("change", sorted(EDITS))
def test_patched_indexes_equal_fresh_ones(kb: Path, tmp_path: Path, change: str) -> None:
    before = make_model(kb, None)
    assert before.index is not None
    save_index(kb, None, before.index, tmp_path)
    EDITS[change](kb)
    last = load_index(kb, tmp_path)
    assert last is not None
    fresh = make_model(kb, None)
    assert fresh.index is not None
    redo = to_patch(last, fresh.index.pairs, fresh.index.snapshots)
    if change in NOT_PATCHED:
        assert redo is None
    elif change in NO_CLAIM:
        assert redo == set()
    else:  # the changed, added or removed claims, and only they
        assert redo and len(redo) <= 2, redo
    patched = make_model(kb, last)
    assert_same_indexes(patched, fresh)


def test_a_sequence_of_edits_is_kept_as_a_journal(kb: Path, tmp_path: Path) -> None:
    """Each build saves what changed since the indexes it read; each reads the last one's."""
    model = make_model(kb, None)
    assert model.index is not None
    save_index(kb, None, model.index, tmp_path)
    for change in ("statement", "evidence", "added-claim", "relation", "tag",
                   "deleted-claim", "claim-moved", "link-added"):
        EDITS[change](kb)
        last = load_index(kb, tmp_path)
        model = make_model(kb, last)
        assert model.index is not None
        save_index(kb, last, model.index, tmp_path)
        assert_same_indexes(model, make_model(kb, None))
    assert Path(str(index_path(kb, tmp_path)) + ".journal").exists()
    kept = load_index(kb, tmp_path)
    assert kept is not None and kept.as_data() == model.index.as_data()


def test_a_new_day_patches_the_claims_whose_status_changed(kb: Path, tmp_path: Path) -> None:
    before = make_model(kb, None)
    assert before.index is not None
    save_index(kb, None, before.index, tmp_path)
    later = dt.date(2031, 1, 1)  # past the day some predictions resolve by: their status moves
    last = load_index(kb, tmp_path)
    fresh = make_model(kb, None, later)
    assert fresh.index is not None
    changed = {cid for cid, pair in fresh.index.pairs.items()
               if pair != before.index.pairs[cid]}
    assert changed
    assert to_patch(last, fresh.index.pairs, fresh.index.snapshots) == changed
    assert_same_indexes(make_model(kb, last, later), fresh)


def test_many_changed_claims_make_the_indexes_afresh(kb: Path) -> None:
    model = make_model(kb, None)
    assert model.index is not None
    pairs = dict(model.index.pairs)
    many = max(64, len(pairs) // PATCH_AT_MOST) + 1
    for n in range(many):
        pairs[f"new-claim-{n}"] = ("digest", "unverified")
    assert to_patch(model.index, pairs, model.index.snapshots) is None
    assert to_patch(model.index, model.index.pairs, model.index.snapshots) == set()


def _damaged(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    from kb.memo import write_memo

    write_memo(path, ("another", "key"), ({}, {}))


def _wrong_shape(path: Path) -> None:
    from kb.memo import write_memo
    from kb.modelindex import _key

    write_memo(path, _key(), ({}, {}, [1, 2]))


@pytest.mark.parametrize("spoil", [_damaged, _foreign, _wrong_shape])
def test_a_damaged_or_foreign_memo_is_not_used(kb: Path, tmp_path: Path,
                                               spoil: Callable[[Path], Any]) -> None:
    model = make_model(kb, None)
    assert model.index is not None
    save_index(kb, None, model.index, tmp_path)
    assert load_index(kb, tmp_path) is not None
    spoil(index_path(kb, tmp_path))
    assert load_index(kb, tmp_path) is None


def test_a_record_without_a_digest_keeps_no_indexes(kb: Path) -> None:
    inputs = read_inputs(kb)
    checked = check(kb, CheckOptions(today=TODAY), inputs)
    g = build_graph(checked, {})
    digests = {f.path: f.digest for f in inputs.records}
    digests.pop(next(p for p in digests if p.startswith("claims/")))
    model = build_model(checked.kb, checked.config, checked.context.today, {},
                        g.network.independent_sources, g.assessments, None, None, digests)
    assert model.index is None


@pytest.mark.parametrize(("change", "changes_peers"), [
    ("tag", True), ("period", True), ("quantity", False), ("statement", False)])
def test_the_peers_key_is_what_decides_the_peers(kb: Path, change: str,
                                                  changes_peers: bool) -> None:
    """Unit, period, tags and entities of each quantity claim: not its value or statement."""
    before = make_model(kb, None).index
    EDITS[change](kb)
    after = make_model(kb, None).index
    assert before is not None and after is not None
    assert (peers_key_of(before.indexes, PEERS) != peers_key_of(after.indexes, PEERS)) is (
        changes_peers)


def test_a_full_build_makes_the_indexes_afresh_and_keeps_them(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.modelindex as modelindex
    from kb.build import BuildOptions, build_site

    site = tmp_path / "site"
    assert build_site(kb, site, BuildOptions(check=CheckOptions(today=TODAY))).ok
    kept = load_index(kb)
    assert kept is not None

    def not_read(*args: object) -> None:
        raise AssertionError("a full build read the last indexes")

    monkeypatch.setattr(modelindex, "load_index", not_read)
    EDITS["statement"](kb)
    assert build_site(kb, site, BuildOptions(check=CheckOptions(today=TODAY),
                                             incremental=False)).ok
    after = load_index(kb)  # this module's own name: the one patched is kb.modelindex's
    assert after is not None and after.pairs != kept.pairs
