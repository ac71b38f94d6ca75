"""`kb build`: check, graph, render, index, write — the whole static site, atomically.

The knowledge base is checked first; with errors nothing is written (the previous site stays).
Then the graph gives the dumps and the query results, the renderer makes every page in memory,
and kb.write puts them in a staging folder, where pagefind indexes them before the swap.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.cache import paused_gc, release_free_memory, stop_saves
from kb.check import Checked, CheckOptions, check
from kb.forks import signals_held
from kb.history import GitLog, claim_histories
from kb.write import Link, Page, Staging, Stat, WriteResult, check_unique

if TYPE_CHECKING:
    from kb.manifest import Manifest
    from kb.plan import SiteScanner
    from kb.prefetch import InputsReader
    from kb.produce import Workers
    from kb.render import Spec
    from kb.searchshards import Indexed, IndexPlan


@dataclass(frozen=True)
class BuildOptions:
    check: CheckOptions = field(default_factory=CheckOptions)
    jobs: int | None = None  # render processes; None: up to 2
    search: str = "auto"  # auto (pagefind if installed, else json) | pagefind | json | none
    history: bool = True  # read git history (off in benchmarks of the render alone)
    incremental: bool = True  # keep unchanged pages of the last build (kb.incremental)
    # False: the graph is dropped once planned (KBGraph.forget) and BuildResult.graph is
    # None, so the page workers are not forked holding it (`kb build`; `kb serve` queries it)
    keep_graph: bool = True
    # Once set, a build that has not begun its commit stops (BuildStopped), the site unchanged:
    # while it waits for another build, between its stages and the batches it renders, or
    # before its commit.
    # `kb serve` sets it as it ends (see COMMITTING).
    stop: threading.Event | None = None
    # Called once when another build of the knowledge base holds its lock (kb.buildlock), and
    # this one waits for it to end.
    waiting: Callable[[], None] | None = None


# Held by a build from its commit to its saved manifest, in whichever thread it runs. `kb
# serve` rebuilds in a thread of its own and takes it as it ends, so that it never exits in the
# middle of a rebuild's commit (signals_held can guard the main thread only).
COMMITTING = threading.Lock()


class BuildStopped(Exception):
    """The build was stopped before its commit (BuildOptions.stop): nothing was changed."""


@dataclass
class BuildResult:
    checked: Checked
    written: WriteResult | None = None
    search: str = ""
    graph: Any = None  # kb.kbgraph.KBGraph, for the SPARQL endpoint of `kb serve`
    timings: dict[str, float] = field(default_factory=dict)
    rendered: int = 0  # pages (specs) rendered; the others were kept from the last build
    warnings: list[str] = field(default_factory=list)  # said after the build's summary
    # The model, the page keys and the plan, freed with the result rather than when the build
    # returns: `kb build` exits without freeing them (kb.cli.run), ~0.3 s at 10,000 claims.
    held: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        return self.written is not None


# Claims from which the data files' processes start one after the other (kb.produce.Workers):
# at 100,000 claims that lowered an edit build's peak from 4.1 to 3.7 GB; at 10,000, where the
# copies are small, it made edit builds ~0.14 s slower (eight pairs, medians 3.58 and 3.44 s).
STAGGERED_FROM = 50_000


def build_site(root: Path, out: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build the site of the knowledge base in `root` into `out`.

    Returns without writing anything when the check finds errors (`result.ok` is False).
    Raises kb.load.NotAKnowledgeBase, kb.write.WriteError or kb.search.SearchError when the
    build cannot be done, and BuildStopped when `options.stop` was set before the commit (or
    while the build waited for another build of the knowledge base: kb.buildlock);
    `out` is then unchanged (but for an in-place commit that fails half-way, a full disk: the
    last manifest is kept, and the next build makes again what differs from it). Ctrl-C or
    SIGTERM raise KeyboardInterrupt: before the commit `out` is unchanged; during it, the
    commit and its manifest end first (StoppedAfterCommit). With `options.incremental`, pages
    whose inputs did not change since the last build into `out` are kept (kb.plan).
    """
    from kb.buildlock import LockWaitStopped, build_lock

    options = options or BuildOptions()
    try:
        with build_lock(root, options.waiting, options.stop):
            return _locked_build(root, out, options)
    except LockWaitStopped:
        raise BuildStopped("the build was stopped while it waited for another") from None


def _locked_build(root: Path, out: Path, options: BuildOptions) -> BuildResult:
    from kb.manifest import load_manifest
    from kb.plan import SiteScanner
    from kb.prefetch import InputsReader

    # The files' history (git log) and the files themselves (in a child, kb.prefetch) are
    # looked at while the caches load.
    log: GitLog | None = None
    reader: InputsReader | None = None
    scanner: SiteScanner | None = None
    try:
        log = GitLog(root) if options.history else None
        reader = InputsReader(root)
        with paused_gc():  # 46,000 entries at 10,000 claims, no cycles: nothing to collect
            manifest = load_manifest(root, out) if options.incremental else None
        # With a last build to keep pages of, its site's files are looked at in a child,
        # beside the check (kb.plan).
        scanner = SiteScanner(out, manifest) if manifest is not None else None
        return _build_site(root, out, options, manifest, scanner, reader, log)
    finally:
        if reader is not None:
            reader.close()
        if log is not None:
            log.close()
        if scanner is not None:
            scanner.close()
        gc.unfreeze()  # frozen for the workers' forks (kb.cache.freeze_for_fork)


def _build_site(root: Path, out: Path, options: BuildOptions, manifest: Manifest | None,
                scanner: SiteScanner | None, reader: InputsReader,
                log: GitLog | None) -> BuildResult:
    from kb import changed, lastrows, search, searchshards
    from kb.extras import DUMPS, LaterResults, graph_extras, record_lines
    from kb.incremental import Keys
    from kb.load import Inputs
    from kb.manifest import Manifest, save_manifest
    from kb.modelindex import load_index, save_index
    from kb.modelmemo import load_memo, save_memo
    from kb.pages import build_model
    from kb.plan import plan
    from kb.produce import State, Workers, dump_paths, dump_tasks
    from kb.render import PARALLEL_FROM, claim_specs, specs, static_files

    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    def read() -> Inputs:  # once the check has loaded its caches
        with paused_gc():
            return reader.inputs()

    checked = check(root, options.check, read)
    inputs = reader.inputs()
    timings["check"] = time.perf_counter() - t
    result = BuildResult(checked, timings=timings)
    if checked.report.errors:
        return result
    _stop_if_set(options.stop, "after its check")
    inputs.release()  # parsed: only their digests are read from here on
    digests = inputs.digests()
    t = time.perf_counter()
    histories = log.histories() if log is not None else {}

    def parsed() -> dict[str, tuple[str, Any]]:  # a version with bytes the check parsed
        return {path: (digests[path], record) for path, record in checked.kb.files
                if path in digests}

    steps = claim_histories(root, review_age_days=checked.config.review_age_days,
                            histories=histories,
                            cache=options.check.use_cache and options.incremental,
                            parsed=parsed, blobs=log.blobs if log else None
                            ) if histories else {}
    timings["history"] = time.perf_counter() - t
    kb = checked.kb
    engine = options.search
    executable = search.pagefind_executable() if engine in ("auto", "pagefind") else None
    if engine == "auto":
        engine = "pagefind" if executable else "json"
    if engine == "pagefind" and executable is None:
        raise search.SearchError("pagefind is not installed (pip install 'pagefind[bin]')")
    if engine != "pagefind":  # a pagefind build does as it plans its index (kb.searchshards)
        search.remove_left_behind()  # what killed pagefind builds left on tmpfs (memory)
    # The named queries run in a child beside the planning (kb.extras.LaterResults), unless
    # the store is kept (`kb serve` queries it) or the knowledge base is so large that the
    # store's copy beside the planning would raise the peak (STAGGERED_FROM, as for the dumps).
    beside = not options.keep_graph and len(kb.claims) < STAGGERED_FROM
    with paused_gc():  # millions of objects, no cycles: collections would walk them again
        g, extras = graph_extras(checked, histories, root, timings, digests,
                                 options.check.use_cache, keep_store=options.keep_graph,
                                 beside=beside)
    result.graph = g
    extras.search = engine
    if engine == "pagefind":  # a pure function of the number of indexed pages
        from kb import searchshards

        extras.search_shards = searchshards.shard_count(
            len(kb.claims) + len(kb.sources) + len(kb.entities))

    staging: Staging | None = None
    holding = ExitStack()
    dumps: Workers | None = None
    index: IndexPlan | None = None
    try:  # from here on, a failure stops the children (the queries', the dumps')
        _stop_if_set(options.stop, "after its graph")
        # One walk of the last site: what is kept is checked against it, file by file (a hand
        # edit changes a file's Stat), and a file no build wrote makes the build a whole new one.
        site = scanner.result() if scanner is not None else None
        staging = Staging(out)
        # The dumps need only the graph: their workers start now and run beside the planning.
        # Without a manifest every claim page is made, and its .ttl and .jsonld with the dumps.
        every = tuple(sorted(kb.claims)) if manifest is None and extras.record_alternates else ()
        large = len(kb.claims) >= PARALLEL_FROM  # enough for worker processes (kb.produce)
        # A full build renders every page beside a forked worker: there the claims' CSV is one
        # more of their tasks, not a process forked from the whole build now (which copied
        # ~1 GB of its pages at 100,000 claims while the planning went on). After an edit the
        # few pages are rendered here, and the CSV is made here too (below).
        with_pages = ("csv",) if manifest is None and large else ()
        # After an edit, the CSV is made here from the last build's rows (kb.csvmemo): a
        # process forked for it slowed the model's building beside it more than it saved.
        csv_memo = (manifest is not None and options.check.use_cache and bool(g.block_keys)
                    and "csv" not in with_pages)
        dumps = Workers(State(None, extras, root, staging.path, checked,
                              cache=options.check.use_cache),
                        dump_tasks([name for name, _label in DUMPS if name not in with_pages
                                    and not (csv_memo and name == "csv")],
                                   every), options.jobs,
                        parallel=large, per_task=True,
                        staggered=len(kb.claims) >= STAGGERED_FROM,
                        # after an edit, at any size: the blocks the graph cache holds, by
                        # their keys (at 100,000 claims a forked spill was the edit build's
                        # largest process: max RSS 2.77 GB, against 2.08 GB without it)
                        by_reference=manifest is not None)

        # -- plan: which pages must be rendered, which are kept from the last site -------------
        t = time.perf_counter()
        waited = timings["queries"]
        memo = load_memo(root) if options.check.use_cache else None
        # `--full` makes them afresh too, and keeps them for the next build
        last_index = (load_index(root) if options.check.use_cache and options.incremental
                      else None)
        with paused_gc():
            model = build_model(kb, checked.config, checked.context.today, histories,
                                g.network.independent_sources, g.assessments, memo,
                                last_index, digests if options.check.use_cache else None)
        model.steps = steps
        lines = record_lines(g)
        # The named queries' results are in their own pages' keys only (Keys.results): with
        # them here, every edit that changed one (a status, a review due, a link) made every
        # page again.
        everything = (engine, extras.search_shards, extras.record_alternates, extras.downloads,
                      [repr(q) for q in extras.queries], lines is None)
        keys = Keys(model, inputs, checked.kb.root, everything, lines, extras.results, digests)
        if lines is None:  # a graph we cannot see into: its records change
            keys.common = keys.whole
        if manifest is not None:
            keys.reuse(manifest.rows_common, manifest.list_rows)
        # What the claim, source and entity pages' keys are made from, compared with the last
        # build's: only the pages an edit can have reached have their key worked out
        # (kb.changed).
        seen = changed.seen_now(keys)
        fresh = None if seen is None or manifest is None else changed.to_key(
            changed.Seen.of_data(manifest.seen), seen, keys)
        with paused_gc():
            all_specs = list(specs(model, extras)) + claim_specs(model)
        # The query pages last: their keys wait for the results (LaterResults), which are
        # made meanwhile.
        all_specs.sort(key=lambda spec: spec.template == "query.html")
        todo: list[Spec] = []
        kept: list[Link] = []
        page_keys: dict[str, str] = {}
        remade: list[str] = []  # claims whose .ttl and .jsonld are made again
        with paused_gc():  # ~100,000 small tuples: the collector would walk the heap again
            plan(all_specs, keys, manifest, site, extras, todo, kept, page_keys, fresh, remade)
        if isinstance(extras.results, LaterResults):
            extras.results.wait()  # before the graph is forgotten: a failed child's are made here
        # the wait for the queries' child is theirs, not the plan's
        timings["plan"] = time.perf_counter() - t - (timings["queries"] - waited)

        # -- render and write: workers fill the staging folder, this process keeps the books ----
        _stop_if_set(options.stop, "after its plan")
        t = time.perf_counter()
        statics = static_files(root)
        check_unique([*page_keys, *dump_paths(extras), *(p.path for p in statics),
                      "sitemap.xml", *(["search/index.json"] if engine == "json" else [])])
        # With the last site as it was left, change it in place: only what changed moves in.
        # Only for a few changes: moving most files one by one costs more than a new folder.
        in_place = (manifest is not None and len(todo) <= max(200, len(all_specs) // 4)
                    and _as_recorded(manifest, site))
        # The search index is made from small stubs of the indexed pages, by pagefind running
        # in the background while the pages are made, a shard at a time (kb.searchshards); a
        # shard made from the same stubs is kept.
        t_search = time.perf_counter()
        index = (searchshards.plan_index(model, kb.root, todo, page_keys, executable or "",
                                         extras.search_shards, manifest, site,
                                         options.check.use_cache)
                 if engine == "pagefind" else searchshards.IndexPlan(
                     searchshards.Indexed(extras.search_shards)))
        if len(todo) < PARALLEL_FROM:
            # The pages are rendered here and no process is forked from now on: pagefind
            # starts now, beside the claims' CSV, the rows read back and the files written
            # (after a statement edit its shard was the build's last 0.1-0.2 s). Its stubs are
            # written first: beside this process's work, which holds the GIL, that took
            # ~0.1 s, not ~0.02 s.
            _start_index(index, executable or "", staging, in_place)
            if index.running is not None:
                index.running.settle()
        timings["search"] = time.perf_counter() - t_search
        if csv_memo:
            statics.append(_claims_csv(root, checked, g))
        records = () if every or not extras.record_alternates else tuple(remade)
        if (not options.keep_graph and dumps.forked and not dumps.by_reference
                and len(todo) >= PARALLEL_FROM):
            # The dumps' processes have their own; the page worker forked next needs only
            # these claims' graphs (their .ttl and .jsonld). The keys are made: `keys` must
            # not be asked for another (kb.incremental.Keys.lines reads the blocks).
            result.graph = None
            g.forget(g.iris.graph("claim", cid) for cid in records)
            release_free_memory()
        if in_place and manifest is not None and any(s.path == lastrows.PATH for s in todo):
            model.take_rows(lastrows.last_rows(out, keys, manifest))
        written, indexed = _fill(
            staging, model, extras, checked, todo, kept, statics, dumps, records, page_keys,
            engine, executable or "", index, options.jobs, timings, in_place, with_pages,
            options.stop)
        # From the commit to the manifest that records it, Ctrl-C and SIGTERM wait: stopped
        # within an in-place commit, the site was part new and part old, and stopped before
        # the manifest, the next build took the site for one it did not know (a full build).
        holding.enter_context(COMMITTING)
        _stop_if_set(options.stop, "before its commit")
        holding.enter_context(signals_held())
        gone: list[str] = []
        if in_place and manifest is not None:
            gone = sorted(manifest.pages.keys() - written.stats.keys())
            # The shards indexed again replace theirs whole; all of them, the index's folder.
            redo = indexed.redone
            replaced = ([] if not redo else [search.OUTPUT] if len(redo) == indexed.count
                        else [search.shard_folder(i) for i in redo])
            staging.commit_in_place(gone, replaced)
        else:
            staging.commit()
    except BaseException as failure:
        try:
            with ExitStack() as cleanup:  # each step, even when one before it fails; last in,
                if staging is not None:  # first out: the staging folder goes last
                    cleanup.callback(staging.abort)
                if dumps is not None:
                    cleanup.callback(dumps.close)
                if index is not None:
                    cleanup.callback(index.cancel)
                if isinstance(extras.results, LaterResults):
                    cleanup.callback(extras.results.close)
        finally:  # the commit's lock is released, a signal held during it acted on, always
            try:
                holding.close()
            except KeyboardInterrupt as stop:  # held while the commit failed: say both
                raise stop from failure
        raise
    timings["write"] = (time.perf_counter() - t - timings.get("search", 0.0)
                        - timings.get("render", 0.0))
    unkept = ""
    try:
        with holding:  # a Ctrl-C or SIGTERM held since the commit stops the build at its end
            # Every file is recorded, for the next build to keep pages and to see the site
            # untouched; files without a page key (dumps, static files) get "" and are made
            # again each time.
            with paused_gc():
                pages, since = _recorded(written, page_keys, indexed.files,
                                         manifest if in_place else None, gone)
            save_manifest(root, Manifest(str(out.resolve()), pages, indexed.keys,
                                         indexed.files, indexed.digests, keys.common,
                                         keys.list_rows(),
                                         None if seen is None else seen.as_data()),
                          last=manifest, pages_changed=since)
            if memo is not None:
                save_memo(root, memo, model)
            if model.index is not None:
                save_index(root, last_index, model.index)
    except KeyboardInterrupt as stop:
        raise StoppedAfterCommit from stop
    finally:  # what pagefind's runs left going beside the commit, signals no longer held
        if index is not None:
            try:
                unkept = index.close()
            except KeyboardInterrupt as stop:
                raise StoppedAfterCommit from stop
    if unkept:
        result.warnings.append(f"the search index's stubs were not kept for the next build "
                               f"(it will make them again): {unkept}")
    result.written = written
    result.held = (model, keys, all_specs, page_keys, pages, todo, kept, manifest, site, memo,
                   inputs, extras)
    timings["total"] = time.perf_counter() - t0
    result.search = engine
    result.rendered = len(todo)
    return result


def _stop_if_set(stop: threading.Event | None, when: str) -> None:
    """BuildStopped, once `stop` is set: checked between the stages, so that `kb serve` ending
    while its rebuild checks, graphs or plans is not kept waiting by the next stage."""
    if stop is not None and stop.is_set():
        raise BuildStopped(f"the build was stopped {when}")


def _recorded(written: WriteResult, page_keys: dict[str, str], index: dict[str, Stat],
              last: Manifest | None, gone: list[str]
              ) -> tuple[dict[str, tuple[str, Stat]], tuple[dict[str, tuple[str, Stat]],
                                                         list[str]] | None]:
    """Each file's page key and Stat, for the manifest, and what changed in them since `last`
    (the manifest of the site changed in place), or None when that is not known.

    In place, a file kept has the last build's key and Stat: its entry is the last manifest's
    own, and only the files made (and those `gone`) change. At 100,000 claims making 460,000
    entries anew and comparing them with the last (kb.memo) was ~0.7 s of an edit build."""
    key = page_keys.get
    if last is None:
        return {p: (key(p, ""), st) for p, st in written.stats.items() if p not in index}, None
    put = {p: (key(p, ""), st) for p, st in written.made.items() if p not in index}
    pages = dict(last.pages)
    for p in gone:
        del pages[p]
    pages.update(put)
    return pages, (put, gone)


def _claims_csv(root: Path, checked: Checked, g: Any) -> Page:
    """data/claims.csv, from the last build's rows where their claims' graphs are unchanged."""
    from kb import csvmemo
    from kb.export import CSV_FILE

    return Page(CSV_FILE, csvmemo.claims_csv(root, checked, g))


def _as_recorded(manifest: Any, site: Any) -> bool:
    """Whether the site holds exactly the files the last build recorded (none added by hand):
    from the walk the planning had (kb.manifest.SiteChanges), not a second one."""
    return bool(manifest.as_recorded(site))


def _fill(staging: Staging, model: Any, extras: Any, checked: Checked,
          todo: list[Spec], kept: list[Link], statics: list[Page], dumps: Workers,
          records: tuple[str, ...], page_keys: dict[str, str], engine: str, executable: str,
          index: IndexPlan, jobs: int | None, timings: dict[str, float],
          in_place: bool = False, with_pages: tuple[str, ...] = (),
          stop: threading.Event | None = None) -> tuple[WriteResult, Indexed]:
    """Write the site's files into `staging`: made files, the search index, and the kept ones
    (hard-linked, or, `in_place`, only counted: they stay where they are). The dumps' workers
    are running already; the pages' workers start here, with the data files `with_pages`, and
    pagefind after them, unless it was started before (`index.running`). `stop` set: the
    next batch done raises BuildStopped (the workers are stopped)."""
    from kb import search
    from kb.produce import State, Workers, page_tasks
    from kb.render import PARALLEL_FROM, sitemap

    writer = staging.writer()
    stats: dict[str, Stat] = {}
    size = 0
    for link in kept:
        if not in_place:
            writer.link(link)
        elif link.stat is not None:
            stats[link.path] = link.stat
            size += link.stat[1]
    written = [*statics, *([search.json_index(model)] if engine == "json" else []),
               sitemap(model, page_keys)]
    for page in written:
        writer.write(page)
    made = {page.path: writer.stats[page.path] for page in written}  # not kept: made here
    indexed, found = index.indexed, index.found
    pages: Workers | None = None
    settled = 0.0  # waiting for pagefind's stubs: the search's time, not the rendering's
    try:
        t = time.perf_counter()
        model.warm()  # work every worker would otherwise repeat after the fork
        state = State(model, extras, checked.kb.root, staging.path, checked, dumps.state.cache)
        work = page_tasks(todo, jobs or 2, records, with_pages)
        pages = Workers(state, work, jobs, parallel=len(todo) >= PARALLEL_FROM)
        # Only after the fork: a process forked while pagefind's is being started would hold
        # the pipe subprocess waits on for the exec, and both would wait for ever.
        if index.running is None and indexed.redone:
            _start_index(index, executable, staging, in_place)
            if not pages.forked and index.running is not None:
                # The pages are rendered here (in results(), below), holding the GIL: the
                # first shards' stubs are written before that, not beside it.
                waiting = time.perf_counter()
                index.running.settle()
                settled = time.perf_counter() - waiting
        for running in (pages, dumps):
            for done in running.results():
                _stop_if_set(stop, "while it rendered")
                made.update(done.stats)
                size += done.bytes
        timings["render"] = time.perf_counter() - t - settled  # pages, alternates, dumps
        timings["search"] = timings.get("search", 0.0) + settled
        t = time.perf_counter()
        if index.running is not None:
            index.wait()  # tidied up after the commit (index.close)
            indexed.files = search.index_files(staging.path, indexed.redone)
            made.update(indexed.files)
            size += sum(st[1] for st in indexed.files.values())
    finally:
        if index.running is not None:  # not waited for: the build failed
            index.cancel()
        dumps.close()
        if pages is not None:
            pages.close()
    kept_index = 0
    for shard in sorted(found):
        for link in found[shard]:
            if not in_place:
                writer.link(link)
            elif link.stat is not None:
                size += link.stat[1]
            if link.stat is not None:
                indexed.files[link.path] = link.stat
            kept_index += 1
    stats.update(indexed.files)
    timings["search"] += time.perf_counter() - t
    stats.update(writer.stats)
    stats.update(made)
    size += writer.bytes
    kept_files = len(kept) + kept_index if in_place else writer.linked
    return WriteResult(staging.out, len(stats), size, stats, kept_files, made), indexed


def _start_index(index: IndexPlan, executable: str, staging: Staging, in_place: bool) -> None:
    from kb import search

    # the last site, only where it is as the last build left it (no links out)
    index.start(executable, staging.path / search.OUTPUT,
                staging.out / search.OUTPUT if in_place else None)


class StoppedAfterCommit(KeyboardInterrupt):
    """Ctrl-C or SIGTERM came while the site was committed: the build ended first."""


@dataclass
class Outcome:
    code: int  # the exit code
    lines: list[str]  # what to print: the report, and a summary or why nothing was built
    result: BuildResult | None = None


def build_command(root: Path, out: Path, options: BuildOptions | None = None,
                  timings: bool = False) -> Outcome:
    """`kb build`: the exit code and the lines to print (the report on errors, else a summary)."""
    from kb import output
    from kb.forks import sigterm_interrupts
    from kb.load import NotAKnowledgeBase
    from kb.search import SearchError
    from kb.write import WorkerDied, WriteError

    try:
        with sigterm_interrupts():
            result = build_site(root, out, options)
    except (NotAKnowledgeBase, WriteError, SearchError, WorkerDied, OSError) as exc:
        return Outcome(2, [f"kb: {exc}"])
    except (KeyboardInterrupt, BuildStopped) as stop:  # build_site has cleaned up
        stop_saves()  # and the caches' saves are not waited for
        if isinstance(stop, StoppedAfterCommit):
            return Outcome(2, [f"kb: the build was stopped; {out} was written before it "
                               "stopped"])
        # a stop held while a commit failed: that failure is said too
        failed = stop.__cause__
        return Outcome(2, [*([f"kb: {failed}"] if isinstance(failed, Exception) else []),
                           "kb: the build was stopped before it ended"])
    lines = list(output.as_text(result.checked.report))
    if not result.ok or result.written is None:
        return Outcome(1, [*lines, f"kb: not built: the knowledge base has errors; "
                               f"{out} is unchanged"], result)
    w = result.written
    t = result.timings
    lines.append(f"built {w.files} files ({w.bytes / 1e6:.1f} MB) into {w.out} in "
                 f"{t.get('total', 0):.1f} s; search: {result.search}; "
                 f"{result.rendered} pages rendered, {w.linked} files kept")
    lines += [f"kb: warning: {warning}" for warning in result.warnings]
    if timings:  # one "stage seconds" line each, for the benchmark to read
        lines += [f"timing {stage} {seconds:.3f}" for stage, seconds in t.items()]
    return Outcome(0, lines, result)
