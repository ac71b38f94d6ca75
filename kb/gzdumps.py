"""The site's RDF dumps, gzip-compressed, made again after an edit only where the edit is.

A gzip file may consist of several members, which readers (gzip, zcat, Python's gzip module,
Jena, …) read as one stream (RFC 1952 §2.2). Each dump (kb.export.SITE_DUMPS) is a member for
its head (prefixes, the JSON-LD context), one for each chunk of the named graphs in IRI order,
and one for its tail. A chunk ends after a graph whose IRI hashes to 0 modulo SPAN, so the
boundaries depend on the graphs' names only: an edited file changes the chunk of its graph, an
added or removed one that chunk or (when it ended a chunk) two. Each chunk's compressed
members, and its VoID counts, are kept in the user's cache under a digest of what they are
made from (the graphs' IRIs and blocks, the format, the prefixes, the code, zlib's version and
level), so the next build compresses only the chunks that changed and copies the others.

A block is stood for in that digest by its key in the graph cache where it has one
(kb.graphcache: a digest of everything the block is made from, which with the cache's own key,
also hashed in, gives its bytes): so a chunk whose members and counts are kept needs no block
read at all. After one edit at 100,000 claims, copying, reading and hashing every block was
~4.7 of the dumps' 8.3 seconds.

The bytes do not depend on the cache: a member is the same whether compressed now or earlier
(zlib is deterministic for the same version and level, and the gzip header holds no time or
name), and a cache file is used only when its digest checks out. With block keys that rests,
as the graph cache itself does, on each key holding everything its block is made from
(tests/test_graph_cache.py checks that every field of every record is in it). Should one ever
miss an input, clearing the graph cache alone would not mend the dumps: this cache's folder
(`dumps-…` in the user's cache folder, docs/decisions.md "Caches") goes too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import kb
from kb import export, rdfwrite
from kb.kbgraph import KBGraph, lines_of
from kb.namespaces import Iris
from kb.write import Page

# zlib's level: the four dumps at 10,000 claims (307 MB of text) compress to 31.6 MB in 1.5 s at
# level 1, 27.0 MB in 1.6 s at 3, 21.6 MB in 4.2 s at 6, 20.9 MB in 7.6 s at 9. After an edit
# only a chunk or two are compressed, so the level matters only for a cold build, which
# compresses everything: 3 is as quick as 1 and 15 % smaller.
LEVEL = 3
SPAN = 64  # graphs a chunk, on average: at 10,000 claims ~200 chunks of ~1.5 MB of text
# 2: chunk digests hash each graph's block and its length; 3: subjects' keys; 4: a block's key
_VERSION = 4


def compress(data: bytes) -> bytes:
    """One gzip member (no time, no file name: the same text gives the same bytes)."""
    return zlib.compress(data, LEVEL, wbits=31)


@dataclass(frozen=True)
class Chunk:
    graphs: tuple[str, ...]
    digest: str  # of the graphs' IRIs and blocks (or the blocks' keys)


def _ends_chunk(graph: str) -> bool:
    return zlib.crc32(graph.encode()) % SPAN == 0


Fetch = Callable[[Sequence[str]], Mapping[str, bytes]]


def _no_prefetch(graphs: Collection[str]) -> None:
    pass


@dataclass(frozen=True)
class DumpInput:
    """What the dumps are made from: the non-empty named graphs in IRI order, each with its
    block's key in the graph cache (None: it has none), `blocks` to read the blocks of some of
    them (`prefetch`: those that will be asked for, said once beforehand), and the IRIs,
    what VoID says of the dataset besides its counts (kb.toml's name, the first claim's id),
    and `salt`: the graph cache's own key, which a block's key is a digest under ("": no key
    is used). An input makes one set of dumps; make another for the next."""

    iris: Iris
    graphs: Sequence[tuple[str, str | None]]
    blocks: Fetch
    title: str | None = None
    example: str | None = None
    salt: str = ""
    prefetch: Callable[[Collection[str]], None] = _no_prefetch

    @classmethod
    def of(cls, g: KBGraph) -> DumpInput:
        keys, triples = block_keys(g), g.triples
        return cls(g.iris, [(name, keys.get(name)) for name in export.nonempty(g)],
                   lambda names: {name: triples[name] for name in names}, *about(g),
                   key_salt(g))


def block_keys(g: KBGraph) -> Mapping[str, str]:
    """The blocks' keys a chunk's digest may use: the graph cache's, none without one (whose
    key, `key_salt`, they are digests under)."""
    return g.block_keys if g.stored is not None else {}


def key_salt(g: KBGraph) -> str:
    """What a block's key in `g` is a digest under (DumpInput.salt)."""
    return "" if g.stored is None else repr(g.stored.key)


def about(g: KBGraph) -> tuple[str | None, str | None]:
    """What VoID says of the dataset besides its counts (DumpInput.title, .example): kb.toml's
    name, the first claim's id."""
    return export.setting(g, "name"), min(g.assessments, default=None)


def chunks(graphs: Iterable[tuple[str, str | None]], blocks: Fetch, salt: str = "",
           digest: bool = True) -> Iterator[Chunk]:
    """The graphs cut where a graph's IRI says so, each chunk with its digest (unless not
    `digest`: ""): of each graph's IRI and its block's key, or its block (read with `blocks`)
    when it has no key or there is no `salt`. SHA-256 (instructions of its own on current
    processors) over the blocks as they stand: no line is made."""
    run: list[tuple[str, str | None]] = []
    for graph, key in graphs:
        run.append((graph, key if salt else None))
        if _ends_chunk(graph):
            yield _chunk(run, blocks, salt, digest)
            run = []
    if run:
        yield _chunk(run, blocks, salt, digest)


def _chunk(run: list[tuple[str, str | None]], blocks: Fetch, salt: str, digest: bool
           ) -> Chunk:
    if not digest:
        return Chunk(tuple(graph for graph, _key in run), "")
    h = hashlib.sha256(f"{salt}\n".encode())
    unkeyed = [graph for graph, key in run if key is None]
    read = blocks(unkeyed) if unkeyed else {}
    for graph, key in run:
        # An IRI holds no raw line break; a key (hex) is told from a length by its "key".
        if key is not None:
            h.update(f"{graph}\nkey {key}\n".encode())
        else:
            block = read[graph]
            h.update(f"{graph}\n{len(block)}\n".encode())
            h.update(block)
    return Chunk(tuple(graph for graph, _key in run), h.hexdigest())


class Store:
    """Chunks' members and VoID counts, a file each in one folder of the user's cache.

    A file's name is a digest of everything its content is made from; a member file starts
    with the SHA-256 of the member, checked when read (a truncated or damaged file is made
    again). Files no build asked for the last time are deleted (`prune`)."""

    def __init__(self, folder: Path, prefixes: Mapping[str, str]) -> None:
        from kb.cache import code_fingerprint

        self.folder = folder
        self.salt = repr((_VERSION, kb.__version__, sys.version, zlib.ZLIB_RUNTIME_VERSION,
                          LEVEL, code_fingerprint(("export", "gzdumps", "rdfwrite")),
                          sorted(prefixes.items()))).encode()
        self.used: set[str] = set()
        self._present: set[str] | None = None

    def has(self, name: str) -> bool:
        """Whether the folder has a file of this name (whole or not: `get` says)."""
        if self._present is None:
            try:
                self._present = set(os.listdir(self.folder))
            except OSError:
                self._present = set()
        return name in self._present

    def name(self, what: str, chunk: Chunk, first: bool = False) -> str:
        h = hashlib.sha256(self.salt)
        h.update(f"\n{what}\n{first}\n{chunk.digest}".encode())
        name = f"{what}-{h.hexdigest()[:40]}"
        self.used.add(name)
        return name

    def get(self, name: str) -> bytes | None:
        try:
            data = (self.folder / name).read_bytes()
        except OSError:
            return None
        member = data[32:]
        return member if data[:32] == hashlib.sha256(member).digest() else None

    def put(self, name: str, member: bytes) -> None:
        self._write(name, hashlib.sha256(member).digest() + member)

    def get_stats(self, name: str) -> export.VoidStats | None:
        """VoID counts kept as JSON, the subjects' keys one base64 string (unpickling 120,000
        strings one by one took 0.12 s at 10,000 claims; splitting one string, 0.01 s)."""
        data = self.get(name)
        try:
            triples, subjects, properties, classes = json.loads(data or b"")
            keys = base64.b64decode(subjects, validate=True)
            n = export.SUBJECT_KEY_SIZE
            if len(keys) % n:
                return None
            return export.VoidStats(triples, {keys[i:i + n] for i in range(0, len(keys), n)},
                                    Counter(properties), Counter(classes))
        except Exception:  # unreadable: counted again
            return None

    def put_stats(self, name: str, stats: export.VoidStats) -> None:
        keys = base64.b64encode(b"".join(sorted(stats.subjects))).decode("ascii")
        self.put(name, json.dumps([stats.triples, keys, stats.properties,
                                   stats.classes]).encode())

    def _write(self, name: str, data: bytes) -> None:
        """Atomically: a reader sees the old file or the whole new one. A cache that cannot
        be written only costs time."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self.folder / name)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass

    def prune(self) -> None:
        """Delete the files of chunks this build did not use (edited, gone, other code), and
        what killed writers left (kb.cache.remove_stale_temporaries)."""
        from kb.cache import remove_stale_temporaries

        remove_stale_temporaries(self.folder)
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            if name not in self.used and not name.startswith("."):
                with suppress(OSError):
                    os.unlink(self.folder / name)


@dataclass
class SiteDumps:
    files: dict[str, bytes]  # site path → bytes: the gzip dumps (unless sunk) and void.ttl
    records: dict[str, dict[str, bytes]]  # claim id → {"ttl" | "jsonld": its named graph}
    chunks: int = 0
    made: int = 0  # chunks whose members were compressed now (not from the cache)
    stats: export.VoidStats = field(default_factory=export.VoidStats)


def site_dumps(g: KBGraph, claims: Iterable[str] = (), folder: Path | None = None,
               emit: Callable[[str, dict[str, bytes]], None] | None = None,
               sink: Callable[[str, bytes], None] | None = None) -> SiteDumps:
    """The site's dumps (export.SITE_DUMPS as DUMP_FILES, and data/void.ttl), and these
    claims' records; with `folder`, chunks are taken from and kept in the cache there.

    With `emit`, each claim's records are handed to it as soon as they are made, and not kept
    in the result: at 100,000 claims they are 1.3 GB. With `sink`, so are the dumps' gzip
    members, in order, with their file's path: held, and then joined, they were 540 MB."""
    return stream_dumps(DumpInput.of(g), claims, folder, emit, sink)


def write_site_dumps(given: DumpInput, claims: Iterable[str], folder: Path | None,
                     put: Callable[[Page], None], append: Callable[[str, bytes], None]) -> None:
    """stream_dumps, written as they are made: the gzip members appended to their files, each
    claim's records and then the other files put."""
    def records(cid: str, made: dict[str, bytes]) -> None:
        for ext, data in sorted(made.items()):
            put(Page(f"claims/{cid}.{ext}", data))

    made = stream_dumps(given, claims, folder, records, append)
    for path, data in sorted(made.files.items()):
        put(Page(path, data))


def stream_dumps(given: DumpInput, claims: Iterable[str] = (), folder: Path | None = None,
                 emit: Callable[[str, dict[str, bytes]], None] | None = None,
                 sink: Callable[[str, bytes], None] | None = None) -> SiteDumps:
    """site_dumps from its input, a chunk at a time: only one chunk's blocks are held (the rest
    of the graph may be in another process, or in a file), and none of a chunk whose members
    and counts the cache has (unless its claims' records are made)."""
    keep = emit is None

    def record(cid: str, made: dict[str, bytes]) -> None:
        if emit is not None:
            emit(cid, made)
        out.records[cid] = made if keep else {}

    prefixes = given.iris.prefixes()
    pieces = rdfwrite.Pieces(prefixes)
    store = Store(folder, prefixes) if folder is not None else None
    wanted = {given.iris.graph("claim", cid): cid for cid in claims}
    formats = export.SITE_DUMPS
    members: dict[str, list[bytes]] = {f: [] for f in formats}

    def add(f: str, member: bytes) -> None:
        if sink is not None:
            sink(export.DUMP_FILES[f], member)
        else:
            members[f].append(member)

    # First every chunk's digest and file names, and which chunks need their blocks: those
    # the cache has not, and those holding a claim whose records are made; their blocks are
    # asked for at once (kb.dumpsproc reads them from the graph cache a shard at a time).
    plan: list[tuple[Chunk, dict[str, str], str]] = []
    needed: list[str] = []
    for n, chunk in enumerate(chunks(given.graphs, given.blocks, given.salt,
                                     digest=store is not None)):
        names = {f: store.name(f, chunk, f == "jsonld" and n == 0) for f in formats} \
            if store is not None else {}
        stats_name = store.name("void", chunk) if store is not None else ""
        plan.append((chunk, names, stats_name))
        if (store is None or not all(store.has(name) for name in names.values())
                or not store.has(stats_name) or any(g in wanted for g in chunk.graphs)):
            needed.extend(chunk.graphs)
    given.prefetch(needed)
    del needed

    for f in formats:
        if export.head(f, pieces):
            add(f, compress(export.head(f, pieces).encode("utf-8")))
    out = SiteDumps({}, {})
    for n, (chunk, names, stats_name) in enumerate(plan):
        out.chunks += 1
        found = {f: store.get(names[f]) for f in formats} if store is not None else {}
        missing = [f for f in formats if found.get(f) is None]
        records = [graph for graph in chunk.graphs if graph in wanted]
        stats = store.get_stats(stats_name) if store is not None else None
        blocks = (given.blocks(chunk.graphs) if missing or records or stats is None
                  else {})
        # the chunk's lines, split once when both the text and the counts need them (cold)
        lines = {graph: lines_of(blocks[graph]) for graph in chunk.graphs} \
            if (missing or records) and stats is None else None
        if missing or records:
            text = export.Text.of(blocks, pieces, chunk.graphs, missing, n == 0, records, lines)
            for f in missing:
                found[f] = member = compress(text.formats[f])
                if store is not None:
                    store.put(names[f], member)
            for graph, made in text.records.items():
                record(wanted[graph], made)
            out.made += bool(missing)
        for f in formats:
            done = found[f]
            assert done is not None
            add(f, done)
        if stats is None:
            stats = (export.VoidStats.of_lines(lines.values()) if lines is not None else
                     export.VoidStats.of(blocks[graph] for graph in chunk.graphs))
            if store is not None:
                store.put_stats(stats_name, stats)
        out.stats.add(stats)
    for f in formats:
        if export.tail(f):
            add(f, compress(export.tail(f).encode("utf-8")))
        if sink is None:
            out.files[export.DUMP_FILES[f]] = b"".join(members[f])
            members[f] = []
    out.files["data/void.ttl"] = export.void_of(given.iris, given.title, given.example,
                                                out.stats)
    for cid in wanted.values():  # an empty graph is in no dump; its record still is
        if cid not in out.records:
            record(cid, {ext: export.record_text([], prefixes, ext) for ext in ("ttl", "jsonld")})
    if store is not None:
        store.prune()
    return out
