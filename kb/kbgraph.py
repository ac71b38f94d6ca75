"""The graph of a knowledge base as kb.graph builds it: one block of N-Triples per named graph.

Kept apart from the builder: the dumps, the endpoint and the site read a KBGraph and need none
of how it is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain, groupby

import pyoxigraph as ox

from kb.namespaces import Iris
from kb.network import NetworkReport
from kb.status import Assessment

END = b" .\n"  # what ends each line of a block


def block_of(lines: list[str]) -> bytes:
    """Sorted N-Triples lines (without " .") as a block: each line ending " .\n", UTF-8."""
    return (" .\n".join(lines) + " .\n").encode("utf-8") if lines else b""


def lines_of(block: bytes) -> list[str]:
    """A block's lines as str (without " ."), for the writers that regroup them: made for a
    graph or a chunk of graphs at a time, and dropped, never for the whole graph at once."""
    return block.decode("utf-8").split(" .\n")[:-1]


class Blocks(MutableMapping[str, bytes]):
    """KBGraph.triples when the graph cache has blocks it has not read (kb.graphshards): the
    graphs in IRI order, each block read, a shard at a time, when first asked for. `sizes`:
    the lengths of those not read yet; `load(graph)`: the blocks of that graph's shard;
    `make(graph)`: the block made again, should the shard not hold it after all (damaged in
    place: a stale cache costs time, never correctness); `close()`: the cache's files."""

    def __init__(self, blocks: dict[str, bytes | None], sizes: dict[str, int],
                 load: Callable[[str], Mapping[str, bytes]], make: Callable[[str], bytes],
                 close: Callable[[], None]) -> None:
        self._blocks, self._sizes, self._load = blocks, sizes, load
        self._make, self._close = make, close

    def __getitem__(self, graph: str) -> bytes:
        block = self._blocks[graph]
        if block is None:
            for name, read in self._load(graph).items():
                if name in self._sizes:
                    self._blocks[name] = read
                    del self._sizes[name]
            block = self._blocks[graph]
            if block is None:
                block = self._blocks[graph] = self._make(graph)
                del self._sizes[graph]
        return block

    def release(self, keep: Iterable[str]) -> None:
        """Read the blocks of `keep` (those still wanted), then close the cache's files."""
        for graph in keep:
            if graph in self._blocks:
                self[graph]
        self._close()

    def __setitem__(self, graph: str, block: bytes) -> None:
        self._blocks[graph] = block
        self._sizes.pop(graph, None)

    def __delitem__(self, graph: str) -> None:
        del self._blocks[graph]
        self._sizes.pop(graph, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def size(self, graph: str) -> int:
        """The length of the graph's block, read or not."""
        block = self._blocks[graph]
        return len(block) if block is not None else self._sizes[graph]


@dataclass(frozen=True)
class Stored:
    """Where the graph cache (kb.graphcache) keeps the blocks of `graphs` on disk, each under
    its key in KBGraph.block_keys: a process that has not the build's memory can read them
    there (kb.dumpsproc) rather than be handed them."""

    folder: str
    key: tuple[object, ...]  # the cache's own key: its files are read only under it
    graphs: frozenset[str]


@dataclass
class KBGraph:
    """The graph of a knowledge base, and what was worked out on the way.

    `triples` holds each named graph as one immutable block: its sorted, unique N-Triples
    lines, each ending " .\n", in UTF-8 (b"" for a graph without triples). A block is an
    N-Triples document as it stands: a record's .nt download and the N-Triples dump are the
    blocks themselves, N-Quads is a block with the graph name put before each " .\n"
    (bytes.replace, in C), and a chunk's digest hashes the blocks. No line holds a raw line
    break (kb.namespaces escapes it), so " .\n" occurs only at the end of a line. One bytes
    object a graph rather than a str a line: 13,000 objects at 10,000 claims instead of
    721,000, so a forked worker that reads a graph touches one reference count (one page of
    the parent's memory copied), not one a line (every page of it).
    Writers that need lines make them a chunk at a time (`lines_of`). The blocks are the
    source of every dump, so that dumps are byte-identical for the same files. `store` holds
    the same quads for SPARQL, made on first use.
    """

    iris: Iris
    graphs: dict[str, str]  # named graph IRI → the file it was read from
    triples: MutableMapping[str, bytes]  # graph IRI → its block (sorted N-Triples, UTF-8)
    assessments: dict[str, Assessment] = field(default_factory=dict)
    network: NetworkReport = field(default_factory=NetworkReport)
    # named graph IRI → the graph cache's key of its block (kb.graphcache: a digest of all the
    # block is made from, with the code and kb.toml in the cache's own key); empty without one
    block_keys: dict[str, str] = field(default_factory=dict)
    stored: Stored | None = None  # the blocks read from the graph cache, and where it is

    @cached_property
    def store(self) -> ox.Store:
        """The quads in an in-memory Oxigraph store, loaded on first use: dumps need no store,
        and loading 700,000 quads is the costliest step of building the graph."""
        store = ox.Store()
        # lenient: the lines are ours (nt_iri, nt_literal), so Oxigraph need not validate
        # every IRI again: 2.1 s against 3.2 s for 721,000 quads
        store.load(self.nquads(), format=ox.RdfFormat.N_QUADS, lenient=True)
        return store

    def drop_store(self) -> None:
        """Free the store (`store` makes it again if asked): for a build that has run its
        queries, whose workers forked later need not hold it."""
        self.__dict__.pop("store", None)

    def named_graphs(self) -> dict[str, str]:
        """Graph IRI → source file (relative path); the vocabulary's graph → "kb:vocab"."""
        return dict(self.graphs)

    def query(self, text: str) -> object:
        """A SPARQL query over the union of all named graphs (pyoxigraph's result object)."""
        return self.store.query(text, use_default_graph_as_union=True,
                                prefixes=self.iris.prefixes())

    def nquads(self) -> bytes:
        """Every quad as N-Quads, graph by graph in IRI order, each graph's triples sorted."""
        # the graph name goes before each line's " .\n" by bytes.replace, in C
        return b"".join(block.replace(END, f" <{g}> .\n".encode())
                        for g, block in sorted(self.triples.items()) if block)

    def ntriples(self) -> bytes:
        """The union of the graphs as sorted N-Triples, each triple once.

        Sorted as bytes: UTF-8 keeps the order of code points, so the order is that of the
        lines as str. The lines exist only while this runs (SHACL and tests want it)."""
        lines = sorted(chain.from_iterable(b[:-len(END)].split(END)
                                           for b in self.triples.values() if b))
        unique = [t for t, _ in groupby(lines)]
        return END.join(unique) + END if unique else b""

    def graph_nquads(self, graph_iri: str) -> bytes:
        """One named graph as sorted N-Triples (the graph name dropped), for publishing."""
        return self.triples.get(graph_iri, b"")

    graph_ntriples = graph_nquads

    def forget(self, keep: Iterable[str] = ()) -> None:
        """Drop every block but those of the graphs in `keep`, and the store: for a build that
        has made all it needs of the whole graph (kb.build, `keep_graph`), whose page workers
        would otherwise be forked holding them (1.3 GB at 100,000 claims). What is left is no
        longer the knowledge base's graph; nothing but that build may use it. The blocks' keys
        stay: they say what each graph was made from, not that its block is here, and the
        claims' CSV that a page worker makes after this keys its rows by them (kb.csvmemo)."""
        wanted = set(keep)
        if isinstance(self.triples, Blocks):
            self.triples.release(wanted)
        for name in [name for name in self.triples if name not in wanted]:
            del self.triples[name]  # in place: what holds the dict holds no block either
        self.drop_store()
        self.__dict__.pop("size", None)

    @cached_property
    def size(self) -> int:
        return sum(block.count(b"\n") for block in self.triples.values())

    def __len__(self) -> int:
        return self.size
