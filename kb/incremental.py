"""Incremental builds: which pages must be rendered again, and which are kept from the last site.

Every page gets a key: a digest of all it is made from — the bytes of the files whose records it
shows (kb.cache.digest of each file, as read by kb.load.read_inputs), the derived data it shows
(the statuses of the claims it lists, the network figures, the git history, the query results),
and what every page depends on (kb.toml, the date, the templates, the code). A page whose key is
the one recorded for it in the manifest of the last build, and whose file in the last site is
still the file that build wrote (same inode, size and modification time), is hard-linked into the
new site instead of rendered; the result is the same bytes a full build gives (tested). The
manifest and the walk of the site are kb.manifest's; the plan made from them, kb.plan's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import marshal
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kb import quantities
from kb.cache import code_fingerprint, digest
from kb.config import CONFIG_FILE
from kb.load import Inputs
from kb.manifest import FORMAT
from kb.pages import SiteModel


@functools.cache
def renderers() -> tuple[str, ...]:
    """What renders the pages besides claimkb's own code, as installed: an upgrade of either
    may change a page's bytes (escaping, whitespace), so it is in every page's key. The bytes
    of each of its module files (its compiled speedups too), as loaded by this process (~2 ms,
    once); importlib.metadata's version cost ~8 ms of an edit build, to import and look up."""
    import jinja2
    import markupsafe

    found = []
    for module in (jinja2, markupsafe):
        h = hashlib.blake2b(digest_size=16)
        try:
            for path in sorted(Path(module.__file__ or "").parent.iterdir()):
                if path.suffix in (".py", ".so", ".pyd"):
                    h.update(f"{path.name}\0".encode() + path.read_bytes())
        except OSError:  # not a folder of files (a zipped install): its version then
            from importlib.metadata import version

            h.update(version(module.__name__).encode())
        found.append(f"{module.__name__} {h.hexdigest()}")
    return tuple(found)


def _h(*parts: object) -> str:
    """A digest of plain data (strings, numbers, tuples, dataclasses): their repr is stable."""
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=16).hexdigest()


# marshal version 2 writes every string as its UTF-8, length first, whatever its object: from
# version 3 on, shared or interned strings are written as back-references and flags, which
# would make equal data digest differently. The manifest is keyed by the Python version.
_MARSHAL = 2


def _key(*parts: Any) -> str:
    """A page key: a digest of plain data (str, bytes, int, float, bool, None, and lists and
    tuples of them; not sets: their order changes from run to run).

    marshal, ten times as fast as repr and unambiguous (lengths first); sha256 because, with
    the SHA instructions of current CPUs, it hashes faster than blake2b.
    """
    return hashlib.sha256(marshal.dumps(parts, _MARSHAL)).hexdigest()[:32]


def _d(*parts: Any) -> bytes:
    """A part of keys (a row, a source …), digested once: 16 bytes, then joined as they are."""
    return hashlib.sha256(marshal.dumps(parts, _MARSHAL)).digest()[:16]


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: object, memo: dict[int, tuple[object, object]] | None = None) -> object:
    """Derived values (the model's dataclasses, dates) as plain data for `_key`: every field,
    dates as ISO text (with their offset; repr of a datetime is slow). With `memo`, each
    dataclass object is converted once (a commit is in the history of many files)."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool, bytes):
        return value
    if kind is list or kind is tuple:
        return [_plain(v, memo) for v in value]  # type: ignore[attr-defined]
    if isinstance(value, (dt.date, dt.time)):  # a datetime is a date
        return (kind.__name__, value.isoformat())
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(value):
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is None:
        return repr(value)
    if memo is not None:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
    out = (kind.__name__, *[_plain(getattr(value, n), memo) for n in names])
    if memo is not None:
        memo[id(value)] = (value, out)
    return out


def _overrides(root: Path | None) -> bool:
    """Whether the knowledge base has templates of its own (static files aside)."""
    folder = None if root is None else root / "templates"
    if folder is None or not folder.is_dir():
        return False
    return any(f.is_file() for f in folder.rglob("*")
               if f.relative_to(folder).parts[0] != "static")


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
    """The key of every page: what it shows, as digests of files and derived values.

    A key is a pure function of this object and the page's arguments, so forked workers can
    compute keys too. Each part that several pages show (a claim's row, a source, an entity,
    the entities a claim names, a file's history) is digested once, into 16 bytes, and kept.
    """

    def __init__(self, model: SiteModel, inputs: Inputs, root: Path, everything: object,
                 record_lines: Any = None, results: Mapping[str, object] | None = None,
                 digests: dict[str, str] | None = None) -> None:
        self.m = model
        # A named query → its result (its repr in a key): its page shows it, and no other of
        # claimkb's templates. One of the knowledge base's own may show it anywhere: then every
        # page (then they are read here, which waits for them). Else read only for those keys,
        # the last planned: the results may still be being made (kb.extras.LaterResults).
        self.narrow = not _overrides(root)
        self.results = results if results is not None else {}
        if not self.narrow:
            everything = (everything, sorted((n, repr(r)) for n, r in self.results.items()))
        # The digest kb.load already has (kb.cache.digest of the bytes), when it has one: a file
        # whose Stat showed it unchanged is then not read at all. `digests`: the build's map of
        # them, when it made one (130,000 entries at 100,000 claims).
        self.files = digests if digests is not None else {
            f.path: getattr(f, "digest", None) or digest(f.data) for f in inputs.records}
        snaps = [(p, digest(d)) for p, d in inputs.snapshots]
        self.snaps = {Path(p).stem: h for p, h in snaps}
        self.record_lines = record_lines  # claim id → what decides its graph's block
        config = root / CONFIG_FILE
        # The day is in no page's key of claimkb's own templates: what it decides (a status,
        # "due for review") is in the keys already, as a claim page's assessment, a row's
        # status, and in `whole` every claim's row and due flag. With it here, the first build
        # of each day made every page again (~100 s at 100,000 claims). A knowledge base's own
        # template may show the day itself (`today`): then it is here.
        self.common = _h(FORMAT, code_fingerprint(), templates_digest(root),
                         config.read_bytes() if config.is_file() else b"",
                         "" if self.narrow else model.today.isoformat(), everything,
                         renderers())
        memo: dict[int, tuple[object, object]] = {}
        self._memo = memo  # the commits, shared by the status steps of many claims
        # a commit's id digests its date, author and message: all a page shows of it
        self.histories = {p: _d([c.sha for c in cs]) for p, cs in sorted(model.histories.items())}
        # A claim's row: its id, file digest and status as they are, in one pass (a digest of
        # each cost more than the longer keys: ids are slugs, digests hex and statuses names,
        # so none holds a separator).
        files, status = self.files, model.status
        self._rows: dict[str, bytes] = {
            cid: f"{cid}\x1f{files.get(c.loc.path, '')}\x1f{status(cid)}\x1e".encode()
            for cid, c in model.kb.claims.items()}
        # Every input file, from the digests above rather than reading all bytes again, and
        # what the day decides of every claim (its status, in its row, and whether it is due).
        self.whole = _key(self.common, [(f.kind, f.path, self.files[f.path])
                                        for f in inputs.records], snaps,
                          [(str(p.loc), p.code) for p in inputs.problems],
                          list(self.histories.items()), b"".join(self._rows.values()),
                          [cid for cid, a in model.assessments.items() if a.due_for_review])
        m = model
        self.listing = _h(self.common, [(s, len(ids)) for s, ids in m.by_status.items()],
                          [(k, len(ids)) for k, ids in m.by_kind.items()],
                          [(t, len(ids)) for t, ids in m.by_tag.items()])
        self._list_rows: dict[str, bytes] = {}
        # The listings show each claim as kb.pages.SiteModel.row does, and nothing else of it:
        # their keys hold what a row shows, not the claim's whole file, so an edit that leaves
        # the rows as they were (a review, evidence, a comment) keeps them. Not when the
        # knowledge base overrides a template (`narrow` above): one of its own may show anything.
        self._entities: dict[str, bytes] = {}
        self._sources: dict[str, bytes] = {}
        self._refs: dict[str, bytes] = {}

    def _file(self, record: Any) -> str:
        return self.files.get(record.loc.path, "") if record is not None else ""

    def row(self, cid: str) -> bytes:
        """What a claim's row in a list shows (statement, kind, tags …): its file and status."""
        hit = self._rows.get(cid)
        if hit is None:  # not a claim of the knowledge base
            hit = self._rows[cid] = f"{cid}\x1f\x1f{self.m.status(cid)}\x1e".encode()
        return hit

    def reuse(self, common: str, list_rows: dict[str, tuple[bytes, bytes]]) -> None:
        """Take the list rows a build with the same `common` worked out (kb.manifest.Manifest
        keeps them), for claims whose row (id, file digest, status) is the same: a list row is
        made from the claim's record and status alone, so it is the one worked out now
        (0.1 s at 10,000 claims)."""
        if common != self.common or not self.narrow:
            return
        rows, mine = self._rows, self._list_rows
        for cid, entry in list_rows.items():
            if (isinstance(entry, tuple) and len(entry) == 2 and rows.get(cid) == entry[0]
                    and isinstance(entry[1], bytes)):
                mine[cid] = entry[1]

    def claim_rows(self) -> dict[str, bytes]:
        """Every claim's row (`row`), as the pages' keys hold it (kb.changed keeps them)."""
        return dict(self._rows)

    def list_rows(self) -> dict[str, tuple[bytes, bytes]]:
        """The list rows worked out (or reused), for the next build (`reuse`)."""
        rows = self._rows
        return {cid: (rows[cid], lr) for cid, lr in self._list_rows.items() if cid in rows}

    def list_row(self, cid: str) -> bytes:
        """What kb.pages.SiteModel.row shows of a claim (its row in a listing)."""
        hit = self._list_rows.get(cid)
        if hit is None:
            c = self.m.kb.claims.get(cid)
            if c is None or not self.narrow:
                hit = self.row(cid)
            else:
                sources = sorted(set(c.cited_sources()))
                hit = _d(cid, self.m.status(cid), c.claim, c.kind, c.period,
                         c.claimant.id if c.claimant else None, [r.id for r in c.about],
                         list(c.tags), sources)
            self._list_rows[cid] = hit
        return hit

    def rows(self, ids: Iterable[str]) -> bytes:
        rows, row = self._rows, self.row
        return b"".join([rows.get(cid) or row(cid) for cid in ids])

    def entity(self, eid: str) -> bytes:
        """An entity as others show it (its name, kind …): its file ("" when there is none)."""
        hit = self._entities.get(eid)
        if hit is None:
            hit = self._entities[eid] = (
                f"{eid}\x1f{self._file(self.m.kb.entities.get(eid))}\x1e".encode())
        return hit

    def source(self, sid: str) -> bytes:
        """A source as others show it: its file, its text, and its publisher's and authors'."""
        hit = self._sources.get(sid)
        if hit is None:
            s = self.m.kb.sources.get(sid)
            ents = [] if s is None else sorted(
                {*(r.id for r in s.authors), *([s.publisher.id] if s.publisher else [])})
            hit = self._sources[sid] = _d(sid, self._file(s), self.snaps.get(sid, ""),
                                          b"".join([self.entity(e) for e in ents]))
        return hit

    def refs(self, cid: str) -> bytes:
        """The entities a claim names (claimant, about), as others show them."""
        hit = self._refs.get(cid)
        if hit is None:
            c = self.m.kb.claims.get(cid)
            ids = [] if c is None else sorted(
                {*([c.claimant.id] if c.claimant else []), *(r.id for r in c.about)})
            hit = self._refs[cid] = b"".join([self.entity(e) for e in ids])
        return hit

    def lines(self, cid: str) -> bytes | None:
        """A digest of what decides the claim's named graph, which its .ttl and .jsonld are
        written from (kb.extras.record_lines: the graph cache's key of the block, or the block
        itself without the cache)."""
        lines = self.record_lines(cid) if self.record_lines is not None else None
        if lines is None:
            return None
        return hashlib.sha256(lines).digest()  # the block's cache key, or the block itself

    # -- the pages ------------------------------------------------------------------------------
    def alternates(self, cid: str) -> str:
        """The key of a claim's .ttl and .jsonld: they are written from its named graph alone,
        so a page made again for what it shows of other claims keeps them. Without a view of
        the graph (`lines` None), the page's key."""
        lines = self.lines(cid)
        return self.claim(cid) if lines is None else _key(self.common, "alternates", lines)

    def claim(self, cid: str) -> str:
        m = self.m
        c = m.kb.claims[cid]
        path = c.loc.path
        a = m.assessments.get(cid)
        # The assessment follows from the claim's file, the day and kb.toml: the day is in no
        # key of claimkb's templates (see `common`), so what the page shows of it is here.
        shown = None if a is None else (
            a.status, a.derived, a.verdict, a.reason, a.due_for_review,
            a.last_review.toordinal() if a.last_review else None)
        sources, source, row = self._sources, self.source, self.row
        steps = m.steps.get(path)
        incoming = m.related_in.get(cid)
        peers = m.quantity_peers(cid)
        # Sources in the claim's order, repeats and all: the file (in the row) fixes the order.
        return _key(self.common, "claim", row(cid), shown, m.independent.get(cid, 0),
                    self.histories.get(path), _plain(steps, self._memo) if steps else None,
                    b"".join([sources.get(ap.source.id) or source(ap.source.id)
                              for ap in c.appearances]),
                    b"".join([sources.get(ev.source.id) or source(ev.source.id)
                              for ev in c.evidence]), self.refs(cid),
                    [(r.relation, row(r.claim.id)) for r in c.related] if c.related else None,
                    [(rel, row(o)) for o, rel in incoming] if incoming else None,
                    self.rows(peers) if peers else None, self.lines(cid))

    def source_page(self, sid: str) -> str:
        m = self.m
        spans = m.spans.get(sid, [])
        appears, evidence = m.appears_in.get(sid, []), m.evidence_from.get(sid, [])
        ids = sorted({*(s.claim_id for s in spans), *appears, *evidence})
        located = [(s.start, s.end, s.claim_id, s.role, s.n) for s in spans]  # kb.pages.Span
        return _key(self.common, "source", self.source(sid), located, appears, evidence,
                    self.rows(ids))

    def entity_page(self, eid: str) -> str:
        m = self.m
        made, about = m.made_by.get(eid, []), m.about.get(eid, [])
        # The related entities are those the listed claims name (their files are in the rows):
        # all of them, not only the 30 the page shows, so as not to work out the order here.
        return _key(self.common, "entity", self.entity(eid), self.rows(made), self.rows(about),
                    [(s, self._file(m.kb.sources.get(s))) for s in m.published_by.get(eid, [])],
                    b"".join([self.refs(cid) for cid in made]),
                    b"".join([self.refs(cid) for cid in about]))

    def list_page(self, path: str, extra: tuple[tuple[str, Any], ...]) -> str:
        values = dict(extra)
        rows, row = self._list_rows, self.list_row
        return _key(self.listing, "list", path, values.get("heading"), values.get("status"),
                    b"".join([rows.get(cid) or row(cid) for cid in values.get("ids", [])]))

    def all_claims_page(self, path: str, extra: tuple[tuple[str, Any], ...]) -> str:
        """The list of every claim, whose filter form also names the entities and sources
        that claims refer to (templates/filters.html)."""
        m = self.m
        kb = m.kb
        return _key(self.list_page(path, extra),
                    [(e, kb.entities[e].name) for e in sorted(kb.entities)
                     if e in m.made_by or e in m.about],
                    [(s, kb.sources[s].title) for s in sorted(kb.sources)
                     if s in m.appears_in or s in m.evidence_from])

    # The indexes of sources, entities and figures: what their rows show, not every file (a
    # review added to a claim made all three again, 0.05 s of an edit build at 10,000 claims).
    def sources_index(self) -> str:
        """Each source's row: its file, publisher's (kb.incremental.Keys.source), text or not,
        and how many claims it makes and is evidence for."""
        m = self.m
        appears, evidence, snapshots = m.appears_in, m.evidence_from, m.kb.snapshots
        return _key(self.common, "sources", [
            (sid, self.source(sid), sid in snapshots, len(appears.get(sid, ())),
             len(evidence.get(sid, ()))) for sid in sorted(m.kb.sources)])

    def entities_index(self) -> str:
        """Each entity's row: its file, and how many claims it made and are about it."""
        m = self.m
        made, about = m.made_by, m.about
        return _key(self.common, "entities", [
            (eid, self.entity(eid), len(made.get(eid, ())), len(about.get(eid, ())))
            for eid in sorted(m.kb.entities)])

    def quantities_index(self) -> str:
        """Each unit's claims in their order, and the rows (file, status) of those shown."""
        return _key(self.common, "quantities", [
            (unit, ids, self.rows(ids[:quantities.SHOWN]))
            for unit, ids in self.m.quantity_groups.items()])

    def key(self, path: str, template: str, extra: tuple[tuple[str, Any], ...]) -> str:
        """The key of one page (a claim's .ttl and .jsonld have their own: `alternates`)."""
        values = dict(extra)
        if template == "claim.html":
            return self.claim(values["id"])
        if template == "source.html":
            return self.source_page(values["id"])
        if template == "entity.html":
            return self.entity_page(values["id"])
        if template in ("claims.html", "status.html") and values.get("heading"):
            return self.list_page(path, extra)
        if template == "claims.html" and self.narrow:
            return self.all_claims_page(path, extra)
        if template == "sources.html" and self.narrow:
            return self.sources_index()
        if template == "entities.html" and self.narrow:
            return self.entities_index()
        if template == "quantities.html" and self.narrow:
            return self.quantities_index()
        if template == "query.html":
            return _key(self.whole, path, repr(self.results.get(values["query"].name)))
        return _key(self.whole, path)  # home, feed …: they show a bit of everything
