"""`kb build`: check, graph, render, index, write — the whole static site, atomically.

The knowledge base is checked first; with errors nothing is written (the previous site stays).
Then the graph gives the dumps and the query results, the renderer makes every page in memory,
and kb.write puts them in a staging folder, where pagefind indexes them before the swap.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.cache import paused_gc
from kb.check import Checked, CheckOptions, check
from kb.history import claim_histories, file_histories
from kb.network import independent_sources, source_groups
from kb.write import Link, Page, WriteResult, write_site

if TYPE_CHECKING:
    from kb.render import Spec


@dataclass(frozen=True)
class BuildOptions:
    check: CheckOptions = field(default_factory=CheckOptions)
    jobs: int | None = None  # render processes; None: up to 2
    search: str = "auto"  # auto (pagefind if installed, else json) | pagefind | json | none
    history: bool = True  # read git history (off in benchmarks of the render alone)
    incremental: bool = True  # keep unchanged pages of the last build (kb.incremental)


@dataclass
class BuildResult:
    checked: Checked
    written: WriteResult | None = None
    search: str = ""
    graph: Any = None  # kb.graph.KBGraph, for the SPARQL endpoint of `kb serve`
    timings: dict[str, float] = field(default_factory=dict)
    rendered: int = 0  # pages (specs) rendered; the others were kept from the last build

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


def _record_lines(g: Any) -> Any:
    """claim id → the lines of its named graph (what its .ttl and .jsonld are written from)."""
    triples, iris = getattr(g, "triples", None), getattr(g, "iris", None)
    if not isinstance(triples, dict) or iris is None:
        return None
    return lambda cid: triples.get(iris.graph("claim", cid))


def _plan(all_specs: list[Spec], keys: Any, manifest: Any, out: Path, extras: Any,
          todo: list[Spec], kept: list[Link], page_keys: dict[str, str]) -> None:
    """Sort the pages into those to render (`todo`) and those kept from the last site."""
    from kb.render import outputs

    for spec in all_specs:
        key = keys.key(spec.path, spec.template, spec.extra)
        paths = outputs(spec, extras)
        page_keys.update((p, key) for p in paths)
        found = [manifest.reusable(out, p, key) for p in paths] if manifest else [None]
        if all(found):
            kept += [link for link in found if link is not None]
        else:
            todo.append(spec)


def build_site(root: Path, out: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build the site of the knowledge base in `root` into `out`.

    Returns without writing anything when the check finds errors (`result.ok` is False).
    Raises kb.load.NotAKnowledgeBase, kb.write.WriteError or kb.search.SearchError when the
    build cannot be done; `out` is then unchanged. With `options.incremental`, pages whose
    inputs did not change since the last build into `out` are kept (kb.incremental).
    """
    from kb import search
    from kb.incremental import Keys, Manifest, load_manifest, save_manifest, search_part
    from kb.load import read_inputs
    from kb.pages import build_model
    from kb.render import claim_specs, render_stream, sitemap, specs, static_files

    options = options or BuildOptions()
    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    inputs = read_inputs(root)
    checked = check(root, options.check, inputs)
    timings["check"] = time.perf_counter() - t
    result = BuildResult(checked, timings=timings)
    if checked.report.errors:
        return result
    t = time.perf_counter()
    histories = file_histories(root) if options.history else {}
    steps = claim_histories(root, review_age_days=checked.config.review_age_days,
                            histories=histories) if histories else {}
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

    # -- plan: which pages must be rendered, which are kept from the last site -----------------
    t = time.perf_counter()
    model = build_model(kb, checked.config, checked.context.today, histories, independent,
                        g.assessments if g is not None else None)
    model.steps = steps
    lines = _record_lines(g) if g is not None else None
    everything = (engine, extras.record_alternates, extras.downloads,
                  [repr(q) for q in extras.queries], sorted(
                      (k, repr(v)) for k, v in extras.results.items()),
                  g is not None and lines is None)
    keys = Keys(model, inputs, checked.kb.root, everything, lines)
    if g is not None and lines is None:  # a graph we cannot see into: its records change
        keys.common = keys.whole
    manifest = load_manifest(root, out) if options.incremental else None
    all_specs = list(specs(model, extras)) + claim_specs(model)
    todo: list[Spec] = []
    kept: list[Link] = []
    page_keys: dict[str, str] = {}
    with paused_gc():  # ~100,000 small tuples: the collector would walk the heap again and again
        _plan(all_specs, keys, manifest, out, extras, todo, kept, page_keys)
    timings["plan"] = time.perf_counter() - t

    # -- render and write, as a stream ---------------------------------------------------------
    parts: dict[str, str] = {}  # indexed page → digest of what the indexer reads of it
    old_parts = manifest.search_parts if manifest else {}
    indexed = search.indexed if engine == "pagefind" else (lambda _path: False)
    state: dict[str, Any] = {"render": 0.0, "search_key": "", "reused": False}
    exe = executable or ""

    def stream() -> Iterator[Page | Link]:
        for link in kept:
            if indexed(link.path) and link.path in old_parts:
                parts[link.path] = old_parts[link.path]
            yield link
        yield from static_files(root)
        yield from data_files
        if engine == "json":
            yield search.json_index(model)
        yield sitemap(model, page_keys)
        pages = render_stream(model, extras, root, todo, options.jobs)
        while True:
            t = time.perf_counter()
            page = next(pages, None)
            state["render"] += time.perf_counter() - t
            if page is None:
                break
            if indexed(page.path):
                parts[page.path] = search_part(page.path, page.data)
            yield page
        if engine == "pagefind":
            state["search_key"] = search.index_key(exe, parts)
            found = (manifest.search_reusable(out, state["search_key"]) if manifest else None)
            if found is not None:
                state["reused"] = True
                yield from found

    search_files: dict[str, Any] = {}

    def finish(staging: Path) -> None:
        if engine != "pagefind":
            return
        t = time.perf_counter()
        if not state["reused"]:
            search.run_pagefind(exe, staging)
            search_files.update(search.index_files(staging))
        timings["search"] = time.perf_counter() - t

    t = time.perf_counter()
    written = write_site(stream(), out, finish)
    timings["render"] = state["render"]
    timings["write"] = (time.perf_counter() - t - state["render"]
                        - timings.get("search", 0.0))
    if state["reused"]:
        search_files.update({p: s for p, s in written.stats.items()
                             if p.startswith(search.OUTPUT + "/")})
    # A full build records its pages too, for the next build to keep them.
    with paused_gc():
        pages = {p: (k, written.stats[p]) for p, k in page_keys.items()}
    save_manifest(root, Manifest(str(out.resolve()), pages, state["search_key"], search_files,
                                 parts))
    if search_files and not state["reused"]:  # pagefind's files count among the site's
        written = dataclasses.replace(written, files=written.files + len(search_files))
    result.written = written
    timings["total"] = time.perf_counter() - t0
    result.search = engine
    result.rendered = len(todo)
    return result


@dataclass
class Outcome:
    code: int  # the exit code
    lines: list[str]  # what to print: the report, and a summary or why nothing was built
    result: BuildResult | None = None


def build_command(root: Path, out: Path, options: BuildOptions | None = None,
                  timings: bool = False) -> Outcome:
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
                 f"{t.get('total', 0):.1f} s; search: {result.search}; "
                 f"{result.rendered} pages rendered, {w.linked} files kept")
    if timings:  # one "stage seconds" line each, for the benchmark to read
        lines += [f"timing {stage} {seconds:.3f}" for stage, seconds in t.items()]
    return Outcome(0, lines, result)
