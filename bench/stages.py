"""The stages the benchmark times, as a registry of small functions.

A stage says what to run in a fresh process (its command) and, optionally, what to do before
each timed run (its preparation, not timed). Adding one is a decorated function; see
bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
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
    """No claimkb cache: the last run's is set aside (set_aside), not deleted. At 100,000
    claims it holds ~10,600 files, and the cold build right after their deletion paid the file
    system's scan past them, as it did after a deleted site."""
    set_aside(b, Path(b.env["KB_CACHE_DIR"]))


@stage("check-first", "`kb check` with an empty cache, which it fills", prepare=_no_cache)
def check_first(b: Bench) -> list[str]:
    return b.kb("check")


@stage("parse", "the loader only: kb.load.load(root), no cache, no rules")
def parse(b: Bench) -> list[str]:
    return b.python("import sys; from pathlib import Path; from kb.load import load; "
                    "load(Path(sys.argv[1]), cache=None)")



# The graph, the dumps and the queries (issue 3) ----------------------------------------------
# Their targets are about one step, not about a whole command with its Python start-up and the
# `kb check` before it: the child does the untimed part first, times the step itself and reports
# it through $BENCH_RESULT (the CPU and memory columns still cover the whole process). The
# `export` stage times the whole `kb export` command for comparison.

_REPO = str(Path(__file__).resolve().parent.parent)
DUMP_FORMATS = ("ttl", "nt", "nq", "trig", "jsonld")


def _probe(b: Bench, function: str, *args: str) -> list[str]:
    """Run `function(root, *args)` of this module in a fresh process."""
    return b.python(f"import sys; sys.path.insert(0, {_REPO!r}); "
                    f"from bench.stages import {function}; {function}(*sys.argv[1:])", *args)


def _report(seconds: float) -> None:
    import os

    path = os.environ.get("BENCH_RESULT")
    if path:
        Path(path).write_text(f"{seconds:.6f}\n")


def _checked(root: str) -> object:
    from kb.check import check

    checked = check(Path(root))
    if checked.report.errors:
        raise SystemExit(f"{root}: the knowledge base has errors")
    return checked


def probe_graph(root: str) -> None:
    """kb.graph.build_graph on a checked knowledge base (what `kb build` and `kb export` do)."""
    import time

    from kb.graph import build_graph

    checked = _checked(root)
    start = time.perf_counter()
    g = build_graph(checked)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    print(f"{g.size} triples in {len(g.triples)} graphs: {seconds:.3f} s")
    _report(seconds)


def probe_dump(root: str, fmt: str, out: str) -> None:
    """One dump made and written to a file, as `kb export --format FMT --out FILE` does."""
    import time

    from kb.export import dump
    from kb.graph import build_graph

    g = build_graph(_checked(root))  # type: ignore[arg-type]
    start = time.perf_counter()
    data = dump(g, fmt)
    Path(out).write_bytes(data)
    seconds = time.perf_counter() - start
    print(f"{fmt}: {len(data):,} bytes in {seconds:.3f} s")
    _report(seconds)


def _report_slowest(seconds: dict[str, float]) -> None:
    """Report the slowest named query's figure; the knowledge base's run has none to time
    when the repository's queries/ folder is missing (a copy of kb/ alone)."""
    if not seconds:
        raise SystemExit(f"no named queries in {Path(_REPO) / 'queries'}")
    slowest = max(seconds, key=lambda n: seconds[n])
    print(f"slowest: {slowest}")
    _report(seconds[slowest])


def probe_queries(root: str, repeat: str = "5") -> None:
    """Every named query run through kb.query.run (as `kb query NAME` does, rows made into Python
    terms), `repeat` times after one warm-up; reports the slowest query's median."""
    import statistics
    import time

    from kb.graph import build_graph
    from kb.query import named_queries, run

    g = build_graph(_checked(root))  # type: ignore[arg-type]
    g.store  # noqa: B018 -- loaded before the clock starts, as `kb serve` has it loaded
    medians: dict[str, float] = {}
    for q in named_queries(Path(_REPO)):
        rows = len(run(g, q.text).rows)
        times = []
        for _ in range(int(repeat)):
            start = time.perf_counter()
            run(g, q.text)
            times.append(time.perf_counter() - start)
        medians[q.name] = statistics.median(times)
        print(f"{q.name:28} {rows:7,} rows  median {medians[q.name] * 1000:7.1f} ms")
    _report_slowest(medians)


def probe_endpoint(root: str, repeat: str = "11") -> None:
    """Every named query sent to the SPARQL endpoint of `kb serve` (JSON results), `repeat`
    times after one warm-up; reports the slowest query's p50."""
    import statistics
    import time
    import urllib.parse
    import urllib.request

    from kb.endpoint import kb_options, make_endpoint, serve_in_background
    from kb.graph import build_graph
    from kb.query import named_queries

    g = build_graph(_checked(root))  # type: ignore[arg-type]
    options = kb_options(Path(_REPO), g.iris.prefixes())
    endpoint = make_endpoint(lambda: g.store, options)
    server = serve_in_background(endpoint)
    url = f"http://127.0.0.1:{server.server_port}/sparql"
    p50: dict[str, float] = {}
    try:
        for q in named_queries(Path(_REPO)):
            request = urllib.request.Request(
                url, data=urllib.parse.urlencode({"query": q.text}).encode(),
                headers={"Accept": "application/sparql-results+json",
                         "Content-Type": "application/x-www-form-urlencoded"})
            times = []
            for i in range(int(repeat) + 1):
                start = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as resp:
                    size = len(resp.read())
                if i:  # the first is a warm-up
                    times.append(time.perf_counter() - start)
            p50[q.name] = statistics.median(times)
            print(f"{q.name:28} {size:10,} bytes  p50 {p50[q.name] * 1000:7.1f} ms  "
                  f"max {max(times) * 1000:7.1f} ms")
    finally:
        server.shutdown()
        server.server_close()
        endpoint.close()
    _report_slowest(p50)


@stage("graph", "kb.graph.build_graph on the checked knowledge base (the check is not timed)",
       targets={10_000: 3.0})
def graph(b: Bench) -> list[str]:
    return _probe(b, "probe_graph")


def _dump_stage(fmt: str) -> None:
    @stage(f"dump-{fmt}", f"the {fmt} dump made and written to a file, as `kb export --format "
           f"{fmt} --out FILE` does (the check and the graph are not timed)",
           targets={10_000: 2.0})
    def dump(b: Bench) -> list[str]:
        return _probe(b, "probe_dump", fmt, str(b.work / f"kb.{fmt}"))


for _fmt in DUMP_FORMATS:
    _dump_stage(_fmt)


@stage("export", "`kb export --format ttl --out FILE`, the whole command: check, graph, dump")
def export_ttl(b: Bench) -> list[str]:
    return b.kb("export", "--format", "ttl", "--out", str(b.work / "kb.ttl"))


@stage("queries", "every named query through kb.query.run, median of 5: the slowest query",
       targets={10_000: 0.2})
def queries(b: Bench) -> list[str]:
    return _probe(b, "probe_queries")


@stage("queries-endpoint", "every named query sent to the SPARQL endpoint of `kb serve` "
       "(JSON results), p50 of 11: the slowest query", targets={10_000: 0.2, 100_000: 1.0})
def queries_endpoint(b: Bench) -> list[str]:
    return _probe(b, "probe_endpoint")


TRASH = ".trash"  # in a size's work folder: outputs set aside, removed when the run ends


def set_aside(b: Bench, path: Path) -> None:
    """Move a previous output out of the way (one rename) instead of deleting it.

    On ext4 without a journal (this VM's disk), the kernel will not give a new file an inode
    freed less than 1 to 6 minutes ago: it scans past every such inode (fs/ext4/ialloc.c,
    recently_deleted), so after 46,000 files are deleted each file created costs 0.4–1.5 ms
    instead of 0.02 ms. Deleting the last run's site just before a timed build measured that
    scan, not the build: a user's build does not follow the deletion of a whole site. The set-
    aside folders are deleted when the benchmark ends (bench.run.empty_trash).
    """
    if not path.exists():
        return
    trash = b.work / TRASH
    trash.mkdir(parents=True, exist_ok=True)
    path.rename(tempfile.mkdtemp(dir=trash, prefix=f"{path.name}-") + "/" + path.name)


def _cold_build(b: Bench) -> None:
    set_aside(b, b.work / "site")
    _no_cache(b)


@stage("build", "`kb build` cold: no claimkb cache and no previous site (pages, dumps, search)",
       prepare=_cold_build, targets={10_000: 15.0, 100_000: 180.0})
def build(b: Bench) -> list[str]:
    return b.kb("build", "--out", str(b.work / "site"))


def _hugo_site(b: Bench) -> None:
    """The same pages as a Hugo project (bench/hugo.py), made once per knowledge base."""
    project = b.work / "hugo"
    if not (project / "hugo.toml").is_file():
        shutil.rmtree(project, ignore_errors=True)
        b.run(b.python("import sys; from pathlib import Path; from bench.hugo import make_site;"
                       " make_site(Path(sys.argv[1]), Path(sys.argv[2]))", str(project)))
    set_aside(b, project / "public")  # as kb's site is, before its cold build


@stage("hugo", "Hugo (Debian's) building the same claim, source and entity pages, for the "
       "side-by-side ratio with `build`", prepare=_hugo_site, requires=("hugo",))
def hugo(b: Bench) -> list[str]:
    return ["hugo", "--quiet", "-s", str(b.work / "hugo"), "-d", str(b.work / "hugo" / "public")]


def _kb_at(b: Bench, root: Path, *args: str) -> list[str]:
    cmd = b.kb(*args)
    cmd[cmd.index("--root") + 1] = str(root)
    return cmd


_EDIT_REVIEW = "  - {by: bench-editor, date: 2026-11-27}\n"


def _built_copy(b: Bench, name: str = "edit", queries: bool = False) -> Path:
    """A copy of the knowledge base (`queries`: with the repository's named queries), and its
    site built by this code, untimed. The build is run every time: it changes nothing when the
    site is this code's already, but a site left by another version of the code (the page keys
    include the code) would make the timed build after the edit a whole one (206 s, not 46 s,
    at 100,000 claims)."""
    copy, site = b.work / f"{name}-kb", b.work / f"{name}-site"
    if not copy.is_dir():
        shutil.copytree(b.root, copy)
        if queries:
            shutil.copytree(Path(_REPO) / "queries", copy / "queries")
    b.run(_kb_at(b, copy, "build", "--out", str(site)))
    _wait_for_removal(site)
    return copy


def _wait_for_removal(site: Path, patience: float = 600.0) -> None:
    """After a whole build, the previous site is deleted by a detached process (kb.write's
    remove_later): the timed build must not share the cores and the disk with it (at 100,000
    claims, edit builds beside such deletions took 62 and 54 s, not 46 and 49 s)."""
    from kb.write import set_aside_prefix

    deadline = time.monotonic() + patience
    while old := sorted(site.parent.glob(f"{set_aside_prefix(site)}*")):
        if time.monotonic() > deadline:  # the deleting process is gone: finish its work
            for folder in old:
                shutil.rmtree(folder, ignore_errors=True)
            return
        time.sleep(0.5)


def _one_claim_edited(b: Bench) -> None:
    """The built copy (`_built_copy`); then one claim gains or loses a review."""
    _review_toggled(_built_copy(b))


def _review_toggled(copy: Path) -> None:
    claim = min((copy / "claims").rglob("*.yaml"))
    text = claim.read_text(encoding="utf-8")
    edited = (text.replace(_EDIT_REVIEW, "") if _EDIT_REVIEW in text
              else text.replace("reviews:\n", "reviews:\n" + _EDIT_REVIEW, 1))
    claim.write_text(edited, encoding="utf-8")


@stage("build-edit", "`kb build` after one claim file changed (a review added or removed) "
       "since the last build", prepare=_one_claim_edited, targets={10_000: 2.0, 100_000: 10.0})
def build_edit(b: Bench) -> list[str]:
    return _kb_at(b, b.work / "edit-kb", "build", "--out", str(b.work / "edit-site"))


def _one_claim_edited_with_queries(b: Bench) -> None:
    """As build-edit, in a copy with the repository's named queries (queries/): the generated
    knowledge bases have none, and every build runs them all, on the whole graph loaded into
    Oxigraph."""
    _review_toggled(_built_copy(b, "queries", queries=True))


@stage("build-edit-queries", "`kb build` after a review is added or removed, as build-edit, in a "
       "copy with the repository's named queries, which every build runs",
       prepare=_one_claim_edited_with_queries)
def build_edit_queries(b: Bench) -> list[str]:
    return _kb_at(b, b.work / "queries-kb", "build", "--out", str(b.work / "queries-site"))


_REWORDED = "Reportedly, "


def _one_claim_reworded(b: Bench) -> None:
    """The knowledge base and site of build-edit; then the statement of one claim changes (and
    changes back the next time). Unlike a review, this changes what search shows: the claim's
    page, its rows in the listings, a chunk of the dumps, and its shard of the search index."""
    _reword(_built_copy(b))


def _reword(copy: Path) -> None:
    """One claim's statement changed, or changed back (not the claim build-edit changes)."""
    claim = sorted((copy / "claims").rglob("*.yaml"))[1]
    text = claim.read_text(encoding="utf-8")
    old, new = 'claim: "', f'claim: "{_REWORDED}'
    edited = text.replace(new, old, 1) if new in text else text.replace(old, new, 1)
    assert edited != text, f"{claim} has no claim: line to reword"
    claim.write_text(edited, encoding="utf-8")


@stage("build-edit-text", "`kb build` after one claim's statement changed since the last build "
       "(its page, listings, dumps and the search index change)", prepare=_one_claim_reworded)
def build_edit_text(b: Bench) -> list[str]:
    return _kb_at(b, b.work / "edit-kb", "build", "--out", str(b.work / "edit-site"))


def _git(copy: Path, *args: str) -> None:
    """git in the copy, and only there: GIT_CEILING_DIRECTORIES keeps a copy without its .git
    (a run stopped while making it) from reaching the repository around it, and the user's
    signing and hooks are left out."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(copy.parent)}
    subprocess.run(["git", "-C", str(copy), "-c", "user.name=bench", "-c",
                    "user.email=bench@example.org", "-c", "commit.gpgsign=false",
                    "-c", "core.hooksPath=/dev/null", *args],
                   check=True, capture_output=True, env=env)


def _one_claim_reworded_and_committed(b: Bench) -> None:
    """build-edit-text in a git checkout, as editors keep a knowledge base: a copy of it
    committed once, built; then one claim's statement changes and is committed (one commit
    more each run). The generated bases are not in git, so the other stages read no history;
    a build here reads each file's history and each claim's status at each of its commits."""
    copy = b.work / "git-kb"
    if not (copy / ".git").is_dir():  # made whole, then renamed: never half a checkout
        shutil.rmtree(copy, ignore_errors=True)
        making = b.work / "git-kb.making"
        shutil.rmtree(making, ignore_errors=True)
        shutil.copytree(b.root, making)
        _git(making, "init", "-q")
        _git(making, "add", "-A")
        _git(making, "commit", "-q", "-m", "The generated knowledge base")
        making.rename(copy)
    _built_copy(b, "git")
    _reword(copy)
    _git(copy, "commit", "-q", "-a", "-m", "Reworded")


@stage("build-edit-git", "`kb build` after one claim's statement changed and was committed, "
       "in a git checkout of the knowledge base (build-edit-text with history)",
       prepare=_one_claim_reworded_and_committed, requires=("git",))
def build_edit_git(b: Bench) -> list[str]:
    return _kb_at(b, b.work / "git-kb", "build", "--out", str(b.work / "git-site"))


# The generated reviews are 0-330 days old on KB_TODAY, so the first falls due on day 36 and
# the last on day 366; from day 60 on, about one claim in 330 falls due each day, as in a
# knowledge base kept for years. The timed builds run from day 61; after _DAYS of them the
# count starts again (with a new copy), so that reviews keep falling due.
_FIRST_DAY = 60
_DAYS = 250
# The generated predictions' dates run from day 30 to this one; a date that passes without a
# verdict is an error (T602), which stops a build.
_LAST_DATE = "2035-12-31"
# Written beside a copy made as this code makes it (its predictions moved); a copy without it
# was made by an older version of the stage and is made again.
_COPY_FORMAT = "2"


def _day(b: Bench, days: int) -> str:
    import datetime as dt

    today = dt.date.fromisoformat(b.env.get("KB_TODAY", "2026-11-28"))
    return (today + dt.timedelta(days=_FIRST_DAY + days)).isoformat()


def _days_on(b: Bench) -> int:
    """How many days after _FIRST_DAY the next timed build runs (one more each run)."""
    try:
        return int((b.work / "days").read_text())
    except (OSError, ValueError):
        return 1


def _built_the_day_before(b: Bench) -> None:
    """A copy of the knowledge base, built (untimed) on the day before the timed build's day;
    each run's day is the one after the last run's. Nothing else changes."""
    days = _days_on(b)
    copy, site = b.work / "day-kb", b.work / "day-site"
    made = b.work / "day-kb.made"  # says the copy was made as this code makes it
    if days > _DAYS or not made.is_file() or made.read_text() != _COPY_FORMAT:
        shutil.rmtree(copy, ignore_errors=True)
        made.unlink(missing_ok=True)
    if not copy.is_dir():
        shutil.copytree(b.root, copy)
        _predictions_resolve_later(copy, b.env.get("KB_TODAY", "2026-11-28"))
        made.write_text(_COPY_FORMAT)
        days = 1  # a new copy, built afresh on the first day
    b.run(["env", f"KB_TODAY={_day(b, days - 1)}", *_kb_at(b, copy, "build", "--out",
                                                            str(site))])
    _wait_for_removal(site)
    (b.work / "days").write_text(str(days + 1))


def _predictions_resolve_later(copy: Path, today: str) -> None:
    """Each prediction dated after `today` resolves on _LAST_DATE instead: a knowledge base kept
    for years gives each prediction its verdict as its date passes, and the generated ones
    have none, so from day 30 on their builds would stop at T602."""
    import re

    dated = re.compile(r"^resolves_by: (\d{4}-\d{2}-\d{2})$", re.M)
    for path in (copy / "claims").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if "resolves_by:" not in text:
            continue
        later = dated.sub(lambda m: f"resolves_by: {_LAST_DATE}" if m.group(1) > today
                          else m.group(0), text)
        if later != text:
            path.write_text(later, encoding="utf-8")


@stage("build-next-day", "`kb build` on the day after the last build, nothing else changed: "
       "the claims whose last review falls due that day (about 1 in 330) change",
       prepare=_built_the_day_before)
def build_next_day(b: Bench) -> list[str]:
    # the prepare has counted this run's day
    return ["env", f"KB_TODAY={_day(b, _days_on(b) - 1)}",
            *_kb_at(b, b.work / "day-kb", "build", "--out", str(b.work / "day-site"))]
