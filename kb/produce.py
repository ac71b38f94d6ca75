"""The parallel part of `kb build`: pages and dumps made by worker processes.

Each worker renders its share of the pages (kb.render) or makes data files (kb.gzdumps,
kb.export) and writes the files straight into the staging folder through its own
kb.write.SiteWriter, so no page bytes cross a process line: only each file's Stat comes back.
Moving 500 MB of pages through pipes to one writing process cost more than rendering them. The
workers are forked after the model and the graph are built and inherit them (never pickled);
the dumps run beside the pages, so both cores stay busy. The pages share a pool; each data task
has a process of its own that exits when its task is done, so the pages it copied from the
graph (gigabytes at 100,000 claims) are not held for the rest of the build.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb import render
from kb.cache import freeze_for_fork
from kb.render import Extras, Spec
from kb.write import Page, SiteWriter, Stat

ALTERNATES = {"trig": "ttl", "jsonld": "jsonld"}  # dump → the claims' files made with it


@dataclass(frozen=True)
class Task:
    """One piece of work: a batch of pages, or data files (`dump`: "rdf", "csv", "records-…")."""

    specs: tuple[Spec, ...] = ()
    dump: str = ""
    claims: tuple[str, ...] = ()  # with the trig / jsonld dump: these claims' .ttl / .jsonld


@dataclass
class Done:
    """What a task wrote: each file's Stat, and their bytes."""

    stats: dict[str, Stat] = field(default_factory=dict)
    bytes: int = 0


@dataclass
class State:
    """What every task reads; set in the parent before the fork, inherited by the workers."""

    model: Any  # kb.pages.SiteModel
    extras: Extras
    root: Path | None
    staging: Path
    checked: Any = None  # kb.check.Checked, for the claims CSV
    cache: bool = False  # keep the dumps' compressed chunks in the user's cache


_STATE: State | None = None  # in a worker: the state at its fork
_WRITER: SiteWriter | None = None


def _writer(state: State) -> SiteWriter:
    global _WRITER
    if _WRITER is None or _WRITER.staging != state.staging:
        _WRITER = SiteWriter(state.staging)
    return _WRITER


def dump_paths(extras: Extras) -> list[str]:
    return [path for path, _label, _media in extras.downloads]


RDF = "rdf"  # the task that makes the RDF dumps and VoID together (kb.gzdumps)


def _dump(state: State, task: Task, put: Callable[[Page], None],
          append: Callable[[str, bytes], None]) -> None:
    from kb import export

    g, name = state.extras.graph, task.dump
    if name == "csv":
        put(Page("data/claims.csv", export.claims_csv(state.checked, g)))
    elif name == RDF:
        from kb import gzdumps
        from kb.cache import cache_path

        def records(cid: str, made: dict[str, bytes]) -> None:  # written as they are made
            for ext, data in sorted(made.items()):
                put(Page(f"claims/{cid}.{ext}", data))

        folder = cache_path(state.checked.kb.root, "dumps").with_suffix("") \
            if state.cache else None
        made = gzdumps.site_dumps(g, task.claims, folder, records, append)
        for path, data in sorted(made.files.items()):
            put(Page(path, data))
    elif name.startswith("records-"):  # some claims' .ttl or .jsonld, without a dump
        ext = name.removeprefix("records-")
        for cid in task.claims:
            put(Page(f"claims/{cid}.{ext}", export.record_dump(g, "claim", cid, ext)))
    else:
        raise ValueError(f"no such data file: {name!r}")


def run_task(state: State, task: Task) -> Done:
    """Make and write the files of one task (in a worker, or in the parent when serial)."""
    if render._STATE is None or render._STATE[0] is not state.model:
        render._STATE, render._ENV = (state.model, state.extras, state.root), None
    writer = _writer(state)
    done = Done()

    def put(page: Page) -> None:
        writer.write(page)
        done.stats[page.path] = writer.stats[page.path]
        done.bytes += len(page.data)

    def append(path: str, data: bytes) -> None:  # a dump, written as it is made
        writer.append(path, data)
        done.bytes += len(data)

    # a claim's .ttl and .jsonld come with the dumps (ALTERNATES), not with its page
    if task.dump:
        try:
            _dump(state, task, put, append)
        finally:
            for path in writer.close_appended():
                done.stats[path] = writer.stats[path]
    else:
        for spec in task.specs:
            put(render.render_one(spec))
    return done


def _run(task: Task) -> Done:  # in a worker: the state is the one inherited at the fork
    assert _STATE is not None
    return run_task(_STATE, task)


def _run_and_send(task: Task, sender: Any) -> None:
    """A process of its own for one task: the result, or the error, goes back through the pipe."""
    try:
        reply: tuple[bool, object] = (True, _run(task))
    except BaseException as exc:  # the parent raises it, as a pool would
        reply = (False, exc)
    try:
        sender.send(reply)
    except Exception as exc:  # an error that cannot be pickled
        sender.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    sender.close()


def dump_tasks(dumps: list[str], claims: tuple[str, ...]) -> list[Task]:
    """The data files: the RDF dumps and VoID are one task (kb.gzdumps: one pass over the
    graph finds the chunks that changed), which also writes these claims' .ttl and .jsonld;
    the claims' CSV is another."""
    from kb.export import SITE_DUMPS

    rdf = [d for d in dumps if d in SITE_DUMPS or d == "void"]
    return [*([Task(dump=RDF, claims=claims)] if rdf else []),
            *(Task(dump=d) for d in dumps if d not in rdf)]


def page_tasks(todo: list[Spec], jobs: int, records: tuple[str, ...] = ()) -> list[Task]:
    """Claim pages and the others in batches; and `records`: claims whose .ttl and .jsonld
    are made apart from the dumps (kb.render.outputs counts them among the page's files)."""
    claims = [s for s in todo if s.template == "claim.html"]
    others = [s for s in todo if s.template != "claim.html"]
    size = max(25, min(200, len(claims) // (jobs * 8) or 1))
    out = [Task(dump=f"records-{ext}", claims=records[i:i + 500])
           for ext in ALTERNATES.values() for i in range(0, len(records), 500)]
    out += [Task(tuple(claims[i:i + size])) for i in range(0, len(claims), size)]
    out += [Task(tuple(others[i:i + 100])) for i in range(0, len(others), 100)]
    return out


class Workers:
    """Tasks run by `jobs` processes forked at once, which see `state` as it is now.

    The build starts the dumps' workers as soon as the graph is made, and the pages' workers
    once the model is: each pool inherits what exists at its fork, nothing is pickled. When
    `parallel` is false (small sites, one core, no fork) the tasks run in this process, when
    `results()` is read."""

    def __init__(self, state: State, work: list[Task], jobs: int | None = None,
                 parallel: bool = True, per_task: bool = False) -> None:
        global _STATE, _WRITER
        self.state, self.work = state, work
        self.jobs = jobs or min(2, os.cpu_count() or 1)
        self._pool: Any = None
        self._results: Iterator[Done] | None = None
        self._procs: dict[Any, Any] = {}  # with per_task: the reading end → its process
        if not (parallel and work and self.jobs > 1
                and "fork" in multiprocessing.get_all_start_methods()):
            return
        _STATE, _WRITER = state, None
        render._STATE, render._ENV = (state.model, state.extras, state.root), None
        freeze_for_fork()
        try:
            context = multiprocessing.get_context("fork")
            if per_task:
                # A process a task, which exits when its task is done: a pool's idle worker
                # keeps the pages it copied from the graph (gigabytes at 100,000 claims) until
                # the build ends. All are forked now, never later (see _fill on pagefind).
                for task in work:
                    reader, sender = context.Pipe(duplex=False)
                    proc = context.Process(target=_run_and_send, args=(task, sender))
                    proc.start()
                    sender.close()
                    self._procs[reader] = proc
            else:
                self._pool = context.Pool(min(self.jobs, len(work)))
        finally:
            _STATE, _WRITER = None, None
            render._STATE, render._ENV = None, None
        if self._pool is not None:
            self._results = self._pool.imap_unordered(_run, work)
        else:
            self._results = self._per_task()

    def _per_task(self) -> Iterator[Done]:
        from multiprocessing.connection import wait

        while self._procs:
            for ready in wait(list(self._procs)):
                reader: Any = ready
                value: Any
                try:
                    ok, value = reader.recv()
                except EOFError:
                    ok, value = False, RuntimeError("a worker of the build died")
                self._procs.pop(reader).join()
                reader.close()
                if not ok:
                    raise value
                yield value

    def results(self) -> Iterator[Done]:
        if self._results is not None:
            yield from self._results
            return
        try:
            for task in self.work:
                yield run_task(self.state, task)
        finally:
            render._STATE, render._ENV = None, None

    def close(self) -> None:
        """Stop the workers (at once, when the build failed before reading every result)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        for reader, proc in self._procs.items():
            proc.terminate()
            proc.join()
            reader.close()
        self._procs = {}
