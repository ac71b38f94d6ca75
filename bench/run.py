"""Run the stages on generated knowledge bases and write the table of results.

Each run of a stage is a fresh process, timed from start to exit. Two memory figures: the peak
of the PSS sum of the process and all its descendants, sampled (bench.memory: what the machine
must hold at once), and the ru_maxrss that wait4() reports (the largest resident set of ONE
process among it and the children it waited for; pages a forked worker shares count in each).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import machine
from bench.generate import generate
from bench.memory import TreeSampler
from bench.stages import STAGES, TRASH, Bench, Stage

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KB_TODAY = "2026-11-28"  # the generated knowledge bases are valid as of this day


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu: float  # user + system seconds of the process and the workers it waited for
    max_rss_mb: float  # ru_maxrss: the largest resident set of one process of the tree
    tree_pss_mb: float = 0.0  # the peak of the sampled PSS sum of the whole tree (0: not known)
    timed: bool = True  # False: a run for the memory figures only (run_stage)
    system: float = 0.0  # of `cpu`, the seconds in the kernel (files made and removed …)


@dataclass
class Result:
    stage: Stage
    claims: int
    files: int
    samples: list[Sample] = field(default_factory=list)
    skipped: str = ""

    @property
    def timed(self) -> list[Sample]:
        """The runs whose times count (all but a run made for the memory figures only)."""
        timed = [s for s in self.samples if s.timed]
        assert timed, "a stage ran no timed run"
        return timed

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.timed)


@dataclass(frozen=True)
class Corpus:
    claims: int
    root: Path
    files: int
    sources: int
    entities: int
    snapshots: int
    megabytes: float


def _stamp(claims: int, seed: int) -> str:
    code = (HERE / "generate.py").read_bytes()
    return hashlib.blake2b(code + f"|{claims}|{seed}".encode(), digest_size=12).hexdigest()


def ensure_corpus(workdir: Path, claims: int, seed: int) -> Corpus:
    """The knowledge base of this size, generated once and reused while the generator stays."""
    root = workdir / f"kb-{claims}-seed{seed}"
    stamp = workdir / f"kb-{claims}-seed{seed}.stamp"
    want = _stamp(claims, seed)
    if not (root.is_dir() and stamp.is_file() and stamp.read_text() == want):
        shutil.rmtree(root, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=workdir, prefix=".gen-"))
        generate(tmp, claims, seed)
        tmp.rename(root)
        stamp.write_text(want)
    count = {"claims": 0, "sources": 0, "entities": 0, "txt": 0}
    size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            size += os.stat(os.path.join(folder, name)).st_size
            top = Path(folder).relative_to(root).parts[:1]
            if name.endswith(".txt"):
                count["txt"] += 1
            elif name.endswith(".yaml") and top and top[0] in count:
                count[top[0]] += 1
    return Corpus(claims, root, count["claims"] + count["sources"] + count["entities"],
                  count["sources"], count["entities"], count["txt"], size / 1e6)


def measure(argv: list[str], env: dict[str, str], log: Path,
            curve: Path | None = None, sampled: bool = True) -> Sample:
    """Run a command once; its wall time (or the figure it reports) and its peak memory.

    With `curve`, the sampled PSS of every process of the tree is written there (bench.memory).
    Not `sampled`: no PSS sampler runs beside the command (tree_pss_mb is 0).
    """
    result = Path(env["BENCH_RESULT"])
    result.unlink(missing_ok=True)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(proc.pid)
        if sampled:
            sampler.start()
        try:
            # Wait for the exit without reaping, so the sampler stops while the pid is still
            # the process's (a reaped pid can be reused by another process).
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            seconds = time.perf_counter() - start
        finally:
            sampler.stop()
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if curve is not None:
        if sampled:
            sampler.write_curve(curve)
        else:  # not one left by an earlier run under the same name
            curve.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}:\n{tail}")
    if result.is_file():
        seconds = float(result.read_text().strip())
    cpu = usage.ru_utime + usage.ru_stime
    # ru_maxrss is in KiB on Linux
    return Sample(seconds, cpu, usage.ru_maxrss / 1024, sampler.peak_mb,
                  system=usage.ru_stime)


def warm_files(*roots: Path) -> int:
    """Read every file of these folders (knowledge bases), so that the timed run finds them in
    the operating system's file cache, as the results say it does; the bytes read. At 100,000
    claims the cold build before the check wrote a 4 GB site and pushed the knowledge base out:
    the check then took 63 s, and 35 s with its files cached."""
    read = 0
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                try:
                    with open(os.path.join(dirpath, name), "rb") as f:
                        while chunk := f.read(1 << 20):
                            read += len(chunk)
                except OSError:
                    continue
    return read


def run_stage(stage: Stage, corpus: Corpus, workdir: Path, repeat: int) -> Result:
    res = Result(stage, corpus.claims, corpus.files)
    missing = stage.missing()
    if missing:
        res.skipped = "not installed: " + ", ".join(missing)
        return res
    work = workdir / f"work-{corpus.claims}" / stage.name
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, KB_TODAY=KB_TODAY, KB_CACHE_DIR=str(work / "cache"),
               BENCH_RESULT=str(work / "result"))
    bench = Bench(corpus.root, corpus.claims, corpus.files, work, env)
    # The PSS sampler takes up to 1/8 of a core (bench.memory): beside a command that uses both
    # cores here, it made a 2.3 s edit build ~0.14 s longer. So with several runs, those are
    # timed without it, and one more, sampled and not timed, gives the tree's peak memory; a
    # single run is both.
    runs = repeat + 1 if repeat > 1 else repeat
    for i in range(runs):
        timed = i < repeat
        if stage.prepare is not None:
            stage.prepare(bench)
        # the knowledge base, and the stage's copies of it (edited by `prepare`)
        warm_files(corpus.root, *(p.parent for p in sorted(work.glob("*/kb.toml"))))
        sampled = runs == 1 or not timed
        sample = dataclasses.replace(
            measure(stage.command(bench), env, work / f"run-{i}.log",
                    work / f"run-{i}.memory.tsv", sampled=sampled), timed=timed)
        res.samples.append(sample)
        what = f"run {i + 1}/{repeat}" if timed else "memory run"
        print(f"  {stage.name:<14} {corpus.claims:>7} claims  {what}: "
              f"{sample.seconds:7.2f} s  {sample.cpu:7.2f} s CPU "
              f"({sample.system:.2f} s system)  "
              f"{_mb(sample.tree_pss_mb):>8} PSS of the tree  "
              f"{sample.max_rss_mb:7.0f} MB max RSS of one process", file=sys.stderr)
    return res


def _mb(x: float) -> str:
    return f"{x:,.0f} MB" if x > 0 else "n/a"


def _seconds(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def render(results: list[Result], corpora: list[Corpus], repeat: int,
           load_before: str, load_after: str, command: str, bytecode: str = "",
           speeds: tuple[float, float] | None = None) -> str:
    lines = [
        "# Benchmark results", "",
        f"Measured with `{command}` (see bench/README.md). Each figure is the median of "
        f"{repeat} runs, each in a fresh process started from the command line, so it includes "
        "Python's start-up. \"Cold\" means no claimkb cache; the operating system's file cache "
        "is warm in every run. CPU is user + system time of the process and its workers (the "
        "median): on a shared machine it shows the work done when the wall time shows the "
        "queue. \"System\" is the part of it spent in the kernel, most of it making and "
        "removing files: on this machine's disk it grows after many files are deleted "
        "(bench.stages.set_aside), so it tells the file system's share of a slow run. Peak "
        "memory (the largest of the runs) is given twice: \"tree PSS\" is the "
        "peak of the sum of the proportional set sizes of the process and all its "
        "descendants, sampled every 50 ms or more — what the machine must hold at once (with "
        "more than one run, the timed runs are not sampled: the sampler takes up to 1/8 of a "
        "core; one more run, untimed, is); \"max RSS of "
        "one process\" is ru_maxrss, the largest resident set of the process or of one worker "
        "(pages a forked worker shares with its parent count in both; processes alive together "
        "are not added).", "",
        "## Machine", "", "| | |", "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in machine.describe(REPO)]
    if bytecode:
        lines.append(f"| kb's bytecode | {bytecode} |")
    if speeds is not None:
        lines.append(f"| speed: `bench.machine.workload`, before and after (lower is faster) "
                     f"| {speeds[0]:.3f} s, {speeds[1]:.3f} s |")
    lines += [f"| load average (1, 5, 15 min) before | {load_before} |",
              f"| load average after | {load_after} |", ""]
    lines += ["## Knowledge bases", "",
              "Generated by `python -m bench.generate N DIR` (seed 0): valid by construction.", "",
              "| claims | sources | entities | text snapshots | record files | bytes in files |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {c.claims:,} | {c.sources:,} | {c.entities:,} | {c.snapshots:,} | "
              f"{c.files:,} | {c.megabytes:.1f} MB |" for c in corpora]
    lines += ["", "## Times", "",
              "| claims | stage | median | min – max | CPU | system | files/s | "
              "tree PSS (peak) | max RSS of one process | target |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.claims:,} | {r.stage.name} | skipped ({r.skipped}) "
                         "| | | | | | | |")
            continue
        times = [s.seconds for s in r.timed]
        target = r.stage.targets.get(r.claims)
        verdict = "" if target is None else (
            f"< {target:g} s: {'met' if r.median < target else '**missed**'}")
        lines.append(
            f"| {r.claims:,} | {r.stage.name} | {_seconds(r.median)} s | "
            f"{_seconds(min(times))} – {_seconds(max(times))} s | "
            f"{_seconds(statistics.median(s.cpu for s in r.timed))} s | "
            f"{_seconds(statistics.median(s.system for s in r.timed))} s | "
            f"{r.files / r.median:,.0f} | {_mb(max(s.tree_pss_mb for s in r.samples))} | "
            f"{max(s.max_rss_mb for s in r.samples):,.0f} MB | {verdict} |")
    lines += ["", "## Stages", ""]
    names = dict.fromkeys(r.stage.name for r in results)
    lines += [f"- `{n}`: {STAGES[n].about}" for n in names]
    return "\n".join(lines) + "\n"


def _ints(text: str) -> list[int]:
    try:
        return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None


# Seconds a run waits after the last run in its work folder deleted what it set aside: this
# machine's ext4 (no journal) will not reuse an inode freed less than 1 to 6 minutes ago and
# scans past each one (bench.stages.set_aside). A 100,000-claim run started right after a
# 10,000-claim one began its cold build within two minutes of ~200,000 files deleted.
SETTLE = 360.0
EMPTIED = ".trash-emptied"  # in the work folder: when a run last deleted its trash (time.time())


def empty_trash(workdir: Path) -> None:
    """Delete the outputs the stages set aside (bench.stages.set_aside), now that no run is
    timed any more, and note when (settle_time)."""
    trashes = sorted(workdir.glob(f"work-*/*/{TRASH}"))
    for trash in trashes:
        shutil.rmtree(trash, ignore_errors=True)
    if trashes:
        with contextlib.suppress(OSError):
            (workdir / EMPTIED).write_text(f"{time.time()}\n", encoding="utf-8")


def settle_time(workdir: Path, now: float | None = None) -> float:
    """Seconds left until SETTLE has passed since a run last emptied its trash in `workdir`;
    0 when it has, or when no run has."""
    try:
        emptied = float((workdir / EMPTIED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0
    now = time.time() if now is None else now
    return max(0.0, min(SETTLE, emptied + SETTLE - now))


def compile_kb(folder: Path | None = None) -> str:
    """Compile kb's modules to bytecode before any run, as pip does when it installs a package.

    Otherwise a machine that sets PYTHONDONTWRITEBYTECODE (or a read-only checkout) compiles
    every module of kb in every timed process, the build's and those it starts: 0.1-0.15 s of
    an edit build at 10,000 claims, which no installed copy pays. What the table's header says.
    """
    import compileall

    if folder is None:
        import kb

        folder = Path(kb.__file__).resolve().parent
    if not compileall.compile_dir(folder, quiet=1):
        return f"not compiled: compileall failed on {folder} (see its messages above)"
    return f"compiled first (`compileall {folder.name}/`), as an install does"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time claimkb's stages on synthetic knowledge bases.")
    parser.add_argument("--sizes", type=_ints, default=[1000, 10000],
                        help="numbers of claims, comma-separated (default: 1000,10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stage (default 3)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, from: {', '.join(STAGES)} (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md",
                        help="the results file (default: bench/RESULTS.md)")
    parser.add_argument("--workdir", type=Path, default=HERE / "out",
                        help="generated knowledge bases and scratch (default: bench/out)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names or args.repeat < 1 or not args.sizes or min(args.sizes) < 1:
        parser.error(f"unknown stage(s): {', '.join(unknown)}" if unknown
                     else "give at least one stage, size and run")
    bytecode = compile_kb()
    wait = settle_time(args.workdir.resolve())
    if wait:
        print(f"bench: waiting {wait:.0f} s: the last run here deleted its set-aside outputs "
              f"{SETTLE - wait:.0f} s ago, and files created meanwhile would cost more "
              "(bench/README.md)", file=sys.stderr)
        time.sleep(wait)
    load_before = machine.load_average()
    speed_before = machine.speed()
    results: list[Result] = []
    corpora: list[Corpus] = []
    try:
        for claims in args.sizes:
            print(f"knowledge base of {claims:,} claims …", file=sys.stderr)
            corpus = ensure_corpus(args.workdir.resolve(), claims, args.seed)
            corpora.append(corpus)
            for name in names:
                results.append(run_stage(STAGES[name], corpus, args.workdir.resolve(),
                                         args.repeat))
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        empty_trash(args.workdir.resolve())
    command = "python -m bench " + " ".join(
        [f"--sizes {','.join(map(str, args.sizes))}", f"--repeat {args.repeat}",
         f"--stages {','.join(names)}"])
    text = render(results, corpora, args.repeat, load_before, machine.load_average(), command,
                  bytecode, (speed_before, machine.speed()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0
