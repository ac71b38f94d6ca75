"""A description of the machine the benchmark ran on, for the results file."""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = ("claimkb", "PyYAML", "click", "jinja2", "rdflib", "pyoxigraph", "oxrdflib")


def _cpuinfo() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        import yaml

        found.append("libyaml " + ("yes" if yaml.__with_libyaml__ else "no"))
    except ImportError:
        pass
    return ", ".join(found)


def _commit(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "kb"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes in kb/" if dirty else "")


def describe(repo: Path) -> list[tuple[str, str]]:
    return [
        ("CPU", _cpuinfo()),
        ("cores", str(cores())),
        ("memory", _memory()),
        ("system", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", _versions()),
        ("code", _commit(repo)),
    ]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


@dataclass
class _Row:
    """A small record, as kb's parse cache holds hundreds of thousands of them."""

    path: str
    line: int
    text: str


def workload(n: int = 50_000) -> str:
    """A fixed piece of pure-Python work like kb's own: small records pickled and unpickled,
    a dict of paths built, the paths sorted and hashed. Returns the digest (the same on every
    machine)."""
    rows = [_Row(f"claims/topic-{i % 97}/claim-{i}.yaml", i, str(i * 7919)) for i in range(n)]
    back = pickle.loads(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
    table = {r.path: (r.line, r.text) for r in back}
    ordered = sorted(table, key=lambda path: path[::-1])
    return hashlib.blake2b("\n".join(ordered).encode(), digest_size=16).hexdigest()


def time_workload(runs: int = 3) -> float:
    """Seconds `workload` takes here, the median of `runs`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        workload()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(runs: int = 3) -> float:
    """Seconds the machine takes for `workload` (time_workload), for the results' header.

    kb's figures follow it: the same code ran 2.0-2.6 times slower on one machine of this kind
    than on another (docs/decisions.md, twenty-fourth session), so figures of two runs compare
    only beside their machines' speeds. Timed in a process of its own: the workload's ~70 MB,
    kept by the runner, counted in the max RSS of every command it started afterwards (a forked
    child starts with its parent's pages)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import bench.machine as m; print(m.time_workload({runs:d}))"],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, check=True)
    return float(done.stdout)
