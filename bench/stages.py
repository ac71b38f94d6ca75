"""The stages the benchmark times, as a registry of small functions.

A stage says what to run in a fresh process (its command) and, optionally, what to do before
each timed run (its preparation, not timed). Adding one is a decorated function; see
bench/README.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Bench:
    """What a stage sees: one generated knowledge base and a scratch folder for it."""

    root: Path  # the knowledge base (treat as read-only: it is reused between runs)
    claims: int
    files: int  # record files (claims, sources, entities): the unit of the rate column
    work: Path  # scratch space for this size: caches, site output …
    env: dict[str, str] = field(default_factory=dict)

    def kb(self, *args: str) -> list[str]:
        """A `kb` command line on this knowledge base, as an editor would type it."""
        script = Path(sys.executable).with_name("kb")
        head = [str(script)] if script.is_file() else [
            sys.executable, "-c", "import sys; from kb.cli import main; sys.exit(main())"]
        return [*head, "--root", str(self.root), *args]

    def python(self, code: str, *args: str) -> list[str]:
        """A Python snippet; sys.argv[1] is the knowledge base, then `args`."""
        return [sys.executable, "-c", code, str(self.root), *args]

    def run(self, argv: list[str]) -> None:
        """Run a command untimed (for preparations); its failure stops the benchmark."""
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")


Command = Callable[[Bench], list[str]]
Prepare = Callable[[Bench], None]


@dataclass(frozen=True)
class Stage:
    name: str
    about: str
    command: Command
    prepare: Prepare | None = None
    targets: dict[int, float] = field(default_factory=dict)  # claims -> seconds
    requires: tuple[str, ...] = ()  # programs that must be on PATH, else the stage is skipped

    def missing(self) -> list[str]:
        return [p for p in self.requires if shutil.which(p) is None]


STAGES: dict[str, Stage] = {}


def stage(name: str, about: str, *, prepare: Prepare | None = None,
          targets: dict[int, float] | None = None,
          requires: tuple[str, ...] = ()) -> Callable[[Command], Command]:
    """Register the decorated function as the command of a stage."""

    def register(command: Command) -> Command:
        if name in STAGES:
            raise ValueError(f"stage {name!r} is registered twice")
        STAGES[name] = Stage(name, about, command, prepare, dict(targets or {}), requires)
        return command

    return register


# The stages -------------------------------------------------------------------------------
# A child that measures something other than its own run time (a server's latency, say) may
# write its figure in seconds to the file named by $BENCH_RESULT; it then replaces the time.


@stage("check", "`kb check --no-cache`: read, parse and check every file",
       targets={10_000: 5.0, 100_000: 45.0})
def check_cold(b: Bench) -> list[str]:
    return b.kb("check", "--no-cache")


def _warm(b: Bench) -> None:
    b.run(b.kb("check"))


@stage("check-warm", "`kb check` again, nothing changed since the last run (warm cache)",
       prepare=_warm, targets={10_000: 1.0, 100_000: 5.0})
def check_warm(b: Bench) -> list[str]:
    return b.kb("check")


def _no_cache(b: Bench) -> None:
    shutil.rmtree(Path(b.env["KB_CACHE_DIR"]), ignore_errors=True)


@stage("check-first", "`kb check` with an empty cache, which it fills", prepare=_no_cache)
def check_first(b: Bench) -> list[str]:
    return b.kb("check")


@stage("parse", "the loader only: kb.load.load(root), no cache, no rules")
def parse(b: Bench) -> list[str]:
    return b.python("import sys; from pathlib import Path; from kb.load import load; "
                    "load(Path(sys.argv[1]), cache=None)")

