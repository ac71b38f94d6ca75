"""The checked knowledge base as RDF: one named graph per file, in a pyoxigraph store.

Triples are made as pyoxigraph terms and bulk-loaded (DESIGN.md §7: adding them one by one
through rdflib is five times slower). Queries see the union of the named graphs as their default
graph: run them with `store.query(text, use_default_graph_as_union=True)` (kb.query.run does).
The terms are those of DESIGN.md §4; docs/graph.md has the full mapping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, MutableMapping
from functools import partial
from pathlib import Path
from typing import cast

from kb import model as m
from kb.check import Checked
from kb.graphcache import GraphCache, Keys
from kb.history import Commit
from kb.kbgraph import Blocks, KBGraph, Stored, block_of, lines_of
from kb.load import kind_of
from kb.namespaces import (
    CITO_IRI,
    DCTERMS_IRI,
    OA_IRI,
    OWL_IRI,
    PROV_IRI,
    RDF_IRI,
    RDFS_IRI,
    SCHEMA_IRI,
    WIKIDATA_IRI,
    XSD_IRI,
    Iris,
    nt_iri,
    nt_literal,
)
from kb.network import NetworkReport, analyse
from kb.quotes import locate
from kb.status import Assessment
from kb.vocab import RELATION_TERMS, STATUS, vocab_triples

SOURCE_TYPES = {
    "news-article": "NewsArticle",
    "statistics": "Dataset",
    "report": "Report",
    "interview": "CreativeWork",
    "social-post": "SocialMediaPosting",
    "forum-thread": "DiscussionForumPosting",
    "encyclopedia": "Article",
    "dataset": "Dataset",
    "other": "CreativeWork",
}
ENTITY_TYPES = {
    "person": "Person",
    "organization": "Organization",
    "country": "Country",
    "place": "Place",
    "event": "Event",
    "product": "Product",
    "other": "Thing",
}
CITO_BY_STANCE = {
    "supports": "confirms",
    "partly-supports": "qualifies",
    "partly-refutes": "qualifies",
    "refutes": "refutes",
    "context": "citesForInformation",
}
CONTEXT_CHARS = 32  # the length of a TextQuoteSelector's prefix and suffix


class _Terms:
    """The N-Triples text of the standard terms used, made once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, name: str) -> str:
        return f"<{self.prefix}{name}>"


SCHEMA = _Terms(SCHEMA_IRI)
OA = _Terms(OA_IRI)
PROV = _Terms(PROV_IRI)
CITO = _Terms(CITO_IRI)
DCT = _Terms(DCTERMS_IRI)
XSD = _Terms(XSD_IRI)
TYPE = f"<{RDF_IRI}type>"
RDFS_COMMENT = f"<{RDFS_IRI}comment>"
SAME_AS = f"<{OWL_IRI}sameAs>"
TRUE = nt_literal("true", XSD_IRI + "boolean")
FALSE = nt_literal("false", XSD_IRI + "boolean")


def _int(n: int, datatype: str = "integer") -> str:
    return nt_literal(str(n), XSD_IRI + datatype)


def _date(d: dt.date) -> str:
    return nt_literal(d.isoformat(), XSD_IRI + "date")


def _partial_date(text: str) -> str:
    """YYYY, YYYY-MM or YYYY-MM-DD as xsd:gYear, xsd:gYearMonth or xsd:date."""
    kind = {4: "gYear", 7: "gYearMonth"}.get(len(text), "date")
    return nt_literal(text, XSD_IRI + kind)


class _Builder:
    """Collects the triples of one knowledge base, graph by graph; one method per record kind.

    What a graph is made from beyond its record (the assessment, the network, snapshots, git
    history, kb.toml) must be in its key in kb.graphcache.Keys, or the cache reuses stale lines.
    """

    def __init__(self, checked: Checked, assessments: dict[str, Assessment],
                 network: NetworkReport) -> None:
        self.kb = checked.kb
        self.config = checked.config
        self.ctx = checked.context
        self.iris = Iris.of(checked.config)
        self.assessments = assessments
        self.network = network
        self.blocks: dict[str, bytes] = {}  # graph IRI → its block (KBGraph.triples)
        self.current: str | None = None  # the graph being made, its lines in `out`
        self.out: list[str] = []
        self.publisher = nt_iri(self.iris.publisher)
        self.vocab = {name: nt_iri(self.iris.vocab(name)) for name in (
            "claimKind", "quantity", "resolvesBy", "evidence", "Evidence", "stance", "status",
            "derivedStatus", "verdict", "dueForReview", "independentSources", "reviewedBy",
            "translation", "sourceKind", "accessed", "entityKind", "path",
            *RELATION_TERMS.values())}
        self.relation = {k: self.vocab[v] for k, v in RELATION_TERMS.items()}

    def start(self, graph_iri: str) -> None:
        self.finish()
        self.current, self.out = graph_iri, []

    def finish(self) -> None:
        """The current graph's lines into its block: one graph's lines are alive at a time,
        so the lines of the whole graph and its blocks are never held together."""
        if self.current is None:
            return
        more = self.blocks.get(self.current)  # a graph started again adds to its lines
        lines = [*self.out, *lines_of(more)] if more else self.out
        self.blocks[self.current] = block_of(sorted(set(lines)))
        self.current, self.out = None, []

    def add(self, s: str, p: str, o: str) -> None:
        self.out.append(f"{s} {p} {o}")

    def text(self, s: str, p: str, value: str | None) -> None:
        if value:
            self.out.append(f"{s} {p} {nt_literal(value)}")

    def link(self, s: str, p: str, url: str | None) -> None:
        if url:
            self.out.append(f"{s} {p} {nt_iri(url)}")

    # -- records --------------------------------------------------------------------------

    def settings(self) -> None:
        self.start(self.iris.settings_graph)
        c = self.config
        self.add(self.publisher, TYPE, SCHEMA("Organization"))
        self.text(self.publisher, SCHEMA("name"), c.publisher)
        self.link(self.publisher, SCHEMA("url"), c.publisher_url)
        ds = nt_iri(self.iris.dataset)
        self.add(ds, TYPE, SCHEMA("Dataset"))
        self.text(ds, SCHEMA("name"), c.title)
        self.text(ds, SCHEMA("description"), c.description)
        self.add(ds, SCHEMA("publisher"), self.publisher)
        self.link(ds, SCHEMA("license"), c.licence_url)
        self.link(ds, SCHEMA("url"), self.iris.base)

    def claim(self, c: m.Claim) -> None:
        iris, v, s = self.iris, self.vocab, nt_iri(self.iris.claim(c.id))
        a = self.assessments[c.id]
        self.add(s, TYPE, SCHEMA("Claim"))
        self.text(s, SCHEMA("text"), c.claim)
        self.add(s, SCHEMA("mainEntityOfPage"), nt_iri(iris.page("claim", c.id)))
        self.text(s, v["claimKind"], c.kind)
        if c.claimant and c.claimant.id:
            self.add(s, SCHEMA("author"), nt_iri(iris.entity(c.claimant.id)))
        for ref in c.about:
            self.add(s, SCHEMA("about"), nt_iri(iris.entity(ref.id)))
        self.text(s, SCHEMA("temporalCoverage"), c.period)
        for tag in c.tags:
            self.text(s, SCHEMA("keywords"), tag)
        if c.quantity is not None:
            q = nt_iri(iris.quantity(c.id))
            self.add(s, v["quantity"], q)
            self.add(q, TYPE, SCHEMA("QuantitativeValue"))
            self.add(q, SCHEMA("value"), nt_literal(repr(float(c.quantity.value)),
                                                    XSD_IRI + "double"))
            self.text(q, SCHEMA("unitText"), c.quantity.unit)
        if c.resolves_by is not None:
            self.add(s, v["resolvesBy"], _date(c.resolves_by))
        for n, app in enumerate(c.appearances, 1):
            item = iris.appearance(c.id, n)
            self.add(s, SCHEMA("appearance"), nt_iri(item))
            if n == 1:
                self.add(s, SCHEMA("firstAppearance"), nt_iri(item))
            self.quote(item, app.source.id, app.quote, app.translation)
        for n, ev in enumerate(c.evidence, 1):
            item = iris.evidence(c.id, n)
            node = nt_iri(item)
            self.add(s, v["evidence"], node)
            self.add(node, TYPE, v["Evidence"])
            self.text(node, v["stance"], ev.stance)
            self.text(node, RDFS_COMMENT, ev.note)
            self.quote(item, ev.source.id, ev.quote, ev.translation)
            self.add(nt_iri(iris.source(ev.source.id)),
                     CITO(CITO_BY_STANCE.get(ev.stance, "citesForInformation")), s)
        for rel in c.related:
            self.add(s, self.relation.get(rel.relation, v["context"]),
                     nt_iri(iris.claim(rel.claim.id)))
        self.add(s, v["status"], nt_iri(iris.status(a.status)))
        self.add(s, v["derivedStatus"], nt_iri(iris.status(a.derived)))
        if a.verdict:
            self.add(s, v["verdict"], nt_iri(iris.status(a.verdict)))
        self.add(s, v["dueForReview"], TRUE if a.due_for_review else FALSE)
        self.add(s, v["independentSources"],
                 _int(self.network.independent_sources.get(c.id, 0)))
        self.review(c, s, a)

    def review(self, c: m.Claim, claim: str, a: Assessment) -> None:
        iris = self.iris
        r, rating = nt_iri(iris.review(c.id)), nt_iri(iris.rating(c.id))
        info = STATUS[a.status]
        self.add(r, TYPE, SCHEMA("ClaimReview"))
        self.add(r, SCHEMA("itemReviewed"), claim)
        self.text(r, SCHEMA("claimReviewed"), c.claim)
        self.add(r, SCHEMA("author"), self.publisher)
        self.add(r, SCHEMA("url"), nt_iri(iris.page("claim", c.id)))
        dates = sorted(rv.date for rv in c.reviews if rv.date is not None)
        if dates:
            self.add(r, SCHEMA("datePublished"), _date(dates[0]))
            self.add(r, SCHEMA("dateModified"), _date(dates[-1]))
        for by in sorted({rv.by for rv in c.reviews if rv.by}):
            self.text(r, self.vocab["reviewedBy"], by)
        self.add(r, SCHEMA("reviewRating"), rating)
        self.add(rating, TYPE, SCHEMA("Rating"))
        self.text(rating, SCHEMA("alternateName"), info.label)
        if info.rating is not None:
            self.add(rating, SCHEMA("ratingValue"), _int(info.rating))
        self.add(rating, SCHEMA("bestRating"), _int(5))
        self.add(rating, SCHEMA("worstRating"), _int(1))
        self.text(rating, SCHEMA("ratingExplanation"), a.reason)

    def quote(self, item_iri: str, source_id: str, quote: str | None,
              translation: str | None) -> None:
        """A quote as a Web Annotation: the source, and selectors for the words and place."""
        item = nt_iri(item_iri)
        self.add(item, TYPE, OA("SpecificResource"))
        self.add(item, OA("hasSource"), nt_iri(self.iris.source(source_id)))
        self.text(item, self.vocab["translation"], translation)
        if not quote:
            return
        self.text(item, SCHEMA("text"), quote)
        sel = nt_iri(self.iris.selector(item_iri, "quote"))
        self.add(item, OA("hasSelector"), sel)
        self.add(sel, TYPE, OA("TextQuoteSelector"))
        snap = self.kb.snapshots.get(source_id)
        normalised = self.ctx.snapshot(self.kb, source_id) if snap else None
        where = locate(normalised, quote) if normalised is not None else None
        if snap is None or where is None:
            self.text(sel, OA("exact"), quote)
            return
        start, end = where
        # exact is the source's own words (its white space and quote marks), so that
        # text[start:end] == exact, as the Web Annotation model requires
        self.text(sel, OA("exact"), snap.text[start:end])
        self.text(sel, OA("prefix"), snap.text[max(0, start - CONTEXT_CHARS):start])
        self.text(sel, OA("suffix"), snap.text[end:end + CONTEXT_CHARS])
        pos = nt_iri(self.iris.selector(item_iri, "position"))
        self.add(item, OA("hasSelector"), pos)
        self.add(pos, TYPE, OA("TextPositionSelector"))
        self.add(pos, OA("start"), _int(start, "nonNegativeInteger"))
        self.add(pos, OA("end"), _int(end, "nonNegativeInteger"))

    def source(self, src: m.Source) -> None:
        iris, s = self.iris, nt_iri(self.iris.source(src.id))
        self.add(s, TYPE, SCHEMA(SOURCE_TYPES.get(src.kind, "CreativeWork")))
        self.text(s, self.vocab["sourceKind"], src.kind)
        self.add(s, SCHEMA("mainEntityOfPage"), nt_iri(iris.page("source", src.id)))
        self.text(s, SCHEMA("name"), src.title)
        self.text(s, SCHEMA("headline"), src.title)
        self.link(s, SCHEMA("url"), src.url)
        self.link(s, SCHEMA("archivedAt"), src.archived)
        if src.publisher and src.publisher.id:
            self.add(s, SCHEMA("publisher"), nt_iri(iris.entity(src.publisher.id)))
        for ref in src.authors:
            self.add(s, SCHEMA("author"), nt_iri(iris.entity(ref.id)))
        if src.published:
            self.add(s, SCHEMA("datePublished"), _partial_date(src.published))
        if src.accessed:
            self.add(s, self.vocab["accessed"], _date(src.accessed))
        self.text(s, SCHEMA("inLanguage"), src.language)
        self.text(s, RDFS_COMMENT, src.note)

    def entity(self, e: m.Entity) -> None:
        iris, s = self.iris, nt_iri(self.iris.entity(e.id))
        self.add(s, TYPE, SCHEMA(ENTITY_TYPES.get(e.kind, "Thing")))
        self.text(s, self.vocab["entityKind"], e.kind)
        self.add(s, SCHEMA("mainEntityOfPage"), nt_iri(iris.page("entity", e.id)))
        self.text(s, SCHEMA("name"), e.name)
        for alias in e.aliases:
            self.text(s, SCHEMA("alternateName"), alias)
        self.text(s, SCHEMA("description"), e.description)
        if e.wikidata:
            self.add(s, SAME_AS, nt_iri(WIKIDATA_IRI + e.wikidata))

    def provenance(self, graph_iri: str, path: str, commits: list[Commit] | None) -> None:
        """Where the named graph came from: its file and, from git, dates and contributors.

        Nothing is invented: without a repository URL there is no prov:wasDerivedFrom link,
        and outside a git checkout no dates or contributors.
        """
        g = nt_iri(graph_iri)
        self.add(g, TYPE, PROV("Entity"))
        self.text(g, self.vocab["path"], path)
        if self.config.repository:
            repo = self.config.repository.rstrip("/")
            self.link(g, PROV("wasDerivedFrom"), f"{repo}/blob/{self.config.branch}/{path}")
        if commits:
            stamp = XSD_IRI + "dateTime"
            self.add(g, DCT("created"), nt_literal(commits[0].date.isoformat(), stamp))
            self.add(g, DCT("modified"), nt_literal(commits[-1].date.isoformat(), stamp))
            for name in sorted({c.author for c in commits if c.author}):
                self.text(g, DCT("contributor"), name)


def build_graph(checked: Checked, histories: dict[str, list[Commit]] | None = None,
                cache: bool | None = None, digests: Mapping[str, str] | None = None) -> KBGraph:
    """The graph of a checked knowledge base; `histories` from kb.history.file_histories.

    With `cache` (by default: unless the check was told not to use one), the network report
    and each named graph's block comes from the last build's when everything they are made
    from is unchanged (kb.graphcache): after one edit, one graph is made again, not 13,000.
    `digests` (path → digest of the bytes `checked` parsed, from kb.load.Inputs) spare
    working out what each record says.
    """
    kb = checked.kb
    ctx = checked.context
    assessments = ctx.assessments(kb.claims)
    # the first of two records with one id wins, as in the model (when no id has two, each
    # record is its id's first: 130,000 lookups fewer at 100,000 claims)
    if kb.one_record_per_id():
        records = [(path, record, kind_of(record)) for path, record in kb.files if record.id]
    else:
        records = [(path, record, kind) for path, record in kb.files
                   if record.id and kb.record(kind := kind_of(record), record.id) is record]
    store = _open_cache(checked, cache)
    keys = Keys(kb, assessments, histories or {}, digests)
    if store is None:
        network = analyse(kb, assessments)
    else:
        network = store.network(keys.network(store.parts), lambda: analyse(kb, assessments))
        store.keep_parts(keys.parts)
    b = _Builder(checked, assessments, network)
    iris = b.iris
    files = {iris.vocab_graph: "kb:vocab", iris.settings_graph: "kb.toml"}
    b.start(iris.vocab_graph)
    b.out.extend(vocab_triples(iris))
    b.settings()
    reused: dict[str, bytes] = {}
    unread: dict[str, int] = {}  # blocks the cache holds and has not read: their lengths
    graph_keys: dict[str, str] = {}
    for path, record, kind in records:
        graph_iri = iris.graph(kind, record.id)
        files[graph_iri] = path
        if store is not None:
            key = graph_keys[graph_iri] = keys.graph(path, record, network)
            found = store.find(graph_iri, key)
            if isinstance(found, bytes):
                reused[graph_iri] = found
                continue
            if found is not None:
                unread[graph_iri] = found
                continue
        _record(b, graph_iri, path, record, keys.histories.get(path))
    b.finish()
    made = b.blocks
    blocks: dict[str, bytes | None] = dict(sorted({**made, **reused, **dict.fromkeys(unread)}
                                                  .items()))
    if store is not None:
        for g, key in graph_keys.items():
            if g in made:
                store.put_block(g, key, made[g])
        store.save_graphs(set(graph_keys))
        # Shards read meanwhile (to write one, to drop a graph) hold blocks found unread: taken
        # now, then forgotten by the cache, so that they are not held twice.
        for g, block in store.drop_read(unread, graph_keys).items():
            blocks[g] = block
            del unread[g]
    triples: MutableMapping[str, bytes] = cast(dict[str, bytes], blocks)
    if unread and store is not None:
        sources: dict[str, tuple[str, m.Record]] = {}  # made when first wanted: rarely

        def remake(graph_iri: str) -> bytes:  # a block the cache turned out not to hold
            if not sources:
                made = {iris.graph(kind, record.id): (path, record)
                        for path, record, kind in records}
                sources.update(made)  # whole, at once
            path, record = sources[graph_iri]
            one = _Builder(checked, assessments, network)
            _record(one, graph_iri, path, record, keys.histories.get(path))
            one.finish()
            return one.blocks[graph_iri]

        triples = Blocks(blocks, unread, partial(store.blocks_of, keys=graph_keys), remake,
                         store.close)
    stored = None if store is None else Stored(str(store.folder), store.key,
                                               frozenset(reused) | frozenset(unread))
    return KBGraph(iris, dict(sorted(files.items())), triples, assessments, network,
                   graph_keys, stored)


def _record(b: _Builder, graph_iri: str, path: str, record: m.Record,
            history: list[Commit] | None) -> None:
    b.start(graph_iri)
    if isinstance(record, m.Claim):
        b.claim(record)
    elif isinstance(record, m.Source):
        b.source(record)
    else:
        b.entity(record)
    b.provenance(graph_iri, path, history)


def _open_cache(checked: Checked, cache: bool | None) -> GraphCache | None:
    if cache is None:  # as the check did (CheckOptions.use_cache, `--no-cache`)
        cache = bool(getattr(checked, "use_cache", True))
    return GraphCache(checked.kb.root, checked.config) if cache else None


def load_graph(root: Path) -> tuple[Checked, KBGraph]:
    """Check the knowledge base in `root` and build its graph, with git history where there is.

    Raises kb.load.NotAKnowledgeBase when the folder cannot be read as one.
    """
    from kb.check import check
    from kb.history import file_histories

    checked = check(root)
    return checked, build_graph(checked, file_histories(root))
