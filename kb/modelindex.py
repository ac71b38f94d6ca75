"""The site model's indexes of the claims, patched after an edit rather than made again.

kb.pages.build_model indexes every claim: by status, kind, tag, claimant, entity and source,
by the claims relating to it, and by where its quotes are in the text snapshots. A claim's
entries are a function of its file, its status and the snapshots, so a build keeps the
indexes in the user's cache (a journaled kb.memo) with each claim's (file digest, status).
After an edit the next build takes the claims whose pair changed out of the indexes and puts
them in again: at 100,000 claims, making the indexes was ~2.4 s of a 16-18 s edit build.
Everything is made afresh when the memo is missing, damaged or of other code, when a text
snapshot changed, or when many claims did (PATCH_AT_MOST); tests/test_model_index.py compares
patched indexes with fresh ones after each kind of edit.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from dataclasses import dataclass, field, fields
from operator import itemgetter
from pathlib import Path
from typing import Any

import kb as kb_package
from kb.memo import Journaled, read_journaled, write_journaled

_FORMAT = 1
PATCH_AT_MOST = 8  # patched while at most 1/8 of the claims changed (and always a few)

Pairs = dict[str, tuple[str, str]]  # claim id → (digest of its file, its status)
SpanData = tuple[int, int, str, str, int]  # kb.pages.Span: start, end, claim, role, n
LocatedData = tuple[str, str, str, str]  # kb.pages.Located: before, exact, after, anchor


@dataclass
class Indexes:
    """The indexes as plain data (marshal's types), in the order build_model makes them: every
    list of claim ids sorted, each id once; a claim's relations in its own order after those of
    the claims before it; spans in their text's order."""

    by_status: dict[str, list[str]] = field(default_factory=dict)
    by_kind: dict[str, list[str]] = field(default_factory=dict)
    by_tag: dict[str, list[str]] = field(default_factory=dict)
    made_by: dict[str, list[str]] = field(default_factory=dict)  # entity → claims it made
    about: dict[str, list[str]] = field(default_factory=dict)  # entity → claims about it
    appears_in: dict[str, list[str]] = field(default_factory=dict)  # source → claims
    evidence_from: dict[str, list[str]] = field(default_factory=dict)  # source → claims
    related_in: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    spans: dict[str, list[SpanData]] = field(default_factory=dict)  # source → quotes in it
    located: dict[tuple[str, str, int], LocatedData] = field(default_factory=dict)
    # quantity claim → what decides its chart's peers: unit, period, tags, entities (sorted)
    quantities: dict[str, tuple[str, str | None, list[str], list[str]]] = field(
        default_factory=dict)

    def as_data(self) -> tuple[dict[Any, Any], ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


_CLAIM_LISTS = ("by_status", "by_kind", "by_tag", "made_by", "about", "appears_in",
                "evidence_from")


def peers_key_of(indexes: Indexes, peers: int) -> str:
    """What decides the quantity charts' peers (kb.modelmemo.ModelMemo.peers): each quantity
    claim's unit, period, tags and entities, and how many peers a chart shows. marshal's
    format 2 writes equal values as equal bytes, whichever objects hold them (patched or
    fresh indexes)."""
    parts = [(cid, *part) for cid, part in sorted(indexes.quantities.items())]
    return hashlib.sha256(marshal.dumps((peers, parts), 2)).hexdigest()


def span_order(span: SpanData) -> tuple[int, int, str, str, int]:
    """Spans in a text: by start, the longer first, then by claim, role and number."""
    return (span[0], -span[1], span[2], span[3], span[4])


def finish(raw: Indexes) -> Indexes:
    """The indexes of claims added in id order (kb.pages.index_claims) put in their order: a
    source's claims once each, spans sorted, statuses and tags by name."""
    for index in (raw.appears_in, raw.evidence_from):
        for key, ids in index.items():
            index[key] = sorted(set(ids))
    for spans in raw.spans.values():
        spans.sort(key=span_order)
    raw.by_status = dict(sorted(raw.by_status.items()))
    raw.by_tag = dict(sorted(raw.by_tag.items()))
    return raw


@dataclass
class IndexMemo:
    """The indexes of the last build, with what they were made from."""

    pairs: Pairs
    snapshots: dict[str, str]  # source id → digest of its text snapshot
    indexes: Indexes
    read: Journaled | None = None  # as read, for the next save to write only what changed

    def as_data(self) -> tuple[Any, ...]:
        return (self.pairs, self.snapshots, *self.indexes.as_data())


def index_path(root: Path, folder: Path | None = None) -> Path:
    from kb.cache import cache_path

    return cache_path(root, "index", folder).with_suffix(".memo")


def _key() -> tuple[object, ...]:
    from kb.cache import PARSER_MODULES, code_fingerprint
    from kb.modelmemo import MEMO_MODULES

    # a claim's entries are made from its record (the parser's code) by build_model
    return (_FORMAT, kb_package.__version__, sys.version,
            code_fingerprint((*PARSER_MODULES, *MEMO_MODULES, "modelindex")))


_COUNT = 2 + len(fields(Indexes))


def load_index(root: Path, folder: Path | None = None) -> IndexMemo | None:
    """The last build's indexes, or None when there are none to trust."""
    read = read_journaled(index_path(root, folder), _key())
    if read is None:
        return None
    value = read.value
    if not (isinstance(value, tuple) and len(value) == _COUNT
            and all(type(v) is dict for v in value)):
        return None
    return IndexMemo(value[0], value[1], Indexes(*value[2:]), read)


def save_index(root: Path, last: IndexMemo | None, now: IndexMemo,
               folder: Path | None = None) -> None:
    """Keep this build's indexes: as what changed since `last` was read, when it was."""
    write_journaled(index_path(root, folder), _key(), now.as_data(),
                    last.read if last is not None else None)


def to_patch(last: IndexMemo | None, pairs: Pairs, snapshots: dict[str, str]) -> set[str] | None:
    """The claims whose entries must be made again (added, removed or changed), or None when
    all must: no last indexes, a text snapshot changed, or many claims did."""
    if last is None or last.snapshots != snapshots:
        return None
    changed = {cid for cid, _pair in pairs.items() ^ last.pairs.items()}
    if len(changed) > max(64, len(pairs) // PATCH_AT_MOST):
        return None
    return changed


def remove(indexes: Indexes, gone: set[str]) -> None:
    """Take the claims `gone` out of every index. The lists are replaced, never changed in
    place: they are the memo's as read (kb.memo.Journaled)."""
    for name in _CLAIM_LISTS:
        index: dict[str, list[str]] = getattr(indexes, name)
        hit = [key for key, ids in index.items() if not gone.isdisjoint(ids)]
        for key in hit:
            kept = [cid for cid in index[key] if cid not in gone]
            if kept:
                index[key] = kept
            else:
                del index[key]
    _drop(indexes.related_in, gone, 0)
    _drop(indexes.spans, gone, 2)
    for located_key in [k for k in indexes.located if k[0] in gone]:
        del indexes.located[located_key]
    for cid in gone:
        indexes.quantities.pop(cid, None)


def _drop(table: dict[str, list[Any]], gone: set[str], at: int) -> None:
    """`remove` for lists of tuples, with the claim's id at `at`."""
    hit = [key for key, items in table.items() if any(item[at] in gone for item in items)]
    for key in hit:
        kept = [item for item in table[key] if item[at] not in gone]
        if kept:
            table[key] = kept
        else:
            del table[key]


def merge(indexes: Indexes, added: Indexes) -> None:
    """Put the entries of the claims `added` (made by kb.pages.index_claims, not yet finished)
    into `indexes`, from which those claims were removed, in the order a fresh build has."""
    for name in _CLAIM_LISTS:
        index: dict[str, list[str]] = getattr(indexes, name)
        for key, ids in getattr(added, name).items():
            index[key] = sorted({*index.get(key, ()), *ids})
    for key, relations in added.related_in.items():
        # stable: a claim's relations keep their order, after those of the claims before it
        indexes.related_in[key] = sorted([*indexes.related_in.get(key, ()), *relations],
                                         key=itemgetter(0))
    for key, spans in added.spans.items():
        indexes.spans[key] = sorted([*indexes.spans.get(key, ()), *spans], key=span_order)
    indexes.located.update(added.located)
    indexes.quantities.update(added.quantities)
    indexes.by_status = dict(sorted(indexes.by_status.items()))
    indexes.by_tag = dict(sorted(indexes.by_tag.items()))
    # kinds in the order of their first claim, as a fresh build meets them (Keys hashes them
    # in this order)
    indexes.by_kind = dict(sorted(indexes.by_kind.items(), key=lambda item: item[1][0]))
