"""The stubs pagefind indexes, kept between builds in the user's cache.

Pagefind cannot add to an index: after an edit that changes what any page shows to search (a
claim's text, its status), it indexes every stub again. Rendering all 13,000 stubs for that took
3.7 s at 10,000 claims, longer than the rest of such a build; this folder keeps the last build's
stubs, so a build renders and writes only those that changed. Pagefind itself reads a new folder
filled from this one in path order (kb.search.Indexing): its index depends on the order in which
it finds the files, which for a folder changed over many builds is not the order of a new one.

The folder is in the user's cache, never in the knowledge base. Its record (RECORD) holds what
was written: each stub's digest and the Stat of its file. A stub is used again only when its
file's Stat is as recorded and the recorded digest is the one the build expects (the last
build's manifest); otherwise it is rendered and written again. The record is deleted before the
folder is changed and written after, so a build that stops half-way leaves a folder that the
next one does not trust and writes afresh. A lock (flock) keeps two builds of one knowledge base
from writing it at once: a build that cannot take it indexes a private folder of all its stubs.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from kb.write import Page

if TYPE_CHECKING:
    from kb.manifest import Manifest
    from kb.pages import SiteModel
    from kb.render import Spec

RECORD = ".kb-stubs"  # marshal: (FORMAT, {path: (digest, size, mtime_ns, inode)})
LOCK = ".kb-stubs.lock"
FORMAT = 1

Entry = tuple[str, int, int, int]  # digest, size, mtime_ns, inode


# -- which stubs to make ----------------------------------------------------------------------
def to_render(model: SiteModel, root: Path, todo: list[Spec], page_keys: Mapping[str, str],
              manifest: Manifest | None) -> tuple[list[Page], dict[str, str]]:
    """The stubs of the indexed pages to render, and the digest of every indexed page's stub.

    A page kept from the last build shows what it showed, so its stub is the one the manifest
    has the digest of: only the rendered pages' stubs are made (all of them in a full build).
    """
    from kb import search
    from kb.render import make_env

    indexed = [p for p in page_keys if search.indexed(p)]
    old = manifest.stubs if manifest is not None else {}
    made = {s.path for s in todo if search.indexed(s.path)}
    made.update(p for p in indexed if p not in old)
    env = make_env(root)
    stubs = search.stub_pages(model, env, made if len(made) < len(indexed) else None)
    digests = {p: old[p] for p in indexed if p not in made}
    digests.update(search.stub_digests(stubs))
    return stubs, digests


def for_pagefind(model: SiteModel, root: Path, stubs: list[Page], digests: dict[str, str],
                 cache: bool) -> tuple[list[Page], StubFolder | None]:
    """The stubs to give pagefind, which reads every indexed page's stub: with the folder of
    the last build's stubs (a StubFolder, locked here), those it does not hold as they are now;
    without it (no cache, or another build has it), all of them."""
    from kb import search
    from kb.cache import cache_path
    from kb.render import make_env

    folder = StubFolder.open(cache_path(root, "stubs").with_suffix("")) if cache else None
    if folder is None:
        return (stubs if len(stubs) == len(digests)
                else search.stub_pages(model, make_env(root))), None
    made = {page.path for page in stubs}
    need = folder.missing({p: d for p, d in digests.items() if p not in made})
    if need:  # pages kept from the last build whose stubs the folder lacks (a new cache …)
        more = search.stub_pages(model, make_env(root), need)
        digests.update(search.stub_digests(more))
        stubs = sorted([*stubs, *more], key=lambda page: page.path)
    return stubs, folder


# -- the folder -------------------------------------------------------------------------------
class StubFolder:
    """A folder of stubs at their pages' paths, and what was written into it (see the module)."""

    def __init__(self, path: Path, lock: int) -> None:
        self.path = path
        self._lock: int | None = lock
        self._record = self._read_record()

    @classmethod
    def open(cls, path: Path) -> StubFolder | None:
        """The folder, locked for this build; None when another build holds it or it cannot
        be made (the caller then uses a private folder)."""
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(path, fd)

    def _read_record(self) -> dict[str, Entry]:
        try:
            version, entries = marshal.loads((self.path / RECORD).read_bytes())
        except Exception:  # missing, truncated, foreign: nothing in the folder is trusted
            return {}
        if version != FORMAT or not isinstance(entries, dict):
            return {}
        return entries

    def missing(self, digests: Mapping[str, str]) -> set[str]:
        """The paths of `digests` whose stub the folder does not hold, as recorded, with that
        digest: those must be rendered and written again."""
        out = set()
        record = self._record
        for path, want in digests.items():
            entry = record.get(path)
            if entry is None or entry[0] != want or _entry(want, self.path / path) != entry:
                out.add(path)
        return out

    def write(self, stubs: Iterable[Page], digests: Mapping[str, str]) -> None:
        """Make the folder hold the stubs of `digests` (path → digest of the stub), and no
        others: `stubs` are written, the stubs of other paths removed, and all recorded."""
        record = self._record
        (self.path / RECORD).unlink(missing_ok=True)  # untrusted until the new record lands
        if not record:  # a folder nothing is known of: start it afresh
            for child in self.path.iterdir():
                if child.name not in (LOCK,):
                    _remove(child)
        made: set[str] = set()
        for page in stubs:
            target = self.path / page.path
            parent = page.path.rpartition("/")[0]
            if parent and parent not in made:
                (self.path / parent).mkdir(parents=True, exist_ok=True)
                made.add(parent)
            target.unlink(missing_ok=True)  # a new inode: a hard link elsewhere stays as it was
            with open(target, "xb") as fh:
                fh.write(page.data)
            record[page.path] = _entry(digests[page.path], target) or ("", -1, -1, -1)
        for path in [p for p in record if p not in digests]:
            with suppress(OSError):
                os.unlink(self.path / path)
                os.rmdir((self.path / path).parent)  # claims/<id>/: empty now
            del record[path]
        data = marshal.dumps((FORMAT, record))
        tmp = self.path / f"{RECORD}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.path / RECORD)

    def pages(self, paths: Iterable[str]) -> Iterator[Page]:
        """The stubs of these paths, read from the folder (after write(): all it holds)."""
        for path in paths:
            yield Page(path, (self.path / path).read_bytes())

    def close(self) -> None:
        """Let the next build have the folder."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def _entry(digest: str, path: Path) -> Entry | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (digest, st.st_size, st.st_mtime_ns, st.st_ino)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()
