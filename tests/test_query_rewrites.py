"""Named queries rewritten for speed answer exactly what their old forms answered.

Each entry keeps the old form's changed line; the test runs the named query and its old form on
the rich test knowledge base and on a graph made for the edge cases the rewrite touches (a
source without a name, a source with two names), and compares the rows (in order, where
ORDER BY fixes one).
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from graph_data import RICH

from kb.check import check
from kb.graph import build_graph
from kb.kbgraph import KBGraph
from kb.query import named_queries, run

from conftest import REPO, MakeKB

TITLE_JOIN = "  OPTIONAL { ?source schema:name ?title }\n"
# named query -> (the line as it was, the line as it is now)
REWRITES = {
    name: (TITLE_JOIN, "  OPTIONAL { SELECT ?source ?title { ?source schema:name ?title } }\n")
    for name in ("refuted-or-disputed", "single-source")
}


def old_form(name: str) -> tuple[str, str]:
    text = {q.name: q.text for q in named_queries(REPO)}[name]
    old, new = REWRITES[name]
    assert text.count(new) == 1, f"{name}: the rewritten line is not in the query"
    return text, text.replace(new, old)


@pytest.fixture
def rich(make_kb: MakeKB) -> KBGraph:
    return build_graph(check(make_kb(RICH)))


def edge_store(g: KBGraph) -> ox.Store:
    """The rich graph, plus: one refuting and one supporting source lose their names, another
    gains a second name (an OPTIONAL then gives two rows)."""
    store = ox.Store()
    store.extend(g.store.quads_for_pattern(None, None, None, None))
    name = ox.NamedNode("https://schema.org/name")
    sources = sorted({str(q.object) for q in store.quads_for_pattern(
        None, ox.NamedNode("http://www.w3.org/ns/oa#hasSource"), None, None)})
    assert len(sources) >= 2
    for quad in list(store.quads_for_pattern(ox.NamedNode(sources[0][1:-1]), name, None, None)):
        store.remove(quad)
    graph = ox.NamedNode("https://example.org/test/extra")
    store.add(ox.Quad(ox.NamedNode(sources[-1][1:-1]), name, ox.Literal("A second name"), graph))
    return store


def rows(g: KBGraph | ox.Store, text: str, prefixes: dict[str, str]) -> list[list[str]]:
    return [[str(t) for t in row] for row in run(g, text, prefixes).rows]


@pytest.mark.parametrize("name", sorted(REWRITES))
def test_rewritten_query_answers_as_its_old_form(rich: KBGraph, name: str) -> None:
    new, old = old_form(name)
    prefixes = rich.iris.prefixes()
    got = rows(rich, new, prefixes)
    assert got, f"{name}: no rows on the rich knowledge base, so nothing is compared"
    assert got == rows(rich, old, prefixes)
    store = edge_store(rich)
    got = rows(store, new, prefixes)
    # two names of one source tie under ORDER BY, in no defined order: compare as multisets
    assert sorted(got) == sorted(rows(store, old, prefixes))
    assert got != rows(rich, new, prefixes), "the edge cases changed nothing this query sees"
