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
from typing import IO, Any, cast

from kb import graphshards
from kb import model as m
from kb.cache import (
    BACKGROUND_MIN,
    SHARDS,
    BlobCache,
    code_fingerprint,
    fork_child,
    read_pickle,
    shard_file,
    shard_of,
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


def commits(history: list[Commit] | None) -> list[tuple[object, ...]] | None:
    return None if history is None else [(c.sha, c.date.isoformat(), c.author, c.subject)
                                         for c in history]


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
        history = commits(self.histories.get(path))  # provenance: dates and contributors
        if not isinstance(record, m.Claim):
            return digest_of(path, self.content(path, record), history)
        snapshots = self.snapshots
        return digest_of(
            path, self.content(path, record), history,
            assessment(self.assessments[record.id]),  # status, verdict, reason, due for review
            network.independent_sources.get(record.id, 0),
            # where each quote is found in its source's text snapshot
            [snapshots.get(c.source.id) for c in record.citations()],
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


KIND = "graph"  # the one kind of entry: (KIND, graph IRI) → (its key, its block)


def copy_blocks(folder: str, key: object, wanted: Mapping[str, str], fd: int
                ) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Copy the blocks of the graphs `wanted` (graph IRI → its key) out of the graph cache in
    `folder` (its files read only under the cache's `key`), one shard at a time, into the
    file `fd` (from its start), for a process that has not the build's memory
    (kb.dumpsproc): where each block is in the file (graph → offset, length), and the graphs
    not there under their key."""
    by_shard: dict[int, list[str]] = {}
    for graph in wanted:
        by_shard.setdefault(shard_of(graph), []).append(graph)
    where: dict[str, tuple[int, int]] = {}
    missing: list[str] = []
    offset = 0
    for index in sorted(by_shard):
        entries = read_pickle(shard_file(Path(folder), index), key)
        for graph in by_shard[index]:
            entry = entries.get((KIND, graph)) if isinstance(entries, dict) else None
            if not (type(entry) is tuple and len(entry) == 2 and entry[0] == wanted[graph]
                    and type(entry[1]) is bytes):
                missing.append(graph)
                continue
            block = entry[1]
            view, at = memoryview(block), offset
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
            where[graph] = (offset, len(block))
            offset += len(block)
    return where, missing


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


class GraphCache(BlobCache):
    """The block of each named graph of the last build, by graph IRI and key, kept as
    kb.cache.ParseCache keeps parsed files (its shards, loading, entries, pruning and
    writing), and the last network report beside them. Its own are only the waiting for and
    forking of background saves (see _SAVERS)."""

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

    # -- shards read when wanted (kb.graphshards) ------------------------------------------------
    def _load(self) -> None:
        stats, index = graphshards.read_index(self.folder, self.key)
        self.stats: dict[int, graphshards.Stat] = {}  # each shard file's, as read or written
        self._open: dict[int, IO[bytes]] = {}  # shards the index describes: not read yet
        for i in range(SHARDS):
            fh, st = graphshards.open_shard(self.shard_path(i))
            if fh is None or st is None:
                continue
            self.stats[i] = st
            if stats.get(i) == st:
                self._open[i] = fh
                continue
            self.shards[i] = graphshards.read_shard(fh, self.key, self.well_formed)
            fh.close()
        self._index = {g: v for g, v in index.items() if shard_of(g) in self._open}

    def _read(self, i: int) -> None:
        fh = self._open.pop(i, None)
        if fh is None:
            return
        self.shards[i] = graphshards.read_shard(fh, self.key, self.well_formed)
        fh.close()
        if not self.shards[i] and any(shard_of(g) == i for g in self._index):
            # Damaged in place (its Stat unchanged): the index goes, so that the next build
            # reads every shard and writes this one again; this one's blocks are made again.
            with suppress(OSError):
                (self.folder / graphshards.INDEX).unlink()

    def drop_read(self, unread: Mapping[str, int], keys: Mapping[str, str]
                  ) -> dict[str, bytes]:
        """Forget the shards read (once the cache is saved: their blocks are the graph's now,
        not to be held twice); the blocks of `unread` graphs they hold, under `keys`."""
        found = {}
        for g in unread:
            i = shard_of(g)
            if i not in self._open:
                entry = self.shards[i].get((KIND, g))
                if entry is not None and entry[0] == keys.get(g):
                    found[g] = entry[1]
        for i in range(SHARDS):
            if i not in self._open:
                self.shards[i] = {}
        return found

    def close(self) -> None:
        """Close the shards not read: their blocks are not wanted any more."""
        for fh in self._open.values():
            fh.close()
        self._open = {}

    @property
    def entries(self) -> dict[tuple[str, str], tuple[str, Any]]:
        for i in list(self._open):
            self._read(i)
        return super().entries

    def get(self, kind: str, path: str, digest_: str) -> Any:
        self._read(shard_of(path))
        return super().get(kind, path, digest_)

    def put(self, kind: str, path: str, digest_: str, value: Any) -> None:
        self._read(shard_of(path))
        super().put(kind, path, digest_, value)

    def keep_only(self, keep: set[tuple[str, str]]) -> None:
        for graph in self._index:
            if (KIND, graph) not in keep:
                self._read(shard_of(graph))
        super().keep_only(keep)

    def find(self, graph_iri: str, key: str) -> bytes | int | None:
        """The graph's block when made from the same inputs (as `block`), or, in a shard not
        read, its length: the block is there, read when asked for (`blocks_of`)."""
        if shard_of(graph_iri) not in self._open:
            return self.block(graph_iri, key)
        entry = self._index.get(graph_iri)
        if entry is None or entry[0] != key:
            return None
        self.hits += 1
        return entry[1]

    def blocks_of(self, graph_iri: str, keys: Mapping[str, str]) -> dict[str, bytes]:
        """The blocks of the shard holding the graph, each under the key `keys` gives it; the
        cache then forgets them (once it is saved: kb.kbgraph.Blocks holds them)."""
        i = shard_of(graph_iri)
        self._read(i)
        entries, self.shards[i] = self.shards[i], {}
        return {g: v[1] for (_kind, g), v in entries.items() if keys.get(g) == v[0]}

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

    def block(self, graph_iri: str, key: str) -> bytes | None:
        """The graph's block (kb.kbgraph.KBGraph.triples), when made from the same inputs."""
        block = self.get(KIND, graph_iri, key)
        if block is None:
            return None
        self.hits += 1
        return cast(bytes, block)

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
        for i in sorted(self.dirty):
            st = write_pickle(self.shard_path(i), self.key, self.shards[i])
            if st is None:
                self.stats.pop(i, None)
            else:
                self.stats[i] = st
        # The index: every shard as this process read or wrote it (their Stats say which).
        index = {g: v for g, v in self._index.items() if shard_of(g) in self._open}
        for i, shard in enumerate(self.shards):
            if i in self.stats and i not in self._open:
                index.update({g: (v[0], len(v[1])) for (_kind, g), v in shard.items()})
        graphshards.write_index(self.folder, self.key, self.stats, index)
        with suppress(OSError):  # the one-file cache of claimkb before the shards
            self.folder.with_suffix(".pickle").unlink(missing_ok=True)
        for i in range(SHARDS, _FORMAT_1_SHARDS):  # format 1 had more shards: not read
            with suppress(OSError):
                self.shard_path(i).unlink(missing_ok=True)
