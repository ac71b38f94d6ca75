"""The benchmark's memory figures: the sampled PSS of a whole process tree against ru_maxrss.

Real processes that really touch their memory; each run holds it for about a second.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from bench.memory import TreeSampler, descendants
from bench.run import measure

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps_rollup").is_file(),
                                reason="needs Linux's /proc/<pid>/smaps_rollup")


# A child that forks a grandchild; each fills its own memory (bytes of 1, so every page is
# touched and resident), and both hold it together for HOLD seconds (the grandchild says when it
# is full through a pipe, and exits when the child closes the other). FORK_FIRST: the grandchild
# is forked before the child fills its 200 MB, so the two hold 300 MB that nobody shares; else
# it is forked after, shares the child's 200 MB and fills nothing of its own.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    fork_first, HOLD, MB = sys.argv[1] == "1", 1.5, 1024 * 1024
    if not fork_first:
        mine = b"\\1" * (200 * MB)
    full_r, full_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        own = b"\\1" * (100 * MB) if fork_first else b""
        os.write(full_w, b"x")
        os.close(done_w)
        os.read(done_r, 1)  # until the child closes its end
        os._exit(0)
    if fork_first:
        mine = b"\\1" * (200 * MB)
    os.read(full_r, 1)
    time.sleep(HOLD)
    os.close(done_w)
    os.waitpid(pid, 0)
""")


def _run(tmp_path: Path, fork_first: bool) -> tuple[float, float, Path]:
    env = dict(os.environ, BENCH_RESULT=str(tmp_path / "result"))
    curve = tmp_path / "curve.tsv"
    sample = measure([sys.executable, "-c", SCRIPT, "1" if fork_first else "0"], env,
                     tmp_path / "log", curve)
    return sample.tree_pss_mb, sample.max_rss_mb, curve


def test_processes_alive_together_are_added(tmp_path: Path) -> None:
    pss, max_rss, curve = _run(tmp_path, fork_first=True)
    # 200 MB + 100 MB held at once, plus two interpreters: the tree's sum sees all of it,
    # while ru_maxrss sees only the larger process.
    assert pss > 280, (pss, max_rss)
    assert 195 < max_rss < 280, (pss, max_rss)
    # the curve names both processes, and its peak line holds both big ones
    lines = curve.read_text().splitlines()
    assert lines[0] == "seconds\ttotal_mb\tprocesses"
    peak = max(lines[1:], key=lambda line: float(line.split("\t")[1]))
    sizes = sorted(int(p.rsplit("=", 1)[1]) for p in peak.split("\t")[2].split())
    assert len(sizes) == 2 and sizes[0] >= 95 and sizes[1] >= 195, peak


def test_pages_shared_after_a_fork_count_once(tmp_path: Path) -> None:
    pss, max_rss, _ = _run(tmp_path, fork_first=False)
    # The grandchild maps the child's 200 MB (its RSS counts them, so would a sum of RSS):
    # PSS splits each shared page between the two, so the tree holds ~200 MB, not 400.
    assert 195 < pss < 280, (pss, max_rss)
    assert max_rss > 195


def test_descendants_and_a_finished_tree(tmp_path: Path) -> None:
    assert descendants(os.getpid())[0] == os.getpid()
    sampler = TreeSampler(2**22 + 12345)  # no such process (above the default pid_max)
    point = sampler.sample()
    assert point.total_kib == 0 and sampler.peak_mb == 0


def test_with_several_runs_the_timed_ones_are_not_sampled(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The sampler takes up to 1/8 of a core: with --repeat 2, two runs are timed without it
    and a third, not timed, gives the tree's peak memory."""
    import dataclasses
    import statistics

    from bench import run
    from bench.run import Corpus, render, run_stage
    from bench.stages import Bench, Stage

    prepared: list[int] = []

    def command(b: Bench) -> list[str]:
        return [sys.executable, "-c", "import time; x = b'1' * (50 * 2**20); time.sleep(0.4)"]

    stage = Stage("fake", "a process holding 50 MB", command,
                  prepare=lambda b: prepared.append(1))
    monkeypatch.setitem(run.STAGES, "fake", stage)
    corpus = Corpus(10, tmp_path / "kb", 10, 1, 1, 0, 0.0)
    result = run_stage(stage, corpus, tmp_path, repeat=2)
    assert len(prepared) == 3 and len(result.samples) == 3
    assert [s.timed for s in result.samples] == [True, True, False]
    assert [s.tree_pss_mb > 40 for s in result.samples] == [False, False, True]
    assert result.median == statistics.median(s.seconds for s in result.samples[:2])
    # The table's times and CPU are the timed runs', its tree PSS the memory run's: that run is
    # given a time and a CPU no timed run has.
    first, second, memory = result.samples
    result.samples[:] = [dataclasses.replace(first, seconds=1.0, cpu=1.0, system=0.25),
                         dataclasses.replace(second, seconds=3.0, cpu=3.0, system=0.75),
                         dataclasses.replace(memory, seconds=100.0, cpu=50.0, system=40.0)]
    table = render([result], [corpus], 2, "", "", "python -m bench")
    row = next(line for line in table.splitlines() if "| fake |" in line)
    cells = [c.strip() for c in row.split("|")]
    # median, range, CPU, its system part
    assert cells[3:7] == ["2.00 s", "1.00 – 3.00 s", "2.00 s", "0.500 s"], cells
    assert cells[8] == f"{memory.tree_pss_mb:,.0f} MB"

    single = run_stage(stage, corpus, tmp_path, repeat=1)
    assert len(single.samples) == 1 and single.samples[0].timed
    assert single.samples[0].tree_pss_mb > 40  # one run: timed and sampled
