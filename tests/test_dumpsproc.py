"""kb.dumpsproc: the RDF dumps made by a new interpreter, fed the graph through a file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from graph_data import RICH

from kb import dumpsproc, gzdumps, produce
from kb.check import check
from kb.forks import ChildPipe
from kb.graph import build_graph
from kb.kbgraph import KBGraph
from kb.produce import RDF, State, Task, Workers, run_task
from kb.render import Extras
from kb.write import scratch_file

from conftest import MakeKB


@pytest.fixture
def g(make_kb: MakeKB) -> KBGraph:
    return build_graph(check(make_kb(RICH)))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _state(g: KBGraph, staging: Path) -> State:
    staging.mkdir(parents=True)
    extras = Extras()
    extras.graph = g
    return State(None, extras, None, staging)


def _blocks(graphs: list[dumpsproc.Graph]) -> dict[str, bytes]:
    return {name: block for name, _key, block in graphs if block is not None}


def test_a_spill_file_gives_back_the_job_and_the_graphs(g: KBGraph, tmp_path: Path) -> None:
    given = gzdumps.DumpInput.of(g)
    graphs = list(dumpsproc.graphs_of(g))
    assert [(name, key) for name, key, _block in graphs] == list(given.graphs)
    assert all(block is not None for _name, _key, block in graphs)
    job = dumpsproc.Job(g.iris.base, given.title, given.example, ("a", "b"), None, "/x")
    folder = tmp_path / "beside-the-site"
    folder.mkdir()
    fd = scratch_file(folder)
    try:
        dumpsproc.spill(fd, job, graphs)
        assert os.listdir(folder) == []  # the file has no name: nothing is left behind
        with open(fd, "r+b", closefd=False) as fh:
            fh.seek(0)
            assert dumpsproc.read_job(fh) == job
            entries = dumpsproc.read_index(fh)
            assert [(e.graph, e.key) for e in entries] == list(given.graphs)
            blocks = dumpsproc.SpillBlocks(fd, entries, None, folder)
            names = [e.graph for e in reversed(entries)]  # in any order
            assert blocks(names) == _blocks(graphs)
            fh.truncate(len(dumpsproc.MAGIC) + 3)
            fh.seek(0)
            with pytest.raises(OSError, match="ends early"):
                dumpsproc.read_job(fh)
            fh.seek(0)
            fh.write(b"not a spill file")
            fh.seek(0)
            with pytest.raises(OSError, match="not a spill file"):
                dumpsproc.read_job(fh)
    finally:
        os.close(fd)


def _made(g: KBGraph, tmp_path: Path, name: str, parallel: bool, by_reference: bool = False
          ) -> tuple[dict[str, bytes], bool]:
    claims = tuple(sorted(g.assessments))[:3]
    state = _state(g, tmp_path / name / "staging")
    task = Task(dump=RDF, claims=claims)
    if not parallel:
        done = run_task(state, task)
        return _files(state.staging), done.fresh
    workers = Workers(state, [task], jobs=2, per_task=True, by_reference=by_reference)
    try:
        assert by_reference == any(isinstance(p, dumpsproc.Spawned)
                                   for p in workers._procs.values())
        (done,) = list(workers.results())
    finally:
        workers.close()
    files = _files(state.staging)
    assert sorted(done.stats) == sorted(files) and done.bytes == sum(map(len, files.values()))
    return files, done.fresh


def test_the_dumps_process_is_a_new_interpreter_and_writes_what_the_build_would(
        g: KBGraph, tmp_path: Path) -> None:
    here, _ = _made(g, tmp_path, "here", parallel=False)
    there, fresh = _made(g, tmp_path, "there", parallel=True)
    assert fresh  # exec'd: it holds nothing of the build's heap
    assert there == here
    assert {"data/kb.ttl.gz", "data/kb.jsonld.gz", "data/void.ttl"} <= set(there)
    assert sum(p.endswith((".ttl", ".jsonld")) and p.startswith("claims/") for p in there) == 6
    assert os.listdir(tmp_path / "there") == ["staging"]  # and its spill file is gone


@pytest.mark.parametrize("broken", ["no interpreter", "no room for the file"])
def test_when_it_cannot_be_the_fork_makes_the_dumps(
        g: KBGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    here, _ = _made(g, tmp_path, "here", parallel=False)
    if broken == "no interpreter":  # the fork inherits it: `become` cannot exec
        monkeypatch.setattr(sys, "executable", "")
    else:
        def full(folder: Path) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(produce, "scratch_file", full)
    there, fresh = _made(g, tmp_path, "there", parallel=True)
    assert not fresh and there == here


@pytest.fixture
def cached(make_kb: MakeKB) -> KBGraph:
    """A graph whose record blocks were all read from the graph cache (a second build)."""
    root = make_kb(RICH)
    build_graph(check(root))  # fills the cache
    g = build_graph(check(root))
    assert g.stored is not None and len(g.stored.graphs) == len(g.graphs) - 2  # not vocab, kb.toml
    return g


def _spilled(g: KBGraph, job: dumpsproc.Job, graphs: list[dumpsproc.Graph], folder: Path
             ) -> tuple[int, list[dumpsproc.Entry]]:
    fd = scratch_file(folder)
    dumpsproc.spill(fd, job, graphs)
    with open(fd, "rb", closefd=False) as fh:
        fh.seek(0)
        assert dumpsproc.read_job(fh) == job
        return fd, dumpsproc.read_index(fh)


def test_graphs_the_cache_holds_are_spilled_by_their_keys(cached: KBGraph,
                                                          tmp_path: Path) -> None:
    assert cached.stored is not None
    graphs = list(dumpsproc.graphs_of(cached))
    refs = list(dumpsproc.graphs_of(cached, by_reference=True))
    assert [(name, key) for name, key, _ in refs] == [(name, key) for name, key, _ in graphs]
    named = {name: key for name, key, block in refs if block is None}
    assert set(named) == cached.stored.graphs & {name for name, _, _ in graphs}
    job = dumpsproc.Job(cached.iris.base, None, None, (), None, "/x",
                        (cached.stored.folder, cached.stored.key))
    full, _ = _spilled(cached, job, graphs, tmp_path)
    fd, entries = _spilled(cached, job, refs, tmp_path)
    try:
        saved = sum(len(block or b"") for name, _, block in graphs if name in named)
        assert os.fstat(fd).st_size < os.fstat(full).st_size - saved + 10 * len(named)
        assert {e.graph for e in entries if e.offset < 0} == set(named)
        blocks = dumpsproc.SpillBlocks(fd, entries, job.stored, tmp_path)
        half = sorted(named)[::2]
        blocks.prefetch(half)  # copied out of the cache now, the others when asked for
        assert set(blocks.copied) == set(half)
        assert blocks([e.graph for e in entries]) == _blocks(graphs)
        assert set(blocks.copied) == set(named)
        with pytest.raises(dumpsproc.Stale):  # the cache's files under another key
            dumpsproc.SpillBlocks(fd, entries, (cached.stored.folder, ("another",)),
                                  tmp_path).prefetch(named)
        moved = [dumpsproc.Entry(e.graph, "another" if e.offset < 0 else e.key, e.offset,
                                 e.length) for e in entries]  # a graph under another key
        with pytest.raises(dumpsproc.Stale):
            dumpsproc.SpillBlocks(fd, moved, job.stored, tmp_path)(sorted(named)[:1])
        with pytest.raises(dumpsproc.Stale, match="no graph cache"):
            dumpsproc.SpillBlocks(fd, entries, None, tmp_path)(sorted(named)[:1])
    finally:
        os.close(fd)
        os.close(full)


def test_the_dumps_process_reads_no_block_of_a_chunk_the_cache_keeps(
        cached: KBGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every chunk in the dumps' cache the spawned process needs no block, so a graph
    cache it cannot read costs nothing; when a chunk's file turns out damaged it must read
    blocks, and, finding the graph cache changed, it leaves nothing of what it wrote."""
    monkeypatch.setattr(gzdumps, "SPAN", 2)  # many chunks
    assert cached.stored is not None
    dumps_cache = tmp_path / "dumps-cache"
    here, _ = _made(cached, tmp_path, "here", parallel=False)
    gzdumps.site_dumps(cached, (), dumps_cache)  # fills the dumps' cache
    given = gzdumps.DumpInput.of(cached)
    refs = list(dumpsproc.graphs_of(cached, by_reference=True))
    for name, unreadable in [("there", False), ("damaged", True)]:
        staging = tmp_path / name
        staging.mkdir()
        job = dumpsproc.Job(cached.iris.base, given.title, given.example, (), str(dumps_cache),
                            str(staging), (cached.stored.folder, ("another",)), given.salt)
        if unreadable:
            # a chunk with a block the graph cache holds (not only the two keyless graphs,
            # which the spill file holds itself): by its name, not by where a hash sorts it
            held = {name for name, _key, block in refs if block is None}
            chunk = next(c for c in gzdumps.chunks(given.graphs, given.blocks, given.salt)
                         if held & set(c.graphs))
            member = dumps_cache / gzdumps.Store(dumps_cache, cached.iris.prefixes()).name(
                "nt", chunk)
            assert member.is_file()
            member.write_bytes(b"damaged")
        fd, _ = _spilled(cached, job, refs, tmp_path)
        try:
            if not unreadable:
                done = dumpsproc.make(fd)
                assert _files(staging) == {p: b for p, b in here.items()
                                           if p.startswith("data/")}
                assert sorted(done.stats) == sorted(_files(staging))
            else:
                with pytest.raises(dumpsproc.Stale):
                    dumpsproc.make(fd)
                assert _files(staging) == {}
        finally:
            os.close(fd)


def test_after_an_edit_the_dumps_process_is_spawned_and_reads_the_cache(
        cached: KBGraph, tmp_path: Path) -> None:
    here, _ = _made(cached, tmp_path, "here", parallel=False)
    there, fresh = _made(cached, tmp_path, "there", parallel=True, by_reference=True)
    assert fresh and there == here


def test_when_the_cache_changed_meanwhile_the_dumps_are_made_again(
        cached: KBGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key the cache no longer holds (another build of the same knowledge base, a cleared
    cache) makes the spawned process fail before it writes anything; a new one is then
    spawned and handed every block of the build's, as without the cache."""
    here, _ = _made(cached, tmp_path, "here", parallel=False)
    last = [name for name, _key, block in dumpsproc.graphs_of(cached, by_reference=True)
            if block is None][-1]
    cached.block_keys[last] = "a key the cache does not hold"
    spawned: list[bool] = []
    spawn_rdf = Workers._spawn_rdf

    def spy(self: Workers, task: Task, by_reference: bool = True) -> bool:
        spawned.append(by_reference)
        return spawn_rdf(self, task, by_reference)

    monkeypatch.setattr(Workers, "_spawn_rdf", spy)
    there, fresh = _made(cached, tmp_path, "there", parallel=True, by_reference=True)
    assert spawned == [True, False] and fresh and there == here


def test_the_scratch_file_has_no_name_without_o_tmpfile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    fd = scratch_file(tmp_path)
    try:
        os.write(fd, b"data")
        assert os.listdir(tmp_path) == [] and os.pread(fd, 4, 0) == b"data"
    finally:
        os.close(fd)


def test_an_error_in_the_dumps_process_reaches_the_build(g: KBGraph, tmp_path: Path) -> None:
    state = _state(g, tmp_path / "staging")
    (state.staging / "data").mkdir()
    (state.staging / "data" / "void.ttl").write_text("already here")  # refused: written twice
    workers = Workers(state, [Task(dump=RDF)], jobs=2, per_task=True)
    try:
        with pytest.raises(Exception, match=r"refusing to write 'data/void\.ttl' twice"):
            list(workers.results())
    finally:
        workers.close()


class _Saver:
    """A stand-in for the graph cache's saver (kb.graphcache): a child that alone holds the
    write end of the pipe in graphcache._ENDS, and exits when told to. As GraphCache._fork
    does, this process closes its copy of the write end at once: processes forked afterwards
    must not hold it, or the pipe would not end with the saver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from kb import graphcache

        pipe = ChildPipe()
        self.go_r, self.go_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the saver: wait for a byte, then exit (closing the write end)
            try:
                pipe.child_side()
                os.read(self.go_r, 1)
            finally:
                os._exit(0)
        end = pipe.after_fork(True)
        assert end is not None
        os.close(self.go_r)
        self.end = end
        monkeypatch.setattr(graphcache, "_ENDS", [end])

    def end_it(self) -> None:
        if self.pid:
            os.write(self.go_w, b"x")  # a byte, not an end: the workers hold go_w too
            os.waitpid(self.pid, 0)
            self.pid = 0

    def close(self) -> None:
        self.end_it()
        os.close(self.go_w)
        os.close(self.end)


def test_the_dumps_process_waits_for_the_graph_cache_saver(g: KBGraph, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read every block: the dumps' process starts only once a saver has ended (its pipe
    reads as ended), so that their copies of the build's pages are not held at once."""
    import time
    from multiprocessing.connection import wait

    saver = _Saver(monkeypatch)
    state = _state(g, tmp_path / "staging")
    workers = Workers(state, [Task(dump=RDF, claims=())], jobs=2, per_task=True)
    try:
        time.sleep(1.0)
        assert _files(state.staging) == {}  # still waiting: nothing written
        assert not wait(list(workers._procs), timeout=0)
        saver.end_it()
        start = time.monotonic()
        (done,) = list(workers.results())
        assert time.monotonic() - start < 60  # not the wait's time limit (120 s)
    finally:
        saver.close()
        workers.close()
    assert "data/kb.nt.gz" in done.stats


@pytest.mark.parametrize("staggered", [True, False])
def test_the_other_data_tasks_start_once_the_graph_is_spilled(g: KBGraph, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              staggered: bool) -> None:
    """The claims' CSV (after an edit) is forked beside the dumps' process: `staggered` (large
    knowledge bases), it starts once the graph is in the dumps' file, not while that process
    copies the build's pages; else at once."""
    import time

    saver = _Saver(monkeypatch)  # the dumps' process waits for it, and so cannot spill yet
    state = _state(g, tmp_path / "staging")
    claim = sorted(g.assessments)[0]
    work = [Task(dump=RDF, claims=()), Task(dump="records-ttl", claims=(claim,))]
    workers = Workers(state, work, jobs=2, per_task=True, staggered=staggered)
    try:
        time.sleep(1.0)
        # staggered, the records' task waits for the spill too
        assert list(_files(state.staging)) == ([] if staggered else [f"claims/{claim}.ttl"])
        saver.end_it()
        start = time.monotonic()
        done = list(workers.results())
        assert time.monotonic() - start < 60  # not the wait's time limit (120 s)
    finally:
        saver.close()
        workers.close()
    assert sorted(p for d in done for p in d.stats if p.startswith("claims/")) == [
        f"claims/{claim}.ttl"]


def test_a_dumps_process_that_cannot_be_made_leaves_no_descriptor(
        g: KBGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing.context

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    state = _state(g, tmp_path / "staging")
    work = [Task(dump=RDF, claims=()), Task(dump="records-ttl", claims=())]
    before = sorted(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(multiprocessing.context.ForkContext, "Process", refused)
    with pytest.raises(OSError, match="unavailable"):
        Workers(state, work, jobs=2, per_task=True, staggered=True)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_the_blocks_of_claims_whose_records_are_written_are_copied_before_anything_is(
        cached: KBGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks the dumps' cache keeps, but holding claims whose .ttl and .jsonld are written,
    need their blocks: all are copied out of the graph cache at once, before anything is
    written, so that a changed graph cache is found (Stale) while nothing is to be undone."""
    from kb import graphshards
    from kb.write import SiteWriter

    monkeypatch.setattr(gzdumps, "SPAN", 2)  # many chunks
    assert cached.stored is not None
    dumps_cache = tmp_path / "dumps-cache"
    gzdumps.site_dumps(cached, (), dumps_cache)  # every chunk kept
    given = gzdumps.DumpInput.of(cached)
    chunks = list(gzdumps.chunks(given.graphs, given.blocks, given.salt))
    claims = [name for chunk in chunks for name in chunk.graphs if "/claim/" in name]
    first, last = claims[0], claims[-1]
    assert not {first, last} <= set(next(c for c in chunks if first in c.graphs).graphs)
    ids = tuple(sorted(cid for cid in cached.assessments
                       if cached.iris.graph("claim", cid) in (first, last)))
    assert len(ids) == 2
    calls: list[int] = []
    copy = graphshards.copy_blocks

    def counted(*args: object) -> object:
        calls.append(len(args[2]))  # type: ignore[arg-type]
        return copy(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(graphshards, "copy_blocks", counted)
    refs = list(dumpsproc.graphs_of(cached, by_reference=True))
    held = {name for name, _key, block in refs if block is None}
    wanted = {g for c in chunks if first in c.graphs or last in c.graphs for g in c.graphs}

    def spilled(name: str, key: tuple[object, ...]) -> tuple[int, Path]:
        assert cached.stored is not None
        staging = tmp_path / name
        staging.mkdir()
        job = dumpsproc.Job(cached.iris.base, given.title, given.example, ids, str(dumps_cache),
                            str(staging), (cached.stored.folder, key), given.salt)
        return _spilled(cached, job, refs, tmp_path)[0], staging

    fd, staging = spilled("good", cached.stored.key)
    try:
        done = dumpsproc.make(fd)
    finally:
        os.close(fd)
    assert calls == [len(wanted & held)]  # both chunks' blocks, in one pass over the shards
    assert {f"claims/{cid}.{ext}" for cid in ids for ext in ("ttl", "jsonld")} <= set(done.stats)

    made: list[str] = []
    create = SiteWriter._create

    def spy(self: SiteWriter, path: str) -> tuple[str, int]:
        made.append(path)
        return create(self, path)

    monkeypatch.setattr(SiteWriter, "_create", spy)
    fd, staging = spilled("stale", ("another",))
    try:
        with pytest.raises(dumpsproc.Stale):
            dumpsproc.make(fd)
    finally:
        os.close(fd)
    assert made == [] and _files(staging) == {}  # nothing written, nothing to undo


def test_a_job_says_what_the_graph_s_dump_input_says(cached: KBGraph, tmp_path: Path) -> None:
    """job_for takes DumpInput.of's fields without making its list of graphs: the same."""
    given = gzdumps.DumpInput.of(cached)
    assert cached.stored is not None and given.title and given.example and given.salt
    for by_reference in (True, False):
        job = dumpsproc.job_for(cached, ("a",), tmp_path / "c", tmp_path / "s", by_reference)
        assert (job.base, job.title, job.example, job.salt) == (
            given.iris.base, given.title, given.example, given.salt)
        assert job.stored == ((cached.stored.folder, cached.stored.key) if by_reference
                              else None)
