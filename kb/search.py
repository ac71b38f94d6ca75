"""The site's search index: pagefind, run by the build in the background, or a small JSON index.

Pagefind (PyPI `pagefind[bin]`, which ships its binary) indexes the pages marked
`data-pagefind-body` (claims, sources, entities) and serves results from static files. Where it
is not installed, the build writes `search/index.json` (title, kind, URL, text of every claim,
source and entity) and the site's script searches it in the browser.

Pagefind does not read the site itself: parsing 13,000 whole pages (~450 MB at 10,000 claims)
cost more than all the rest of the build. It reads a *stub* of each indexed page, at the page's
path: its language, its title and its data-pagefind-body block, rendered by the same include
the page uses (templates/search/), so the index is the one the pages would give. The stubs are
known from the model alone, so pagefind runs in the background while the pages are rendered
(`start_pagefind`, then `Indexing.wait`). Its Python API (pagefind.index) hangs here: the
binary is run instead (the API polls each reply with a 0.1 s sleep: 13,000 records would take
over 20 minutes).

The index is split into shards (kb.searchshards): separate pagefind bundles in pagefind/0/,
pagefind/1/ …, which the search page merges in the browser (pagefind's mergeIndex).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Container, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import jinja2

from kb.pages import SiteModel
from kb.stubs import StubCache
from kb.write import Page, Stat, file_stat, left_behind, place_folder, process_tag, remove_later


class SearchError(Exception):
    """Pagefind was found but failed: the build stops before the new site is swapped in."""


def pagefind_executable() -> str | None:
    try:
        from pagefind_bin import get_executable  # type: ignore[import-untyped,unused-ignore]

        return str(get_executable())
    except Exception:
        return shutil.which("pagefind")


OUTPUT = "pagefind"  # the index's folder in the site
_INDEXED = ("claims", "sources", "entities")


def indexed(path: str) -> bool:
    """Whether the search index has this page of the site (claims, sources, entities)."""
    parts = path.split("/")
    return len(parts) == 3 and parts[0] in _INDEXED and parts[2] == "index.html"


def index_files(site: Path, shards: Iterable[int] | None = None) -> dict[str, Stat]:
    """The index's files in the built site (of those shards only), as the manifest records them."""
    found: dict[str, Stat] = {}
    folders = [site / OUTPUT] if shards is None else [site / shard_folder(i) for i in shards]
    for folder in folders:
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                f = os.path.join(dirpath, name)
                found[Path(f).relative_to(site).as_posix()] = file_stat(os.lstat(f))
    return found


def shard_folder(shard: int) -> str:
    """The shard's bundle in the site: pagefind/<n> (shard 0 is the one the page loads)."""
    return f"{OUTPUT}/{shard}"


# -- pagefind over stubs, in the background --------------------------------------------------------
STUB_TEMPLATE = "search/stub.html"
OPTIONS = ("--silent",)  # besides --site and --output-path; part of the key
TIMEOUT = 600.0  # seconds; 10,000 claims take ~5
_TAIL = 2000  # characters of pagefind's output kept in an error
_FOLDERS = {"claim": "claims", "source": "sources", "entity": "entities"}


def stub_pages(model: SiteModel, env: jinja2.Environment,
               only: Container[str] | None = None) -> list[Page]:
    """One small HTML page per indexed page, at its path, holding what pagefind indexes of it.

    <html lang>, <title>, and the data-pagefind-body block rendered by the include the real
    page uses (search/claim.html, search/source.html, search/entity.html), with the context
    the page has: so titles, excerpts and URLs of the results are the pages' own. Sorted by path.
    With `only`, just the stubs of those paths (an incremental build knows the others).
    """
    kb = model.kb
    stub = env.get_template(STUB_TEMPLATE)
    base = {"m": model, "kb": kb, "config": model.config, "root": "../../",
            "today": model.today}
    pages: list[Page] = []

    def add(kind: str, id_: str, **values: Any) -> None:
        path = f"{_FOLDERS[kind]}/{id_}/index.html"
        if only is not None and path not in only:
            return
        text = stub.render(base, kind=kind, id=id_, path=path, **values)
        pages.append(Page(path, text.encode("utf-8")))

    for cid in model.claim_ids:
        add("claim", cid, claim=kb.claims[cid])
    for sid in sorted(kb.sources):
        add("source", sid, s=kb.sources[sid])
    for eid in sorted(kb.entities):
        add("entity", eid, e=kb.entities[eid])
    pages.sort(key=lambda page: page.path)
    return pages


def stub_digest(data: bytes) -> str:
    """What the build's manifest (and kb.stubs) keep of a stub's bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def stub_digests(stubs: list[Page]) -> dict[str, str]:
    """Each stub's path → stub_digest of its bytes."""
    return {page.path: stub_digest(page.data) for page in stubs}


def stub_key(executable: str, stubs: list[Page] | Mapping[str, str], part: str = "") -> str:
    """What the index is made from: pagefind (path, size, mtime), its options, every stub
    (the stubs, or their stub_digests), and `part` (which shard of how many).

    "" when the executable cannot be stat'ed. Pagefind cannot add to an index, only make one
    afresh: when this key is the last build's, its index can be kept as it is.
    """
    digests = stubs if isinstance(stubs, Mapping) else stub_digests(stubs)
    h = hashlib.blake2b(digest_size=16)
    try:
        st = os.stat(executable)
    except OSError:
        return ""
    h.update(f"{executable}\0{st.st_size}\0{st.st_mtime_ns}\0{' '.join(OPTIONS)}\0"
             f"{OUTPUT}\0{STUB_TEMPLATE}\0{part}\n".encode())
    for path in sorted(digests):
        h.update(f"{path}\0{digests[path]}\n".encode())
    return h.hexdigest()


# Pagefind's folders under the scratch folder (tmpfs: memory), named with the process's tag
# (kb.write.process_tag), for a later build to remove those a killed one left.
STUBS_PREFIX, OUT_PREFIX = "kb-pagefind-", "kb-pagefind-out-"


def remove_left_behind() -> None:
    """Remove the folders of pagefind runs that a killed build left under the scratch folder,
    where they hold memory (tmpfs) until the machine restarts."""
    scratch = _scratch_parent()
    folder = Path(scratch if scratch is not None else tempfile.gettempdir())
    for left in left_behind(folder, (STUBS_PREFIX, OUT_PREFIX)):
        remove_later(left)


def _scratch_parent() -> str | None:
    """/dev/shm where it is a writable folder (tmpfs: the stubs never touch a disk)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


# Free space that tmpfs must have for pagefind to write an index there (a shard's is ~4 MB at
# 10,000 claims, ~20 MB at 100,000); a smaller one (Docker's /dev/shm is 64 MB) is not used.
ROOM = 256 * 2**20


def _room(folder: str) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= ROOM


def _write_stubs(folder: Path, stubs: Iterable[Page], stop: threading.Event) -> None:
    made: set[str] = set()
    for page in stubs:
        if stop.is_set():
            return
        parent = page.path.rpartition("/")[0]
        if parent and parent not in made:
            os.makedirs(folder / parent, exist_ok=True)
            made.add(parent)
        fd = os.open(folder / page.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(page.data)
            while view:  # one write(2) for a stub, in practice
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


class Indexing:
    """Pagefind indexing a folder of stubs, in the background (see start_pagefind).

    One thread of its own writes the stubs, runs pagefind and removes the folder: 13,000 small
    files take most of a second to write and as long to remove, even on tmpfs, time the caller
    spends rendering instead. wait(), close() or cancel() ends it; calling one again does
    nothing (wait() raises again if the run failed). wait(tidied=False) returns once the index
    is made, before the folders are removed: close() then waits for that.
    """

    def __init__(self, executable: str, stubs: list[Page], output: Path, folder: Path,
                 kept: StubCache | None = None, digests: Mapping[str, str] | None = None,
                 on_end: Callable[[], None] | None = None, last: Path | None = None,
                 on_made: Callable[[Path], None] | None = None) -> None:
        self.folder = folder
        self._on_end = on_end  # called by the thread as it ends, whatever happened
        self._on_made = on_made  # called with pagefind's folder once it has ended well
        # With the last site's copy of this index: pagefind writes on tmpfs, and its files are
        # placed in `output` from there, those equal to last's hard-linked (kb.write.place_folder).
        self._last = last
        self._kept, self._digests = kept, digests  # with a StubCache: `stubs` are the changed
        self.output = output
        self.seconds = 0.0  # wall time from start to pagefind's end
        self._started = time.monotonic()
        self._executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._failure = ""  # why the stubs were not written, or pagefind did not start or end
        self._error: SearchError | None = None
        self._done = False
        self._stop = threading.Event()
        self.written = threading.Event()  # set once the stubs are written (or will never be)
        # Set once the run's outcome is known; the thread then removes its folders (see wait)
        self._ended = threading.Event()
        self._lock = threading.Lock()  # held while the process starts or is killed
        self._thread = threading.Thread(target=self._run, args=(stubs,), name="kb-pagefind",
                                        daemon=True)
        self._thread.start()

    def _run(self, stubs: list[Page]) -> None:
        made = self.output  # where pagefind writes
        try:
            if self._kept is not None and self._digests is not None:
                # Pagefind's index depends on the order it finds the files in, which is the
                # folder's order on disk: so it always reads a new folder, written in path
                # order, never the kept one (whose order depends on its history).
                self._kept.write(stubs, self._digests)
                _write_stubs(self.folder, self._kept.pages(self._digests), self._stop)
            else:
                _write_stubs(self.folder, stubs, self._stop)
            self.written.set()
            scratch = _scratch_parent()
            self._log = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 (see wait)
            if self._last is not None and scratch is not None and _room(scratch):
                made = Path(tempfile.mkdtemp(prefix=f"{OUT_PREFIX}{process_tag()}", dir=scratch))
            cmd = [self._executable, "--site", str(self.folder), "--output-path",
                   str(made.absolute()), *OPTIONS]
            with self._lock:
                if self._stop.is_set():
                    return
                self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                 stdout=self._log, stderr=subprocess.STDOUT)
            try:
                self._process.wait(timeout=max(0.0, self._started + TIMEOUT - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._failure = f"pagefind took longer than {TIMEOUT:.0f} s"
                self._kill()
            self.seconds = time.monotonic() - self._started
            if self._process.returncode == 0 and not self._failure:
                self._finish(made)
        except (OSError, subprocess.SubprocessError) as exc:
            self._failure = f"pagefind could not run: {exc}"
        finally:
            self.written.set()
            self._ended.set()
            if self._on_end is not None:
                self._on_end()
            # Last, after the outcome is told: removing ~800 files of a shard took ~25 ms
            # at 10,000 claims, which a build spends committing meanwhile (wait's `tidied`).
            shutil.rmtree(self.folder, ignore_errors=True)
            if made != self.output:
                shutil.rmtree(made, ignore_errors=True)

    def _finish(self, made: Path) -> None:
        """After pagefind ended well: on_made, then its files into `output` if made elsewhere.
        Any error fails the run: `output` may hold part of the index."""
        try:
            if self._on_made is not None:
                self._on_made(made)
            if made != self.output:
                place_folder(made, self.output, self._last)
        except Exception as exc:
            self._failure = f"the search index could not be written to {self.output}: {exc}"

    def _kill(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
        if self._process is not None:
            self._process.wait()

    def _tail(self) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return text.strip()[-_TAIL:]

    def _check(self) -> str:
        """Why the run failed, or ""."""
        if self._failure:
            return self._failure
        code = self._process.returncode if self._process is not None else None
        if code is None:
            return "pagefind did not run"
        if code != 0:
            return f"pagefind failed (exit code {code})"
        if not (self.output / "pagefind-entry.json").is_file():
            return f"pagefind made no index in {self.output}"
        return ""

    def failed(self) -> bool:
        """Whether the run has ended, and not well."""
        return self._ended.is_set() and bool(self._check())

    def wait(self, tidied: bool = True) -> None:
        """Wait for pagefind; raise SearchError (with its output's tail) if it failed. With
        `tidied` False, return as soon as the index is made, while the stubs' folder is still
        being removed: close() waits for that."""
        if not tidied:
            self._ended.wait()
        else:
            self.close()
        if not self._done:
            self._done = True
            message = self._check()
            if message:
                tail = self._tail()
                self._error = SearchError(f"{message}: {tail}" if tail else message)
            if self._log is not None:
                self._log.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait for the run to end, its folders removed."""
        self._thread.join()

    def cancel(self) -> None:
        """Stop pagefind (the build failed elsewhere); the stub folder is removed."""
        if self._done:
            self.close()  # after wait(tidied=False): the folders may be being removed
            return
        self._stop.set()  # no more stubs written, no process started
        self._kill()
        self._thread.join()
        self._done = True
        if self._log is not None:
            self._log.close()


def start_pagefind(executable: str, stubs: list[Page], output: Path,
                   kept: StubCache | None = None,
                   digests: Mapping[str, str] | None = None,
                   on_end: Callable[[], None] | None = None, last: Path | None = None,
                   on_made: Callable[[Path], None] | None = None) -> Indexing:
    """Write the stubs into a folder and run pagefind on it; return at once.

    Pagefind reads a private temporary folder under /dev/shm when that is writable (tmpfs),
    else the system's temporary folder, removed afterwards. With `kept` (kb.stubs.StubCache)
    and `digests` (every indexed page's stub digest), `stubs` are only the ones that changed:
    they are kept there, and the folder is filled from it; otherwise `stubs` are all of them.
    Pagefind writes its index into `output` (the staging site's pagefind/ folder), and its
    messages into an unnamed temporary file, which cannot fill up and block it as a pipe can.
    With `last` (the last site's copy of this index, as the last build left it), pagefind
    writes on tmpfs when it has ROOM, and its files are placed in `output` from there: those
    whose bytes equal last's are hard-linked from it, the others copied (kb.write.place_folder:
    0.03 s rather than 0.3-0.5 s for a shard of 840 files on the benchmark's disk). `on_made`
    is called with the folder pagefind wrote once it has ended well, before any placing.
    Errors (stubs not written, pagefind not started or failed) are raised by wait().
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{STUBS_PREFIX}{process_tag()}",
                                       dir=_scratch_parent()))
    except OSError as exc:
        raise SearchError(f"no folder for the search stubs: {exc}") from exc
    return Indexing(executable, stubs, output, folder, kept, digests, on_end, last, on_made)


def json_index(model: SiteModel) -> Page:
    """The fallback index: every claim, source and entity with the words to match."""
    items = []
    for cid in model.claim_ids:
        c = model.kb.claims[cid]
        items.append({"kind": f"claim · {model.status(cid)}", "title": c.claim,
                      "url": f"claims/{cid}/", "text": " ".join([c.claim, cid, *c.tags])})
    for sid in sorted(model.kb.sources):
        s = model.kb.sources[sid]
        items.append({"kind": "source", "title": s.title, "url": f"sources/{sid}/",
                      "text": f"{s.title} {sid}"})
    for eid in sorted(model.kb.entities):
        e = model.kb.entities[eid]
        items.append({"kind": "entity", "title": e.name, "url": f"entities/{eid}/",
                      "text": " ".join([e.name, eid, *e.aliases, e.description or ""])})
    data = json.dumps(items, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return Page("search/index.json", data.encode("utf-8"))
