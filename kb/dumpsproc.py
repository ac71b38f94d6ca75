"""The dumps' process: a new interpreter, fed the graph through a file.

A worker forked from the build shares the build's heap as it was at the fork, and each page of
it that the build writes afterwards is copied, the worker keeping the old one (reading a Python
object writes its reference count). The dumps' worker runs for most of a cold build, beside the
planning and the pages, so at 100,000 claims it ended up the only holder of ~2.1 GB of the
build's old pages. So the process forked for the dumps now only writes the graph's blocks, in
order, into a nameless temporary file beside the site, and replaces itself (exec) with a new
interpreter that reads them back a chunk at a time (kb.gzdumps.stream_dumps). Its result, or
its error, goes back through the connection kb.produce.Workers reads, as a forked worker's does.

What this costs instead: while it writes the file (a few seconds at 100,000 claims) the forked
child copies one page per block it reads (~0.5 GB then); the file takes disk space beside the
site, about the size of the N-Triples dump (1.3 GB at 100,000 claims), and, until the kernel
writes it back, page cache (on a tmpfs, memory); the new interpreter holds one chunk, the VoID
counts (every distinct subject) and the Stat of each file it writes.

After an edit, the build forks nothing for the dumps: it writes the spill file itself, with
each block's key in the graph cache, and without the blocks the cache holds (`graphs_of`,
by_reference: 1 MB rather than 130 MB at 10,000 claims), and starts the new interpreter with
subprocess (`spawn`). A fork, however short the child's life, marks every page of the build
copy-on-write, and the build then took a fault for each page it next wrote: 22,000 while the
model was built at 10,000 claims (0.20 s instead of 0.16 s). A chunk of the dumps whose members
the dumps' cache keeps is known by its blocks' keys (kb.gzdumps), so that process reads only
the blocks of the chunks made again: it copies those out of the graph cache first, a shard at a
time, into a nameless file of its own (`SpillBlocks`: it holds one shard, not the whole cache,
since the dumps want the graphs in IRI order and the shards hold them by a hash of it). Should
the cache no longer hold a block under its key (another build of the same knowledge base, a
cleared cache), the process answers `Stale`, leaving nothing of what it wrote (`make`), and the
build spawns another, handed every block of its own (kb.produce.Workers).

The bytes are those of the dumps made in the build's own process (tested): the same function
makes them from the same blocks in the same order.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kb.write import Done

MAGIC = b"kb-dumps 3\n"  # 2: each graph's head has its block's key ("": none); 3: in 4 bytes
# The new interpreter finds kb as the build did: on the build's sys.path, put first.
BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
        "from kb.dumpsproc import main; main(sys.argv[2:])")
_END = (0).to_bytes(4, "little")  # a graph's IRI is never empty: a zero length ends the file
_REF = 1 << 63  # as a graph's length: no block follows, the graph cache has it under its key


@dataclass(frozen=True)
class Job:
    """What the dumps' process is told besides the graphs (kb.gzdumps.DumpInput's other
    fields, as plain data, and where to write)."""

    base: str  # kb.namespaces.Iris.base
    title: str | None
    example: str | None
    claims: tuple[str, ...]  # whose .ttl and .jsonld to write with the dumps
    folder: str | None  # the dumps' cache (kb.produce.dumps_cache)
    staging: str  # the folder the build writes the site into
    # the graph cache (kb.kbgraph.Stored's folder and key), where the graphs the file names
    # by their key rather than gives are read
    stored: tuple[str, tuple[object, ...]] | None = None
    salt: str = ""  # kb.gzdumps.DumpInput.salt


class Stale(Exception):
    """A block the spill file names is not in the graph cache under its key (the cache was
    changed or removed meanwhile): the build makes the dumps again from its own blocks."""


Graph = tuple[str, str | None, bytes | None]  # IRI, its block's key, the block (None: by key)


def graphs_of(g: object, by_reference: bool = False) -> Iterator[Graph]:
    """The non-empty named graphs in IRI order, each with its block's key in the graph cache
    (None: none) and its block; `by_reference`: no block where the cache holds it
    (kb.kbgraph.Stored), for it to be read there: after one edit the spill file is the keys
    and one block, not the whole graph (130 MB at 10,000 claims)."""
    from kb.export import nonempty
    from kb.gzdumps import block_keys
    from kb.kbgraph import KBGraph

    assert isinstance(g, KBGraph)
    stored, triples, keys = g.stored, g.triples, block_keys(g)
    held = stored.graphs if stored is not None and by_reference else frozenset()
    for name in nonempty(g):
        key = keys.get(name)
        yield name, key, None if key is not None and name in held else triples[name]


def spill(fd: int, job: Job, graphs: Iterable[Graph]) -> None:
    """Write the job and the graphs (graphs_of's) into the file `fd`, from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = pickle.dumps(job)
    with open(fd, "wb", buffering=1 << 20, closefd=False) as fh:
        fh.write(MAGIC + len(head).to_bytes(8, "little") + head)
        for graph, key, block in graphs:
            name, code = graph.encode("utf-8"), (key or "").encode("utf-8")
            size = _REF if block is None else len(block)
            fh.write(len(name).to_bytes(4, "little") + name + len(code).to_bytes(4, "little")
                     + code + size.to_bytes(8, "little"))
            if block is not None:
                fh.write(block)
        fh.write(_END)


def _exactly(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise OSError("the dumps' spill file ends early")
    return data


def read_job(fh: IO[bytes]) -> Job:
    """The job at the start of a spill file (written by this program's `spill`: trusted)."""
    if _exactly(fh, len(MAGIC)) != MAGIC:
        raise OSError("not a spill file of this version of kb")
    job = pickle.loads(_exactly(fh, int.from_bytes(_exactly(fh, 8), "little")))
    if not isinstance(job, Job):
        raise OSError("not a spill file of this version of kb")
    return job


@dataclass(frozen=True)
class Entry:
    graph: str
    key: str | None
    offset: int  # of its block in the spill file; -1: the graph cache has it
    length: int


def read_index(fh: IO[bytes]) -> list[Entry]:
    """The graphs after the job, in order, each with where its block is; no block is read."""
    entries: list[Entry] = []
    while size := int.from_bytes(_exactly(fh, 4), "little"):
        graph = _exactly(fh, size).decode("utf-8")
        key = _exactly(fh, int.from_bytes(_exactly(fh, 4), "little")).decode("utf-8") or None
        length = int.from_bytes(_exactly(fh, 8), "little")
        if length == _REF:
            entries.append(Entry(graph, key, -1, 0))
        else:
            entries.append(Entry(graph, key, fh.tell(), length))
            fh.seek(length, os.SEEK_CUR)
    return entries


class SpillBlocks:
    """The blocks of a spill file's graphs, read when asked for (kb.gzdumps.DumpInput.blocks):
    those the file holds from it; those it names by key out of the graph cache (`stored`),
    copied into a scratch file in `scratch_dir` a shard of the cache at a time, when first
    asked for or said beforehand (`prefetch`: all at once, so each shard is read once; the
    shards hold graphs by a hash of the IRI, and the dumps want them in IRI order). Stale when
    the cache does not hold one under its key: before anything is written, for those said
    beforehand."""

    def __init__(self, fd: int, entries: list[Entry],
                 stored: tuple[str, tuple[object, ...]] | None, scratch_dir: Path) -> None:
        self.fd, self.stored, self.scratch_dir = fd, stored, scratch_dir
        self.held = {e.graph: (e.offset, e.length) for e in entries if e.offset >= 0}
        self.refs = {e.graph: e.key or "" for e in entries if e.offset < 0}
        self.copied: dict[str, tuple[int, int]] = {}
        self._scratch: int | None = None
        self._end = 0

    def prefetch(self, graphs: Iterable[str]) -> None:
        self._copy(graphs)

    def close(self) -> None:
        if self._scratch is not None:
            os.close(self._scratch)
            self._scratch = None

    def _copy(self, graphs: Iterable[str]) -> None:
        from kb.graphshards import copy_blocks
        from kb.write import scratch_file

        wanted = {g: self.refs[g] for g in graphs if g in self.refs and g not in self.copied}
        if not wanted:
            return
        if self.stored is None:
            raise Stale(f"no graph cache to read the block of {next(iter(wanted))} from")
        if self._scratch is None:
            self._scratch = scratch_file(self.scratch_dir)
        where, missing = copy_blocks(*self.stored, wanted, self._scratch, self._end)
        if missing:
            raise Stale(f"the graph cache no longer holds the block of {missing[0]}")
        self.copied.update(where)
        self._end = max((at + n for at, n in where.values()), default=self._end)

    def __call__(self, graphs: Sequence[str]) -> dict[str, bytes]:
        self._copy(graphs)
        out: dict[str, bytes] = {}
        for graph in graphs:
            if graph in self.held:
                offset, length = self.held[graph]
                out[graph] = os.pread(self.fd, length, offset)
            else:
                offset, length = self.copied[graph]
                assert self._scratch is not None
                out[graph] = os.pread(self._scratch, length, offset)
        return out


def become(fd: int, reply: int) -> None:
    """Replace this (forked) process with a new interpreter that makes the dumps from the
    spill file `fd` and answers through the connection `reply`; returns only when it cannot
    (no interpreter to run), for the caller to make them itself."""
    if not sys.executable:
        return
    os.set_inheritable(fd, True)
    os.set_inheritable(reply, True)
    # multiprocessing gave this child no standard input; the new interpreter gets /dev/null.
    # Nothing is flushed: what this copy of the build's buffers holds, the build prints.
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        os.execv(sys.executable, _command(fd, reply))
    except OSError:
        return


def _command(fd: int, reply: int) -> list[str]:
    # -P: not the current folder first on sys.path (a json.py there would be imported)
    return [sys.executable, "-P", "-c", BOOT, json.dumps(sys.path), str(fd), str(reply)]


class Spawned:
    """The dumps' process started from the build without a fork, as multiprocessing's Process
    is used by kb.produce.Workers (join, terminate)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def join(self) -> None:
        self.proc.wait()

    def terminate(self) -> None:
        self.proc.terminate()


def job_for(g: object, claims: tuple[str, ...], folder: Path | None, staging: Path,
            by_reference: bool) -> Job:
    """The job of the graph `g`'s dumps (and these claims' .ttl and .jsonld), to be written
    into `staging` with the chunks' cache `folder`; `by_reference`: with where the graph
    cache is, for the graphs the spill names by their keys there."""
    from kb import gzdumps
    from kb.kbgraph import KBGraph

    assert isinstance(g, KBGraph)
    stored = g.stored if by_reference else None
    # DumpInput.of's fields, without its list of every graph (7 ms at 10,000 claims)
    return Job(g.iris.base, *gzdumps.about(g), claims,
               None if folder is None else str(folder), str(staging),
               None if stored is None else (stored.folder, stored.key), gzdumps.key_salt(g))


def start(job: Job, graphs: Iterable[Graph], scratch: Path
          ) -> tuple[Any, Spawned] | None:
    """The dumps' process, spawned (`spawn`) from a spill file of the job and `graphs` (see
    `spill`) written here, in `scratch`: the connection its answer comes through, and the
    process; None when it cannot be started (no room for the file, no interpreter)."""
    from multiprocessing import Pipe

    from kb.write import scratch_file

    reader, sender = Pipe(duplex=False)
    fd: int | None = None
    proc = None
    try:
        fd = scratch_file(scratch)
        spill(fd, job, graphs)
        proc = spawn(fd, sender.fileno())
    except OSError:
        proc = None
    except BaseException:
        reader.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
        sender.close()
    if proc is None:
        reader.close()
        return None
    return reader, proc


def spawn(fd: int, reply: int) -> Spawned | None:
    """A new interpreter that makes the dumps from the spill file `fd` and answers through the
    connection `reply`, started without forking the build (subprocess uses vfork where it
    can): a fork marks every page of the build's memory copy-on-write, and the build then
    pays a fault for each page it next writes, however soon the child goes (see the module's
    docstring). None when it cannot be started."""
    if not sys.executable:
        return None
    try:
        return Spawned(subprocess.Popen(_command(fd, reply), pass_fds=(fd, reply),
                                        stdin=subprocess.DEVNULL))
    except OSError:
        return None


def make(fd: int) -> Done:
    """The dumps of the spill file `fd`, written into its job's staging folder: the
    kb.write.Done. On Stale, nothing it wrote is left (the build makes them again)."""
    from kb import gzdumps
    from kb.namespaces import Iris
    from kb.write import Recording, SiteWriter

    with open(fd, "rb", buffering=1 << 20, closefd=False) as fh:
        fh.seek(0)
        job = read_job(fh)
        entries = read_index(fh)
    # keys from the graph cache mean something only under its key (kb.gzdumps.DumpInput.salt)
    assert job.stored is None or job.salt, "a job naming the graph cache needs its salt"
    blocks = SpillBlocks(fd, entries, job.stored, Path(job.staging).parent)
    rec = Recording(SiteWriter(Path(job.staging)))
    try:
        given = gzdumps.DumpInput(Iris(job.base), [(e.graph, e.key) for e in entries],
                                  blocks, job.title, job.example, job.salt, blocks.prefetch)
        del entries
        gzdumps.write_site_dumps(given, job.claims, Path(job.folder) if job.folder else None,
                                 rec.put, rec.append)
    except Stale:
        rec.writer.discard()
        raise
    finally:
        rec.close()
        blocks.close()
    rec.done.fresh = True
    return rec.done


def main(argv: list[str]) -> None:
    """The new interpreter: the dumps from the spill file (`make`); the kb.write.Done, or the
    error, sent back."""
    from multiprocessing.connection import Connection

    from kb.write import answer

    conn = Connection(int(argv[1]))
    answer(conn, lambda: make(int(argv[0])))
    conn.close()
