"""kb.rdfwrite: Turtle, TriG and JSON-LD from N-Triples lines read back as the same graph, by
rdflib and by pyoxigraph, whatever the literals and IRIs hold."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest
from rdf_compare import plain
from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.term import Node

from kb import rdfwrite
from kb.namespaces import STANDARD_PREFIXES, nt_iri, nt_literal

EX = "http://example.org/"
PREFIXES = {**STANDARD_PREFIXES, "kb": "https://kb.example.org/vocab#",
            "status": "https://kb.example.org/status/"}
S = nt_iri(EX + "claims/x#claim")
P = nt_iri("https://schema.org/text")
TYPE = nt_iri("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
XSD_NS = "http://www.w3.org/2001/XMLSchema#"

TRICKY_TEXTS = [
    'She said "no", then \\ left',
    "two\nlines\r\nand\ttabs",
    "bell \x07 nul \x00 delete \x7f form \x0c backspace \x08",
    "Владимир Милов, 習近平, emoji 😀, nbsp\u00a0, line sep\u2028",
    "",
    " leading and trailing ",
    "ends with a quote\"",
    "ends with a backslash\\",
    "looks like a prefix: schema:text <https://schema.org/text> .",
    '{"@id": "not json-ld"}',
]


def _lines() -> list[str]:
    lines = [f"{S} {P} {nt_literal(t)}" for t in TRICKY_TEXTS]
    lines += [
        f"{S} {TYPE} {nt_iri('https://schema.org/Claim')}",
        f"{S} {TYPE} {nt_iri('https://kb.example.org/vocab#Evidence')}",
        f"{S} {TYPE} {nt_literal('a literal type')}",  # valid RDF, if odd
        f"{S} {TYPE} _:t1",
        f"{S} {nt_iri('https://schema.org/name')} {nt_literal('Trade', lang='en-GB')}",
        f"{S} {nt_iri('https://schema.org/name')} {nt_literal('Handel', lang='de')}",
        f"{S} {nt_iri('https://schema.org/value')} {nt_literal('2.45E11', XSD_NS + 'double')}",
        f"{S} {nt_iri('https://schema.org/value')} {nt_literal('5', XSD_NS + 'integer')}",
        f"{S} {nt_iri('https://schema.org/date')} {nt_literal('2024', XSD_NS + 'gYear')}",
        f"{S} {nt_iri('https://schema.org/x')} {nt_literal('odd', EX + 'type#with/slash')}",
        f"{S} {nt_iri('https://schema.org/x')} {nt_literal('q', EX + 'dt%20x')}",
        # IRIs: fragments, slashes, percent-escapes, unsafe local names, no local name at all
        f"{S} {nt_iri('https://kb.example.org/vocab#status')} "
        f"{nt_iri('https://kb.example.org/status/partly-supported')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri('https://kb.example.org/status/')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri(EX + 'a/b#c/d')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri(EX + 'a%20b?q=1&r=(2)')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri('https://schema.org/a.b')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri('https://schema.org/1st')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} "
        f"{nt_iri('https://schema.org/has space')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri('http://www.wikidata.org/entity/Q42')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri(EX + 'café/Ünïcode')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {nt_iri('urn:isbn:0451450523')}",
        f"{S} {nt_iri('https://kb.example.org/vocab#see')} {TYPE}",  # rdf:type as an object
        f"{S} {nt_iri(EX + 'p#with-odd.local')} _:b1",
        # escapes that N-Triples has and JSON lacks, and an IRI with a UCHAR
        f'{S} {P} "smile \\U0001F600 and \\\'single\\\'"',
        f"{S} {P} {nt_iri(EX + 'caf')[:-1]}\\u00E9>",
        f'_:b1 {P} "a blank node"',
        f"_:b1 {nt_iri(EX + 'next')} _:b2",
        f"{nt_iri(EX + 'claims/y#claim')} {P} {nt_literal('another subject')}",
    ]
    return sorted(set(lines))


def _rdflib_term(t: object) -> Node:
    if isinstance(t, ox.NamedNode):
        return URIRef(t.value)
    if isinstance(t, ox.BlankNode):
        return BNode(t.value)
    assert isinstance(t, ox.Literal)
    if t.language:
        return Literal(t.value, lang=t.language)
    dt = t.datatype.value
    return Literal(t.value, datatype=None if dt == XSD_NS + "string" else URIRef(dt))


def _by_oxigraph(data: bytes, fmt: ox.RdfFormat) -> Graph:
    out = Graph()
    for q in ox.parse(data, format=fmt):
        out.add((_rdflib_term(q.subject), _rdflib_term(q.predicate), _rdflib_term(q.object)))
    return out


def _expected(lines: list[str]) -> Graph:
    return plain(Graph().parse(data="".join(f"{t} .\n" for t in lines), format="nt"))


WRITERS = {"ttl": (rdfwrite.turtle, "turtle", ox.RdfFormat.TURTLE),
           "jsonld": (rdfwrite.jsonld, "json-ld", ox.RdfFormat.JSON_LD)}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_graph_round_trips_through_rdflib_and_oxigraph(fmt: str) -> None:
    write, rdflib_format, ox_format = WRITERS[fmt]
    lines = _lines()
    data = write(lines, PREFIXES)
    expected = _expected(lines)
    assert len(expected) == len(lines)
    by_rdflib = plain(Graph().parse(data=data.decode(), format=rdflib_format))
    assert len(by_rdflib) == len(expected) and isomorphic(by_rdflib, expected)
    by_oxigraph = plain(_by_oxigraph(data, ox_format))
    assert len(by_oxigraph) == len(expected) and isomorphic(by_oxigraph, expected)


def test_turtle_is_compact_where_it_is_safe() -> None:
    text = rdfwrite.turtle(_lines(), PREFIXES).decode()
    assert text.startswith("@prefix cito: <http://purl.org/spar/cito/> .\n")
    assert '\ta "a literal type", kb:Evidence, schema:Claim, _:t1 ;' in text  # `a`, `,`
    assert "kb:status status:partly-supported" in text
    assert '"5"^^xsd:integer' in text and '"2024"^^xsd:gYear' in text
    assert "wd:Q42" in text
    # not a safe local name: written in full
    assert "<https://schema.org/a.b>" in text and "<https://schema.org/1st>" in text
    assert "<https://kb.example.org/status/>" in text
    # rdf:type as an object is an IRI, never `a`
    assert ", rdf:type, wd:Q42, " in text and ", a," not in text
    assert text.count(f"{S} ") == 1  # one statement for the subject


def test_jsonld_is_compacted_against_the_prefixes() -> None:
    doc = json.loads(rdfwrite.jsonld(_lines(), PREFIXES))
    assert doc["@context"]["schema"] == "https://schema.org/"
    objects = [n for n in doc["@graph"] if n["@id"] == EX + "claims/x#claim"]
    # rdf:type objects of two kinds need two node objects, never one key twice
    assert len(objects) == 2 and "rdf:type" in objects[0] and "rdf:type" in objects[1]
    node = {k: v for n in objects for k, v in n.items()}
    assert node["@type"] == ["kb:Evidence", "schema:Claim"]
    assert {"@value": "5", "@type": "xsd:integer"} in node["schema:value"]
    assert {"@value": "Trade", "@language": "en-gb"} in node["schema:name"]
    assert 'She said "no", then \\ left' in node["schema:text"]


def test_trig_and_jsonld_keep_the_named_graphs() -> None:
    lines = _lines()
    graphs = {EX + "graph/a": lines[:20], EX + "graph/b": lines[15:]}  # shared triples too
    for data, rdflib_format, ox_format in (
            (rdfwrite.trig(graphs, PREFIXES), "trig", ox.RdfFormat.TRIG),
            (rdfwrite.jsonld_dataset(graphs, PREFIXES), "json-ld", ox.RdfFormat.JSON_LD)):
        ds = Dataset()
        ds.parse(data=data.decode(), format=rdflib_format)
        for name, own in graphs.items():
            got = plain(ds.graph(URIRef(name)))
            assert isomorphic(got, _expected(own)), (rdflib_format, name)
        quads = list(ox.parse(data, format=ox_format))
        assert {q.graph_name.value for q in quads} == set(graphs)
        for name, own in graphs.items():
            mine = Graph()
            for q in quads:
                if q.graph_name == ox.NamedNode(name):
                    mine.add((_rdflib_term(q.subject), _rdflib_term(q.predicate),
                              _rdflib_term(q.object)))
            assert isomorphic(plain(mine), _expected(own)), (ox_format, name)


def test_lines_out_of_order_still_give_the_graph() -> None:
    lines = _lines()
    shuffled = lines[1::2] + lines[::2]
    for fmt, (write, rdflib_format, ox_format) in WRITERS.items():
        data = write(shuffled, PREFIXES)
        assert isomorphic(plain(_by_oxigraph(data, ox_format)), _expected(lines)), fmt
        by_rdflib = plain(Graph().parse(data=data.decode(), format=rdflib_format))
        assert isomorphic(by_rdflib, _expected(lines)), fmt


def test_empty_input_is_a_valid_document() -> None:
    assert len(Graph().parse(data=rdfwrite.turtle([], PREFIXES).decode(), format="turtle")) == 0
    assert json.loads(rdfwrite.jsonld([], PREFIXES))["@graph"] == []
    assert json.loads(rdfwrite.jsonld_dataset({}, PREFIXES))["@graph"] == []


def test_an_iri_that_would_read_as_a_compact_iri_is_refused_in_jsonld() -> None:
    with pytest.raises(ValueError, match="unambiguously"):
        rdfwrite.jsonld([f"{S} {P} <kb:not-a-web-iri>"], PREFIXES)


def test_unescape() -> None:
    assert rdfwrite.unescape('a\\"b\\\\c\\nd\\u00E9\\U0001F600\\\'') == 'a"b\\c\ndé😀\''


def test_records_made_with_the_dumps_are_the_single_graph_documents() -> None:
    lines = _lines()
    graphs = {EX + "graph/a": lines[:20], EX + "graph/b": lines[15:], EX + "graph/c": []}
    wanted = {EX + "graph/a", EX + "graph/b", EX + "graph/c"}
    _, records = rdfwrite.trig_and_records(graphs, PREFIXES, wanted)
    assert records == {name: rdfwrite.turtle(own, PREFIXES) for name, own in graphs.items()}
    _, records = rdfwrite.jsonld_dataset_and_records(graphs, PREFIXES, {EX + "graph/b"})
    assert records == {EX + "graph/b": rdfwrite.jsonld(graphs[EX + "graph/b"], PREFIXES)}
    _, records = rdfwrite.jsonld_dataset_and_records({EX + "graph/c": []}, PREFIXES,
                                                     {EX + "graph/c"})
    assert records == {EX + "graph/c": rdfwrite.jsonld([], PREFIXES)}


def test_pieces_a_graph_at_a_time_make_the_same_documents() -> None:
    """A dump is its head, each graph's piece and its tail (what kb.gzdumps chunks)."""
    lines = _lines()
    graphs = {EX + "graph/a": lines[:20], EX + "graph/b": lines[15:]}
    pieces = rdfwrite.Pieces(PREFIXES)
    blocks = {name: pieces.block(own) for name, own in graphs.items()}
    trig = pieces.head + "".join(pieces.trig(name, blocks[name]) for name in graphs)
    assert trig.encode() == rdfwrite.trig(graphs, PREFIXES)
    for name, own in graphs.items():
        assert (pieces.head + pieces.turtle(blocks[name])).encode() == rdfwrite.turtle(
            own, PREFIXES)
        assert pieces.jsonld_record(pieces.nodes(own)) == rdfwrite.jsonld(own, PREFIXES)
    jsonld = pieces.jsonld_head + "".join(
        pieces.jsonld(name, pieces.nodes(own), n == 0)
        for n, (name, own) in enumerate(graphs.items())) + rdfwrite.JSONLD_TAIL
    assert jsonld.encode() == rdfwrite.jsonld_dataset(graphs, PREFIXES)
    assert len(json.loads(jsonld)["@graph"]) == 2
