"""The parallel part of `kb build`: pages and dumps made by worker processes.

Each worker renders its share of the pages (kb.render) or makes one dump (kb.export) and writes
the files straight into the staging folder through its own kb.write.SiteWriter, so no page bytes
cross a process line: only each file's Stat comes back. Moving 500 MB of pages through pipes to
one writing process cost more than rendering them. The workers are forked after the model and
the graph are built and inherit them (never pickled); the dumps run beside the pages, so both
cores stay busy.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb import render
from kb.render import Extras, Spec
from kb.write import Page, SiteWriter, Stat

PARALLEL_FROM = 400  # pages; below this, a process pool costs more than it saves
ALTERNATES = {"trig": "ttl", "jsonld": "jsonld"}  # dump → the claims' files made with it


@dataclass(frozen=True)
class Task:
    """One piece of work: a batch of pages, or one data file (`dump`: a format, csv or void)."""

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


_STATE: State | None = None
_WRITER: SiteWriter | None = None


def _writer() -> SiteWriter:
    global _WRITER
    assert _STATE is not None
    if _WRITER is None or _WRITER.staging != _STATE.staging:
        _WRITER = SiteWriter(_STATE.staging)
    return _WRITER


def dump_paths(extras: Extras) -> list[str]:
    return [path for path, _label, _media in extras.downloads]


def _dump(task: Task) -> list[Page]:
    from kb import export

    assert _STATE is not None
    g, name = _STATE.extras.graph, task.dump
    if name == "csv":
        return [Page("data/claims.csv", export.claims_csv(_STATE.checked, g))]
    if name == "void":
        return [Page("data/void.ttl", export.void(g))]
    if name in ALTERNATES:
        data, records = export.dump_and_records(g, name, task.claims)
        ext = ALTERNATES[name]
        return [Page(export.DUMP_FILES[name], data),
                *(Page(f"claims/{cid}.{ext}", records[cid]) for cid in sorted(records))]
    return [Page(export.DUMP_FILES[name], export.dump(g, name))]


def run_task(task: Task) -> Done:
    """Make and write the files of one task (in a worker, or in the parent when serial)."""
    writer = _writer()
    done = Done()
    # a claim's .ttl and .jsonld come with the dumps (ALTERNATES), not with its page
    pages = _dump(task) if task.dump else [render.render_one(s) for s in task.specs]
    for page in pages:
        writer.write(page)
        done.stats[page.path] = writer.stats[page.path]
        done.bytes += len(page.data)
    return done


def tasks(todo: list[Spec], dumps: list[str], jobs: int, alternates: bool = True) -> list[Task]:
    """The dumps first (the longest tasks), then claim pages and the others in batches.

    With `alternates`, the trig and jsonld dumps also write the .ttl and .jsonld of each claim
    whose page is rendered (kb.render.outputs counts them among the page's files)."""
    claims = [s for s in todo if s.template == "claim.html"]
    others = [s for s in todo if s.template != "claim.html"]
    size = max(25, min(200, len(claims) // (jobs * 8) or 1))
    ids = tuple(dict(s.extra)["id"] for s in claims) if alternates else ()
    out = [Task(dump=d, claims=ids if d in ALTERNATES else ()) for d in dumps]
    out += [Task(tuple(claims[i:i + size])) for i in range(0, len(claims), size)]
    out += [Task(tuple(others[i:i + 100])) for i in range(0, len(others), 100)]
    return out


def produce(state: State, work: list[Task], jobs: int | None = None,
            parallel_from: int = PARALLEL_FROM) -> Iterator[Done]:
    """Run every task, on `jobs` worker processes when there are enough pages to pay for them."""
    global _STATE, _WRITER
    _STATE, _WRITER = state, None
    render._STATE, render._ENV = (state.model, state.extras, state.root), None
    pages = sum(len(t.specs) for t in work)
    jobs = jobs or min(2, os.cpu_count() or 1)
    try:
        state.model.warm()  # work every process would otherwise repeat after the fork
        if jobs > 1 and pages >= parallel_from and "fork" in \
                multiprocessing.get_all_start_methods():
            gc.collect()
            gc.freeze()  # the workers' collector would unshare the model's pages (CoW)
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                yield from pool.imap_unordered(run_task, work)
        else:
            for task in work:
                yield run_task(task)
    finally:
        gc.unfreeze()
        _STATE, _WRITER = None, None
        render._STATE, render._ENV = None, None
