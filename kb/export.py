"""Dumps of the graph: the whole of it, one record's named graph, claims as CSV, and VoID.

Every dump is written from the sorted N-Triples the graph holds, a block a named graph
(kb.kbgraph.KBGraph.triples): N-Quads and N-Triples are those blocks, Turtle, TriG and JSON-LD
regroup their lines, made a graph at a time (kb.rdfwrite), so
the same files give byte-identical output and no Python RDF objects are made on the way (going
through Oxigraph's parser and serialisers took 3–5 s a dump at 10,000 claims, docs/graph.md).
No blank nodes are made anywhere, so nothing depends on generated labels.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyoxigraph as ox

from kb import rdfwrite
from kb.kbgraph import Blocks, KBGraph, lines_of
from kb.namespaces import RDF_IRI, RDF_TYPE, SCHEMA_IRI, Iris, dcterms, node
from kb.namespaces import void as v_

if TYPE_CHECKING:  # not imported at run time: kb.dumpsproc's process does not need the checker
    from kb.check import Checked

FORMATS: dict[str, ox.RdfFormat] = {
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "nq": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "jsonld": ox.RdfFormat.JSON_LD,
}
DATASET_FORMATS = frozenset({"nq", "trig", "jsonld"})  # keep the named graphs
MEDIA_TYPES = {f: fmt.media_type for f, fmt in FORMATS.items()}
SITE_DUMPS = ("ttl", "nt", "trig", "jsonld")  # what the site publishes (kb.gzdumps)
# Where the site publishes them (relative to base_url), gzip-compressed; VoID names them.
DUMP_FILES = {f: f"data/kb.{f}.gz" for f in SITE_DUMPS}
_TYPE = f"<{RDF_IRI}type>"


def _sorted_prefixes(data: bytes) -> bytes:
    """Oxigraph writes @prefix lines in the order of a hash table: sort them, to be safe."""
    head: list[bytes] = []
    rest = data
    while rest.startswith(b"@prefix "):
        line, _, rest = rest.partition(b"\n")
        head.append(line + b"\n")
    return b"".join(sorted(head)) + rest


def dump(g: KBGraph, fmt: str) -> bytes:
    """The whole graph in one format: ttl, nt (the union), nq, trig, jsonld (named graphs).

    ttl, nt, trig and jsonld are the site's dumps, uncompressed (kb.gzdumps): each named graph
    in IRI order, so the union dumps list each graph's triples in turn. No triple is in two
    named graphs (each graph says things only about its own record's nodes; tested), so that
    concatenation is the union, each triple once."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "nq":
        return g.nquads()
    pieces = rdfwrite.Pieces(g.iris.prefixes())
    text = Text.of(g.triples, pieces, nonempty(g), (fmt,), first=True)
    return head(fmt, pieces).encode("utf-8") + text.formats[fmt] + tail(fmt).encode("utf-8")


def nonempty(g: KBGraph) -> list[str]:
    """The named graphs in IRI order, as N-Quads lists them (an empty graph has no quad);
    blocks the graph cache has not read are not read for this (kb.kbgraph.Blocks.size)."""
    triples = g.triples
    size = triples.size if isinstance(triples, Blocks) else None
    if size is None:
        return [name for name in sorted(triples) if triples[name]]
    return [name for name in sorted(triples) if size(name)]


def head(fmt: str, pieces: rdfwrite.Pieces) -> str:
    """What a dump starts with before its first graph."""
    return {"ttl": pieces.head, "trig": pieces.head, "jsonld": pieces.jsonld_head}.get(fmt, "")


def tail(fmt: str) -> str:
    return rdfwrite.JSONLD_TAIL if fmt == "jsonld" else ""


RECORD_FORMATS = {"trig": "ttl", "jsonld": "jsonld"}  # a dump → its claims' record files


@dataclass
class Text:
    """The text of a run of named graphs in some dump formats (UTF-8), and the records asked
    for (claim graph IRI → {"ttl" | "jsonld": bytes}): each graph's statements are made once,
    from its lines, made from its block and dropped after it."""

    formats: dict[str, bytes]
    records: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @classmethod
    def of(cls, triples: Mapping[str, bytes], pieces: rdfwrite.Pieces, graphs: Iterable[str],
           formats: Iterable[str], first: bool, records: Container[str] = (),
           split: Mapping[str, list[str]] | None = None) -> Text:
        """`triples`: graph → its block (kb.kbgraph.KBGraph.triples, or a chunk's); `first`:
        the run starts the dump (the first JSON-LD graph has no comma); `split`: the graphs'
        lines, when the caller has them already."""
        want = set(formats)
        parts: dict[str, list[str]] = {f: [] for f in want}
        made: dict[str, dict[str, bytes]] = {}
        blocks: list[bytes] = []  # N-Triples: the blocks as they stand
        for graph in graphs:
            own = triples[graph]
            record = graph in records
            if "nt" in want:
                blocks.append(own)
            lines = ((split[graph] if split is not None else lines_of(own))
                     if want - {"nt"} or record else [])
            if want & {"ttl", "trig"} or record:
                block = pieces.block(lines)
                if "trig" in want:
                    parts["trig"].append(pieces.trig(graph, block))
                if "ttl" in want:
                    parts["ttl"].append(pieces.turtle(block))
                if record:
                    made.setdefault(graph, {})["ttl"] = pieces.turtle_record(block)
            if "jsonld" in want or record:
                nodes = pieces.nodes(lines)
                if "jsonld" in want:
                    parts["jsonld"].append(pieces.jsonld(graph, nodes, first))
                if record:
                    made.setdefault(graph, {})["jsonld"] = pieces.jsonld_record(nodes)
            first = False
        return cls({f: b"".join(blocks) if f == "nt" else rdfwrite.encode(p)
                    for f, p in parts.items()}, made)


def record_dump(g: KBGraph, kind: str, id_: str, fmt: str) -> bytes:
    """One record's named graph as Turtle, N-Triples or JSON-LD (for its page's downloads)."""
    if fmt not in ("ttl", "jsonld", "nt"):
        raise ValueError(f"a record is dumped as ttl, nt or jsonld, not {fmt!r}")
    if fmt == "nt":
        return g.graph_nquads(g.iris.graph(kind, id_))
    return record_text(lines_of(g.triples.get(g.iris.graph(kind, id_), b"")),
                       g.iris.prefixes(), fmt)


def record_text(lines: list[str], prefixes: Mapping[str, str], fmt: str) -> bytes:
    """A record's lines as its Turtle or JSON-LD file."""
    write = rdfwrite.turtle if fmt == "ttl" else rdfwrite.jsonld
    return write(lines, prefixes)


CSV_FILE = "data/claims.csv"  # in the site
CSV_COLUMNS = ("id", "claim", "kind", "status", "derived_status", "verdict", "claimant", "about",
               "period", "quantity_value", "quantity_unit", "supports", "partly_supports",
               "partly_refutes", "refutes", "context", "independent_sources", "last_review",
               "due_for_review", "tags", "url")


def claims_csv(checked: Checked, g: KBGraph) -> bytes:
    """One row per claim, sorted by id; lists are joined with "; "."""
    return claims_csv_lines(checked, g)[0]


CsvLines = dict[str, tuple[str, str]]  # claim id → (its graph's block key, its row as CSV)


def claims_csv_lines(checked: Checked, g: KBGraph, known: CsvLines | None = None
                     ) -> tuple[bytes, CsvLines]:
    """The claims' CSV, and each row under its claim's graph block key (KBGraph.block_keys: a
    digest of the claim's file, assessment and independent sources, all a row shows). Rows
    of `known` (from an earlier build, under the same code and kb.toml: kb.csvmemo) whose key
    is the same are taken as they are: 0.1 s to write 10,000 rows, 0.01 s to reuse them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    out = [buf.getvalue()]
    block_keys, graph, known = g.block_keys, g.iris.graph, known or {}
    lines: CsvLines = {}
    for cid in sorted(checked.kb.claims):
        key = block_keys.get(graph("claim", cid))
        hit = known.get(cid) if key else None
        if hit is not None and hit[0] == key:
            out.append(hit[1])
            lines[cid] = hit
            continue
        c = checked.kb.claims[cid]
        a = g.assessments[cid]
        counts = dict(a.counts)
        buf.seek(0)
        buf.truncate()
        w.writerow([
            cid, c.claim, c.kind, a.status, a.derived, a.verdict or "",
            c.claimant.id if c.claimant else "", "; ".join(r.id for r in c.about),
            c.period or "",
            repr(c.quantity.value) if c.quantity else "", c.quantity.unit if c.quantity else "",
            *(counts.get(s, 0) for s in ("supports", "partly-supports", "partly-refutes",
                                          "refutes", "context")),
            g.network.independent_sources.get(cid, 0),
            a.last_review.isoformat() if a.last_review else "",
            "true" if a.due_for_review else "false", "; ".join(c.tags),
            g.iris.page("claim", cid),
        ])
        out.append(line := buf.getvalue())
        if key:
            lines[cid] = (key, line)
    return "".join(out).encode("utf-8"), lines


SUBJECT_KEY_SIZE = 16


def subject_key(subject: str) -> bytes:
    """What VoidStats keeps of a subject (its N-Triples term): the start of its BLAKE2b."""
    return hashlib.blake2b(subject.encode(), digest_size=SUBJECT_KEY_SIZE).digest()


@dataclass
class VoidStats:
    """What VoID counts, for some named graphs: kb.gzdumps keeps it a chunk of graphs at a
    time and adds the chunks up, so that an edit does not need a pass over every line. The
    figures are those of the union as long as no triple is in two graphs (tested): triples
    and partitions add up, and subjects are a set, since a source is a subject in its own
    graph and in the graphs of the claims citing it.

    The set holds each subject's `subject_key`, not its IRI: half the memory (1.2 million
    subjects at 100,000 claims took ~220 MB as text), and two subjects share a key with a
    chance of about n²/2¹²⁹, 2·10⁻²⁷ for those."""

    triples: int = 0
    subjects: set[bytes] = field(default_factory=set)
    properties: Counter[str] = field(default_factory=Counter)  # N-Triples IRI → triples
    classes: Counter[str] = field(default_factory=Counter)  # N-Triples IRI → rdf:type triples

    @classmethod
    def of(cls, runs: Iterable[bytes]) -> VoidStats:
        """Counted on the N-Triples lines of these blocks (kb.kbgraph.KBGraph.triples), a block at
        a time: parsing them into Python objects took 3 s at 10,000 claims."""
        return cls.of_lines(map(lines_of, runs))

    @classmethod
    def of_lines(cls, runs: Iterable[list[str]]) -> VoidStats:
        """Counted on these graphs' lines (a graph's, sorted, at a time)."""
        stats = cls()
        subjects = stats.subjects
        properties, classes = stats.properties, stats.classes
        for lines in runs:
            stats.triples += len(lines)
            last = ""
            for line in lines:
                s, p, o = line.split(" ", 2)
                if s != last:  # sorted: a subject's lines are adjacent
                    subjects.add(subject_key(s))
                    last = s
                properties[p] += 1
                if p == _TYPE and o[0] == "<":
                    classes[o] += 1
        return stats

    def add(self, other: VoidStats) -> None:
        self.triples += other.triples
        self.subjects |= other.subjects
        self.properties.update(other.properties)
        self.classes.update(other.classes)


def void(g: KBGraph, stats: VoidStats | None = None) -> bytes:
    """A VoID description of the dataset (Turtle): size, partitions, vocabularies, dumps.

    `stats`: of every named graph (kb.gzdumps adds them up from its cache); else counted."""
    if stats is None:
        stats = VoidStats.of(g.triples[name] for name in nonempty(g))
    return void_of(g.iris, setting(g, "name"), min(g.assessments, default=None), stats)


def void_of(iris: Iris, title: str | None, example: str | None, stats: VoidStats) -> bytes:
    """VoID from what it says of the dataset: kb.toml's name, the first claim (by id), and the
    counts (what kb.gzdumps's process has, without the graph)."""
    ds = node(iris.dataset)
    out: list[ox.Triple] = []

    def add(s: ox.NamedNode, p: ox.NamedNode, o: ox.NamedNode | ox.Literal) -> None:
        out.append(ox.Triple(s, p, o))

    def count(n: int) -> ox.Literal:
        return ox.Literal(str(n), datatype=node("http://www.w3.org/2001/XMLSchema#integer"))

    properties = Counter({rdfwrite.unescape(p[1:-1]): n for p, n in stats.properties.items()})
    classes = Counter({rdfwrite.unescape(c[1:-1]): n for c, n in stats.classes.items()})
    add(ds, RDF_TYPE, v_("Dataset"))
    add(ds, dcterms("title"), ox.Literal(title or "claimkb"))
    add(ds, v_("uriSpace"), ox.Literal(iris.base))
    add(ds, v_("triples"), count(stats.triples))
    add(ds, v_("distinctSubjects"), count(len(stats.subjects)))
    add(ds, v_("properties"), count(len(properties)))
    add(ds, v_("classes"), count(len(classes)))
    add(ds, dcterms("publisher"), node(iris.publisher))
    for fmt in SITE_DUMPS:
        add(ds, v_("dataDump"), node(iris.base + DUMP_FILES[fmt]))
    prefixes = iris.prefixes()
    for ns in sorted({v for k, v in prefixes.items() if k not in ("wd", "status")}):
        if any(p.startswith(ns) for p in properties) or any(c.startswith(ns) for c in classes):
            add(ds, v_("vocabulary"), node(ns))
    for cls, n in sorted(classes.items()):
        part = node(f"{iris.dataset}-class-{_local(cls, prefixes)}")
        add(ds, v_("classPartition"), part)
        add(part, v_("class"), node(cls))
        add(part, v_("entities"), count(n))
    if example is not None:
        add(ds, v_("exampleResource"), node(iris.claim(example)))
    return _sorted_prefixes(ox.serialize(sorted(out, key=str), format=ox.RdfFormat.TURTLE,
                                         prefixes=prefixes) or b"")


def _local(iri: str, prefixes: dict[str, str]) -> str:
    """A class's prefixed name as a fragment: schema:Dataset → schema-Dataset."""
    for name, ns in sorted(prefixes.items()):
        if iri.startswith(ns):
            iri = f"{name}-{iri[len(ns):]}"
            break
    return "".join(ch if ch.isalnum() else "-" for ch in iri)


def setting(g: KBGraph, prop: str) -> str | None:
    """A plain literal about the dataset in the settings graph (read from its lines: asking the
    store would load 700,000 quads for one value)."""
    head = f"<{g.iris.dataset}> <{SCHEMA_IRI}{prop}> \""
    for line in lines_of(g.triples.get(g.iris.settings_graph, b"")):
        if line.startswith(head) and line.endswith('"'):
            return rdfwrite.unescape(line[len(head):-1])
    return None


def export(root: Path, fmt: str) -> bytes:
    """`kb export`: check the knowledge base in `root`, build its graph and dump it."""
    from kb.graph import load_graph

    _checked, g = load_graph(root)
    return dump(g, fmt)
