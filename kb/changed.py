"""Which pages' keys an edit can have changed, found without working out every key.

After one edit nearly every claim page keeps its key, and working each out (kb.incremental.
Keys.claim, ~18 µs a claim: 0.18 s at 10,000 claims, 3 s at 100,000) was most of the planning.
A claim page's key is made of (Keys.claim), besides what every page's key holds (Keys.common):

- the claim's row (its id, file digest and status);
- what decides its graph's block: the graph cache's key of the block, which digests the file's
  path and git history, the claim's assessment and its independent-source count
  (kb.graphcache.Keys.graph);
- its status at each commit (`steps`): made from the file's history and kb.toml, and from each
  version git gave back (a version it could not read makes a step of its own);
- what the sources it cites show of themselves (Keys.source), and the entities it names
  (Keys.entity);
- the rows of the claims it relates to, of those that relate to it (`related_in`), and of its
  quantity peers (decided by what kb.modelindex.peers_key_of digests).

Those values, for every claim, source and entity, are kept with the manifest (`Seen`) and
compared with this build's as whole maps (at C speed when they are equal). A changed value
marks the claims whose key reads it, found through the model's indexes: who cites a source, who
names an entity, who relates to a claim or is related to by it, whose peers include it. Every
other claim page's key is the one the last build recorded for it. The indexes are this build's:
a link an edit removed changed the file that held it (its claim is marked) and the list on the
other side (`related_in`: marked by its own compare; peers: every quantity claim is marked when
what decides them changed). A source page's key (Keys.source_page) is the source as
Keys.source gives it, the claims quoting it or citing it as evidence (`source_lists`), where
their quotes are in its text (a function of the text, in Keys.source, and of those claims'
files) and their rows. An entity page's key (Keys.entity_page) is the entity's file, the
rows of the claims it made and is named in, the files of the sources it published or wrote, and
the entities those claims name: it is worked out again when one of those changed, or the lists
themselves (`lists`, a digest of each entity's). Without the graph cache's keys (`--no-cache`)
every key is worked out. tests/test_changed.py holds the keys taken this way to those worked
out in full, after each kind of edit the incremental tests make.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from kb.incremental import _d

if TYPE_CHECKING:
    from kb.incremental import Keys


@dataclass(frozen=True)
class Seen:
    """What this build's claim, source and entity page keys are made from, as plain data
    (kb.manifest keeps it)."""

    common: str  # Keys.common: when it differs, every key is worked out
    rows: dict[str, bytes]  # claim → Keys.row
    blocks: dict[str, bytes]  # claim → its graph block's key in the graph cache
    steps: dict[str, bytes]  # claim file → a digest of its status steps (kb.history)
    sources: dict[str, bytes]  # source → Keys.source
    entities: dict[str, bytes]  # entity → Keys.entity
    related_in: dict[str, list[tuple[str, str]]]  # claim → (claim relating to it, relation)
    peers_key: str  # kb.pages.SiteModel.peers_key: "" when not worked out
    lists: dict[str, bytes]  # entity → a digest of its made_by, about and published_by lists
    source_lists: dict[str, bytes]  # source → a digest of its appears_in and evidence_from

    def as_data(self) -> tuple[Any, ...]:
        return (self.common, self.rows, self.blocks, self.steps, self.sources, self.entities,
                self.related_in, self.peers_key, self.lists, self.source_lists)

    @classmethod
    def of_data(cls, value: object) -> Seen | None:
        """From `as_data`'s tuple as the manifest read it back; None when it is not one."""
        if not (isinstance(value, tuple) and len(value) == 10 and isinstance(value[0], str)
                and all(isinstance(v, dict) for v in value[1:7]) and isinstance(value[7], str)
                and all(isinstance(v, dict) for v in value[8:])):
            return None
        return cls(*value)


_KEYED = b"graph cache key\x00"  # kb.extras.record_lines: a block's key, not the block


def seen_now(keys: Keys) -> Seen | None:
    """This build's values (the sources' and entities' parts are Keys' own, made once); None
    when a claim's graph block has no key in the graph cache (then Keys.lines is the block)."""
    m, lines = keys.m, keys.record_lines
    if lines is None:
        return None
    lined = {cid: lines(cid) for cid in m.kb.claims}
    if not all(b is not None and b.startswith(_KEYED) for b in lined.values()):
        return None
    blocks = {cid: cast(bytes, b)[len(_KEYED):] for cid, b in lined.items()}
    made, about, published = m.made_by, m.about, m.published_by
    appears, evidence = m.appears_in, m.evidence_from
    steps = {path: _d([(s.commit.sha, s.status, s.derived, s.reason, s.deleted) for s in made_of])
             for path, made_of in m.steps.items()}
    return Seen(keys.common, keys.claim_rows(), blocks, steps,
                {sid: keys.source(sid) for sid in m.kb.sources},
                {eid: keys.entity(eid) for eid in m.kb.entities},
                m.related_in, m.peers_key,
                {eid: _d(made.get(eid), about.get(eid), published.get(eid))
                 for eid in m.kb.entities},
                {sid: _d(appears.get(sid), evidence.get(sid)) for sid in m.kb.sources})


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """The keys whose value differs, or that only one of the two holds."""
    if old == new:
        return set()
    try:  # the items that only one of the two holds, as sets: at C speed
        return {k for k, _v in new.items() ^ old.items()}
    except TypeError:  # values that cannot be hashed (lists)
        pass
    out = {k for k, v in new.items() if old.get(k, _MISSING) != v}
    out.update(k for k in old if k not in new)
    return out


_MISSING: Hashable = object()


@dataclass(frozen=True)
class Fresh:
    """The pages whose key is worked out, by id: the others' is the one last recorded."""

    claims: set[str]
    entities: set[str]
    sources: set[str]


def to_key(last: Seen | None, now: Seen, keys: Keys) -> Fresh | None:
    """The claim, entity and source pages whose key must be worked out; the others' is the one
    the last build recorded. None: every page's (no last build to compare with, or what every
    page's key holds has changed)."""
    if last is None or last.common != now.common:
        return None
    m = keys.m
    claims, sources = m.kb.claims, m.kb.sources
    rows = _changed(last.rows, now.rows)
    changed_sources = _changed(last.sources, now.sources)
    changed_entities = _changed(last.entities, now.entities)
    out = rows | _changed(last.blocks, now.blocks) | _changed(last.related_in, now.related_in)
    paths = _changed(last.steps, now.steps)
    if paths:
        out.update(cid for cid, c in claims.items() if c.loc.path in paths)
    for sid in changed_sources:
        out.update(m.appears_in.get(sid, ()), m.evidence_from.get(sid, ()))
    naming: set[str] = set()  # the claims that name a changed entity
    for eid in changed_entities:
        naming.update(m.made_by.get(eid, ()), m.about.get(eid, ()))
    out |= naming
    quantities = [cid for cid, c in claims.items() if c.quantity is not None]
    if not now.peers_key or now.peers_key != last.peers_key:
        out.update(quantities)  # any claim's peers may have changed
    # A changed row shows on the pages of the claims related to it, either way, and of the
    # claims whose quantity peers include it.
    for cid in rows:
        out.update(x for x, _rel in now.related_in.get(cid, ()))
        c = claims.get(cid)
        if c is not None:
            out.update(r.claim.id for r in c.related)
    peers = [cid for cid in rows if cid not in claims or claims[cid].quantity is not None]
    if peers:
        want = set(peers)
        out.update(x for x in quantities if not want.isdisjoint(m.quantity_peers(x)))

    # An entity page lists the rows of the claims naming it, and the entities those name.
    entities = changed_entities | _changed(last.lists, now.lists)
    for cid in rows | naming:
        c = claims.get(cid)
        if c is not None:
            entities.update(r.id for r in (c.claimant, *c.about) if r is not None)
    for sid in changed_sources:
        s = sources.get(sid)
        if s is not None:
            entities.update(r.id for r in (s.publisher, *s.authors) if r is not None)
    # A source page lists the rows of the claims quoting or citing it.
    cited = changed_sources | _changed(last.source_lists, now.source_lists)
    for cid in rows:
        c = claims.get(cid)
        if c is not None:
            cited.update(a.source.id for a in c.appearances)
            cited.update(e.source.id for e in c.evidence)
    return Fresh(out & claims.keys(), entities & m.kb.entities.keys(), cited & sources.keys())
