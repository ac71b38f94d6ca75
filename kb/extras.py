"""What the graph adds to the site: the data downloads, the named queries' results as tables,
and each claim's named graph (its .ttl and .jsonld). Made once the check has passed, before the
pages are planned (kb.build)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.check import Checked


@dataclass(frozen=True)
class Cell:
    text: str
    iri: str = ""  # a node's IRI, for a link


# Rows of a named query's result that its page shows (templates/query.html): only these are
# made into cells and kept, the others counted. All were, and written into every page's key:
# 0.4 s of a build at 10,000 claims, for 19,686 rows of which the pages show 3,506.
SHOWN = 500


@dataclass(frozen=True)
class Table:
    variables: list[str]
    rows: list[list[Cell]]  # the first SHOWN rows at most
    count: int  # rows in all


def _table(result: Any, prefixes: dict[str, str]) -> Table:
    from kb.query import short

    variables, rows = result.as_rows()
    count = result.total if result.total is not None else len(rows)
    rows = rows[:SHOWN]
    out = []
    for row in rows:
        cells = []
        for term in row:
            if term is None:
                cells.append(Cell(""))
            elif type(term).__name__ == "NamedNode":
                cells.append(Cell(short(term, prefixes), term.value))
            else:
                cells.append(Cell(getattr(term, "value", str(term))))
        out.append(cells)
    return Table(list(variables), out, count)


# The data files of the site, made by the workers beside the pages (kb.produce): the format
# (or csv / void) and the download's label. No N-Quads file: TriG holds the same named graphs in
# a third of the bytes, and the site's VoID lists ttl, nt, trig and jsonld as its dumps (`kb
# export` still writes nq). The four RDF dumps are gzip-compressed (kb.gzdumps).
DUMPS = (("jsonld", "JSON-LD, gzip (one named graph per file)"),
         ("ttl", "Turtle, gzip (the union of all graphs)"),
         ("trig", "TriG, gzip (one named graph per file)"),
         ("nt", "N-Triples, gzip (the union)"), ("csv", "Claims as CSV, one row each"),
         ("void", "VoID description of the dataset"))


def graph_extras(checked: Checked, histories: dict[str, Any], root: Path,
                 timings: dict[str, float], inputs: Any = None,
                 use_cache: bool = True, keep_store: bool = True) -> tuple[Any, Any]:
    """The graph, and Extras (downloads, alternates, query results); the dumps come later.
    Not to `keep_store`: the SPARQL store the queries ran on is dropped once they have (the
    dumps and pages are made from the graph's blocks), so that the workers forked later do
    not hold it. The build's peak is unchanged: it is while the store is there."""
    from kb import export
    from kb.graph import build_graph
    from kb.query import QueryError, named_queries, run
    from kb.render import Extras

    t = time.perf_counter()
    # The files' digests key each file's named graph in the graph cache (kb.graphcache).
    digests = {f.path: f.digest for f in inputs.records} if inputs is not None else None
    g = build_graph(checked, histories, cache=use_cache, digests=digests)
    timings["graph"] = time.perf_counter() - t
    extras = Extras()
    files = {**export.DUMP_FILES, "csv": "data/claims.csv", "void": "data/void.ttl"}
    media = {**export.MEDIA_TYPES, "csv": "text/csv", "void": "text/turtle"}
    order = ("ttl", "nt", "trig", "jsonld", "csv", "void")  # as the data page lists them
    labels = dict(DUMPS)
    extras.downloads = [(files[name], labels[name], media[name]) for name in order]
    extras.graph = g  # each claim's .ttl and .jsonld are made beside its page, in parallel
    extras.record_alternates = True
    t = time.perf_counter()
    extras.queries = named_queries(root)
    prefixes = g.iris.prefixes()
    for q in extras.queries:
        try:
            extras.results[q.name] = _table(run(g, q.text, keep=SHOWN), prefixes)
        except QueryError as exc:
            extras.results[q.name] = str(exc)
    if not keep_store:
        g.__dict__.pop("store", None)  # KBGraph.store, made again if ever asked for
    timings["queries"] = time.perf_counter() - t
    return g, extras


def record_lines(g: Any) -> Any:
    """claim id → the block of its named graph (what its .ttl and .jsonld are written from)."""
    triples, iris = getattr(g, "triples", None), getattr(g, "iris", None)
    if not isinstance(triples, dict) or iris is None:
        return None
    return lambda cid: triples.get(iris.graph("claim", cid))
