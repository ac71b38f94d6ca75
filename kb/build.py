"""`kb build`: check, graph, render, index, write — the whole static site, atomically.

The knowledge base is checked first; with errors nothing is written (the previous site stays).
Then the graph gives the dumps and the query results, the renderer makes every page in memory,
and kb.write puts them in a staging folder, where pagefind indexes them before the swap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.check import Checked, CheckOptions, check
from kb.history import file_histories
from kb.network import independent_sources, source_groups
from kb.write import Page, WriteResult, write_site


@dataclass(frozen=True)
class BuildOptions:
    check: CheckOptions = field(default_factory=CheckOptions)
    jobs: int | None = None  # render processes; None: up to 2
    search: str = "auto"  # auto (pagefind if installed, else json) | pagefind | json | none
    history: bool = True  # read git history (off in benchmarks of the render alone)


@dataclass
class BuildResult:
    checked: Checked
    written: WriteResult | None = None
    search: str = ""
    graph: Any = None  # kb.graph.KBGraph, for the SPARQL endpoint of `kb serve`
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.written is not None


@dataclass(frozen=True)
class Cell:
    text: str
    iri: str = ""  # a node's IRI, for a link


@dataclass(frozen=True)
class Table:
    variables: list[str]
    rows: list[list[Cell]]


def _table(result: Any, prefixes: dict[str, str]) -> Table:
    from kb.query import short

    variables, rows = result.as_rows()
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
    return Table(list(variables), out)


def _graph_extras(checked: Checked, histories: dict[str, Any], root: Path,
                  timings: dict[str, float]) -> tuple[Any, list[Page], Any]:
    """The graph, the data files, and Extras (downloads, alternates, query results)."""
    from kb import export
    from kb.graph import build_graph
    from kb.query import QueryError, named_queries, run
    from kb.render import Extras

    t = time.perf_counter()
    g = build_graph(checked, histories)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    files: list[Page] = []
    extras = Extras()
    labels = {"ttl": "Turtle (the union of all graphs)", "nt": "N-Triples (the union)",
              "trig": "TriG (one named graph per file)",
              "jsonld": "JSON-LD (one named graph per file)"}
    # No N-Quads file: TriG holds the same named graphs in a third of the bytes, and the
    # site's VoID lists ttl, nt, trig and jsonld as its dumps (`kb export` still writes nq).
    for fmt, label in labels.items():
        path = export.DUMP_FILES[fmt]
        files.append(Page(path, export.dump(g, fmt)))
        extras.downloads.append((path, label, export.MEDIA_TYPES[fmt]))
    files.append(Page("data/claims.csv", export.claims_csv(checked, g)))
    extras.downloads.append(("data/claims.csv", "Claims as CSV, one row each", "text/csv"))
    files.append(Page("data/void.ttl", export.void(g)))
    extras.downloads.append(("data/void.ttl", "VoID description of the dataset", "text/turtle"))
    extras.graph = g  # each claim's .ttl and .jsonld are made beside its page, in parallel
    extras.record_alternates = True
    timings["dumps"] = time.perf_counter() - t
    t = time.perf_counter()
    extras.queries = named_queries(root)
    prefixes = g.iris.prefixes()
    for q in extras.queries:
        try:
            extras.results[q.name] = _table(run(g, q.text), prefixes)
        except QueryError as exc:
            extras.results[q.name] = str(exc)
    timings["queries"] = time.perf_counter() - t
    return g, files, extras


def build_site(root: Path, out: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build the site of the knowledge base in `root` into `out`.

    Returns without writing anything when the check finds errors (`result.ok` is False).
    Raises kb.load.NotAKnowledgeBase, kb.write.WriteError or kb.search.SearchError when the
    build cannot be done; `out` is then unchanged.
    """
    from kb import search
    from kb.pages import build_model
    from kb.render import render_pages, static_files

    options = options or BuildOptions()
    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    checked = check(root, options.check)
    timings["check"] = time.perf_counter() - t
    result = BuildResult(checked, timings=timings)
    if checked.report.errors:
        return result
    t = time.perf_counter()
    histories = file_histories(root) if options.history else {}
    timings["history"] = time.perf_counter() - t
    g, data_files, extras = _graph_extras(checked, histories, root, timings)
    result.graph = g
    kb = checked.kb
    independent = (g.network.independent_sources if g is not None
                   else independent_sources(kb, source_groups(kb)))
    engine = options.search
    executable = search.pagefind_executable() if engine in ("auto", "pagefind") else None
    if engine == "auto":
        engine = "pagefind" if executable else "json"
    if engine == "pagefind" and executable is None:
        raise search.SearchError("pagefind is not installed (pip install 'pagefind[bin]')")
    extras.search = engine
    t = time.perf_counter()
    model = build_model(kb, checked.config, checked.context.today, histories, independent,
                        g.assessments if g is not None else None)
    pages = render_pages(model, extras, root, options.jobs)
    timings["render"] = time.perf_counter() - t
    pages += static_files(root) + data_files
    if engine == "json":
        pages.append(search.json_index(model))
    finish = None
    if engine == "pagefind" and executable:
        exe = executable

        def finish(staging: Path) -> None:
            t = time.perf_counter()
            search.run_pagefind(exe, staging)
            timings["search"] = time.perf_counter() - t

    t = time.perf_counter()
    result.written = write_site(pages, out, finish)
    timings["write"] = time.perf_counter() - t - timings.get("search", 0.0)
    timings["total"] = time.perf_counter() - t0
    result.search = engine
    return result


@dataclass
class Outcome:
    code: int  # the exit code
    lines: list[str]  # what to print: the report, and a summary or why nothing was built
    result: BuildResult | None = None


def build_command(root: Path, out: Path, options: BuildOptions | None = None) -> Outcome:
    """`kb build`: the exit code and the lines to print (the report on errors, else a summary)."""
    from kb import output
    from kb.load import NotAKnowledgeBase
    from kb.search import SearchError
    from kb.write import WriteError

    try:
        result = build_site(root, out, options)
    except (NotAKnowledgeBase, WriteError, SearchError, OSError) as exc:
        return Outcome(2, [f"kb: {exc}"])
    lines = list(output.as_text(result.checked.report))
    if not result.ok or result.written is None:
        return Outcome(1, [*lines, f"kb: not built: the knowledge base has errors; "
                               f"{out} is unchanged"], result)
    w = result.written
    t = result.timings
    lines.append(f"built {w.files} files ({w.bytes / 1e6:.1f} MB) into {w.out} in "
                 f"{t.get('total', 0):.1f} s; search: {result.search}")
    return Outcome(0, lines, result)
