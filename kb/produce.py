"""The parallel part of `kb build`: pages and dumps made by worker processes.

Each worker renders its share of the pages (kb.render) or makes data files (kb.gzdumps,
kb.export) and writes the files straight into the staging folder through its own
kb.write.SiteWriter, so no page bytes cross a process line: only each file's Stat comes back.
Moving 500 MB of pages through pipes to one writing process cost more than rendering them.

Page workers are forked once the model is built and inherit it (never pickled), and this
process renders beside them: with two cores, one worker and this process. A forked worker ends
up with its own copy of much of what it reads (reading a Python object writes its reference
count), so each worker fewer is one copy of the model fewer (~1 GB at 100,000 claims). The
data files start as soon as the graph is made, a process a task that exits when its task is
done; the RDF dumps' process, which runs for most of the build, holds nothing of this one
(kb.dumpsproc).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import render
from kb.cache import freeze_for_fork
from kb.dumpsproc import Job, Stale
from kb.forks import SIBLING_WAIT, ChildPipe, wait_for_ends
from kb.render import Extras, Spec
from kb.write import Done, Page, Recording, SiteWriter, WorkerDied, answer, scratch_file

ALTERNATES = {"trig": "ttl", "jsonld": "jsonld"}  # dump → the claims' files made with it


@dataclass(frozen=True)
class Task:
    """One piece of work: a batch of pages, or data files (`dump`: "rdf", "csv", "records-…")."""

    specs: tuple[Spec, ...] = ()
    dump: str = ""
    claims: tuple[str, ...] = ()  # with the trig / jsonld dump: these claims' .ttl / .jsonld


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
_WORK: list[Task] = []  # in a page worker: the tasks, which it is sent the numbers of
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
        # A whole build makes its CSV here: with the cache, its rows are kept for the next
        # build, which would otherwise write every row again (~1 s at 100,000 claims).
        from kb import csvmemo

        put(Page(export.CSV_FILE,
                 csvmemo.claims_csv(state.checked.kb.root, state.checked, g)
                 if state.cache and g.block_keys else export.claims_csv(state.checked, g)))
    elif name == RDF:
        from kb import gzdumps

        gzdumps.write_site_dumps(gzdumps.DumpInput.of(g), task.claims, dumps_cache(state),
                                 put, append)
    elif name.startswith("records-"):  # some claims' .ttl or .jsonld, without a dump
        ext = name.removeprefix("records-")
        for cid in task.claims:
            put(Page(f"claims/{cid}.{ext}", export.record_dump(g, "claim", cid, ext)))
    else:
        raise ValueError(f"no such data file: {name!r}")


def dumps_cache(state: State) -> Path | None:
    """The folder of the dumps' compressed chunks in the user's cache (None: no cache)."""
    from kb.cache import cache_path

    return cache_path(state.checked.kb.root, "dumps").with_suffix("") if state.cache else None


def run_task(state: State, task: Task) -> Done:
    """Make and write the files of one task (in a worker, or in the parent when serial)."""
    if render._STATE is None or render._STATE[0] is not state.model:
        render._STATE, render._ENV = (state.model, state.extras, state.root), None
    rec = Recording(_writer(state))
    # a claim's .ttl and .jsonld come with the dumps (ALTERNATES), not with its page
    if task.dump:
        try:
            _dump(state, task, rec.put, rec.append)
        finally:
            rec.close()
    else:
        for spec in task.specs:
            rec.put(render.render_one(spec))
    return rec.done


def _run(task: Task) -> Done:  # in a worker: the state is the one inherited at the fork
    assert _STATE is not None
    return run_task(_STATE, task)


def _serve(conn: Any) -> None:
    """A page worker: the tasks whose numbers it is sent, until None; each result, or its
    error, sent back."""
    state, work = _STATE, _WORK
    assert state is not None
    while (number := conn.recv()) is not None:
        answer(conn, lambda: run_task(state, work[number]))


def _run_and_send(task: Task, sender: Any, after: int | None = None) -> None:
    """A process of its own for one task: the result, or the error, goes back through the pipe.
    With `after`, it first waits for that pipe end to end (`Workers`: the dumps' spill)."""
    if after is not None:
        wait_for_ends([after], SIBLING_WAIT)
    answer(sender, lambda: _run(task))
    sender.close()


def _spill_and_become(task: Task, sender: Any, spilled: ChildPipe | None = None,
                      by_reference: bool = False) -> None:
    """The RDF dumps' process: the graph written into a file (its blocks read from the graph
    cache here, in the child, where the build has not read them: kb.graphshards) and a new
    interpreter in this process's place, which reads it and answers (kb.dumpsproc); where
    that cannot be done (no room for the file, no interpreter to run), the task is run here,
    as any other.

    `spilled`: a pipe whose write end this process holds until the graph is in the file (the
    exec closes it), for the data tasks forked beside it to wait on. `by_reference`: the
    graphs the graph cache holds are named by their keys there (kb.dumpsproc.graphs_of),
    so that this process, which shares the build's memory and so makes the build copy each
    page it writes meanwhile, lives milliseconds instead of the time to write every block."""
    from kb import dumpsproc, graphcache

    assert _STATE is not None
    fd: int | None = None
    if spilled is not None:
        spilled.child_side()
    graphcache.wait_in_sibling()  # a cold cache's saver reads every block too: not both at once
    try:
        job = _job(_STATE, task, by_reference)
        fd = scratch_file(_STATE.staging.parent)
        dumpsproc.spill(fd, job, dumpsproc.graphs_of(_STATE.extras.graph, job.stored is not None))
        dumpsproc.become(fd, sender.fileno())
    except Exception:  # no room for the file …: the dumps are made here, as any task
        pass
    if fd is not None:  # a spill that failed gives its disk space back now
        os.close(fd)
    if spilled is not None:
        spilled.release()  # the others need not wait for the dumps themselves
    _run_and_send(task, sender)


def _job(state: State, task: Task, by_reference: bool) -> Job:
    from kb import dumpsproc

    return dumpsproc.job_for(state.extras.graph, task.claims, dumps_cache(state),
                             state.staging, by_reference)


def dump_tasks(dumps: list[str], claims: tuple[str, ...]) -> list[Task]:
    """The data files: the RDF dumps and VoID are one task (kb.gzdumps: one pass over the
    graph finds the chunks that changed), which also writes these claims' .ttl and .jsonld;
    the claims' CSV is another."""
    from kb.export import SITE_DUMPS

    rdf = [d for d in dumps if d in SITE_DUMPS or d == "void"]
    return [*([Task(dump=RDF, claims=claims)] if rdf else []),
            *(Task(dump=d) for d in dumps if d not in rdf)]


def page_tasks(todo: list[Spec], jobs: int, records: tuple[str, ...] = (),
               data: tuple[str, ...] = ()) -> list[Task]:
    """Claim pages and the others in batches; `records`: claims whose .ttl and .jsonld are
    made apart from the dumps (kb.render.outputs counts them among the page's files); `data`:
    data files made with the pages (dump_tasks' names), first."""
    claims = [s for s in todo if s.template == "claim.html"]
    others = [s for s in todo if s.template != "claim.html"]
    size = max(25, min(200, len(claims) // (jobs * 8) or 1))
    out = [Task(dump=name) for name in data]
    out += [Task(dump=f"records-{ext}", claims=records[i:i + 500])
            for ext in ALTERNATES.values() for i in range(0, len(records), 500)]
    out += [Task(tuple(claims[i:i + size])) for i in range(0, len(claims), size)]
    out += [Task(tuple(others[i:i + 100])) for i in range(0, len(others), 100)]
    return out


def _received(conn: Any) -> Done:
    """A worker's answer (kb.write.answer): its Done, or its error raised here. One that ended
    without answering raises WorkerDied (a socket with unread data resets rather than ends)."""
    try:
        ok, value = conn.recv()
    except (EOFError, OSError):
        raise WorkerDied("a worker of the build died") from None
    if not ok:
        raise value
    assert isinstance(value, Done)
    return value


class Workers:
    """Tasks run by `jobs` processes, which see `state` as it is now: this one and jobs - 1
    forked at once (the pages), or, `per_task`, one forked for each task (the data files).

    Each worker inherits what exists at its fork; only task numbers and results are pickled.
    When `parallel` is false (small sites, one core, no fork) the tasks run in this process,
    when `results()` is read."""

    def __init__(self, state: State, work: list[Task], jobs: int | None = None,
                 parallel: bool = True, per_task: bool = False, staggered: bool = False,
                 by_reference: bool = False) -> None:
        global _STATE, _WRITER, _WORK
        self.state, self.work = state, work
        self.jobs = jobs or min(2, os.cpu_count() or 1)
        self._results: Iterator[Done] | None = None
        self._procs: dict[Any, Any] = {}  # this end of a worker's connection → its process
        # The RDF dumps' process names the graph cache's blocks by their keys (see
        # _spill_and_become): the build must keep its own blocks (KBGraph.forget) until the
        # dumps are made, to make them again should the cache have changed meanwhile.
        stored = getattr(state.extras.graph, "stored", None)
        self.by_reference = by_reference and stored is not None and bool(stored.graphs)
        self._rdf: tuple[Any, Task] | None = None  # its connection, and its task
        if not (parallel and work and self.jobs > 1
                and "fork" in multiprocessing.get_all_start_methods()):
            return
        _STATE, _WRITER, _WORK = state, None, work
        render._STATE, render._ENV = (state.model, state.extras, state.root), None
        freeze_for_fork()
        try:
            context = multiprocessing.get_context("fork")
            if per_task:
                self._fork_per_task(context, work, staggered)
            else:
                # This process renders too: one copy of the pages the workers read fewer
                # (reading an object writes its reference count, so each forked worker ends up
                # with its own copy of much of the model: ~1 GB at 100,000 claims).
                for _ in range(min(self.jobs - 1, len(work))):
                    mine, theirs = context.Pipe()
                    proc = context.Process(target=_serve, args=(theirs,))
                    proc.start()
                    theirs.close()
                    self._procs[mine] = proc
        except BaseException:  # those started are stopped: no build is left to read them
            self.close()
            raise
        finally:
            _STATE, _WRITER, _WORK = None, None, []
            render._STATE, render._ENV = None, None
        self._results = self._per_task() if per_task else self._shared()

    def _fork_per_task(self, context: Any, work: list[Task], staggered: bool) -> None:
        """A process a task, which exits when its task is done: a pool's idle worker keeps the
        pages it copied from the graph (gigabytes at 100,000 claims) until the build ends.
        All are forked now, never later (see _fill on pagefind).

        `staggered`: the RDF dumps' process (first) reads every block of the graph to write
        them into its file, the others (the claims' CSV without a cache) read the model; they
        start once it has, so that their copies of the build's pages are not all held at once
        (three processes copying while the planning went on made the 100,000-claim edit
        build's peak)."""
        spilled: int | None = None  # the read end the data tasks wait on
        try:
            for task in work:
                if task.dump == RDF and self.by_reference and self._spawn_rdf(task):
                    continue
                reader, sender = context.Pipe(duplex=False)
                pipe: ChildPipe | None = None
                started = False
                try:
                    if task.dump == RDF:
                        if staggered and len(work) > 1 and spilled is None:
                            with suppress(OSError):  # no descriptor left: not staggered
                                pipe = ChildPipe()
                        proc = context.Process(target=_spill_and_become,
                                               args=(task, sender, pipe, self.by_reference))
                        self._rdf = (reader, task)
                    else:
                        proc = context.Process(target=_run_and_send,
                                               args=(task, sender, spilled))
                    proc.start()
                    started = True
                finally:
                    if pipe is not None:  # only the dumps' process holds the write end
                        spilled = pipe.after_fork(started)
                sender.close()
                self._procs[reader] = proc
        finally:
            if spilled is not None:
                os.close(spilled)

    @property
    def forked(self) -> bool:
        """Whether the tasks run in other processes (forked when this was made), not here."""
        return self._results is not None

    def _per_task(self) -> Iterator[Done]:
        from multiprocessing.connection import wait

        while self._procs:
            for ready in wait(list(self._procs)):
                reader: Any = ready
                done: Done | None
                try:
                    done = _received(reader)
                except Stale:  # the graph cache changed under the dumps' process
                    done = self._again()
                finally:  # its task is over, answered or not
                    self._procs.pop(reader).join()
                    reader.close()
                if done is not None:
                    yield done

    def _spawn_rdf(self, task: Task, by_reference: bool = True) -> bool:
        """The RDF dumps' process, started without a fork (kb.dumpsproc.start), handed the
        blocks the graph cache holds by their keys there, or else every block; False when it
        cannot be started."""
        from kb import dumpsproc

        g = self.state.extras.graph
        started = dumpsproc.start(
            _job(self.state, task, by_reference),
            dumpsproc.graphs_of(g, by_reference),
            self.state.staging.parent)
        if started is None:
            return False
        reader, proc = started
        self._procs[reader] = proc
        self._rdf = (reader, task)
        return True

    def _again(self) -> Done | None:
        """After the dumps' process found the graph cache changed (another build of the same
        knowledge base, a cleared cache; it left nothing): a new one handed every block of
        this process's, or the dumps made here. Not forked: pagefind's threads may be running.
        None when a process was started (its answer comes as any other)."""
        assert self._rdf is not None
        task = self._rdf[1]
        self.by_reference = False
        if self._spawn_rdf(task, by_reference=False):
            return None
        return run_task(self.state, task)

    def _shared(self) -> Iterator[Done]:
        """Tasks handed out one at a time, in order, to the workers (two ahead, so that none
        waits while this process renders) and, from the end, to this process."""
        from multiprocessing.connection import wait

        pending = deque(range(len(self.work)))
        owed: dict[Any, int] = {}  # a worker's connection → tasks sent, not answered

        def hand(conn: Any) -> None:
            if pending:
                conn.send(pending.popleft())
                owed[conn] += 1

        for worker in self._procs:
            owed[worker] = 0
            hand(worker)
            hand(worker)
        try:
            while pending or any(owed.values()):
                busy = [conn for conn, n in owed.items() if n]
                for ready in wait(busy, timeout=0 if pending else None):
                    conn: Any = ready
                    done = _received(conn)
                    owed[conn] -= 1
                    yield done
                    hand(conn)
                if pending:
                    yield run_task(self.state, self.work[pending.pop()])
        finally:
            render._STATE, render._ENV = None, None
        for worker, proc in self._procs.items():
            with suppress(OSError):  # one that ended after its last answer needs no telling
                worker.send(None)
            proc.join()
            worker.close()
        self._procs = {}

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
        for reader, proc in self._procs.items():
            proc.terminate()
            proc.join()
            reader.close()
        self._procs = {}
