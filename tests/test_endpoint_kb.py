"""The endpoint over a real knowledge base's graph (kb.graph), with its settings from the
environment, its prefixes and its named queries, as `kb serve` mounts it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from kb.endpoint import kb_options, make_endpoint, serve_in_background
from kb.graph import load_graph

QUERY = """\
# title: Claims and their status
# description: Every claim with its evidence status.
SELECT ?claim ?status WHERE { ?claim a schema:Claim ; kb:status/skos:notation ?status }
ORDER BY ?claim
"""


def test_endpoint_over_a_knowledge_base(make_kb, monkeypatch):  # type: ignore[no-untyped-def]
    root = make_kb({"queries/claims.rq": QUERY})
    monkeypatch.setenv("KB_SPARQL_TIME_LIMIT", "3")
    monkeypatch.setenv("KB_SPARQL_MAX_ROWS", "50")
    monkeypatch.setenv("KB_SPARQL_WORKERS", "many")  # ignored: keeps the default
    checked, graph = load_graph(root)
    assert not checked.report.errors
    options = kb_options(root, graph.iris.prefixes())
    assert (options.time_limit, options.max_rows, options.workers) == (3.0, 50, 2)
    assert [q.name for q in options.examples] == ["claims"]
    endpoint = make_endpoint(lambda: graph, options)
    server = serve_in_background(endpoint)
    try:
        url = f"http://127.0.0.1:{server.server_port}/sparql"
        assert endpoint.graphs == set(graph.named_graphs())
        # The named query, relying on the knowledge base's prefixes, answers as `kb query` would.
        request = urllib.request.Request(
            url + "?" + urllib.parse.urlencode({"query": QUERY}),
            headers={"Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            rows = json.loads(resp.read())["results"]["bindings"]
        claims = [(r["claim"]["value"], r["status"]["value"]) for r in rows]
        assert claims == [("https://claimkb.example.org/claims/trade-record-2024#claim",
                           "supported")]
        # The form page shows the named query, escaped.
        request = urllib.request.Request(url, headers={"Accept": "text/html"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            page = resp.read().decode()
        assert "Claims and their status" in page and "?claim a schema:Claim" in page
        # One file's graph as the dataset.
        claim_graph = next(g for g, path in graph.named_graphs().items()
                           if path == "claims/trade-record-2024.yaml")
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        request = urllib.request.Request(url + "?" + urllib.parse.urlencode(
            {"query": query, "default-graph-uri": claim_graph}),
            headers={"Accept": "text/csv"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            count = int(resp.read().decode().splitlines()[1])
        assert count == len(graph.graph_nquads(claim_graph).splitlines()) > 0
    finally:
        server.shutdown()
        server.server_close()
        endpoint.close()
