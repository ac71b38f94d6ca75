"""Incremental builds: which pages must be rendered again, and which are kept from the last site.

Every page gets a key: a digest of all it is made from — the bytes of the files whose records it
shows (kb.cache.digest of each file, as read by kb.load.read_inputs), the derived data it shows
(the statuses of the claims it lists, the network figures, the git history, the query results),
and what every page depends on (kb.toml, the date, the templates, the code). A page whose key is
the one recorded for it in the manifest of the last build, and whose file in the last site is
still the file that build wrote (same inode, size and modification time), is hard-linked into the
new site instead of rendered; the result is the same bytes a full build gives (tested).

The manifest lives in the user's cache folder (kb.cache.cache_path(root, "build")), never in the
site or the knowledge base. One that is missing, corrupt, from another version, or about another
site folder is ignored: the build is then a full one.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kb as kb_package
from kb.cache import cache_path, code_fingerprint, digest, read_pickle, write_pickle
from kb.config import CONFIG_FILE
from kb.load import Inputs
from kb.pages import SiteModel
from kb.write import Link, Stat, file_stat

FORMAT = 1
# What pagefind reads of an indexed page: the part between data-pagefind-body and this mark.
SEARCH_END = b"<!--/pagefind-body-->"
SEARCH_BEGIN = b"data-pagefind-body"


def _h(*parts: object) -> str:
    """A digest of plain data (strings, numbers, tuples, dataclasses): their repr is stable."""
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class Manifest:
    """What the last build wrote: each path's key and Stat, and the search index it made."""

    out: str
    pages: dict[str, tuple[str, Stat]] = field(default_factory=dict)
    search_key: str = ""
    search_files: dict[str, Stat] = field(default_factory=dict)  # pagefind/… → Stat
    search_parts: dict[str, str] = field(default_factory=dict)  # indexed page → digest

    def reusable(self, out: Path, path: str, key: str) -> Link | None:
        """The last site's file for `path`, when its key matches and nobody touched it."""
        entry = self.pages.get(path)
        if entry is None or entry[0] != key:
            return None
        f = _untouched(out / path, entry[1])
        return Link(path, f, entry[1]) if f is not None else None

    def search_reusable(self, out: Path, key: str) -> list[Link] | None:
        """The last site's search index files, when it was made from the same pages."""
        if not key or key != self.search_key or not self.search_files:
            return None
        found = []
        for path, st in sorted(self.search_files.items()):
            f = _untouched(out / path, st)
            if f is None:
                return None
            found.append(Link(path, f, st))
        return found


def _untouched(f: Path, recorded: Stat) -> Path | None:
    try:
        st = os.lstat(f)
    except OSError:
        return None
    return f if stat.S_ISREG(st.st_mode) and file_stat(st) == recorded else None


def _manifest_key() -> tuple[Any, ...]:
    return (FORMAT, kb_package.__version__, sys.version)


def load_manifest(root: Path, out: Path, folder: Path | None = None) -> Manifest | None:
    """The manifest of the last build of `root` into `out`, or None (then build everything)."""
    value = read_pickle(cache_path(root, "build", folder), _manifest_key())
    if not isinstance(value, Manifest) or value.out != str(out.resolve()):
        return None
    ok = (isinstance(value.pages, dict) and isinstance(value.search_files, dict)
          and isinstance(value.search_parts, dict)
          and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                  and isinstance(v[1], tuple) for v in value.pages.values()))
    return value if ok else None


def save_manifest(root: Path, manifest: Manifest, folder: Path | None = None) -> None:
    write_pickle(cache_path(root, "build", folder), _manifest_key(), manifest)


def search_part(path: str, data: bytes) -> str:
    """The digest of what the search indexer reads of a page (all of it, without the marks)."""
    start = data.find(SEARCH_BEGIN)
    end = data.find(SEARCH_END, start) if start >= 0 else -1
    return digest(data[start:end] if start >= 0 and end >= 0 else data) + path


def templates_digest(root: Path | None) -> str:
    """Every template and static file, of the package and of the knowledge base's templates/."""
    h = hashlib.blake2b(digest_size=16)
    folders = [Path(__file__).parent / "templates"]
    if root is not None:
        folders.append(root / "templates")
    for i, folder in enumerate(folders):
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                h.update(f"{i}:{f.relative_to(folder).as_posix()}:{digest(f.read_bytes())}\n"
                         .encode())
    return h.hexdigest()


class Keys:
    """The key of every page: what it shows, as digests of files and derived values."""

    def __init__(self, model: SiteModel, inputs: Inputs, root: Path, everything: object,
                 record_lines: Any = None) -> None:
        self.m = model
        self.files = {f.path: digest(f.data) for f in inputs.records}
        self.snaps = {Path(p).stem: digest(d) for p, d in inputs.snapshots}
        self.record_lines = record_lines  # claim id → its named graph's lines (the .ttl/.jsonld)
        config = root / CONFIG_FILE
        self.common = _h(FORMAT, code_fingerprint(), templates_digest(root),
                         config.read_bytes() if config.is_file() else b"",
                         model.today.isoformat(), everything)
        self.whole = _h(self.common, inputs.fingerprint(),
                        sorted((p, [repr(c) for c in cs]) for p, cs in model.histories.items()))
        m = model
        self.listing = _h(self.common, [(s, len(ids)) for s, ids in m.by_status.items()],
                          [(k, len(ids)) for k, ids in m.by_kind.items()],
                          [(t, len(ids)) for t, ids in m.by_tag.items()])
        self._rows: dict[str, tuple[str, str, str]] = {}

    def _file(self, record: Any) -> str:
        return self.files.get(record.loc.path, "") if record is not None else ""

    def row(self, cid: str) -> tuple[str, str, str]:
        """What a claim's row in a list shows: its file and its status."""
        hit = self._rows.get(cid)
        if hit is None:
            hit = self._rows[cid] = (cid, self._file(self.m.kb.claims.get(cid)),
                                     self.m.status(cid))
        return hit

    def rows(self, ids: Iterable[str]) -> list[tuple[str, str, str]]:
        return [self.row(cid) for cid in ids]

    def entity(self, eid: str) -> tuple[str, str]:
        return (eid, self._file(self.m.kb.entities.get(eid)))

    def source(self, sid: str) -> tuple[str, str, str, list[tuple[str, str]]]:
        """A source as others show it: its file, its text, and its publisher's and authors'."""
        s = self.m.kb.sources.get(sid)
        ents = [] if s is None else sorted(
            {*(r.id for r in s.authors), *([s.publisher.id] if s.publisher else [])})
        return (sid, self._file(s), self.snaps.get(sid, ""), [self.entity(e) for e in ents])

    # -- the pages ------------------------------------------------------------------------------
    def claim(self, cid: str) -> str:
        m = self.m
        c = m.kb.claims[cid]
        sources = sorted({*(a.source.id for a in c.appearances),
                          *(e.source.id for e in c.evidence)})
        entities = sorted({*([c.claimant.id] if c.claimant else []), *(r.id for r in c.about)})
        lines = self.record_lines(cid) if self.record_lines is not None else None
        return _h(self.common, "claim", self.row(cid), m.assessments.get(cid),
                  m.independent.get(cid, 0), m.history(c.loc.path),
                  m.status_history(c.loc.path),
                  [self.source(s) for s in sources], [self.entity(e) for e in entities],
                  [(r.relation, self.row(r.claim.id)) for r in c.related],
                  [(rel, self.row(o)) for o, rel in m.related_in.get(cid, [])],
                  self.rows(m.quantity_peers(cid)), lines)

    def source_page(self, sid: str) -> str:
        m = self.m
        ids = sorted({*(s.claim_id for s in m.spans.get(sid, [])), *m.appears_in.get(sid, []),
                      *m.evidence_from.get(sid, [])})
        return _h(self.common, "source", self.source(sid), m.spans.get(sid, []),
                  m.appears_in.get(sid, []), m.evidence_from.get(sid, []), self.rows(ids))

    def entity_page(self, eid: str) -> str:
        m = self.m
        return _h(self.common, "entity", self.entity(eid), self.rows(m.made_by.get(eid, [])),
                  self.rows(m.about.get(eid, [])),
                  [self.source(s)[:2] for s in m.published_by.get(eid, [])],
                  [self.entity(e) for e in m.related_entities(eid)[:30]])

    def list_page(self, path: str, extra: tuple[tuple[str, Any], ...]) -> str:
        values = dict(extra)
        return _h(self.listing, "list", path, values.get("heading"), values.get("status"),
                  self.rows(values.get("ids", [])))

    def key(self, path: str, template: str, extra: tuple[tuple[str, Any], ...]) -> str:
        """The key of one page (for a claim: of its page, .ttl and .jsonld together)."""
        values = dict(extra)
        if template == "claim.html":
            return self.claim(values["id"])
        if template == "source.html":
            return self.source_page(values["id"])
        if template == "entity.html":
            return self.entity_page(values["id"])
        if template in ("claims.html", "status.html") and values.get("heading"):
            return self.list_page(path, extra)
        return _h(self.whole, path)  # home, indexes, feed …: they show a bit of everything
