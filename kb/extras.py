"""What the graph adds to the site: the data downloads, the named queries' results as tables,
and each claim's named graph (its .ttl and .jsonld). Made once the check has passed, before the
pages are planned (kb.build)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.check import Checked
from kb.forks import Forked


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
                 timings: dict[str, float], digests: Mapping[str, str] | None = None,
                 use_cache: bool = True, keep_store: bool = True,
                 beside: bool = False) -> tuple[Any, Any]:
    """The graph, and Extras (downloads, alternates, query results); the dumps come later.
    Not to `keep_store`: the SPARQL store the queries ran on is dropped once they have (the
    dumps and pages are made from the graph's blocks), so that the workers forked later do
    not hold it (the peak of this process is unchanged: it is while the store is there).
    `beside` (with `keep_store` False): the queries run in a child forked now (LaterResults),
    which holds the store instead, and this process goes on; their results are waited for
    when first read. `digests` (path → digest of the bytes its record was parsed from) key
    each file's named graph in the graph cache (kb.graphcache)."""
    from kb import export
    from kb.graph import build_graph
    from kb.query import named_queries
    from kb.render import Extras

    t = time.perf_counter()
    g = build_graph(checked, histories, cache=use_cache, digests=digests)
    timings["graph"] = time.perf_counter() - t
    extras = Extras()
    files = {**export.DUMP_FILES, "csv": export.CSV_FILE, "void": "data/void.ttl"}
    media = {**export.MEDIA_TYPES, "csv": "text/csv", "void": "text/turtle"}
    order = ("ttl", "nt", "trig", "jsonld", "csv", "void")  # as the data page lists them
    labels = dict(DUMPS)
    extras.downloads = [(files[name], labels[name], media[name]) for name in order]
    extras.graph = g  # each claim's .ttl and .jsonld are made beside its page, in parallel
    extras.record_alternates = True
    t = time.perf_counter()
    extras.queries = named_queries(root)
    later = LaterResults(g, extras.queries, timings) if beside and extras.queries else None
    if later is not None and later.forked:
        extras.results = later
    else:
        extras.results = run_queries(g, extras.queries)
        if not keep_store:
            g.drop_store()
    timings["queries"] = time.perf_counter() - t
    return g, extras


# A build is a function of the files (two builds of the same files are byte-identical), and
# Oxigraph calls out for SERVICE: a named query that would is not run, its page says why.
NOT_RUN = ("SERVICE is not run when the site is built: the pages would depend on the network. "
           "Run the query with kb query.")


def run_queries(g: Any, queries: list[Any]) -> dict[str, Table | str]:
    """Each named query's table, or the text of its error."""
    from kb.query import QueryError, run
    from kb.sparqlguard import names_service

    prefixes = g.iris.prefixes()
    results: dict[str, Table | str] = {}
    for q in queries:
        if names_service(q.text):
            results[q.name] = NOT_RUN
            continue
        try:
            results[q.name] = _table(run(g, q.text, keep=SHOWN), prefixes)
        except QueryError as exc:
            results[q.name] = str(exc)
    return results


class LaterResults(Mapping[str, "Table | str"]):
    """The named queries' results, made in a child forked from the build, which loads the
    graph into Oxigraph and runs them (3.1 s at 10,000 claims with the repository's nine
    queries: 1.9 s of it the loading) while this process plans the pages, the query pages
    last (kb.build). The first read waits for the child; when it failed, the queries are run
    here, as without it. The graph's blocks must be whole until then (KBGraph.forget).
    No time limit, as for the queries run here: a named query calls out to nothing
    (run_queries), and the child's results are the same on any machine."""

    def __init__(self, g: Any, queries: list[Any], timings: dict[str, float]) -> None:
        self._g, self._queries, self._timings = g, queries, timings
        self._done: dict[str, Table | str] | None = None
        self._owner = os.getpid()

        def in_the_child() -> list[Any]:
            results = run_queries(g, queries)
            # The answer waits in the pipe until the build reads it, after its plan: the
            # store (hundreds of MB) need not wait with it.
            g.drop_store()
            return [_as_data(r) for r in results.values()]

        self._child = Forked(in_the_child)
        self.forked = self._child.started

    def wait(self) -> dict[str, Table | str]:
        """The results: the child's, once it has sent them, or made here if it failed."""
        if self._done is None:
            if os.getpid() != self._owner:  # a process forked since: the child is not its own
                raise RuntimeError("LaterResults read in a process forked before they came")
            t = time.perf_counter()
            ok, value = self._child.result()
            made = _from_data(value) if ok else None
            if made is not None and len(made) == len(self._queries):
                self._done = dict(zip([q.name for q in self._queries], made, strict=True))
            else:
                self._done = run_queries(self._g, self._queries)
                self._g.drop_store()  # as graph_extras does
            self._g = None
            self._timings["queries"] = self._timings.get("queries", 0.0) + (
                time.perf_counter() - t)
        return self._done

    def close(self) -> None:
        """Stop the child, if its results were never read (a build that failed)."""
        self._child.close()

    def __getitem__(self, name: str) -> Table | str:
        return self.wait()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.wait())

    def __len__(self) -> int:
        return len(self.wait())


# A result as marshal data (kb.forks.Forked): an error's text, or a table's variables, rows
# of (text, iri) cells and count.
def _as_data(result: Table | str) -> Any:
    if isinstance(result, str):
        return result
    return (result.variables, [[(c.text, c.iri) for c in row] for row in result.rows],
            result.count)


def _from_data(value: Any) -> list[Table | str] | None:
    """The child's results, or None when they are not what _as_data makes."""
    try:
        return [v if isinstance(v, str) else
                Table([str(n) for n in v[0]], [[Cell(str(text), str(iri)) for text, iri in row]
                                                for row in v[1]], int(v[2]))
                for v in value]
    except (TypeError, ValueError, IndexError):
        return None


def record_lines(g: Any) -> Any:
    """claim id → what decides the block of its named graph (what its .ttl and .jsonld are
    written from): the graph cache's key of the block when there is one (a digest of all it is
    made from; the code and kb.toml, which key the cache, are in every page key), else the
    block itself. Hashing 13,000 short keys rather than the blocks (~130 MB at 10,000 claims)
    saves ~0.09 s of an edit build."""
    triples, iris = getattr(g, "triples", None), getattr(g, "iris", None)
    if not isinstance(triples, Mapping) or iris is None:
        return None
    keys: dict[str, str] = getattr(g, "block_keys", None) or {}

    def lines(cid: str) -> bytes | None:
        name = iris.graph("claim", cid)
        key = keys.get(name)
        return triples.get(name) if key is None else b"graph cache key\x00" + key.encode()
    return lines
