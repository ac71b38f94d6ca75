"""kb.workers: answers cross the pipe from a query process whole and in order, however large."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pyoxigraph as ox

from kb.forks import PIPE_BYTES
from kb.workers import Job, WorkerPool, evaluate

QUERY = "SELECT ?s ?o WHERE { ?s <http://example.org/p> ?o } ORDER BY ?s"
JSON = "application/sparql-results+json"


def _dump(path: Path, rows: int, width: int) -> ox.Store:
    store = ox.Store()
    for i in range(rows):
        store.add(ox.Quad(ox.NamedNode(f"http://example.org/s{i:05d}"),
                          ox.NamedNode("http://example.org/p"),
                          ox.Literal(f"{i:05d}" + "x" * width)))
    store.dump(str(path), format=ox.RdfFormat.N_QUADS)
    return store


def _pipe_max() -> int:
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return 0


def test_a_large_answer_crosses_whole_and_the_next_one_too(tmp_path: Path) -> None:
    # ~5 MB: many times the pipe's capacity, so it arrives in many reads
    store = _dump(tmp_path / "kb.nq", rows=2500, width=2000)
    job = Job(QUERY, "SELECT", JSON, None, None, 100_000, 32 * 1024 * 1024)
    small = Job(QUERY.replace("?o }", '?o FILTER(STRSTARTS(?o, "00007")) }'), "SELECT", JSON,
                None, None, 100_000, 32 * 1024 * 1024)
    expected, expected_small = evaluate(store, job), evaluate(store, small)
    assert len(expected.body) > 5_000_000
    pool = WorkerPool(tmp_path / "kb.nq", size=1)
    pool.start()
    try:
        worker = pool._idle.get_nowait()
        pool._idle.put(worker)
        if hasattr(fcntl, "F_GETPIPE_SZ") and _pipe_max() >= PIPE_BYTES:
            assert worker.proc.stdout is not None
            assert fcntl.fcntl(worker.proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
        # one worker, so these are consecutive messages through the same buffer
        for want in (expected, expected_small, expected):
            answer = pool.run(job if want is expected else small, 30, 30)
            assert answer.status == 200, answer.body[:200]
            assert answer.body == want.body
    finally:
        pool.close()
