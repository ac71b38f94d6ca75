"""What the last build wrote (its manifest), and the site as it is now (one walk of it).

The manifest lives in the user's cache folder (kb.cache.cache_path(root, "build")), never in the
site or the knowledge base: each output file's page key (kb.incremental.Keys) and the Stat of the
file the build wrote. One that is missing, corrupt, from another version, or about another site
folder is ignored: the build is then a full one. A page is kept when its key is the recorded one
and its file is still the one that build wrote (same inode, size and modification time: a hand
edit changes them, unless it puts the time back, as `cp -p` or `touch -r` can; as with make,
such a file is kept), as the walk of the site (`scan_site`) finds it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kb as kb_package
from kb.cache import cache_path
from kb.memo import Journaled, read_journaled, write_journaled
from kb.write import Link, Stat

FORMAT = 9  # 2: keys hash marshal data; 3: the manifest records every file; 4: and stubs;
# 5: marshal, not pickle; 6: a graph's bytes hashed as they are, spans as tuples; 7: list rows;
# 8: the search index in shards, a key each; 9: what claim, source and entity page keys
# were made from (kb.changed)


@dataclass
class SiteScan:
    """Every regular file of a built site and its Stat, from one walk (os.scandir, str paths:
    at 46,000 files pathlib's objects cost more than the system calls). `foreign` when the
    site holds anything else (a symbolic link, a socket …): no build wrote that."""

    stats: dict[str, Stat] = field(default_factory=dict)
    foreign: bool = False


@dataclass
class SiteChanges:
    """The last site as it is now against what its manifest recorded (Manifest.compare): the
    recorded files whose Stat is not the recorded one (None: gone), how many files it holds
    that no build recorded, and `foreign` as in SiteScan. An edit touches none of the site's
    46,000 files (460,000 at 100,000 claims), so this is what crosses the walk's pipe
    (kb.plan.SiteScanner), not every file's Stat."""

    changed: dict[str, Stat | None] = field(default_factory=dict)
    extra: int = 0
    foreign: bool = False


def scan_site(out: Path) -> SiteScan | None:
    """The files of the site in `out`, or None when there is no such folder."""
    stats: dict[str, Stat] = {}
    foreign = False
    todo = [("", str(out))]
    while todo:
        rel, folder = todo.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            if not rel:
                return None
            foreign = True  # a folder we cannot read: not as a build left it
            continue
        with entries:
            for e in entries:
                if e.is_file(follow_symlinks=False):  # most are: asked first
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:  # removed meanwhile
                        foreign = True
                        continue
                    stats[rel + e.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
                elif e.is_dir(follow_symlinks=False):
                    todo.append((f"{rel}{e.name}/", e.path))
                else:
                    foreign = True
    return SiteScan(stats, foreign)


@dataclass
class Manifest:
    """What the last build wrote: each path's key and Stat, and the search index it made."""

    out: str
    pages: dict[str, tuple[str, Stat]] = field(default_factory=dict)
    search_keys: list[str] = field(default_factory=list)  # each shard's kb.search.stub_key
    search_files: dict[str, Stat] = field(default_factory=dict)  # pagefind/<shard>/… → Stat
    stubs: dict[str, str] = field(default_factory=dict)  # indexed page → its stub's digest
    # What Keys.list_row worked out (claim → its row, its listing's digest), valid under
    # `rows_common` (Keys.common: the code, templates, kb.toml, the day …): see Keys.reuse.
    rows_common: str = ""
    list_rows: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    # What the claim, source and entity pages' keys were made from (kb.changed.Seen.as_data)
    seen: tuple[Any, ...] | None = None
    # The file as read (kb.memo.Journaled): the next save writes only what changed since
    read: Journaled | None = field(default=None, repr=False, compare=False)

    def compare(self, scan: SiteScan) -> SiteChanges:
        """What differs between the site as walked and as this manifest recorded it."""
        stats = dict(scan.stats)
        changed: dict[str, Stat | None] = {}
        pop = stats.pop
        for path, (_key, recorded) in self.pages.items():
            if (st := pop(path, None)) != recorded:
                changed[path] = st
        for path, recorded in self.search_files.items():
            if (st := pop(path, None)) != recorded:
                changed[path] = st
        return SiteChanges(changed, len(stats), scan.foreign)

    def reusable(self, site: SiteChanges, path: str, key: str) -> Link | None:
        """The last site's file for `path`, when its key matches and nobody touched it."""
        entry = self.pages.get(path)
        if entry is None or entry[0] != key or path in site.changed:
            return None
        return Link(path, f"{self.out}/{path}", entry[1])

    def search_reusable(self, site: SiteChanges | None, keys: list[str],
                        folder: str) -> dict[int, list[Link]]:
        """The last site's index files of each shard made from the same stubs (its key is the
        recorded one, and its files under folder/<shard>/ are as that build left them):
        shard → its files, in path order."""
        if site is None or len(keys) != len(self.search_keys):
            return {}
        same = {i for i, key in enumerate(keys) if key and key == self.search_keys[i]}
        found: dict[int, list[Link]] = {i: [] for i in same}
        touched: set[int] = set()
        prefix = folder + "/"
        changed = site.changed
        for path, st in sorted(self.search_files.items()):
            number, _, rest = path.removeprefix(prefix).partition("/")
            shard = int(number) if number.isdigit() and rest else -1
            if shard in found:
                if path in changed:
                    touched.add(shard)
                found[shard].append(Link(path, f"{self.out}/{path}", st))
        return {i: links for i, links in found.items() if links and i not in touched}

    def as_recorded(self, site: SiteChanges | None) -> bool:
        """Whether the site holds exactly the files the last build recorded (none added by
        hand; those edited by hand are told by their Stat, page by page)."""
        if site is None or site.foreign or not self.pages:
            return False
        return not site.extra and None not in site.changed.values()


def manifest_path(root: Path, folder: Path | None = None) -> Path:
    return cache_path(root, "build", folder).with_suffix(".manifest")


def _manifest_key() -> tuple[Any, ...]:
    return (FORMAT, kb_package.__version__, sys.version)


def load_manifest(root: Path, out: Path, folder: Path | None = None) -> Manifest | None:
    """The manifest of the last build of `root` into `out`, or None (then build everything).

    marshal data behind its digest (kb.memo): ten times as fast to load and save as the
    pickled dataclass at 46,000 files; a damaged one, or one of another version, is ignored.
    It is saved as a journal of the entries that changed (kb.memo.write_journaled): an edit
    changes ~60 of 46,000."""
    read = read_journaled(manifest_path(root, folder), _manifest_key())
    value = None if read is None else read.value
    if not (isinstance(value, tuple) and len(value) == 8 and value[0] == str(out.resolve())):
        return None
    out_, pages, search_keys, search_files, stubs, rows_common, list_rows, seen = value
    if not (isinstance(pages, dict) and isinstance(search_keys, list)
            and all(isinstance(k, str) for k in search_keys)
            and isinstance(search_files, dict) and isinstance(stubs, dict)
            and isinstance(rows_common, str) and isinstance(list_rows, dict)):
        return None
    return Manifest(out_, pages, search_keys, search_files, stubs, rows_common, list_rows,
                    seen if isinstance(seen, tuple) else None, read)


def save_manifest(root: Path, manifest: Manifest, folder: Path | None = None,
                  last: Manifest | None = None,
                  pages_changed: tuple[dict[str, tuple[str, Stat]], list[str]] | None = None
                  ) -> None:
    """Save `manifest`; with `last` (the manifest this build loaded), only what changed since
    it was read is written. `pages_changed`: the entries of `pages` set and removed since
    `last`, when the caller made it so (kb.build._recorded); not looked for again."""
    write_journaled(manifest_path(root, folder), _manifest_key(),
                    (manifest.out, manifest.pages, manifest.search_keys, manifest.search_files,
                     manifest.stubs, manifest.rows_common, manifest.list_rows, manifest.seen),
                    None if last is None else last.read,
                    None if pages_changed is None else {1: pages_changed})
