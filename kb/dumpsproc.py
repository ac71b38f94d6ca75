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

After an edit, the build forks nothing for the dumps: it writes the spill file itself, naming
each block the graph cache holds by its key there (`by_reference`: 1 MB rather than 130 MB at
10,000 claims), and starts the new interpreter with subprocess (`spawn`). That process first
copies those blocks out of the cache a shard at a time into a nameless file of its own
(`fetch`: it holds one shard, not the whole cache, since the dumps want the graphs in IRI order
and the shards hold them by a hash of it), then reads them back in order. A fork, however short
the child's life, marks every page of the build copy-on-write, and the build then took a fault
for each page it next wrote: 22,000 while the model was built at 10,000 claims (0.20 s instead
of 0.16 s). Should the cache no longer hold a block under its key (another build of the same
knowledge base, a cleared cache), the process answers `Stale` before it writes anything, and
the build spawns another, handed every block of its own (kb.produce.Workers).

The bytes are those of the dumps made in the build's own process (tested): the same function
makes them from the same blocks in the same order.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MAGIC = b"kb-dumps 1\n"
# The new interpreter finds kb as the build did: on the build's sys.path, put first.
BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
        "from kb.dumpsproc import main; main(sys.argv[2:])")
_END = (0).to_bytes(4, "little")  # a graph's IRI is never empty: a zero length ends the file
_REF = 1 << 63  # in a graph's length: what follows is its key in the graph cache, not its block


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


class Stale(Exception):
    """A block the spill file names is not in the graph cache under its key (the cache was
    changed or removed meanwhile): the build makes the dumps again from its own blocks."""


def by_reference(g: object) -> Iterator[tuple[str, bytes | str]]:
    """The non-empty named graphs in IRI order, each as its block or, when the graph cache
    holds the block (kb.kbgraph.Stored), as its key there: after one edit the spill file is
    the keys and one block, not the whole graph (130 MB at 10,000 claims)."""
    from kb.export import nonempty
    from kb.kbgraph import KBGraph

    assert isinstance(g, KBGraph)
    stored, keys, triples = g.stored, g.block_keys, g.triples
    held = stored.graphs if stored is not None else frozenset()
    for name in nonempty(g):
        key = keys.get(name) if name in held else None
        yield name, triples[name] if key is None else key


def spill(fd: int, job: Job, graphs: Iterable[tuple[str, bytes | str]]) -> None:
    """Write the job and the graphs (IRI, block, or its key in `job.stored`) into the file
    `fd`, from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = pickle.dumps(job)
    with open(fd, "wb", buffering=1 << 20, closefd=False) as fh:
        fh.write(MAGIC + len(head).to_bytes(8, "little") + head)
        for graph, block in graphs:
            name = graph.encode("utf-8")
            data = block if isinstance(block, bytes) else block.encode("utf-8")
            size = len(data) if isinstance(block, bytes) else _REF | len(data)
            fh.write(len(name).to_bytes(4, "little") + name + size.to_bytes(8, "little"))
            fh.write(data)
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


def _heads(fh: IO[bytes]) -> Iterator[tuple[str, int]]:
    """Each graph's IRI and length field after the job; the caller reads or skips its data
    before asking for the next."""
    while size := int.from_bytes(_exactly(fh, 4), "little"):
        yield _exactly(fh, size).decode("utf-8"), int.from_bytes(_exactly(fh, 8), "little")


def read_graphs(fh: IO[bytes], stored: Callable[[str], bytes] | None = None
                ) -> Iterator[tuple[str, bytes]]:
    """The graphs after the job, one at a time, in the order they were written; a graph given
    by its key is read with `stored` (see `fetch`)."""
    for graph, length in _heads(fh):
        data = _exactly(fh, length & ~_REF)
        if not length & _REF:
            yield graph, data
        elif stored is None:
            raise Stale(f"no graph cache to read the block of {graph} from")
        else:
            yield graph, stored(graph)


def references(fh: IO[bytes]) -> dict[str, str]:
    """The graphs after the job that are given by their keys: graph IRI → key."""
    refs: dict[str, str] = {}
    for graph, length in _heads(fh):
        if length & _REF:
            refs[graph] = _exactly(fh, length & ~_REF).decode("utf-8")
        else:
            fh.seek(length, os.SEEK_CUR)
    return refs


def fetch(folder: str, key: tuple[object, ...], refs: dict[str, str],
          scratch: int) -> Callable[[str], bytes]:
    """Copy the blocks `refs` names out of the graph cache in `folder` (read under `key`), a
    shard at a time, into the file `scratch`; then each is read back from there by its graph
    IRI, in whatever order the dumps want them (IRI order: shards hold graphs by a hash of the
    IRI, so reading the cache in that order would hold every shard at once). Stale, before
    anything is written, when the cache does not hold one of them under its key."""
    from kb.graphshards import copy_blocks

    where, missing = copy_blocks(folder, key, refs, scratch)
    if missing:
        raise Stale(f"the graph cache no longer holds the block of {missing[0]}")

    def block(graph: str) -> bytes:
        offset, length = where[graph]
        return os.pread(scratch, length, offset)
    return block


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
    given = gzdumps.DumpInput.of(g)
    stored = g.stored if by_reference else None
    return Job(given.iris.base, given.title, given.example, claims,
               None if folder is None else str(folder), str(staging),
               None if stored is None else (stored.folder, stored.key))


def start(job: Job, graphs: Iterable[tuple[str, bytes | str]], scratch: Path
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


def main(argv: list[str]) -> None:
    """The new interpreter: the dumps from the spill file, written into the staging folder; the
    kb.write.Done, or the error, sent back."""
    from multiprocessing.connection import Connection

    from kb import gzdumps
    from kb.namespaces import Iris
    from kb.write import Done, Recording, SiteWriter, answer, scratch_file

    def dumps() -> Done:
        with open(int(argv[0]), "rb", buffering=1 << 20) as fh:
            fh.seek(0)
            job = read_job(fh)
            stored = None
            if job.stored is not None:
                start = fh.tell()
                scratch = scratch_file(Path(job.staging).parent)  # closed with the process
                stored = fetch(*job.stored, references(fh), scratch)
                fh.seek(start)
            rec = Recording(SiteWriter(Path(job.staging)))
            try:
                given = gzdumps.DumpInput(Iris(job.base), read_graphs(fh, stored), job.title,
                                          job.example)
                gzdumps.write_site_dumps(given, job.claims,
                                         Path(job.folder) if job.folder else None,
                                         rec.put, rec.append)
            finally:
                rec.close()
        rec.done.fresh = True
        return rec.done

    conn = Connection(int(argv[1]))
    answer(conn, dumps)
    conn.close()
