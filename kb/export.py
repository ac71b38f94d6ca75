"""Dumps of the graph: the whole of it, one record's named graph, claims as CSV, and VoID.

Every dump is written from the sorted N-Triples lines the graph holds (kb.graph.KBGraph.triples):
N-Quads and N-Triples are those lines, Turtle, TriG and JSON-LD regroup them (kb.rdfwrite), so
the same files give byte-identical output and no Python RDF objects are made on the way (going
through Oxigraph's parser and serialisers took 3–5 s a dump at 10,000 claims, docs/graph.md).
No blank nodes are made anywhere, so nothing depends on generated labels.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pyoxigraph as ox

from kb import rdfwrite
from kb.check import Checked
from kb.graph import KBGraph
from kb.namespaces import RDF_IRI, RDF_TYPE, SCHEMA_IRI, dcterms, node
from kb.namespaces import void as v_

FORMATS: dict[str, ox.RdfFormat] = {
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "nq": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "jsonld": ox.RdfFormat.JSON_LD,
}
DATASET_FORMATS = frozenset({"nq", "trig", "jsonld"})  # keep the named graphs
MEDIA_TYPES = {f: fmt.media_type for f, fmt in FORMATS.items()}
# Where the site publishes the dumps (relative to base_url); VoID names them.
DUMP_FILES = {f: f"data/kb.{f}" for f in FORMATS}
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
    """The whole graph in one format: ttl, nt (the union), nq, trig, jsonld (named graphs)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    prefixes = g.iris.prefixes()
    if fmt == "nq":
        return g.nquads()
    if fmt == "nt":
        return g.ntriples()
    if fmt == "ttl":
        return rdfwrite.turtle(g.union, prefixes)
    if fmt == "trig":
        return rdfwrite.trig(_nonempty(g), prefixes)
    return rdfwrite.jsonld_dataset(_nonempty(g), prefixes)


def _nonempty(g: KBGraph) -> dict[str, list[str]]:
    """The named graphs in IRI order, as N-Quads lists them (an empty graph has no quad)."""
    return {name: g.triples[name] for name in sorted(g.triples) if g.triples[name]}


def dump_and_records(g: KBGraph, fmt: str, claim_ids: Iterable[str],
                     memo: rdfwrite.Memo | None = None) -> tuple[bytes, dict[str, bytes]]:
    """The trig or jsonld dump, and these claims' named graphs alone as ttl or jsonld (the
    same bytes as record_dump gives): made together, each graph is written once. `memo`:
    blocks of earlier dumps with the same prefixes (kb.rdfwrite.Memo), updated."""
    wanted = {g.iris.graph("claim", cid): cid for cid in claim_ids}
    prefixes = g.iris.prefixes()
    if fmt == "trig":
        data, alone = rdfwrite.trig_and_records(_nonempty(g), prefixes, wanted, memo)
    elif fmt == "jsonld":
        data, alone = rdfwrite.jsonld_dataset_and_records(_nonempty(g), prefixes, wanted, memo)
    else:
        raise ValueError(f"records come with the trig or jsonld dump, not {fmt!r}")
    records = {wanted[graph]: text for graph, text in alone.items()}
    for cid in wanted.values():  # an empty graph is in no dump; its record still is
        if cid not in records:
            records[cid] = record_dump(g, "claim", cid, "ttl" if fmt == "trig" else fmt)
    return data, records


def record_dump(g: KBGraph, kind: str, id_: str, fmt: str) -> bytes:
    """One record's named graph as Turtle, N-Triples or JSON-LD (for its page's downloads)."""
    if fmt not in ("ttl", "jsonld", "nt"):
        raise ValueError(f"a record is dumped as ttl, nt or jsonld, not {fmt!r}")
    if fmt == "nt":
        return g.graph_nquads(g.iris.graph(kind, id_))
    lines = g.triples.get(g.iris.graph(kind, id_), [])
    write = rdfwrite.turtle if fmt == "ttl" else rdfwrite.jsonld
    return write(lines, g.iris.prefixes())


CSV_COLUMNS = ("id", "claim", "kind", "status", "derived_status", "verdict", "claimant", "about",
               "period", "quantity_value", "quantity_unit", "supports", "partly_supports",
               "partly_refutes", "refutes", "context", "independent_sources", "last_review",
               "due_for_review", "tags", "url")


def claims_csv(checked: Checked, g: KBGraph) -> bytes:
    """One row per claim, sorted by id; lists are joined with "; "."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for cid in sorted(checked.kb.claims):
        c = checked.kb.claims[cid]
        a = g.assessments[cid]
        counts = dict(a.counts)
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
    return buf.getvalue().encode("utf-8")


def void(g: KBGraph) -> bytes:
    """A VoID description of the dataset (Turtle): size, partitions, vocabularies, dumps."""
    ds = node(g.iris.dataset)
    out: list[ox.Triple] = []

    def add(s: ox.NamedNode, p: ox.NamedNode, o: ox.NamedNode | ox.Literal) -> None:
        out.append(ox.Triple(s, p, o))

    def count(n: int) -> ox.Literal:
        return ox.Literal(str(n), datatype=node("http://www.w3.org/2001/XMLSchema#integer"))

    # counted on the N-Triples lines: parsing them into Python objects took 3 s at 10,000 claims
    lines = g.union
    subjects = 0
    properties: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    last = ""
    for line in lines:
        s, p, o = line.split(" ", 2)
        if s != last:  # sorted: a subject's lines are adjacent
            subjects, last = subjects + 1, s
        properties[p] += 1
        if p == _TYPE and o[0] == "<":
            classes[o] += 1
    properties = Counter({rdfwrite.unescape(p[1:-1]): n for p, n in properties.items()})
    classes = Counter({rdfwrite.unescape(c[1:-1]): n for c, n in classes.items()})
    add(ds, RDF_TYPE, v_("Dataset"))
    add(ds, dcterms("title"), ox.Literal(_setting(g, "name") or "claimkb"))
    add(ds, v_("uriSpace"), ox.Literal(g.iris.base))
    add(ds, v_("triples"), count(len(lines)))
    add(ds, v_("distinctSubjects"), count(subjects))
    add(ds, v_("properties"), count(len(properties)))
    add(ds, v_("classes"), count(len(classes)))
    add(ds, dcterms("publisher"), node(g.iris.publisher))
    for fmt in ("ttl", "nt", "trig", "jsonld"):
        add(ds, v_("dataDump"), node(g.iris.base + DUMP_FILES[fmt]))
    for ns in sorted({v for k, v in g.iris.prefixes().items() if k not in ("wd", "status")}):
        if any(p.startswith(ns) for p in properties) or any(c.startswith(ns) for c in classes):
            add(ds, v_("vocabulary"), node(ns))
    for cls, n in sorted(classes.items()):
        part = node(f"{g.iris.dataset}-class-{_local(cls, g.iris.prefixes())}")
        add(ds, v_("classPartition"), part)
        add(part, v_("class"), node(cls))
        add(part, v_("entities"), count(n))
    claims = sorted(g.assessments)
    if claims:
        add(ds, v_("exampleResource"), node(g.iris.claim(claims[0])))
    return _sorted_prefixes(ox.serialize(sorted(out, key=str), format=ox.RdfFormat.TURTLE,
                                         prefixes=g.iris.prefixes()) or b"")


def _local(iri: str, prefixes: dict[str, str]) -> str:
    """A class's prefixed name as a fragment: schema:Dataset → schema-Dataset."""
    for name, ns in sorted(prefixes.items()):
        if iri.startswith(ns):
            iri = f"{name}-{iri[len(ns):]}"
            break
    return "".join(ch if ch.isalnum() else "-" for ch in iri)


def _setting(g: KBGraph, prop: str) -> str | None:
    """A plain literal about the dataset in the settings graph (read from its lines: asking the
    store would load 700,000 quads for one value)."""
    head = f"<{g.iris.dataset}> <{SCHEMA_IRI}{prop}> \""
    for line in g.triples.get(g.iris.settings_graph, []):
        if line.startswith(head) and line.endswith('"'):
            return rdfwrite.unescape(line[len(head):-1])
    return None


def export(root: Path, fmt: str) -> bytes:
    """`kb export`: check the knowledge base in `root`, build its graph and dump it."""
    from kb.graph import load_graph

    _checked, g = load_graph(root)
    return dump(g, fmt)
