"""A cache of the named graphs' N-Triples blocks, so that a build after one edit re-makes one graph.

Each file is one named graph (kb.graph), and a graph's block depends on its record and on a few
facts from elsewhere: the claim's assessment (which depends on today), its count of independent
sources, the text snapshots its quotes are found in, the file's git history and kb.toml. kb.graph
gathers exactly those into each graph's key (`digest_of`); everything the code itself decides
(the vocabulary, IRIs, formats) is in the cache's own key, with the code of the whole package.

It is kb.cache's parse cache, subclassed (as kb.rulecache is): in the user's cache folder
(entries are pickles, never taken from the knowledge base), split into shards by a hash of the
graph IRI, so one edited file rewrites one small shard. A shard from another version, or that
cannot be read, or that is not shaped as `put_block` writes it, is ignored; an entry is used
only when its key matches, so a stale cache costs time, never correctness.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from kb import graphshards
from kb import model as m
from kb.cache import (
    BACKGROUND_MIN,
    SHARDS,
    code_fingerprint,
    fork_child,
    read_pickle,
    write_pickle,
)
from kb.forks import SIBLING_WAIT, ChildPipe, wait_for_ends
from kb.history import Commit
from kb.network import NetworkReport
from kb.status import Assessment

_FORMAT = 2  # 2: a graph is one bytes block (kb.kbgraph.KBGraph), not a list of lines
_FORMAT_1_SHARDS = 256  # their files are deleted at the first save
# An entry is (KIND, graph IRI) → (key, its block): one bytes object a graph, which unpickles as
# one copy (a list of lines was a str object a line to make again: 721,000 at 10,000 claims).


def _ref(ref: m.Ref | None) -> str | None:
    return None if ref is None else ref.id


# What each kind of record says, field by field, places (loc, locs, a Ref's loc) left out: no
# graph reads them, and an edit above a record must not change its key. Written out rather than
# walked generically (a generic walk cost 0.4 s at 10,000 claims, this 0.1 s);
# tests/test_graph_cache.py fails when a model class gains a field not listed here.
FIELDS: dict[type, tuple[str, ...]] = {
    m.Claim: ("id", "claim", "kind", "claimant", "about", "period", "quantity", "appearances",
              "evidence", "verdict", "reviews", "related", "resolves_by", "tags"),
    m.Quantity: ("value", "unit"),
    m.Appearance: ("source", "quote", "translation"),
    m.Evidence: ("source", "stance", "quote", "translation", "note"),
    m.Verdict: ("status", "summary"),
    m.Review: ("by", "date", "note"),
    m.Relation: ("claim", "relation"),
    m.Source: ("id", "title", "kind", "publisher", "authors", "url", "archived", "published",
               "accessed", "language", "note"),
    m.Entity: ("id", "name", "kind", "description", "aliases", "wikidata"),
    Assessment: ("status", "derived", "verdict", "counts", "reason", "last_review",
                 "due_for_review"),
    Commit: ("sha", "date", "author", "subject"),
}


def _claim(c: m.Claim) -> tuple[object, ...]:
    q, v = c.quantity, c.verdict
    return ("claim", c.id, c.claim, c.kind, _ref(c.claimant), [r.id for r in c.about], c.period,
            None if q is None else (q.value, q.unit),
            [(a.source.id, a.quote, a.translation) for a in c.appearances],
            [(e.source.id, e.stance, e.quote, e.translation, e.note) for e in c.evidence],
            None if v is None else (v.status, v.summary),
            [(r.by, r.date and r.date.isoformat(), r.note) for r in c.reviews],
            [(r.claim.id, r.relation) for r in c.related],
            c.resolves_by and c.resolves_by.isoformat(), c.tags)


def _source(s: m.Source) -> tuple[object, ...]:
    return ("source", s.id, s.title, s.kind, _ref(s.publisher), [r.id for r in s.authors],
            s.url, s.archived, s.published, s.accessed and s.accessed.isoformat(), s.language,
            s.note)


def _entity(e: m.Entity) -> tuple[object, ...]:
    return ("entity", e.id, e.name, e.kind, e.description, e.aliases, e.wikidata)


def plain(record: m.Record) -> tuple[object, ...]:
    """What a record says as plain values: two records that say the same give equal tuples."""
    if isinstance(record, m.Claim):
        return _claim(record)
    if isinstance(record, m.Source):
        return _source(record)
    return _entity(record)


def assessment(a: Assessment) -> tuple[object, ...]:
    return (a.status, a.derived, a.verdict, a.counts, a.reason,
            a.last_review and a.last_review.isoformat(), a.due_for_review)


def commits(history: list[Commit] | None) -> list[str] | None:
    """A file's history as its commits' ids: a commit's id digests its date, author and
    message, all the graph takes from it (the ISO dates cost ~0.03 s a build at 10,000)."""
    return None if history is None else [c.sha for c in history]


class Keys:
    """What the network report and each file's named graph are made from, beyond kb.toml and
    the code (which key the whole cache): read kb.graph._Builder and kb.network.analyse before
    changing either. A key that misses an input would reuse a stale graph or report;
    tests/test_graph_cache.py changes each input and compares with a fresh build."""

    def __init__(self, kb_: m.KnowledgeBase, assessments: dict[str, Assessment],
                 histories: dict[str, list[Commit]],
                 digests: Mapping[str, str] | None = None) -> None:
        self.kb = kb_
        self.assessments = assessments
        self.histories = histories
        self.digests = digests or {}  # path → the digest of the bytes its record was parsed from
        # source id → a digest of its text snapshot (where quotes are found)
        self.snapshots = {sid: digest_of(snap.source_id, snap.text)
                          for sid, snap in kb_.snapshots.items()}
        self.parts: dict[str, bytes] = {}  # made by network(): see there

    def content(self, path: str, record: m.Record) -> str:
        """The file's digest when known (the record is a function of its bytes and the parser's
        code, which keys the cache), else one of what its record says (0.3 s at 10,000
        claims)."""
        known = self.digests.get(path)
        return f"file:{known}" if known else digest_of(plain(record))

    def network(self, known: Mapping[str, bytes] | None = None) -> str:
        """Exactly what kb.network.analyse reads: the ids and links of the records, the
        sources' URLs and the claims' statuses. An edit to a claim's text, quotes, reviews or
        verdict summary leaves it alone.

        What each file says of the network is digested on its own, under the file's digest
        (a record is a function of its file's bytes and the parser's code, which keys the
        cache): `known` holds the last build's (GraphCache.parts), and `self.parts` this
        build's, so after one edit one file's part is made again (0.1 s at 10,000 claims to
        make them all)."""
        kb_, digests = self.kb, self.digests
        known = known or {}
        parts: dict[str, bytes] = {}
        claims, sources = [], []
        for cid, c in kb_.claims.items():
            d = digests.get(c.loc.path)
            hit = known.get(f"c{d}") if d else None
            if hit is None:
                hit = _part(cid, _ref(c.claimant), [r.id for r in c.about],
                            [a.source.id for a in c.appearances],
                            [(e.source.id, e.stance) for e in c.evidence],
                            [(r.claim.id, r.relation) for r in c.related])
            if d:
                parts[f"c{d}"] = hit
            claims.append(hit)
        for sid, s in kb_.sources.items():
            d = digests.get(s.loc.path)
            hit = known.get(f"s{d}") if d else None
            if hit is None:
                hit = _part(sid, _ref(s.publisher), s.url, [r.id for r in s.authors])
            if d:
                parts[f"s{d}"] = hit
            sources.append(hit)
        self.parts = parts
        return digest_of(b"".join(claims), b"".join(sources), list(kb_.entities),
                         [(cid, a.status) for cid, a in self.assessments.items()])

    def graph(self, path: str, record: m.Record, network: NetworkReport) -> str:
        """A named graph's key. A claim's also stands, in kb.changed, for what its page shows
        of its path, history, assessment and independent-source count: keep those in it."""
        history = commits(self.histories.get(path))  # provenance: dates and contributors
        if not isinstance(record, m.Claim):
            return digest_of(path, self.content(path, record), history)
        snapshots = self.snapshots
        return digest_of(
            path, self.content(path, record), history,
            assessment(self.assessments[record.id]),  # status, verdict, reason, due for review
            network.independent_sources.get(record.id, 0),
            # where each quote is found in its source's text snapshot
            [snapshots.get(source) for source in record.cited_sources()],
        )


def _part(*parts: object) -> bytes:
    """A record's part of the network key: 16 bytes, so that parts join unambiguously."""
    return hashlib.blake2b(marshal.dumps(cast(Any, parts), 2), digest_size=16).digest()


def digest_of(*parts: object) -> str:
    """A digest of plain values (str, numbers, None, tuples and lists of them; dates as ISO
    text). marshal's format 2 writes equal values as equal bytes (no references, no interning
    marks) and is five times faster than repr; anything it cannot write goes through repr."""
    try:
        data = b"m" + marshal.dumps(cast(Any, parts), 2)
    except ValueError:
        data = b"r" + repr(parts).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


KIND = graphshards.KIND


# Children writing this cache. Only they are waited for before it is read: ParseCache waits
# for every save the process started (kb.cache.wait_for_saves), and after a cold check the
# parse and rule caches' children take 1.3-1.8 s at 10,000 claims, which the graph does not read.
_SAVERS: list[int] = []
# For each of them, the read end of a pipe whose write end only that child holds: it reads as
# ended once the child has exited, so that a sibling can wait for it (`wait_in_sibling`).
_ENDS: list[int] = []


def _wait_for_own_saves() -> None:
    while _SAVERS:
        pid = _SAVERS.pop()
        with suppress(ChildProcessError):  # reaped already (kb.cache.wait_for_saves at exit)
            os.waitpid(pid, 0)
    while _ENDS:
        os.close(_ENDS.pop())


def wait_in_sibling() -> None:
    """In a child forked from the build: wait until the graph cache's savers have exited.

    The dumps' process (kb.produce) and a cold cache's saver both read every block; at
    100,000 claims, run together beside the planning, they made the build's peak (4.1 GB)."""
    wait_for_ends(_ENDS, SIBLING_WAIT)


class GraphCache(graphshards.IndexedShards):
    """The block of each named graph of the last build, by graph IRI and key, kept as
    kb.cache.ParseCache keeps parsed files (its shards, entries, pruning), each shard read
    only when a block in it is wanted (kb.graphshards.IndexedShards), and the last network
    report and its parts beside them. Its own are those, and the waiting for and forking of
    background saves (see _SAVERS)."""

    what = "graph"
    kind = KIND

    def __init__(self, root: Path, settings: object, folder: Path | None = None) -> None:
        self.report: tuple[str, NetworkReport] | None = None  # a network report to save
        self.hits = 0
        self.parts: dict[str, bytes] = {}  # each file's part of the network key (Keys.network)
        self.new_parts: dict[str, bytes] | None = None  # this build's, to save
        # what every graph depends on beyond its key: the code of the whole package (the
        # vocabulary, the IRIs and the N-Triples forms are made by it) and kb.toml (the base
        # IRI, the publisher, the repository)
        super().__init__(root, folder, (_FORMAT, repr(settings)))
        parts = read_pickle(self.folder / "network-parts.pickle", self.key)
        if isinstance(parts, dict) and all(type(k) is str and type(v) is bytes
                                           for k, v in parts.items()):
            self.parts = parts

    def keep_parts(self, parts: dict[str, bytes]) -> None:
        """This build's parts of the network key, saved with the cache when they changed."""
        if parts != self.parts:
            self.new_parts = parts

    def wait_for_saves(self) -> None:
        _wait_for_own_saves()

    def fingerprint(self) -> str:
        return code_fingerprint()

    def network(self, key: str, make: Callable[[], NetworkReport]) -> NetworkReport:
        """The last build's network report when its inputs are the same, else `make()`."""
        report = read_pickle(self.folder / "network.pickle", (self.key, key))
        if isinstance(report, NetworkReport):
            return report
        report = make()
        self.report = (key, report)
        return report

    def put_block(self, graph_iri: str, key: str, block: bytes) -> None:
        self.put(KIND, graph_iri, key, block)

    def save_graphs(self, keep: set[str], background: bool = True) -> None:
        """Write the changed shards, the graphs not in `keep` dropped, and a new network
        report; with `background` and many shards to write (a cold cache), in a forked child,
        off the build's path."""
        self.save({(KIND, g) for g in keep}, background)

    def save(self, keep: set[tuple[str, str]] | None = None, background: bool = True) -> None:
        """As ParseCache.save, with the network report, and a child this cache waits for."""
        if keep is not None:
            self.keep_only(keep)
        if not self.dirty and self.report is None and self.new_parts is None:
            return
        if not (background and len(self.dirty) >= BACKGROUND_MIN and self._fork()):
            self._write()
        self.dirty = set()
        self.report = self.new_parts = None

    def _fork(self) -> bool:
        try:
            pipe = ChildPipe()  # its write end only in the child: see _ENDS
        except OSError:  # no descriptors left: saved here
            return False

        def niced() -> None:
            pipe.child_side()
            with suppress(OSError):
                os.nice(5)  # the build comes first on a busy machine
            self._write()

        pid = None
        try:
            pid = fork_child(niced)
        finally:
            end = pipe.after_fork(pid is not None)
        if pid is None or end is None:
            return False
        _SAVERS.append(pid)
        _ENDS.append(end)
        return True

    def _write(self) -> None:
        if self.report is not None:
            key, report = self.report
            write_pickle(self.folder / "network.pickle", (self.key, key), report)
        if self.new_parts is not None:
            write_pickle(self.folder / "network-parts.pickle", self.key, self.new_parts)
        self._write_shards()
        with suppress(OSError):  # the one-file cache of claimkb before the shards
            self.folder.with_suffix(".pickle").unlink(missing_ok=True)
        for i in range(SHARDS, _FORMAT_1_SHARDS):  # format 1 had more shards: not read
            with suppress(OSError):
                self.shard_path(i).unlink(missing_ok=True)
