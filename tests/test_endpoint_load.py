"""A bounded load test on loopback: 2,000 requests from 20 concurrent clients, a mix of query
forms and result formats; every request must succeed. Prints requests/s and p50/p99 latency
(the figures quoted in docs/endpoint.md)."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from test_endpoint_protocol import G, store

from kb.endpoint import EndpointOptions, make_endpoint, serve_in_background

REQUESTS, CLIENTS = 2000, 20
MIX = [
    ("PREFIX ex: <http://kb.test/> SELECT ?who ?name WHERE { ?who ex:name ?name } ORDER BY ?name",
     "application/sparql-results+json"),
    ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "text/csv"),
    (f"ASK {{ <{G}data1> a ?t }}", "application/sparql-results+xml"),
    (f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}data2> {{ ?s ?p ?o }} }}", "text/turtle"),
    ("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
     "text/tab-separated-values"),
]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    endpoint = make_endpoint(store, EndpointOptions(time_limit=10))
    httpd = serve_in_background(endpoint)
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()
    endpoint.close()


def test_load(port: int) -> None:
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(REQUESTS))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            query, accept = MIX[n % len(MIX)]
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/sparql?" + urllib.parse.urlencode({"query": query}),
                             headers={"Accept": accept})
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                ok = resp.status == 200 and resp.getheader("Content-Type", "").startswith(
                    accept) and body
                if not ok:
                    raise RuntimeError(f"{resp.status} {body[:200]!r}")
            except Exception as exc:
                with lock:
                    failures.append(f"{query[:40]}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(latencies) == REQUESTS
    cuts = statistics.quantiles(latencies, n=100)
    print(f"\nload: {REQUESTS} requests, {CLIENTS} clients, {elapsed:.1f} s, "
          f"{REQUESTS / elapsed:.0f} requests/s, p50 {cuts[49] * 1000:.1f} ms, "
          f"p99 {cuts[98] * 1000:.1f} ms")
