"""The search index in shards: separate pagefind bundles, merged in the browser.

Pagefind cannot add to an index, only make one: an edit that changed what search shows (a
claim's statement, its status) re-ran it over all 13,000 stubs at 10,000 claims, 5 s of a 9 s
build. So the index is split into shards, each a bundle of its own in pagefind/<n>/ (kb.search
.shard_folder) made from the stubs of its pages, with a key of its own in the manifest: a
shard whose stubs did not change is kept, and an edit re-indexes the one shard its page is in.
The search page loads shard 0's pagefind-ui.js and merges the others (pagefind's mergeIndex:
templates/search.html, static/site.js).
"""

from __future__ import annotations

import os
import shutil
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.search import (
    OUTPUT,
    Indexing,
    SearchError,
    remove_left_behind,
    start_pagefind,
    stub_key,
)
from kb.write import Link, Page, Stat

if TYPE_CHECKING:
    from kb.pages import SiteModel
    from kb.stubs import StubCache

# A shard holds at most SHARD_PAGES pages while there are at most MAX_SHARDS: small enough that
# pagefind re-indexes one in under a second, few enough that the browser's first search (a
# pagefind-entry.json and a metadata file per shard, then an index chunk per shard and word)
# stays a handful of small requests. In a build pagefind takes ~0.9 ms a page here (0.4 ms on
# an idle machine: it shares two cores with the rendering and the dumps), and re-indexing the
# edited page's shard is a statement edit's critical path: 2,500 made a shard of 1,625 pages at
# 10,000 claims (1.4-1.7 s), 1,000 makes 16 shards of ~810 pages there (0.85-0.9 s).
SHARD_PAGES = 1000
MAX_SHARDS = 32
PARALLEL = 2  # pagefind processes at a time: each uses every core it is given


def shard_count(pages: int) -> int:
    """How many shards an index of `pages` pages has: 1 up to SHARD_PAGES, else the smallest
    power of two of at least pages / SHARD_PAGES, at most MAX_SHARDS. A pure function of the
    count, so a full and an incremental build of the same files split alike."""
    count = 1
    while count * SHARD_PAGES < pages and count < MAX_SHARDS:
        count *= 2
    return count


def shard_of(path: str, count: int) -> int:
    """The shard of the page at `path`: a hash of the path alone, so a page stays in its shard
    while the count is the same (and, the count being a power of two, when it doubles, either
    stays or moves to shard + count)."""
    if count <= 1:
        return 0
    # CRC-32, not a cryptographic hash: nothing is kept from anyone, and it took a third of the
    # time over 13,000 paths, which each build splits (spread as evenly: 738-903 a shard of 16).
    return zlib.crc32(path.encode("utf-8")) % count


def split(digests: Mapping[str, str], count: int) -> list[dict[str, str]]:
    """Each shard's share of `digests` (page path → stub digest)."""
    parts: list[dict[str, str]] = [{} for _ in range(count)]
    for path, value in digests.items():
        parts[shard_of(path, count)][path] = value
    return parts


def shard_keys(executable: str, parts: list[dict[str, str]]) -> list[str]:
    """stub_key of each shard (`parts`: split's): its stubs, its number and the count."""
    return [stub_key(executable, part, f"{i}/{len(parts)}") for i, part in enumerate(parts)]


# What the browser fetches of a shard it merges (pagefind.js, PagefindInstance.init with
# load_wasm false, then search): the entry, the metadata, index chunks and fragments. The
# rest of a bundle (the UI's scripts and styles, pagefind.js, its worker, the WebAssembly:
# ~650 kB) is loaded from shard 0 only, and removed from the others.
_MERGED_KEEP = ("pagefind-entry.json", "index", "fragment")


def prune_merged(bundle: Path) -> None:
    """Remove from a merged shard's bundle the files only the primary bundle's are used of."""
    for entry in os.scandir(bundle):
        if entry.name in _MERGED_KEEP or entry.name.endswith(".pf_meta"):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


class ShardIndexing:
    """Pagefind indexing some shards of the index, PARALLEL at a time, in the background.

    One thread of its own starts an Indexing for each shard as a slot frees; each reads a new
    folder of its shard's stubs in path order (the changed ones, and the StubCache's others
    when there is one). wait() keeps the changed stubs in the StubCache, in a thread beside the
    runs, and waits for them; wait() (tidied), close() after wait(tidied=False), or cancel()
    ends it all, as Indexing's do.
    """

    def __init__(self, executable: str, shards: list[int], count: int, stubs: list[Page],
                 output: Path, kept: StubCache | None = None,
                 digests: Mapping[str, str] | None = None, last: Path | None = None,
                 parts: list[dict[str, str]] | None = None) -> None:
        self.shards, self.count, self.output = shards, count, output
        self._parts = parts  # split(digests, count), when the caller has it already
        self._last = last  # the last site's index folder (kb.search.start_pagefind)
        self.jobs: list[Indexing] = []
        self._executable = executable
        self._kept, self._digests = kept, digests
        self._failure: BaseException | None = None
        self._stop = False
        self._done = False
        self._lock = threading.Lock()  # held while a shard's run starts, or runs are cancelled
        self._slots = threading.Semaphore(PARALLEL)
        self._first = threading.Event()  # the first shards' stubs are written (see settle)
        self._to_keep: list[Page] | None = None  # stubs for the cache (`kept`), by wait()
        self._keeping: threading.Thread | None = None  # keeping them (see wait)
        self.kept_failure: Exception | None = None  # why they could not be kept
        self._thread = threading.Thread(target=self._run, args=(stubs,), name="kb-pagefind-shards",
                                        daemon=True)
        self._thread.start()

    def _pages(self, stubs: list[Page]) -> list[list[Page]]:
        """The stubs of each shard to index, in path order."""
        count, wanted = self.count, set(self.shards)
        if self._kept is not None and self._digests is not None:
            # The changed stubs, and the cache's for the others: the changed ones are kept in
            # the cache by a thread wait() starts, while pagefind runs and the build commits
            # (writing them first held up the pages' rendering, which waits for the first
            # shards' folders: kb.build._fill).
            self._to_keep = stubs
            changed = {page.path: page for page in stubs}
            parts = self._parts or split(self._digests, count)
            return [[changed.get(path) or self._kept.page(path, parts[i][path])
                     for path in sorted(parts[i])] for i in self.shards]
        mine: dict[int, list[Page]] = {i: [] for i in self.shards}
        for page in stubs:
            shard = shard_of(page.path, count)
            if shard in wanted:
                mine[shard].append(page)
        return [sorted(mine[i], key=lambda page: page.path) for i in self.shards]

    def _run(self, stubs: list[Page]) -> None:
        try:
            pages = self._pages(stubs)
            del stubs
            first = min(PARALLEL, len(self.shards))
            for shard, part in zip(self.shards, pages, strict=True):
                self._slots.acquire()
                with self._lock:
                    if self._stop or any(job.failed() for job in self.jobs):
                        self._slots.release()
                        return
                    last = None if self._last is None else self._last / str(shard)
                    self.jobs.append(start_pagefind(
                        self._executable, part, self.output / str(shard),
                        on_end=self._slots.release,
                        last=last if last is not None and last.is_dir() else None,
                        on_made=None if shard == 0 else prune_merged))
                if len(self.jobs) == first:
                    for job in self.jobs:
                        job.written.wait()
                    self._first.set()
        except Exception as exc:  # kept for wait(): a thread's error would otherwise be lost
            self._failure = exc
        finally:
            self._first.set()

    def settle(self) -> None:
        """Wait until the stubs of the first shards (PARALLEL at most) are written, or their
        runs have ended; their pagefind processes are then being started.

        A caller about to render in this process calls it first: writing ~800 stub files took
        0.3 s beside the rendering, which holds the GIL, and 0.02 s alone; pagefind then runs
        on the other core while the pages are rendered. The caller must not fork meanwhile
        (kb.build._fill)."""
        self._first.wait()

    def wait(self, tidied: bool = True) -> None:
        """Wait for every shard; raise SearchError if any failed. (The merged shards' bundles
        lost the files the browser loads from shard 0 only as their runs ended: prune_merged.)

        The changed stubs are kept in the StubCache by a thread started now, beside the last
        runs. With `tidied` False, return once the index is made: that thread, and the runs'
        removal of their folders, may go on (~60 ms after an edit at 10,000 claims, which the
        build spends committing); close() waits for them."""
        if not self._done:
            self._thread.join()
            self._done = True
            if self._kept is not None and self._digests is not None and self._to_keep is not None:
                self._keeping = threading.Thread(
                    target=self._keep, args=(self._kept, self._to_keep, self._digests),
                    name="kb-pagefind-stubs", daemon=True)
                self._keeping.start()
            self._to_keep = None
        try:
            if self._failure is not None:
                raise SearchError(f"the search stubs could not be written: {self._failure}")
            for job in self.jobs:
                job.wait(tidied=False)
        finally:
            if tidied:
                self.close()

    def _keep(self, kept: StubCache, stubs: list[Page], digests: Mapping[str, str]) -> None:
        try:
            kept.write(stubs, digests)
        except Exception as exc:  # for close(): a thread's error would otherwise be lost
            self.kept_failure = exc

    def close(self) -> None:
        """Wait for what wait() left going: the stubs kept, the runs' folders removed. The
        stubs are a cache: a failure to keep them (`kept_failure`) costs the next build time
        only, and is not raised (the cache's own write errors are not even told:
        kb.cache.write_pickle)."""
        if self._keeping is not None:
            self._keeping.join()
            self._keeping = None
        for job in self.jobs:
            job.close()

    def cancel(self) -> None:
        """Stop every shard's run (the build failed elsewhere)."""
        with self._lock:
            self._stop = True
            jobs = list(self.jobs)
        for job in jobs:
            job.cancel()
        self._thread.join()
        self._done = True
        for job in self.jobs:
            job.cancel()
        if self._keeping is not None:  # the stubs kept, or their error, are let be
            self._keeping.join()
            self._keeping = None


def start_shards(executable: str, shards: list[int], count: int, stubs: list[Page],
                 output: Path, kept: StubCache | None = None,
                 digests: Mapping[str, str] | None = None,
                 last: Path | None = None,
                 parts: list[dict[str, str]] | None = None) -> ShardIndexing:
    """Index `shards` (of `count`) into output/<n> each, in the background; return at once.

    With `kept` (kb.stubs.StubCache) and `digests` (every indexed page's stub digest), `stubs`
    are only the ones that changed (and those the cache lacks), as for start_pagefind;
    otherwise `stubs` hold at least every stub of those shards. With `last`, the last site's
    index folder: each shard's files equal to those of last/<n> are linked from there
    (start_pagefind). `parts`: split(digests, count), if made already. Folders a killed
    build's pagefind runs left are removed first.
    """
    remove_left_behind()
    return ShardIndexing(executable, shards, count, stubs, output, kept, digests, last, parts)


@dataclass
class Indexed:
    """What a build made of the search index: each shard's key, the index's files, every
    indexed page's stub digest, and the shards pagefind indexed again (the others were kept)."""

    count: int = 1
    keys: list[str] = field(default_factory=list)
    files: dict[str, Stat] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    redone: list[int] = field(default_factory=list)


@dataclass
class IndexPlan:
    """The search index a build makes: the shards kept from the last site (`found`: their
    files) and the stubs pagefind is given for the others; `running` once started."""

    indexed: Indexed
    found: dict[int, list[Link]] = field(default_factory=dict)
    stubs: list[Page] = field(default_factory=list)
    folder: StubCache | None = None
    parts: list[dict[str, str]] = field(default_factory=list)  # each shard's stub digests
    running: ShardIndexing | None = None
    ending: ShardIndexing | None = None  # waited for, but not tidied up (close)

    def start(self, executable: str, output: Path, last: Path | None) -> None:
        """Index the shards to make again, in the background (start_shards); the stubs given
        are then let go. `last`: the last site's index folder, when it is as left."""
        if self.indexed.redone and self.running is None:
            self.running = start_shards(executable, self.indexed.redone, self.indexed.count,
                                        self.stubs, output, self.folder, self.indexed.digests,
                                        last, self.parts or None)
        self.stubs = []

    def wait(self) -> None:
        """Wait for the index to be made (ShardIndexing.wait); close() tidies up after it."""
        if self.running is not None:
            self.ending = self.running  # first: reachable by cancel() at every moment
            self.running = None
            self.ending.wait(tidied=False)

    def close(self) -> str:
        """Wait for what the index's wait left going; why its stubs could not be kept, or ""."""
        if self.ending is None:
            return ""
        ending = self.ending
        ending.close()
        self.ending = None
        return "" if ending.kept_failure is None else str(ending.kept_failure)

    def cancel(self) -> None:
        if self.running is not None:
            self.running.cancel()
            self.running = None
        if self.ending is not None:
            self.ending.cancel()
            self.ending = None


def plan_index(model: SiteModel, root: Path, todo: list[Any], page_keys: dict[str, str],
               executable: str, count: int, manifest: Any, site: Any,
               cache: bool) -> IndexPlan:
    """Which shards of the index are kept (their stubs are those of the last build, and their
    files as it left them) and the stubs of those to make again (kb.stubs)."""
    from kb.stubs import for_pagefind, to_render

    index = IndexPlan(Indexed(count))
    indexed = index.indexed
    stubs, indexed.digests = to_render(model, root, todo, page_keys, manifest)
    digests = indexed.digests
    parts = index.parts = split(digests, count)  # each shard's pages: hashed once
    indexed.keys = shard_keys(executable, parts)
    index.found = (manifest.search_reusable(site, indexed.keys, OUTPUT)
                   if manifest is not None else {})
    indexed.redone = [i for i in range(count) if i not in index.found]
    if indexed.redone:  # pagefind reads every stub of a shard: those it is not given
        wanted = (None if len(indexed.redone) == count
                  else [p for i in indexed.redone for p in parts[i]])
        index.stubs, index.folder = for_pagefind(model, root, stubs, digests, cache, wanted)
    return index
