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

The bytes are those of the dumps made in the build's own process (tested): the same function
makes them from the same blocks in the same order.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAGIC = b"kb-dumps 1\n"
# The new interpreter finds kb as the build did: on the build's sys.path, put first.
BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
        "from kb.dumpsproc import main; main(sys.argv[2:])")
_END = (0).to_bytes(4, "little")  # a graph's IRI is never empty: a zero length ends the file


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


def spill(fd: int, job: Job, graphs: Iterable[tuple[str, bytes]]) -> None:
    """Write the job and the graphs (IRI, block) into the file `fd`, from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = pickle.dumps(job)
    with open(fd, "wb", buffering=1 << 20, closefd=False) as fh:
        fh.write(MAGIC + len(head).to_bytes(8, "little") + head)
        for graph, block in graphs:
            name = graph.encode("utf-8")
            fh.write(len(name).to_bytes(4, "little") + name + len(block).to_bytes(8, "little"))
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


def read_graphs(fh: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    """The graphs after the job, one at a time, in the order they were written."""
    while size := int.from_bytes(_exactly(fh, 4), "little"):
        graph = _exactly(fh, size).decode("utf-8")
        yield graph, _exactly(fh, int.from_bytes(_exactly(fh, 8), "little"))


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
    try:  # -P: not the current folder first on sys.path (a json.py there would be imported)
        os.execv(sys.executable, [sys.executable, "-P", "-c", BOOT, json.dumps(sys.path),
                                  str(fd), str(reply)])
    except OSError:
        return


def main(argv: list[str]) -> None:
    """The new interpreter: the dumps from the spill file, written into the staging folder; the
    kb.write.Done, or the error, sent back."""
    from multiprocessing.connection import Connection

    from kb import gzdumps
    from kb.namespaces import Iris
    from kb.write import Done, Recording, SiteWriter, answer

    def dumps() -> Done:
        with open(int(argv[0]), "rb", buffering=1 << 20) as fh:
            fh.seek(0)
            job = read_job(fh)
            rec = Recording(SiteWriter(Path(job.staging)))
            try:
                given = gzdumps.DumpInput(Iris(job.base), read_graphs(fh), job.title,
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
