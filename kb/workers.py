"""Query evaluation in worker processes that can be killed.

Neither rdflib nor Oxigraph can interrupt a running query (measured), so a time limit that
really stops a query must stop the process running it. A small pool of pre-started workers
each holds the whole store, loaded from an N-Quads dump; a query that runs past its deadline
has its worker killed and a fresh one started in the background while the others go on
answering. Workers also run without a network (their own network namespace, where the
kernel allows it) and, optionally, under an address-space limit, so neither a SERVICE that
slipped past the guard nor a runaway join can reach out or take the machine's memory.

Parent and worker talk over the worker's stdin/stdout: 8-byte length + pickle, both ends ours.

Run as `python -m kb.workers DUMP MEMORY_MB` (the pool does this).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kb.forks import widen_pipe

_HEADER = struct.Struct(">Q")


@dataclass(frozen=True)
class Job:
    text: str                          # checked by kb.sparqlguard
    form: str                          # SELECT | ASK | CONSTRUCT | DESCRIBE
    media_type: str                    # negotiated before evaluation
    default_graphs: tuple[str, ...] | None   # None: the union of all graphs
    named_graphs: tuple[str, ...] | None     # None: all named graphs
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class Answer:
    status: int
    media_type: str = "text/plain"
    body: bytes = b""
    rows: int = 0
    truncated: bool = False


def _error(status: int, message: str) -> Answer:
    return Answer(status, "text/plain", (message + "\n").encode("utf-8"))


# --- the worker side -------------------------------------------------------------------------

def _isolate_network() -> None:
    """Enter a network namespace of our own (no interfaces up): nothing can connect out."""
    import ctypes

    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    for flags in (clone_newnet, clone_newuser | clone_newnet):
        if libc.unshare(flags) == 0:
            return


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _Sink:
    """A write-only buffer that refuses to grow past `limit` bytes (stops a native writer)."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size, self.limit = 0, limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise OverflowError
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _native(result: Any, job: Job) -> bytes | None:
    """Oxigraph's own writer (several times faster than writing row by row from Python), or
    None when the result is over a cap and must be cut by kb.sparqlformats instead."""
    import pyoxigraph as ox

    from kb import sparqlformats as fmt

    if job.form != "SELECT":
        return None  # graphs are collected triple by triple, which counts them exactly
    sink = _Sink(job.max_bytes)
    result.serialize(sink, format=ox.QueryResultsFormat.from_media_type(job.media_type))
    body = b"".join(sink.parts)
    return body if fmt.count_rows(body, job.media_type) <= job.max_rows else None


def evaluate(store: Any, job: Job) -> Answer:
    import pyoxigraph as ox

    from kb import sparqlformats as fmt

    kwargs: dict[str, Any] = {}
    if job.default_graphs is None and job.named_graphs is None:
        kwargs["use_default_graph_as_union"] = True
    else:
        kwargs["default_graph"] = ([ox.NamedNode(g) for g in job.default_graphs]
                                   if job.default_graphs else ox.DefaultGraph())
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job.named_graphs or ()]
    try:
        result = store.query(job.text, **kwargs)
        if job.form == "ASK":
            return Answer(200, job.media_type, fmt.write_boolean(bool(result), job.media_type))
        try:
            body = _native(result, job)
        except OverflowError:
            body = None
        if body is not None:
            return Answer(200, job.media_type, body)
        if job.form == "SELECT":  # over a cap: evaluate again and cut at a row boundary
            result = store.query(job.text, **kwargs)
            variables = [v.value for v in result.variables]
            written = fmt.write_solutions(variables, result, job.media_type, job.max_rows,
                                          job.max_bytes)
        else:
            written = fmt.write_triples(result, job.media_type, job.max_rows, job.max_bytes)
    except SyntaxError as exc:
        return _error(400, f"malformed query: {' '.join(str(exc).split())[:300]}")
    except OverflowError as exc:
        return _error(503, str(exc))
    except (OSError, ValueError, TypeError) as exc:
        return _error(500, f"the query failed: {' '.join(str(exc).split())[:300]}")
    return Answer(200, job.media_type, written.body, written.rows, written.truncated)


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def main(argv: list[str]) -> None:
    import pyoxigraph as ox

    # The protocol owns stdout; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    _isolate_network()
    _limit_memory(int(argv[1]))
    store = ox.Store()
    store.bulk_load(path=argv[0], format=ox.RdfFormat.N_QUADS)
    _send(out, "ready")
    while True:
        header = _read_exact(inp, _HEADER.size)
        if header is None:
            return
        data = _read_exact(inp, _HEADER.unpack(header)[0])
        if data is None:
            return
        job = pickle.loads(data)
        try:
            answer = evaluate(store, job)
        except Exception:  # a bug of ours must not cost the worker and its loaded store
            answer = _error(500, "the query failed in its worker")
        _send(out, answer)


# --- the server side -------------------------------------------------------------------------

class WorkerGone(Exception):
    """The worker died or stopped answering (killed, or out of memory)."""


class Worker:
    def __init__(self, dump: Path, memory_mb: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kb.workers", str(dump), str(memory_mb)],
            # stderr: Rust's "memory allocation failed" on a capped worker is noise; the
            # client's 503 says what happened.
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            close_fds=True)
        # A bytearray: a pipe gives at most 64 KiB a read, and re-making an immutable buffer
        # for each made a 23 MB answer cost about 0.5 s of copying.
        self._buffer = bytearray()
        widen_pipe(self.proc.stdout)  # a large answer crosses in a sixteenth of the reads

    def _recv(self, deadline: float) -> Any:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        need: int | None = None
        while True:
            if need is None and len(self._buffer) >= _HEADER.size:
                need = _HEADER.size + _HEADER.unpack_from(self._buffer)[0]
            if need is not None and len(self._buffer) >= need:
                with memoryview(self._buffer) as view:
                    message = pickle.loads(view[_HEADER.size:need])
                del self._buffer[:need]
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise WorkerGone
            self._buffer += chunk

    def wait_ready(self, timeout: float) -> None:
        if self._recv(time.monotonic() + timeout) != "ready":
            raise WorkerGone

    def call(self, job: Job, deadline: float) -> Answer:
        assert self.proc.stdin is not None
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(_HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
        except OSError:
            raise WorkerGone from None
        answer: Answer = self._recv(deadline)
        return answer

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class WorkerPool:
    """`size` workers over one dump; `run` hands a job to an idle one, with a deadline."""

    def __init__(self, dump: Path, size: int, memory_mb: int = 0,
                 start_timeout: float = 300.0) -> None:
        self.dump, self.size, self.memory_mb = dump, size, memory_mb
        self.start_timeout = start_timeout
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.killed = 0

    def start(self) -> None:
        workers = [Worker(self.dump, self.memory_mb) for _ in range(self.size)]
        try:
            for worker in workers:
                worker.wait_ready(self.start_timeout)
        except (TimeoutError, WorkerGone):
            for worker in workers:
                worker.kill()
            raise RuntimeError("the query workers did not start") from None
        for worker in workers:
            self._idle.put(worker)

    def run(self, job: Job, time_limit: float, queue_timeout: float) -> Answer:
        try:
            worker = self._idle.get(timeout=queue_timeout)
        except queue.Empty:
            return _error(503, "every query worker is busy; try again shortly")
        try:
            answer = worker.call(job, time.monotonic() + time_limit)
        except TimeoutError:
            self._replace(worker)
            return _error(503, f"the query ran past the time limit of {time_limit:g} s "
                               "and was stopped")
        except (WorkerGone, EOFError, pickle.UnpicklingError):
            self._replace(worker)
            return _error(503, "the query was stopped: it needed more memory than allowed")
        except Exception:  # never lose a worker to an unforeseen error
            self._replace(worker)
            return _error(500, "the query failed in its worker")
        self._release(worker)
        return answer

    def _release(self, worker: Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.put(worker)
                return
        worker.kill()

    def _replace(self, worker: Worker) -> None:
        """Kill `worker` and start its successor, both off the request's thread."""
        with self._lock:
            self.killed += 1

        def work() -> None:
            worker.kill()
            for _attempt in range(3):  # a start can fail while memory is short; not forever
                if self._closed:
                    return
                fresh = Worker(self.dump, self.memory_mb)
                try:
                    fresh.wait_ready(self.start_timeout)
                except (TimeoutError, WorkerGone):
                    fresh.kill()
                    time.sleep(1)
                    continue
                self._release(fresh)
                return

        threading.Thread(target=work, name="kb-worker-replace", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


if __name__ == "__main__":
    # Through the package, so that pickled classes are kb.workers.Answer, not __main__.Answer.
    from kb.workers import main as _main

    _main(sys.argv[1:])
