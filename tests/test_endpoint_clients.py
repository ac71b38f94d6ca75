"""Real SPARQL clients against a running endpoint: SPARQLWrapper (JSON, XML), rdflib's
SPARQLStore, and a plain HTTP client for CSV and TSV."""

from __future__ import annotations

import csv
import io
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, POST, TURTLE, XML, SPARQLWrapper
from test_endpoint_protocol import G, store

from kb.endpoint import EndpointOptions, make_endpoint, serve_in_background
from kb.endpointpage import form_page

NAMES = "PREFIX ex: <http://kb.test/> SELECT ?who ?name WHERE { ?who ex:name ?name } ORDER BY ?name"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    endpoint = make_endpoint(store, EndpointOptions(time_limit=5))
    httpd = serve_in_background(endpoint)
    yield f"http://127.0.0.1:{httpd.server_port}/sparql"
    httpd.shutdown()
    httpd.server_close()
    endpoint.close()


def test_sparqlwrapper_json(url: str) -> None:
    client = SPARQLWrapper(url)
    client.setQuery(NAMES)
    client.setReturnFormat(JSON)
    result = client.query().convert()
    rows = [(b["who"]["value"], b["name"]["value"], b["name"].get("xml:lang"))
            for b in result["results"]["bindings"]]
    assert rows == [("http://kb.test/alice", "Alice", None), ("http://kb.test/bob", "Bob", "en")]


def test_sparqlwrapper_xml_post(url: str) -> None:
    client = SPARQLWrapper(url)
    client.setQuery(NAMES)
    client.setMethod(POST)
    client.setReturnFormat(XML)
    doc = client.query().convert()
    ns = "http://www.w3.org/2005/sparql-results#"
    names = [n.firstChild.data for n in doc.getElementsByTagNameNS(ns, "literal")]
    assert names == ["Alice", "Bob"]


def test_sparqlwrapper_construct_turtle(url: str) -> None:
    client = SPARQLWrapper(url)
    client.setQuery(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}data2> {{ ?s ?p ?o }} }}")
    client.setReturnFormat(TURTLE)
    got = Graph().parse(data=client.query().convert(), format="turtle")
    expected = Graph().parse(data="\n".join(
        f"{q.triple} ." for q in store().quads_for_pattern(None, None, None, ox.NamedNode(
            G + "data2"))), format="nt")
    assert len(got) == 2 and set(got) == set(expected)


def test_rdflib_sparqlstore(url: str) -> None:
    graph = Graph(store=SPARQLStore(url, returnFormat="json"))
    rows = sorted((str(r[0]), r[1]) for r in graph.query(NAMES))
    assert rows == [("http://kb.test/alice", Literal("Alice")),
                    ("http://kb.test/bob", Literal("Bob", lang="en"))]
    assert graph.query("ASK { ?s ?p ?o }").askAnswer is True
    assert (URIRef("http://kb.test/carol"), URIRef("http://kb.test/age"), Literal(42)) in graph


def _get(url: str, accept: str) -> tuple[str, str]:
    request = urllib.request.Request(url + "?" + urllib.parse.urlencode({"query": NAMES}),
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.headers["Content-Type"], resp.read().decode("utf-8")


def test_csv(url: str) -> None:
    ctype, text = _get(url, "text/csv")
    assert ctype.startswith("text/csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["who", "name"], ["http://kb.test/alice", "Alice"], ["http://kb.test/bob", "Bob"]]


def test_tsv(url: str) -> None:
    ctype, text = _get(url, "text/tab-separated-values")
    assert ctype.startswith("text/tab-separated-values")
    assert text.splitlines() == ["?who\t?name", '<http://kb.test/alice>\t"Alice"',
                                 '<http://kb.test/bob>\t"Bob"@en']


def test_form_page_escapes_examples() -> None:
    from dataclasses import dataclass

    @dataclass
    class Q:
        name: str = 'x"><script>alert(1)</script>'
        title: str = "<b>title</b>"
        description: str = "a & b"
        text: str = "SELECT * WHERE { ?s ?p '</pre><script>' }"

    page = form_page("http://127.0.0.1/sparql", "T <i>", [Q()]).decode()
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;" in page and "a &amp; b" in page
