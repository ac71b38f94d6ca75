"""The endpoint against the W3C SPARQL 1.1 Protocol tests (w3c/rdf-tests, sparql/sparql11/protocol).

Each test mirrors one entry of the suite's manifest: same request form, same expected status,
with this knowledge base's graphs standing in for the suite's data1.rdf … data3.rdf (the
endpoint serves only its own graphs). The update tests become "refused": the endpoint is
read-only, so every update form must answer 400. A real server on 127.0.0.1, a random port.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pyoxigraph as ox
import pytest

from kb.endpoint import Endpoint, EndpointOptions, make_endpoint, serve_in_background

G = "http://kb.test/graph/"
DATA = f"""
@prefix ex: <http://kb.test/> .
<{G}data1> {{ <{G}data1> a ex:Document . ex:alice ex:name "Alice" . }}
<{G}data2> {{ <{G}data2> a ex:Document . ex:bob ex:name "Bob"@en . }}
<{G}data3> {{ <{G}data3> a ex:Document . ex:carol ex:age 42 . }}
"""


def store() -> ox.Store:
    s = ox.Store()
    s.load(DATA.encode(), format=ox.RdfFormat.TRIG)
    return s


@dataclass
class Server:
    endpoint: Endpoint
    port: int

    def request(self, method: str, path: str = "/sparql", body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = body.encode() if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get(self, params: list[tuple[str, str]], accept: str | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", "/sparql?" + urllib.parse.urlencode(params),
                            headers={"Accept": accept} if accept else {})


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    endpoint = make_endpoint(store, EndpointOptions(time_limit=5))
    httpd = serve_in_background(endpoint)
    yield Server(endpoint, httpd.server_port)
    httpd.shutdown()
    httpd.server_close()
    endpoint.close()


def boolean(body: bytes) -> bool:
    value = json.loads(body)["boolean"]
    assert isinstance(value, bool)
    return value


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# --- positive tests ----------------------------------------------------------------------------

def test_query_get(server: Server) -> None:
    status, headers, body = server.get([("query", "ASK {}"), ("default-graph-uri", G + "data1")])
    assert status == 200
    assert headers["content-type"].startswith("application/sparql-results+json")
    assert boolean(body) is True


def test_query_post_form(server: Server) -> None:
    status, _, body = server.request(
        "POST", f"/sparql?default-graph-uri={q(G + 'data1')}", "query=ASK%20%7B%7D",
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, boolean(body)) == (200, True)


def test_query_post_direct(server: Server) -> None:
    status, _, body = server.request(
        "POST", "/sparql", f"ASK {{ <{G}data1> a ?type }}",
        {"Content-Type": "application/sparql-query"})
    assert (status, boolean(body)) == (200, True)


def ask_with_dataset(server: Server, method: str, ask: str, graphs: str
                     ) -> tuple[int, dict[str, str], bytes]:
    """The query by GET, or POSTed directly with the dataset in the URL, as the W3C tests do."""
    if method == "GET":
        return server.request("GET", f"/sparql?query={q(ask)}&{graphs}")
    return server.request("POST", f"/sparql?{graphs}", ask,
                          {"Content-Type": "application/sparql-query"})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_dataset_default_graphs(server: Server, method: str) -> None:
    ask = f"ASK {{ <{G}data1> a ?type . <{G}data2> a ?type . }}"
    graphs = f"default-graph-uri={q(G + 'data1')}&default-graph-uri={q(G + 'data2')}"
    status, _, body = ask_with_dataset(server, method, ask, graphs)
    assert (status, boolean(body)) == (200, True)
    # The dataset really is the one asked for: data3 is not in it.
    status, _, body = server.request(
        "GET", f"/sparql?query={q(f'ASK {{ <{G}data3> a ?type }}')}&{graphs}")
    assert (status, boolean(body)) == (200, False)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_dataset_named_graphs(server: Server, method: str) -> None:
    ask = (f"ASK {{ GRAPH ?g1 {{ <{G}data1> a ?type }} GRAPH ?g2 {{ <{G}data2> a ?type }} }}")
    graphs = f"named-graph-uri={q(G + 'data1')}&named-graph-uri={q(G + 'data2')}"
    status, _, body = ask_with_dataset(server, method, ask, graphs)
    assert (status, boolean(body)) == (200, True)


def test_query_dataset_full(server: Server) -> None:
    ask = (f"ASK {{ <{G}data3> a ?type GRAPH ?g1 {{ <{G}data1> a ?type }} "
           f"GRAPH ?g2 {{ <{G}data2> a ?type }} }}")
    path = (f"/sparql?default-graph-uri={q(G + 'data3')}&named-graph-uri={q(G + 'data1')}"
            f"&named-graph-uri={q(G + 'data2')}")
    status, _, body = server.request("POST", path, ask,
                                     {"Content-Type": "application/sparql-query"})
    assert (status, boolean(body)) == (200, True)


def test_query_multiple_dataset(server: Server) -> None:
    """FROM in the query, named graphs in the protocol: the protocol's dataset wins."""
    ask = (f"ASK FROM <{G}data3> {{ GRAPH ?g1 {{ <{G}data1> a ?type }} "
           f"GRAPH ?g2 {{ <{G}data2> a ?type }} }}")
    path = f"/sparql?named-graph-uri={q(G + 'data1')}&named-graph-uri={q(G + 'data2')}"
    status, _, body = server.request("POST", path, ask,
                                     {"Content-Type": "application/sparql-query"})
    assert (status, boolean(body)) == (200, True)


def test_query_from_own_graph(server: Server) -> None:
    status, _, body = server.get([("query", f"ASK FROM <{G}data1> {{ <{G}data2> a ?t }}")])
    assert (status, boolean(body)) == (200, False)
    status, _, body = server.get([("query", "ASK { ?s ?p ?o }")])  # default graph: the union
    assert (status, boolean(body)) == (200, True)


@pytest.mark.parametrize(("query", "types"), [
    ("SELECT (1 AS ?value) {}", ("application/sparql-results+json",)),
    ("ASK {}", ("application/sparql-results+json",)),
    ("DESCRIBE <http://example.org/>", ("text/turtle",)),
    ("CONSTRUCT { <http://s> <http://p> 1 } WHERE {}", ("text/turtle",)),
])
def test_query_content_type(server: Server, query: str, types: tuple[str, ...]) -> None:
    status, headers, _ = server.request("POST", "/sparql", query,
                                        {"Content-Type": "application/sparql-query"})
    assert status == 200
    assert headers["content-type"].split(";")[0] in types


@pytest.mark.parametrize(("accept", "expected", "marker"), [
    ("application/sparql-results+json", "application/sparql-results+json", b'"bindings"'),
    ("application/sparql-results+xml", "application/sparql-results+xml", b"<results>"),
    ("text/csv", "text/csv", b"name\r\n"),
    ("text/tab-separated-values", "text/tab-separated-values", b"?name\n"),
    ("text/csv;q=0.5, text/tab-separated-values;q=0.9", "text/tab-separated-values", b"?name"),
    ("application/*", "application/sparql-results+json", b'"bindings"'),
])
def test_select_negotiation(server: Server, accept: str, expected: str, marker: bytes) -> None:
    query = "PREFIX ex: <http://kb.test/> SELECT ?name WHERE { ?p ex:name ?name } ORDER BY ?name"
    status, headers, body = server.get([("query", query)], accept)
    assert status == 200
    assert headers["content-type"].split(";")[0] == expected
    assert marker in body
    assert b"Alice" in body and b"Bob" in body


@pytest.mark.parametrize(("accept", "fmt"), [
    ("text/turtle", ox.RdfFormat.TURTLE), ("application/n-triples", ox.RdfFormat.N_TRIPLES),
    ("application/ld+json", ox.RdfFormat.JSON_LD), ("application/rdf+xml", ox.RdfFormat.RDF_XML),
])
def test_construct_negotiation(server: Server, accept: str, fmt: ox.RdfFormat) -> None:
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}data3> {{ ?s ?p ?o }} }}"
    status, headers, body = server.get([("query", query)], accept)
    assert status == 200
    assert headers["content-type"].split(";")[0] == accept
    got = {str(t) for t in ox.parse(body, format=fmt)}
    expected = {str(quad.triple) for quad in store().quads_for_pattern(
        None, None, None, ox.NamedNode(G + "data3"))}
    assert got == expected


def test_not_acceptable(server: Server) -> None:
    status, _, body = server.get([("query", "SELECT * {}")], "image/png")
    assert status == 406 and b"available" in body
    status, _, _ = server.get([("query", "ASK {}")], "text/csv")
    assert status == 406
    status, _, _ = server.get([("query", "CONSTRUCT WHERE { ?s ?p ?o }")],
                              "application/sparql-results+json")
    assert status == 406


def test_unknown_parameters_ignored(server: Server) -> None:
    status, _, body = server.get([("query", "ASK {}"), ("format", "json"), ("output", "json"),
                                  ("results", "json"), ("timeout", "1")])
    assert (status, boolean(body)) == (200, True)


def test_service_description(server: Server) -> None:
    status, headers, body = server.request("GET", "/sparql", headers={"Accept": "text/turtle"})
    assert status == 200 and headers["content-type"].startswith("text/turtle")
    sd = ox.Store()
    sd.load(body, format=ox.RdfFormat.TURTLE)
    endpoint = f"http://127.0.0.1:{server.port}/sparql"
    assert sd.query(f"""PREFIX sd: <http://www.w3.org/ns/sparql-service-description#>
        ASK {{ <{endpoint}> a sd:Service ; sd:endpoint <{endpoint}> ;
               sd:supportedLanguage sd:SPARQL11Query ;
               sd:defaultDataset [ sd:namedGraph [ sd:name <{G}data2> ] ] }}""")


def test_form_page_for_browsers(server: Server) -> None:
    status, headers, body = server.request("GET", "/sparql", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<textarea id="query" name="query"' in body


def test_cors_and_preflight(server: Server) -> None:
    status, headers, _ = server.request("OPTIONS", "/sparql", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()
    status, headers, _ = server.get([("query", "ASK {}")])
    assert headers["access-control-allow-origin"] == "*"


def test_head(server: Server) -> None:
    status, headers, body = server.request("HEAD", "/sparql?query=" + q("ASK {}"))
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


# --- negative tests ----------------------------------------------------------------------------

def assert_refused(result: tuple[int, dict[str, str], bytes], status: int = 400) -> None:
    code, headers, body = result
    assert code == status, body
    assert headers["content-type"].startswith("text/plain")
    assert body and b"Traceback" not in body and len(body) < 1000


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_bad_query_method(server: Server, method: str) -> None:
    result = server.request(method, "/sparql?query=ASK%20%7B%7D")
    assert_refused(result, 405)
    assert "GET" in result[1]["allow"]


def test_bad_multiple_queries(server: Server) -> None:
    assert_refused(server.request("GET", "/sparql?query=ASK%20%7B%7D&query=SELECT%20%2A%20%7B%7D"))
    assert_refused(server.request("POST", "/sparql?query=ASK%20%7B%7D", "ASK {}",
                                  {"Content-Type": "application/sparql-query"}))


def test_bad_query_wrong_media_type(server: Server) -> None:
    assert_refused(server.request("POST", "/sparql", "ASK {}", {"Content-Type": "text/plain"}))


def test_bad_query_missing_form_type(server: Server) -> None:
    assert_refused(server.request("POST", "/sparql", "query=ASK%20%7B%7D"))


def test_bad_query_missing_direct_type(server: Server) -> None:
    assert_refused(server.request("POST", "/sparql", "ASK {}"))


def test_bad_query_non_utf8(server: Server) -> None:
    assert_refused(server.request("POST", "/sparql", "ASK {}".encode("utf-16"),
                                  {"Content-Type": "application/sparql-query; charset=UTF-16"}))
    assert_refused(server.request("POST", "/sparql", "ASK { ?s ?p 'é' }".encode("latin-1"),
                                  {"Content-Type": "application/sparql-query"}))
    assert_refused(server.request("GET", "/sparql?query=ASK%20%7B%20%3Fs%20%3Fp%20%27%E9%27%7D"))


def test_bad_query_syntax(server: Server) -> None:
    result = server.request("GET", "/sparql?query=ASK%20%7B")
    assert_refused(result)
    assert b"malformed" in result[2]


def test_bad_update_get(server: Server) -> None:
    assert_refused(server.request(
        "GET", "/sparql?update=" + q("CLEAR ALL")))


@pytest.mark.parametrize(("body", "ctype"), [
    ("CLEAR ALL", "application/sparql-update"),
    ("update=CLEAR%20ALL", "application/x-www-form-urlencoded"),
    ("update=CLEAR%20ALL&update=CLEAR%20SILENT%20DEFAULT", "application/x-www-form-urlencoded"),
    ("CLEAR ALL", "application/sparql-query"),
    (f"INSERT DATA {{ <{G}x> <{G}p> 1 }}", "application/sparql-query"),
    (f"LOAD <http://127.0.0.1:9/x> INTO GRAPH <{G}data1>", "application/sparql-query"),
    ("query=" + q("DROP ALL"), "application/x-www-form-urlencoded"),
])
def test_updates_refused(server: Server, body: str, ctype: str) -> None:
    assert_refused(server.request("POST", "/sparql", body, {"Content-Type": ctype}))
    status, _, data = server.get([("query", f"ASK {{ <{G}data1> a ?t }}")])
    assert (status, boolean(data)) == (200, True)  # nothing was changed


def test_bad_update_post_without_query(server: Server) -> None:
    assert_refused(server.request("POST", "/sparql", "",
                                  {"Content-Type": "application/x-www-form-urlencoded"}))


@pytest.mark.parametrize("param", ["default-graph-uri", "named-graph-uri"])
def test_foreign_dataset_refused(server: Server, param: str) -> None:
    assert_refused(server.get([("query", "ASK {}"), (param, "http://127.0.0.1:9/x")]))
    assert_refused(server.get([("query", "ASK {}"), (param, "file:///etc/passwd")]))


def test_a_reload_after_close_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kb serve` ending closes the endpoint while a rebuild may still reload it: the data
    that reload made (its workers, its folder) is retired at once, not left running."""
    import kb.endpoint

    retired: list[object] = []
    retire = kb.endpoint._retire

    def retiring(data: object) -> None:
        retired.append(data)
        retire(data)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.endpoint, "_retire", retiring)
    endpoint = make_endpoint(store, EndpointOptions(time_limit=5))
    endpoint.close()
    assert len(retired) == 1
    endpoint.reload()
    assert len(retired) == 2 and retired[1] is not retired[0]
    assert endpoint._data is None and endpoint.graphs == frozenset()
