"""The endpoint is safe to expose: no query reaches the network, a runaway query is stopped at
its time limit while others are answered, and hostile requests get short 4xx answers."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from test_endpoint_protocol import G, Server, store

from kb.endpoint import EndpointOptions, make_endpoint, serve_in_background
from kb.workers import Job

CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { " + " ".join(
    f"?s{i} ?p{i} ?o{i} ." for i in range(14)) + " }"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    options = EndpointOptions(time_limit=2, max_rows=3, max_query_bytes=8192, workers=2,
                              max_response_bytes=4096)
    endpoint = make_endpoint(store, options)
    httpd = serve_in_background(endpoint)
    yield Server(endpoint, httpd.server_port)
    httpd.shutdown()
    httpd.server_close()
    endpoint.close()


class Listener:
    """A local TCP listener that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        time.sleep(0.5)  # let a late connection arrive before counting
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    spy = Listener()
    yield spy
    spy.close()


def _queries(port: int) -> list[str]:
    url = f"http://127.0.0.1:{port}/"
    return [
        f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?x ?y ?z OPTIONAL {{ SERVICE SILENT <{url}> {{ ?s ?p ?o }} }} }}",
        f"SELECT * WHERE {{ {{ SELECT * WHERE {{ SERVICE <{url}sub> {{ ?s ?p ?o }} }} }} }}",
        f"SELECT * FROM <{url}x> WHERE {{ ?s ?p ?o }}",
        f"SELECT * FROM NAMED <{url}x> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        "SELECT * FROM <file:///etc/passwd> WHERE { ?s ?p ?o }",
        f"ASK {{ \\u0053ERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"PREFIX e: <{url}> SELECT * WHERE {{ SERVICE e: {{ ?s ?p ?o }} }}",
        f"LOAD <{url}x>",
        f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    ]


def test_no_query_reaches_the_network(server: Server, listener: Listener) -> None:
    for query in _queries(listener.port):
        status, _, body = server.get([("query", query)])
        assert status == 400, (query, body)
        status, _, body = server.request("POST", "/sparql", query,
                                         {"Content-Type": "application/sparql-query"})
        assert status == 400, (query, body)
    listener.close()
    assert listener.connections == 0


def test_escapes_cannot_hide_a_service(server: Server, listener: Listener) -> None:
    """SPARQL expands \\u escapes before parsing; Oxigraph does so only inside strings, so
    `"\\u0022"` would read as one string to Oxigraph and as the end of one to rdflib. The
    endpoint expands once and gives both parsers the same text: here a long string with no
    SERVICE in it, which runs harmlessly."""
    url = f"http://127.0.0.1:{listener.port}/"
    query = (f'SELECT * WHERE {{ ?s ?p "\\u0022" . SERVICE <{url}> {{ ?a ?b ?c }} '
             '?s ?p "\\u0022" }')
    status, _, body = server.get([("query", query)])
    assert status == 200, body
    assert json.loads(body)["results"]["bindings"] == []
    listener.close()
    assert listener.connections == 0


def test_workers_have_no_network(server: Server, listener: Listener) -> None:
    """Defence in depth: even a SERVICE handed straight to a worker cannot connect out."""
    data = server.endpoint._data
    assert data is not None
    job = Job(f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/> {{ ?s ?p ?o }} }}",
              "SELECT", "application/sparql-results+json", None, None, 10, 10_000)
    answer = data.pool.run(job, 5, 5)
    assert answer.status != 200
    listener.close()
    assert listener.connections == 0


def test_runaway_query_is_stopped_while_others_answer(server: Server) -> None:
    killed_before = server.endpoint.killed
    slow: dict[str, object] = {}

    def run_slow() -> None:
        started = time.monotonic()
        slow["result"] = server.get([("query", CROSS_JOIN)])
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    status, _, body = server.get([("query", f"ASK {{ <{G}data1> a ?t }}")])
    quick = time.monotonic() - started
    assert status == 200 and json.loads(body)["boolean"] is True
    assert quick < 1.0
    thread.join(20)
    status, _, body = slow["result"]  # type: ignore[misc]
    assert status == 503, body
    assert b"time limit" in body
    assert 1.9 < slow["seconds"] < 6  # type: ignore[operator]
    assert server.endpoint.killed == killed_before + 1
    # The pool recovers: two queries at once are both answered.
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(server.get(
        [("query", "ASK {}")])[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * 4


def test_row_cap_truncates_with_a_header(server: Server) -> None:
    status, headers, body = server.get([("query", "SELECT * WHERE { ?s ?p ?o }")])
    assert status == 200
    assert len(json.loads(body)["results"]["bindings"]) == 3
    assert "x-result-truncated" in headers
    status, headers, body = server.get([("query", "SELECT * WHERE { ?s ?p ?o } LIMIT 2")])
    assert len(json.loads(body)["results"]["bindings"]) == 2
    assert "x-result-truncated" not in headers


def test_row_cap_applies_to_graphs(server: Server) -> None:
    status, headers, body = server.get([("query", "CONSTRUCT WHERE { ?s ?p ?o }")],
                                       "application/n-triples")
    assert status == 200 and "x-result-truncated" in headers
    assert len(body.decode().splitlines()) == 3


def test_byte_cap_cuts_at_a_row_boundary(server: Server) -> None:
    wide = "CONCAT(" + ", ".join(['"' + "x" * 100 + '"'] * 30) + ")"  # 3,000 characters
    query = f"SELECT ?s ({wide} AS ?wide) WHERE {{ ?s ?p ?o }} LIMIT 2"
    for accept in ("application/sparql-results+json", "text/csv"):
        status, headers, body = server.get([("query", query)], accept)
        assert status == 200 and "x-result-truncated" in headers
        assert len(body) <= 4096
        if accept == "text/csv":
            assert len(body.decode().splitlines()) == 2  # header + the one row that fits
        else:
            assert len(json.loads(body)["results"]["bindings"]) == 1


def test_memory_cap_stops_a_query_and_the_worker_is_replaced() -> None:
    endpoint = make_endpoint(store, EndpointOptions(time_limit=20, workers=1,
                                                    worker_memory_mb=400))
    httpd = serve_in_background(endpoint)
    server = Server(endpoint, httpd.server_port)
    try:
        hog = "SELECT * WHERE { " + " ".join(f"?s{i} ?p{i} ?o{i} ." for i in range(8)) + \
            " } ORDER BY ?s0 ?o7"
        started = time.monotonic()
        status, _, body = server.get([("query", hog)])
        assert status == 503 and b"memory" in body
        assert time.monotonic() - started < 15
        status, _, body = server.get([("query", "ASK {}")])  # waits for the new worker
        assert status == 200 and json.loads(body)["boolean"] is True
    finally:
        httpd.shutdown()
        httpd.server_close()
        endpoint.close()


@pytest.mark.parametrize("accept", [
    "a" * 20_000,
    ",".join(["text/csv;q=0.1"] * 5000),
    "*/*;q=NaN",
    "*/*;q=1e999, text/csv;q=-1",
    "text/csv;q=0, */*;q=0",
    ";;;,,,/;q=;=;",
    "application/sparql-results+json;q=0.5;level=1;" + "x=y;" * 500,
    "\u00e9\u00e8/\u00e0",
])
def test_hostile_accept_headers(server: Server, accept: str) -> None:
    status, headers, body = server.request(
        "GET", "/sparql?query=" + urllib.parse.quote("SELECT * WHERE { ?s ?p ?o } LIMIT 1"),
        headers={"Accept": accept.encode("utf-8").decode("latin-1")})
    assert status in (200, 406, 431), body
    assert b"Traceback" not in body
    if status == 200:
        assert headers["content-type"].split(";")[0] in (
            "application/sparql-results+json", "application/sparql-results+xml", "text/csv",
            "text/tab-separated-values")


def test_oversized_queries(server: Server) -> None:
    big = "ASK { " + "?s ?p ?o . " * 1000 + "}"  # over 8192 bytes
    status, _, body = server.request("POST", "/sparql", big,
                                     {"Content-Type": "application/sparql-query"})
    assert status == 413, body
    status, _, _ = server.request("POST", "/sparql", "query=" + urllib.parse.quote(big),
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413
    status, _, _ = server.get([("query", big)])
    assert status == 413
    # A body announced as huge is refused before it is read.
    status, _, _ = server.request("POST", "/sparql", b"ASK {}", {
        "Content-Type": "application/sparql-query", "Content-Length": str(10**9)})
    assert status == 413


@pytest.mark.parametrize("query", [
    "SELECT * WHERE { ?s ?p ?o FILTER(" + "(" * 25 + "1" + ")" * 25 + ") }",
    "SELECT * WHERE " + "{ " * 30 + "?s ?p ?o" + " }" * 30,
    "SELECT * WHERE { " + " . ".join(f"?s{i} <http://p> ?o{i}" for i in range(100)) + " }",
    "SELECT * WHERE { ?s ?p " + "[ <http://p> " * 30 + "?o" + " ]" * 30 + " }",
])
def test_deep_nesting_is_refused(server: Server, query: str) -> None:
    status, _, body = server.get([("query", query)])
    assert status == 400, body


def test_moderate_nesting_is_answered(server: Server) -> None:
    query = "ASK { ?s ?p ?o FILTER(" + "(" * 15 + "true" + ")" * 15 + ") }"
    status, _, body = server.get([("query", query)])
    assert status == 200 and json.loads(body)["boolean"] is True
