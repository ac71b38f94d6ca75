"""The memory a process tree holds on the machine: the sum of its processes' PSS, sampled.

ru_maxrss answers another question: the largest resident set of ONE process, where pages a
forked worker shares with its parent count in both. The machine runs out of memory when the
processes alive at one moment hold too much together, so the benchmark also samples, every
`interval` seconds, the proportional set size (PSS: a shared page counts 1/n in each of the n
processes that map it) of the process and all its descendants, children of children too, and
keeps the largest sum. Linux only (/proc/<pid>/smaps_rollup, kernel 4.14+); elsewhere, or where
/proc cannot be read, the peak stays 0 and the runner says "n/a".

Reading smaps_rollup makes the kernel walk the process's page tables: ~50–60 ms of CPU per GB
resident on this machine, so the tree of a 6 GB build costs ~0.3 s a sample. The sampler
therefore waits, after each sample, `interval` or `share_of_cpu`'s inverse times what the
sample cost, whichever is longer: at most ~1/8 of one core goes to sampling, and the period grows
from 50 ms (small trees) to ~2 s (100,000 claims). A process that lives less than one
period can be missed; the peak is a lower bound of the true one by the memory that changes
within one period.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid → parent pid of every process on the machine (a scan of /proc: ~100 µs per process;
    this kernel has no /proc/<pid>/task/<tid>/children)."""
    found: dict[int, int] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the
        # last ")".
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            found[int(entry.name)] = int(fields[1])
    return found


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, children of children too, in breadth-first order."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    tree, i = [pid], 0
    while i < len(tree):
        tree += sorted(children.get(tree[i], ()))
        i += 1
    return tree


def pss_kib(pid: int) -> int:
    """The PSS of one process in KiB (0 once it has ended, or when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass(frozen=True)
class Point:
    """One sample: seconds since the sampler started, and the PSS (KiB) of each process."""

    seconds: float
    kib: dict[int, int]

    @property
    def total_kib(self) -> int:
        return sum(self.kib.values())


@dataclass
class TreeSampler:
    """Samples the PSS sum of a process tree in a background thread until stopped.

    `with TreeSampler(pid) as s: …` ; then `s.peak_mb`, and `s.curve` for the whole run
    (each point with every process's PSS; `s.names` has their command names).
    """

    pid: int
    interval: float = 0.05  # least seconds between the end of one sample and the next
    share_of_cpu: float = 0.125  # the most of one core the sampling may take
    curve: list[Point] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _start: float = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; call it before the process is reaped, so its pid cannot be reused."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> TreeSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample(self) -> Point:
        at = time.perf_counter() - self._start
        kib = {}
        for pid in descendants(self.pid):
            kib[pid] = pss_kib(pid)
            if pid not in self.names:
                self.names[pid] = comm(pid)
        point = Point(at, kib)
        self.curve.append(point)
        return point

    def _run(self) -> None:
        while True:
            cpu = time.thread_time()
            self.sample()
            cost = time.thread_time() - cpu  # the kernel's page-table walks are charged here
            if self._stop.wait(max(self.interval, cost / self.share_of_cpu - cost)):
                break

    @property
    def peak_mb(self) -> float:
        """The largest PSS sum seen, in MB (MiB, as ru_maxrss / 1024 is)."""
        return max((p.total_kib for p in self.curve), default=0) / 1024

    def write_curve(self, path: Path) -> None:
        """The curve as tab-separated lines: seconds, the total, then `pid:name=MB` per process."""
        lines = ["seconds\ttotal_mb\tprocesses"]
        for p in self.curve:
            procs = " ".join(f"{pid}:{self.names.get(pid, '?')}={kib / 1024:.0f}"
                             for pid, kib in p.kib.items() if kib)
            lines.append(f"{p.seconds:.2f}\t{p.total_kib / 1024:.0f}\t{procs}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
