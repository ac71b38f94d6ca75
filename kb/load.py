"""Read a knowledge base folder into the model: discover, read, parse (cached), assemble.

All reading happens here, before anything is checked or written. Parsing is the costly step, so
parsed files are cached by content (see kb.cache) and, when many files changed, spread over the
machine's cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kb import model as m
from kb.cache import ParseCache, digest, paused_gc
from kb.model import KIND_DIRS
from kb.problems import Loc, Problem, problem
from kb.schema import build_record
from kb.statcache import (
    Entries,
    load_stats,
    now_ns,
    save_stats,
    stat_path,
    status,
    trustworthy,
)
from kb.yamlstrict import decode, parse

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

PARALLEL_THRESHOLD = 1500  # below this, starting worker processes costs more than it saves


class NotAKnowledgeBase(Exception):
    """The folder cannot be read as a knowledge base at all (exit code 2)."""


class FileInput:
    """One record file: its kind, its path relative to the root (forward slashes), its digest
    and its bytes. When the file's status showed it unchanged (kb.statcache), only the digest
    is known and the bytes are read on first use; should the file have changed since, the
    digest then becomes that of the bytes read, so the two always agree."""

    __slots__ = ("_data", "_digest", "_source", "kind", "path")

    def __init__(self, kind: str, path: str, data: bytes | None = None,
                 digest_: str | None = None, source: str = "") -> None:
        if data is None and (digest_ is None or not source):
            raise ValueError("a FileInput needs its bytes, or its digest and file")
        self.kind = kind
        self.path = path
        self._data = data
        self._digest = digest_
        self._source = source  # the absolute path, to read the bytes from later

    @property
    def data(self) -> bytes:
        if self._data is None:
            if not self._source:
                raise RuntimeError(f"{self.path}: its bytes were released once parsed")
            data, _ = _read(self._source, self.path)
            self._data = data if data is not None else b""
            self._digest = digest(self._data)
        return self._data

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = digest(self.data)
        return self._digest

    def release(self) -> None:
        """Drop the bytes, keeping the digest of those parsed. They cannot be read again: the
        file may have changed since, and the digest must stay that of what was parsed."""
        self._digest = self.digest
        self._data = None
        self._source = ""

    def __repr__(self) -> str:
        return f"FileInput({self.kind!r}, {self.path!r}, digest={self.digest!r})"


Parsed = tuple[m.Record | None, list[Problem]]


def parse_file(kind: str, path: str, data: bytes) -> Parsed:
    """One file's record and problems; a pure function of its arguments, so it can be cached."""
    text, problems = decode(data, path)
    if text is None:
        return None, problems
    root, more = parse(text, path)
    problems += more
    if any(p.code == "Y002" for p in more):
        return None, problems
    record, more = build_record(kind, root, path)
    return record, problems + more


def _parse_batch(batch: list[FileInput]) -> list[Parsed]:
    with paused_gc():
        return [parse_file(f.kind, f.path, f.data) for f in batch]


def discover(root: Path) -> list[tuple[str, Path]]:
    """Every record file, by kind, in a stable order. Claims may sit in subfolders."""
    return [(kind, Path(path)) for kind, path in _discover(root)]


def _discover(root: Path) -> list[tuple[str, str]]:
    return [(kind, entry.path) for kind, entry in _discover_entries(root)]


def _discover_entries(root: Path) -> list[tuple[str, os.DirEntry[str]]]:
    if not root.is_dir():
        raise NotAKnowledgeBase(f"{root} is not a folder")
    dirs = {kind: root / name for kind, name in KIND_DIRS.items()}
    if not any(d.is_dir() for d in dirs.values()):
        raise NotAKnowledgeBase(
            f"{root} has none of claims/, sources/, entities/: not a knowledge base"
        )
    found: list[tuple[str, os.DirEntry[str]]] = []
    for kind, folder in dirs.items():
        entries: list[os.DirEntry[str]] = []
        _entries(str(folder), ".yaml", kind == "claim", entries)
        found += [(kind, e) for e in entries]
    return found


def _files(folder: Path, suffix: str, recursive: bool = False) -> list[str]:
    entries: list[os.DirEntry[str]] = []
    _entries(str(folder), suffix, recursive, entries)
    return [e.path for e in entries]


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _entries(folder: str, suffix: str, recursive: bool, out: list[os.DirEntry[str]]) -> None:
    """The non-folder entries ending in `suffix`, sorted by path (as pathlib sorts: by parts),
    into `out`. Sorting each folder's names and going down into subfolders in that order gives
    exactly the order of the paths' parts; hidden subfolders and links to folders are not
    entered (as os.walk would not).

    A broken link is kept, so that reading it reports Y008 instead of skipping it silently.
    os.scandir and plain strings, not Path.glob and Path objects: at 10,000 files pathlib's
    parsing alone costs a quarter of a second; the DirEntry gives the joined path for free.
    """
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=_name)
    except OSError:
        return
    for e in entries:
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            if e.name.endswith(suffix):
                out.append(e)
        elif recursive and not e.name.startswith(".") and not e.is_symlink():
            _entries(e.path, suffix, recursive, out)


# The files being parsed, set before worker processes fork, so that they inherit the bytes
# instead of receiving them pickled.
_PENDING: list[FileInput] = []


def _parse_range(bounds: tuple[int, int]) -> list[Parsed]:
    return _parse_batch(_PENDING[bounds[0] : bounds[1]])


# The share of the files this process parses itself when it has one helper: the helper also
# pickles its results (a third of the cost of parsing them) and this process unpickles them.
OWN_SHARE = 0.55
CHUNKS = 4  # per helper: results that come back early are unpickled while the helper works on


def _parse_parallel(files: list[FileInput], jobs: int) -> list[Parsed]:
    """Parse on `jobs` processes, this one included: it takes the first (larger) share itself,
    so only the other shares pay for sending their records back."""
    global _PENDING
    mine = round(len(files) * OWN_SHARE) if jobs == 2 else -(-len(files) // jobs)
    helpers = jobs - 1
    step = max(1, -(-(len(files) - mine) // (helpers * CHUNKS)))
    bounds = [(k, min(k + step, len(files))) for k in range(mine, len(files), step)]
    _PENDING = files
    # imported here: with logging, ~8 ms of an edit build's start, which parses one file
    from concurrent.futures import ProcessPoolExecutor

    try:
        pool = ProcessPoolExecutor(max_workers=helpers,
                                   mp_context=multiprocessing.get_context("fork"))
        try:
            futures = [pool.submit(_parse_range, b) for b in bounds]
            results = _parse_batch(files[:mine])
            for future in futures:
                results += future.result()
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown()
        return results
    finally:
        _PENDING = []


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the helpers now (Ctrl-C, SIGTERM, an error here): leaving the pool as `with` does
    waited for their share of the parsing, seconds at 100,000 claims. (A terminal's Ctrl-C
    reaches them too, but the pool's worker takes it for its task's error and goes on to the
    next task.)"""
    kill = getattr(pool, "kill_workers", None)  # Python 3.14
    if kill is not None:
        kill()
    else:  # before 3.14: the pool's processes (a private attribute, there since 3.2)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, ValueError):  # gone already; closed
                process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _parse_all(inputs: list[FileInput], cache: ParseCache | None, jobs: int) -> list[Parsed]:
    results: list[Parsed | None] = [None] * len(inputs)
    todo: list[int] = []
    for i, f in enumerate(inputs):
        hit = cache.get(f.kind, f.path, f.digest) if cache else None
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    files = [inputs[i] for i in todo]
    for f in files:  # read here, not in a worker: the digest must follow the bytes parsed
        f.data  # noqa: B018
    if jobs > 1 and len(files) >= PARALLEL_THRESHOLD:
        done = _parse_parallel(files, jobs)
    else:
        done = _parse_batch(files)
    for i, parsed in zip(todo, done, strict=True):
        results[i] = parsed
        if cache:
            f = inputs[i]
            cache.put(f.kind, f.path, f.digest, parsed)  # the digest of the bytes parsed
    return [r for r in results if r is not None]


def _read(path: str, shown: str) -> tuple[bytes | None, list[Problem]]:
    """The file's bytes. os.open and os.read, not open(): no buffered file object per file
    halves the time of reading 10,000 small files."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks), []
    except OSError as exc:
        return None, [problem(Loc(shown, 0, 0), "Y008", f"cannot read the file: {exc.strerror}")]


def _shown(path: str, prefix: str) -> str:
    """What kb.problems.rel gives for a path under the root, without making Path objects."""
    return (path[len(prefix):] if path.startswith(prefix) else path).replace(os.sep, "/")


@dataclass
class Inputs:
    """Every byte a knowledge base is made of, read once, before anything is parsed."""

    root: Path
    records: list[FileInput]
    snapshots: list[tuple[str, bytes]]  # (relative path, bytes) of sources/*.txt
    problems: list[Problem]
    _kept: set[tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    _digests: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def digests(self) -> dict[str, str]:
        """Path → digest of the bytes each record was parsed from: asked once they are parsed
        (a file's digest follows the bytes read), by the rules' cache and then the build, which
        made it each (130,000 entries at 100,000 claims). Not to be changed by the caller."""
        if self._digests is None:
            self._digests = {f.path: f.digest for f in self.records}
        return self._digests

    def kinds_and_paths(self) -> set[tuple[str, str]]:
        """(kind, path) of every record file: what the caches keep entries of. Made once (the
        parse and rule caches each ask: 130,000 pairs at 100,000 claims)."""
        if self._kept is None:
            self._kept = {(f.kind, f.path) for f in self.records}
        return self._kept

    def release(self) -> None:
        """Drop the record files' bytes once they are parsed (kb build: at 100,000 claims
        they are ~130 MB a build would otherwise hold to its end); digests are kept."""
        for f in self.records:
            f.release()

    def fingerprint(self) -> str:
        """One digest of every file's path and content: equal inputs, equal results."""
        h = hashlib.blake2b(digest_size=20)
        for f in self.records:
            h.update(f"{f.kind}\0{f.path}\0{f.digest}\n".encode())
        for path, data in self.snapshots:
            h.update(f"txt\0{path}\0{digest(data)}\n".encode())
        for p in self.problems:
            h.update(f"{p.loc}\0{p.code}\n".encode())
        return h.hexdigest()


def read_inputs(root: Path, use_cache: bool = True, folder: Path | None = None) -> Inputs:
    """Read every record file and text snapshot of the knowledge base in `root`.

    With `use_cache`, a record file whose status is as recorded with its digest is not read
    (kb.statcache says when that is safe); its bytes are read only if asked for."""
    root = root.resolve()
    prefix = os.path.join(str(root), "")
    problems: list[Problem] = []
    records: list[FileInput] = []
    spath = stat_path(root, folder)
    known = load_stats(spath) if use_cache else {}
    seen: Entries = {}
    now = now_ns()
    cut = len(prefix)
    slash = os.sep != "/"
    for kind, entry in _discover_entries(root):
        path = entry.path
        shown = path[cut:] if path.startswith(prefix) else path
        if slash:
            shown = shown.replace(os.sep, "/")
        try:
            st = status(entry.stat())
        except OSError:
            st = None  # a broken link or a vanished file: reading it says why (Y008)
        entry_ = known.get(path) if st is not None else None
        try:
            trusted = entry_ is not None and entry_[0] == st and type(entry_[1]) is str
        except (TypeError, IndexError, KeyError):
            trusted = False  # a corrupt entry: never trusted
        if trusted and entry_ is not None:
            records.append(FileInput(kind, shown, None, entry_[1], path))
            seen[path] = entry_
            continue
        data, probs = _read(path, shown)
        problems += probs
        if data is None:
            continue
        f = FileInput(kind, shown, data)
        records.append(f)
        if st is not None and trustworthy(st, now):
            seen[path] = (st, f.digest)
    if use_cache and seen != known:
        save_stats(spath, seen)
    snapshots = []
    for path in _files(root / KIND_DIRS["source"], ".txt"):
        shown = _shown(path, prefix)
        data, probs = _read(path, shown)
        problems += probs
        if data is not None:
            snapshots.append((shown, data))
    return Inputs(root, records, snapshots, problems)


def _snapshots(inputs: Inputs, kb: m.KnowledgeBase) -> list[Problem]:
    problems: list[Problem] = []
    for shown, data in inputs.snapshots:
        stem = PurePosixPath(shown).stem
        text, probs = decode(data, shown)
        problems += [problem(p.loc, "Q502", p.message, p.hint) for p in probs]
        if stem not in kb.sources:
            problems.append(problem(Loc(shown, 0, 0), "Q503",
                                    f"no source '{stem}' for this text",
                                    f"add sources/{stem}.yaml or rename the file"))
        elif text is not None:
            kb.snapshots[stem] = m.Snapshot(stem, shown, text)
    return problems


def load(
    root: Path, cache: ParseCache | None = None, jobs: int | None = None,
    inputs: Inputs | None = None, save: bool = True,
) -> tuple[m.KnowledgeBase, list[Problem]]:
    """The knowledge base in `root` (or of `inputs` already read), and every problem found.

    Without `save`, the cache is left for the caller to save (kb.check saves it while the
    rules run)."""
    inputs = inputs or read_inputs(root, use_cache=cache is not None)
    problems = list(inputs.problems)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    kb = m.KnowledgeBase(inputs.root)
    # The records, then a tuple each for the list of files and one for the caches' set of
    # them: at 100,000 claims the collector, left on after the parse, ran two full collections
    # over these (0.23 s of an edit build on a machine where it took ~30 s).
    with paused_gc():
        parsed = _parse_all(inputs.records, cache, jobs)
        tables = kb.tables()
        files = kb.files
        for f, (record, probs) in zip(inputs.records, parsed, strict=True):
            if probs:
                problems += probs
            if record is None:
                continue
            files.append((f.path, record))
            tables[f.kind].setdefault(record.id, record)
        if cache is not None:
            cache.keep_only(inputs.kinds_and_paths())
    if cache is not None and save:
        cache.save()
    problems += _snapshots(inputs, kb)
    return kb, problems


def kind_of(record: m.Record) -> str:
    if isinstance(record, m.Claim):
        return "claim"
    if isinstance(record, m.Source):
        return "source"
    return "entity"
