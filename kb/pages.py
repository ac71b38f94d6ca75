"""What the pages show, worked out once: indexes over the knowledge base for the templates.

`SiteModel` answers the questions pages ask ("which claims cite this source?", "where is this
quote in the text?") from dictionaries built in one pass, so rendering a page is a lookup, not a
search over every claim. Everything is sorted: pages are byte-identical from one build to the next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from markupsafe import Markup, escape

from kb import model as m
from kb.charts import human
from kb.config import Config
from kb.history import Commit, HistoryStep
from kb.modelindex import (
    Indexes,
    IndexMemo,
    Pairs,
    finish,
    merge,
    peers_key_of,
    remove,
    to_patch,
)
from kb.modelmemo import ModelMemo, locate_quote
from kb.quantities import PEERS, QuantityViews
from kb.quotes import Normalised, context
from kb.status import Assessment, assess
from kb.vocab import STATUS

ICONS = {"supported": "✔", "partly-supported": "◐", "disputed": "⇄", "refuted": "✘",
         "unverified": "?", "not-checkable": "–"}


def badge(status: str, big: bool = False) -> Markup:
    """A status as the site shows it everywhere: icon and name (never colour alone)."""
    return _BADGES[(status, big)] if (status, big) in _BADGES else Markup(
        '<span class="badge">{0}</span>').format(status)


_BADGES = {(s.name, big): Markup(
    f'<span class="badge status-{s.name}{" badge-big" if big else ""}"><span class="icon" '
    f'aria-hidden="true">{ICONS[s.name]}</span> {escape(s.label)}</span>')
    for s in STATUS.values() for big in (False, True)}


def truncate(text: str, length: int = 60) -> str:
    """`text` cut as jinja2's truncate(length) filter cuts it (at a space, "..." added, not when
    it is at most 5 characters longer: the default leeway); tests/test_site_build.py compares."""
    if len(text) <= length + 5:
        return text
    return text[:length - 3].rsplit(" ", 1)[0] + "..."


# Links and lists the templates use hundreds of times a page: Python functions, because a
# jinja2 macro call costs ten times as much, and the site has tens of thousands of pages.
# Ids are slugs and `root` is "../" repeated: only the names and titles need escaping.
def claim_link(m: SiteModel, root: str, cid: str) -> Markup:
    c = m.kb.claims.get(cid)
    if c is None:
        return escape(cid)
    return Markup(f'<a href="{root}claims/{cid}/">{escape(c.claim)}</a>')


def source_link(m: SiteModel, root: str, sid: str) -> Markup:
    s = m.kb.sources.get(sid)
    if s is None:
        return escape(sid)
    return Markup(f'<a href="{root}sources/{sid}/">{escape(s.title)}</a>')


def entity_link(m: SiteModel, root: str, eid: str) -> Markup:
    e = m.kb.entities.get(eid)
    if e is None:
        return escape(eid)
    return Markup(f'<a href="{root}entities/{eid}/">{escape(e.name)}</a>')


def claim_list_html(m: SiteModel, root: str, ids: list[str], empty: str = "None.") -> str:
    """A list of claims, each a row (`SiteModel.row_html`), as a str of escaped HTML: the
    templates' `claim_list`, which puts a long one into the page as bytes (kb.splice)."""
    if not ids:
        return f'<p class="empty">{escape(empty)}</p>'
    row = m.row_html
    return "".join(['<ul class="claims">\n', *[row(cid, root) for cid in ids], "</ul>"])


LAST_ROWS_ROOT = "../"  # the `root` of the list of every claim, claims/index.html (kb.lastrows)
ROW_LINK = '<a href="'  # a row's link: the first in it (its texts are escaped; kb.lastrows)


@dataclass(frozen=True)
class Span:
    """A claim's quote located in a source's text: [start, end) in the original text."""

    start: int
    end: int
    claim_id: str
    role: str  # "appearance" or "evidence"
    n: int  # the item's number in the claim, from 1

    @property
    def anchor(self) -> str:
        return anchor(self.claim_id, self.role, self.n)


def anchor(claim_id: str, role: str, n: int) -> str:
    """The id of a quote's place in its source's page."""
    return f"q-{claim_id}-{role[0]}{n}"


@dataclass(frozen=True)
class Segment:
    """A stretch of a source's text between two span boundaries, and the quotes covering it."""

    text: str
    spans: tuple[Span, ...]  # innermost (latest starting) first
    starts: tuple[Span, ...]  # spans that begin here: their anchors go before the text
    ends: tuple[Span, ...]  # spans that end here: their status icon goes after the text


@dataclass(frozen=True)
class Located:
    """A quote as the claim page shows it: with the sentences around it and its anchor."""

    before: str
    exact: str
    after: str
    anchor: str


@dataclass
class SiteModel(QuantityViews):
    kb: m.KnowledgeBase
    config: Config
    today: dt.date
    histories: dict[str, list[Commit]]
    independent: dict[str, int]
    assessments: dict[str, Assessment] = field(default_factory=dict)
    by_status: dict[str, list[str]] = field(default_factory=dict)
    by_kind: dict[str, list[str]] = field(default_factory=dict)
    by_tag: dict[str, list[str]] = field(default_factory=dict)
    made_by: dict[str, list[str]] = field(default_factory=dict)
    about: dict[str, list[str]] = field(default_factory=dict)
    appears_in: dict[str, list[str]] = field(default_factory=dict)
    evidence_from: dict[str, list[str]] = field(default_factory=dict)
    published_by: dict[str, list[str]] = field(default_factory=dict)  # entity → sources
    related_in: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    spans: dict[str, list[Span]] = field(default_factory=dict)
    located: dict[tuple[str, str, int], Located] = field(default_factory=dict)
    claim_ids: list[str] = field(default_factory=list)  # sorted by id
    steps: dict[str, list[HistoryStep]] = field(default_factory=dict)  # claim file → its steps
    index: IndexMemo | None = field(default=None, repr=False)  # for kb.modelindex.save_index
    _peers: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _peers_known: bool = field(default=False, repr=False)  # _peers holds every claim's
    peers_key: str = field(default="", repr=False)  # kb.modelindex.peers_key_of, with a memo
    _rows: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    # Rows of the last site's list of every claim, as written there with `root` LAST_ROWS_ROOT
    # (kb.lastrows): used as they are on that page, split in two parts for others.
    _last_rows: dict[str, str] = field(default_factory=dict, repr=False)
    _legend_rows: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    # -- lookups the templates use ------------------------------------------------------------
    def status(self, claim_id: str) -> str:
        a = self.assessments.get(claim_id)
        return a.status if a else "unverified"

    def entity_name(self, id_: str) -> str:
        e = self.kb.entities.get(id_)
        return e.name if e else id_

    def source_title(self, id_: str) -> str:
        s = self.kb.sources.get(id_)
        return s.title if s else id_

    def history(self, path: str) -> list[Commit]:
        return self.histories.get(path, [])

    def status_history(self, path: str) -> list[HistoryStep]:
        """A claim file's commits with the status each left, oldest first."""
        return self.steps.get(path, [])

    def quote(self, claim_id: str, role: str, n: int) -> Located | None:
        return self.located.get((claim_id, role, n))

    def related_entities(self, entity_id: str) -> list[str]:
        """Entities that share a claim with this one, most shared first."""
        counts: dict[str, int] = defaultdict(int)
        for cid in sorted(set(self.made_by.get(entity_id, []) + self.about.get(entity_id, []))):
            c = self.kb.claims[cid]
            for ref in [c.claimant, *c.about]:
                if ref and ref.id != entity_id and ref.id in self.kb.entities:
                    counts[ref.id] += 1
        return sorted(counts, key=lambda k: (-counts[k], k))

    # The newest n of every review, looked for only among the claims last reviewed on or after
    # the n-th newest last review (`_reviewed_since`): heapq.nsmallest over those gives what
    # sorted(...)[:n] over all gives (the keys are unique). Sorting or walking every review
    # took 0.04 s of each edit build at 10,000 claims, for the home page and the feed.
    def recently_reviewed(self, n: int = 8) -> list[str]:
        assessed = self.assessments
        dated = ((a.last_review, cid) for cid in self._reviewed_since(n)
                 if (a := assessed.get(cid)) and a.last_review)
        return [cid for _, cid in heapq.nsmallest(n, dated,
                                                  key=lambda t: (-t[0].toordinal(), t[1]))]

    def review_entries(self, n: int = 50) -> list[tuple[dt.date, str, int, m.Review]]:
        """The newest reviews, newest first: the Atom feed's entries."""
        claims = self.kb.claims
        out = ((r.date, cid, i, r) for cid in self._reviewed_since(n)
               for i, r in enumerate(claims[cid].reviews, 1) if r.date)
        return heapq.nsmallest(n, out, key=lambda t: (-t[0].toordinal(), t[1], t[2]))

    def _reviewed_since(self, n: int) -> list[str]:
        """Claims that hold the n newest reviews, and perhaps others: those whose last review
        is no older than the n-th newest claim's. Each of those n claims has a review that
        new, so the n-th newest review is no older, and no review is newer than its claim's
        last (kb.status.assess: the newest of its dates). Every claim, when the model does
        not hold exactly one assessment a claim."""
        assessed = self.assessments
        if n <= 0:
            return []
        if len(assessed) != len(self.claim_ids):  # a model not made by build_model
            return self.claim_ids
        dates = [a.last_review for a in assessed.values() if a.last_review]
        if len(dates) <= n:
            return [cid for cid, a in assessed.items() if a.last_review]
        cut = heapq.nlargest(n, dates)[-1]
        return [cid for cid, a in assessed.items() if a.last_review and a.last_review >= cut]

    def segments(self, source_id: str) -> list[Segment]:
        """The snapshot cut at every quote boundary, for the annotated text."""
        snap = self.kb.snapshots.get(source_id)
        if snap is None:
            return []
        spans = self.spans.get(source_id, [])
        cuts = sorted({0, len(snap.text), *(s.start for s in spans), *(s.end for s in spans)})
        out = []
        for a, b in pairwise(cuts):
            covering = sorted((s for s in spans if s.start <= a and s.end >= b),
                              key=lambda s: (-s.start, s.end, s.claim_id, s.role, s.n))
            starts = tuple(s for s in spans if s.start == a)
            ends = tuple(s for s in covering if s.end == b)
            out.append(Segment(snap.text[a:b], tuple(covering), starts, ends))
        return out

    def warm(self) -> None:
        """Compute the cached indexes now (before rendering forks into several processes)."""
        _ = self.spans_of, self.quantity_groups, self._quantity_topics, self._mids

    def row(self, cid: str, root: str) -> Markup:
        """One claim in a list: badge, link, kind and period, with the data the filter reads."""
        return Markup(self.row_html(cid, root))

    def row_html(self, cid: str, root: str) -> str:
        """`row` as a str (escaped HTML): claim_list joins thousands into one Markup, and a
        Markup made for each copied each row once more.

        Written in Python, not a template macro, and kept: listings of thousands of claims are
        most of the site's bytes. Kept once a claim, in two parts around the page's `root` (one
        per page depth took 37 MB in each worker at 10,000 claims).
        """
        hit = self._rows.get(cid)
        if hit is None and cid in self._last_rows:
            last = self._last_rows[cid]
            if root == LAST_ROWS_ROOT:
                return last
            at = last.index(ROW_LINK) + len(ROW_LINK)
            hit = self._rows[cid] = (last[:at], last[at + len(LAST_ROWS_ROOT):])
        if hit is None:
            c = self.kb.claims[cid]
            st = self.status(cid)
            ents = " ".join([*([c.claimant.id] if c.claimant else []), *(r.id for r in c.about)])
            srcs = " ".join(sorted(set(c.cited_sources())))
            meta = c.kind + (f" · {c.period}" if c.period else "")
            hit = self._rows[cid] = (
                f'<li class="claim-row" data-status="{st}" data-kind="{escape(c.kind)}" '
                f'data-entities="{ents}" data-tags="{escape(" ".join(c.tags))}" '
                f'data-sources="{srcs}">{badge(st)} <a href="',
                f'claims/{cid}/">{escape(c.claim)}</a> <span class="meta">{escape(meta)}'
                "</span></li>\n")
        return f"{hit[0]}{root}{hit[1]}"

    # The filter form's choices (templates/filters.html): thousands of options, made in Python
    # for the same reason as the rows (a loop of the template's took 0.03 s at 10,000 claims).
    def entity_options(self) -> Markup:
        """An option for each entity that a claim was made by or is about, by id."""
        entities = self.kb.entities
        return Markup("".join([f'<option value="{escape(e)}">{escape(entities[e].name)}</option>'
                               for e in sorted(entities)
                               if e in self.made_by or e in self.about]))

    def source_options(self) -> Markup:
        """An option for each source a claim appears in or cites, by id; long titles are cut
        as jinja2's truncate(60) cuts them."""
        sources = self.kb.sources
        return Markup("".join([
            f'<option value="{escape(s)}">'
            f"{escape(truncate(sources[s].title))}</option>"
            for s in sorted(sources) if s in self.appears_in or s in self.evidence_from]))

    def take_rows(self, rows: dict[str, str]) -> None:
        """Rows of the last site's list of every claim, for claims whose row shows what it did
        (kb.lastrows): taken only if the first, the last and one with an escaped character
        are those made now, byte for byte (a guard: their keys cover all a row shows)."""
        if not rows:
            return
        ids = list(rows)
        samples = {ids[0], ids[-1], next((c for c in ids if "&" in rows[c]), ids[0])}
        if all(self.row_html(cid, LAST_ROWS_ROOT) == rows[cid] for cid in samples):
            self._last_rows = rows

    def legend(self, peers: list[str], root: str) -> Markup:
        """A quantity chart's key, the chart as text: each peer's badge, link, period and value.
        Each row is made once, in two parts around `root` (as `row`): a claim is the peer of up
        to PEERS others."""
        rows = []
        for cid in peers:
            hit = self._legend_rows.get(cid)
            if hit is None:
                c = self.kb.claims[cid]
                q = c.quantity
                hit = self._legend_rows[cid] = (
                    f'<li>{badge(self.status(cid))} <a href="',
                    f'claims/{cid}/">{escape(c.claim)}</a> <span class="meta">'
                    f"{escape(c.period)}: {escape(human(q.value) if q else '')} "
                    f"{escape(q.unit if q else '')}</span></li>")
            rows.append(f"{hit[0]}{root}{hit[1]}")
        return Markup('<ul class="legend">' + "".join(rows) + "</ul>")


def build_model(kb: m.KnowledgeBase, config: Config, today: dt.date,
                histories: dict[str, list[Commit]], independent: dict[str, int],
                assessments: dict[str, Assessment] | None = None,
                memo: ModelMemo | None = None, last: IndexMemo | None = None,
                digests: Mapping[str, str] | None = None) -> SiteModel:
    """The model; with `memo` (kb.modelmemo.load_memo), what it holds is taken from it instead
    of worked out again, and what is worked out is added to it (kb.modelmemo.save_memo).
    With `digests` (file → digest of its bytes), its indexes are kept in `model.index` for
    kb.modelindex.save_index; with `last` as well, the last build's, patched where they can
    be (kb.modelindex)."""
    model = SiteModel(kb, config, today, histories, independent)
    claims, snapshots = kb.claims, kb.snapshots
    model.claim_ids = claim_ids = sorted(claims)
    normalised: dict[str, Normalised] = {}  # made when a quote is not in the memo
    texts = {} if memo is None and digests is None else {
        sid: hashlib.blake2b(s.text.encode("utf-8"), digest_size=16).hexdigest()
        for sid, s in snapshots.items()}
    given, age = assessments or {}, config.review_age_days
    model.assessments = assessed = {cid: given.get(cid) or assess(claims[cid], today, age)
                                    for cid in claim_ids}
    pairs: Pairs | None = None
    if digests is not None:
        dg = digests.get
        pairs = {cid: (dg(c.loc.path, ""), assessed[cid].status) for cid, c in claims.items()}
        if not all(digest for digest, _status in pairs.values()):
            pairs = None  # a record not read from a file's bytes: what it is made of is unknown
    redo = None if pairs is None else to_patch(last, pairs, texts)
    if last is not None and redo is not None:
        if memo is not None:  # the quotes of the claims not looked at stay in the memo
            memo.used.update(memo.located)
        indexes = last.indexes
        remove(indexes, redo)
        merge(indexes, index_claims(kb, sorted(redo & claims.keys()), assessed, memo,
                                    normalised, texts))
    else:
        indexes = finish(index_claims(kb, claim_ids, assessed, memo, normalised, texts))
    if pairs is not None:
        model.index = IndexMemo(pairs, texts, indexes)
    model.by_status, model.by_kind, model.by_tag = (indexes.by_status, indexes.by_kind,
                                                    indexes.by_tag)
    model.made_by, model.about = indexes.made_by, indexes.about
    model.appears_in, model.evidence_from = indexes.appears_in, indexes.evidence_from
    model.related_in = indexes.related_in
    model.spans = {sid: [Span(*span) for span in spans] for sid, spans in indexes.spans.items()}
    model.located = {key: Located(*where) for key, where in indexes.located.items()}
    for sid in sorted(kb.sources):
        s = kb.sources[sid]
        for ref in sorted({*(r.id for r in s.authors),
                           *([s.publisher.id] if s.publisher else [])}):
            model.published_by.setdefault(ref, []).append(sid)
    if memo is not None:  # once a build: the memo is checked, and saved, under this key
        model.peers_key = peers_key_of(indexes, PEERS)
        if memo.peers_key and memo.peers_key == model.peers_key:
            model._peers, model._peers_known = dict(memo.peers), True
    return model


def index_claims(kb: m.KnowledgeBase, ids: list[str], assessed: dict[str, Assessment],
                 memo: ModelMemo | None, normalised: dict[str, Normalised],
                 texts: dict[str, str]) -> Indexes:
    """The claims `ids` (sorted) indexed, not yet finished (kb.modelindex.finish, merge).
    Each claim is seen once and its tags and entities are sets: appending cannot repeat an id
    in an index (the sources' indexes, where a claim may cite one source twice, are made sets
    by finish). setdefault inline: a helper's call per item cost 0.3 s at 10,000 claims; and
    it is faster than a defaultdict's subscript (measured)."""
    raw = Indexes()
    claims, snapshots = kb.claims, kb.snapshots
    by_status, by_kind, by_tag = raw.by_status, raw.by_kind, raw.by_tag
    made_by, about, related_in = raw.made_by, raw.about, raw.related_in
    appears_in, evidence_from = raw.appears_in, raw.evidence_from
    spans, located, quantities = raw.spans, raw.located, raw.quantities
    for cid in ids:
        c = claims[cid]
        by_status.setdefault(assessed[cid].status, []).append(cid)
        by_kind.setdefault(c.kind, []).append(cid)
        tags = sorted(set(c.tags)) if c.tags else []
        for tag in tags:
            by_tag.setdefault(tag, []).append(cid)
        if c.claimant:
            made_by.setdefault(c.claimant.id, []).append(cid)
        entities = sorted({r.id for r in c.about}) if c.about else []
        for ref in entities:
            about.setdefault(ref, []).append(cid)
        if c.quantity is not None:
            quantities[cid] = (c.quantity.unit, c.period, tags, entities)
        cited: tuple[tuple[str, dict[str, list[str]], list[tuple[str, str | None]]], ...] = (
            ("appearance", appears_in, [(ap.source.id, ap.quote) for ap in c.appearances]),
            ("evidence", evidence_from, [(ev.source.id, ev.quote) for ev in c.evidence]))
        for role, index, items in cited:
            for n, (sid, quote) in enumerate(items, 1):
                index.setdefault(sid, []).append(cid)
                snap = snapshots.get(sid)
                if not quote or snap is None:
                    continue
                where = locate_quote(memo, normalised, sid, texts.get(sid, ""), snap.text,
                                     quote)
                if where is None:
                    continue
                spans.setdefault(sid, []).append((where[0], where[1], cid, role, n))
                pre, post = context(snap.text, *where)
                located[(cid, role, n)] = (pre, snap.text[where[0]:where[1]], post,
                                           anchor(cid, role, n))
        for rel in c.related:
            related_in.setdefault(rel.claim.id, []).append((cid, rel.relation))
    return raw
