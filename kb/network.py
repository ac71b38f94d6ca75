"""The claim network: cycles, independent sources and the weak spots of a knowledge base.

Nodes are claims, sources and entities ("claim:x", "source:y", "entity:z"); edges are
appearances, evidence (with its stance), claim-to-claim relations, and who said, published or is
talked about. The network earns its keep where questions span several records:

- `depends-on` cycles (N701, an error: a claim cannot rest on itself);
- a claim that depends on a refuted or disputed claim (N702, a warning);
- independence: evidence from sources of one publisher, or from copies of one document, counts
  once. Two sources are copies of one document when their URLs are the same after dropping the
  scheme, a leading "www.", the query, the fragment and a trailing slash (an archived copy filed
  as a source of its own, say). Sources are grouped transitively (union-find over both keys).
- weak spots for `kb analyze`: single-source claims, orphans, contradiction clusters and the most
  central entities.

`analyse` runs in every `kb build`, so it works on dicts and sets; networkx is imported only
for `build` (the whole network, for tools) and to name the knots of a depends-on cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kb import model as m
from kb.problems import Problem, problem
from kb.status import SUPPORT, Assessment

if TYPE_CHECKING:  # kb.validate imports this module for its rules
    import networkx as nx

    from kb.validate import Context

WEAK_STATUSES = frozenset({"refuted", "disputed"})


@dataclass
class NetworkReport:
    independent_sources: dict[str, int] = field(default_factory=dict)  # claim id → groups backing
    single_source: list[str] = field(default_factory=list)  # claims backed by one group only
    orphans: list[str] = field(default_factory=list)  # claims with no evidence and no relations
    contradiction_clusters: list[list[str]] = field(default_factory=list)
    central_entities: list[tuple[str, float]] = field(default_factory=list)  # id, centrality
    cycles: list[list[str]] = field(default_factory=list)  # depends-on cycles, claim ids
    weak_dependencies: list[tuple[str, str, str]] = field(default_factory=list)  # claim, on, status
    source_groups: dict[str, str] = field(default_factory=dict)  # source id → group representative


def url_key(url: str) -> str:
    """A URL with what does not change the document dropped: copies of one report share it."""
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    return f"{host}{path}" if host else ""


class _UnionFind:
    """Disjoint sets of names; each set is named by its smallest member (deterministic)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def source_groups(kb: m.KnowledgeBase) -> dict[str, str]:
    """Each source's independence group: one per publisher and per document (union-find)."""
    sets = _UnionFind()
    find, union = sets.find, sets.union
    for sid in sorted(kb.sources):
        source = kb.sources[sid]
        node = f"source:{sid}"
        find(node)
        if source.publisher and source.publisher.id:
            union(node, f"publisher:{source.publisher.id}")
        key = url_key(source.url)
        if key:
            union(node, f"url:{key}")
    return {sid: find(f"source:{sid}") for sid in sorted(kb.sources)}


def build(kb: m.KnowledgeBase) -> nx.MultiDiGraph:
    """The whole network as one directed multigraph; edge attribute `kind` says what links."""
    import networkx as nx  # lazily: 0.3 s to import, and kb check rarely needs it

    g = nx.MultiDiGraph()
    for cid, claim in kb.claims.items():
        g.add_node(f"claim:{cid}", kind="claim")
        if claim.claimant and claim.claimant.id:
            g.add_edge(f"entity:{claim.claimant.id}", f"claim:{cid}", kind="claimant")
        for ref in claim.about:
            g.add_edge(f"claim:{cid}", f"entity:{ref.id}", kind="about")
        for app in claim.appearances:
            g.add_edge(f"source:{app.source.id}", f"claim:{cid}", kind="appearance")
        for ev in claim.evidence:
            g.add_edge(f"source:{ev.source.id}", f"claim:{cid}", kind="evidence", stance=ev.stance)
        for rel in claim.related:
            g.add_edge(f"claim:{cid}", f"claim:{rel.claim.id}", kind=rel.relation)
    for sid, source in kb.sources.items():
        g.add_node(f"source:{sid}", kind="source")
        if source.publisher and source.publisher.id:
            g.add_edge(f"entity:{source.publisher.id}", f"source:{sid}", kind="publisher")
        for ref in source.authors:
            g.add_edge(f"entity:{ref.id}", f"source:{sid}", kind="author")
    for eid in kb.entities:
        g.add_node(f"entity:{eid}", kind="entity")
    return g


def depends_on_graph(kb: m.KnowledgeBase) -> nx.DiGraph:
    import networkx as nx  # lazily: 0.3 s to import, and kb check rarely needs it

    g = nx.DiGraph()
    for cid, claim in kb.claims.items():
        for rel in claim.related:
            if rel.relation == "depends-on" and rel.claim.id in kb.claims:
                g.add_edge(cid, rel.claim.id)
    return g


def _has_cycle(kb: m.KnowledgeBase) -> bool:
    """Whether depends-on links between existing claims loop anywhere (iterative DFS, colours).

    Knowledge bases almost never have a cycle (it is an error), so this cheap test lets the
    common case skip networkx and its import."""
    claims = kb.claims
    edges: dict[str, list[str]] = {}
    for cid, claim in claims.items():
        for rel in claim.related:
            if rel.relation == "depends-on" and rel.claim.id in claims:
                edges.setdefault(cid, []).append(rel.claim.id)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(edges[start]))]
        while stack:
            node, todo = stack[-1]
            for nxt in todo:
                seen = state.get(nxt)
                if seen == 1:
                    return True
                if seen is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(edges.get(nxt, ()))))
                    break
            else:
                state[node] = 2
                stack.pop()
    return False


def find_cycles(kb: m.KnowledgeBase) -> list[list[str]]:
    """One cycle per strongly connected knot of depends-on links, starting at its smallest id.

    Listing every simple cycle can take exponential time; one per knot names the problem.
    """
    if not _has_cycle(kb):
        return []
    import networkx as nx  # only now: importing it costs more than the whole search above

    g = depends_on_graph(kb)
    cycles = []
    for comp in nx.strongly_connected_components(g):
        start = min(comp)
        if len(comp) == 1 and not g.has_edge(start, start):
            continue
        sub = g.subgraph(comp)
        edges = nx.find_cycle(sub, source=start)
        cycle = [u for u, _v in edges]
        k = cycle.index(min(cycle))
        cycles.append(cycle[k:] + cycle[:k])
    return sorted(cycles)


def independent_sources(kb: m.KnowledgeBase, groups: dict[str, str]) -> dict[str, int]:
    """For each claim, how many independent groups of sources support it (fully or partly)."""
    out: dict[str, int] = {}
    for cid in sorted(kb.claims):
        backing = {groups.get(e.source.id, e.source.id) for e in kb.claims[cid].evidence
                   if e.stance in SUPPORT}
        out[cid] = len(backing)
    return out


def contradiction_clusters(kb: m.KnowledgeBase) -> list[list[str]]:
    """Groups of two or more claims linked by `contradicts` (connected components, union-find:
    a dict does what a networkx graph did, in a tenth of the time)."""
    sets = _UnionFind()
    for cid, claim in kb.claims.items():
        for rel in claim.related:
            if rel.relation == "contradicts" and rel.claim.id in kb.claims:
                sets.union(cid, rel.claim.id)
    members: dict[str, list[str]] = {}
    for x in list(sets.parent):
        members.setdefault(sets.find(x), []).append(x)
    return sorted(sorted(c) for c in members.values() if len(c) > 1)


def analyse(kb: m.KnowledgeBase, assessments: dict[str, Assessment]) -> NetworkReport:
    groups = source_groups(kb)
    indep = independent_sources(kb, groups)
    related: set[str] = set()
    for cid, claim in kb.claims.items():
        for rel in claim.related:
            if rel.claim.id in kb.claims:
                related.update((cid, rel.claim.id))
    single = [cid for cid, n in indep.items() if n == 1
              and assessments.get(cid) is not None
              and assessments[cid].status in ("supported", "partly-supported")]
    orphans = [cid for cid in sorted(kb.claims)
               if not kb.claims[cid].evidence and cid not in related]
    weak = []
    for cid in sorted(kb.claims):
        for rel in kb.claims[cid].related:
            a = assessments.get(rel.claim.id)
            if rel.relation == "depends-on" and a is not None and a.status in WEAK_STATUSES:
                weak.append((cid, rel.claim.id, a.status))
    return NetworkReport(
        independent_sources=indep,
        single_source=single,
        orphans=orphans,
        contradiction_clusters=contradiction_clusters(kb),
        central_entities=central_entities(kb),
        cycles=find_cycles(kb),
        weak_dependencies=weak,
        source_groups=groups,
    )


def central_entities(kb: m.KnowledgeBase, top: int = 10) -> list[tuple[str, float]]:
    """Entities by degree centrality in the network of `build`: the share of its other nodes
    (claims and sources) linked to them.

    Degree is cheap and easy to explain ("linked to 12% of the network"); betweenness would
    take minutes at 10,000 claims and says little more here. Counted with sets rather than a
    networkx graph (1 s at 10,000 claims); the nodes are those `build` would make, dangling
    references included, and tests/test_network.py checks the two agree.
    """
    # the nodes by kind: every record, and every id an edge points to
    claims, sources, entities = set(kb.claims), set(kb.sources), set(kb.entities)
    linked: dict[str, set[str]] = {}  # entity id → the claims linked to it
    published: dict[str, set[str]] = {}  # entity id → the sources linked to it
    for cid, claim in kb.claims.items():
        if claim.claimant and claim.claimant.id:
            linked.setdefault(claim.claimant.id, set()).add(cid)
        for ref in claim.about:
            linked.setdefault(ref.id, set()).add(cid)
        sources.update([c.source.id for c in claim.appearances])
        sources.update([e.source.id for e in claim.evidence])
        claims.update([r.claim.id for r in claim.related])
    for sid, source in kb.sources.items():
        if source.publisher and source.publisher.id:
            published.setdefault(source.publisher.id, set()).add(sid)
        for ref in source.authors:
            published.setdefault(ref.id, set()).add(sid)
    entities.update(linked, published)
    nodes = len(claims) + len(sources) + len(entities)
    if nodes < 2:
        return []
    n = nodes - 1
    scores = [(eid, round((len(linked.get(eid, ())) + len(published.get(eid, ()))) / n, 6))
              for eid in kb.entities]
    scores = [s for s in scores if s[1] > 0]
    scores.sort(key=lambda s: (-s[1], s[0]))
    return scores[:top]


# Rules for kb.validate, registered in its RULES tuple.


def depends_on_cycles(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    """N701: a claim that depends, through others, on itself."""
    for cycle in find_cycles(kb):
        first = kb.claims[cycle[0]]
        nxt = cycle[1] if len(cycle) > 1 else cycle[0]
        loc = next((r.claim.loc for r in first.related
                    if r.relation == "depends-on" and r.claim.id == nxt), first.at("related"))
        path = " → ".join([*cycle, cycle[0]])
        yield problem(loc, "N701", f"depends-on cycle: {path}",
                      "a claim cannot rest on itself; remove or change one of these relations")


def depends_on_weak(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    """N702: a claim resting on a claim the evidence refutes or disputes."""
    cache: dict[str, str] = {}
    for claim in kb.claims.values():  # the report sorts what it is given
        for rel in claim.related:
            other = kb.claims.get(rel.claim.id)
            if rel.relation != "depends-on" or other is None:
                continue
            if other.id not in cache:
                cache[other.id] = ctx.assessment(other).status
            status = cache[other.id]
            if status in WEAK_STATUSES:
                yield problem(rel.claim.loc, "N702",
                              f"depends on '{other.id}', which is {status}",
                              "check whether this claim still holds, or say why in a verdict")


def report_lines(report: NetworkReport, kb: m.KnowledgeBase) -> list[str]:
    """The weak spots in words, for `kb analyze`."""
    n = len(kb.claims)
    out = [f"{n} claims, {len(kb.sources)} sources, {len(kb.entities)} entities",
           f"{len(set(report.source_groups.values()))} independent source groups"]

    def section(title: str, items: list[str]) -> None:
        out.append("")
        out.append(f"{title}: {len(items)}")
        out.extend(f"  {item}" for item in items)

    section("depends-on cycles (errors)", [" → ".join([*c, c[0]]) for c in report.cycles])
    section("claims resting on a refuted or disputed claim",
            [f"{c} depends on {o} ({s})" for c, o, s in report.weak_dependencies])
    section("supported claims with a single independent source", report.single_source)
    section("orphan claims (no evidence, no related claims)", report.orphans)
    section("contradiction clusters", [", ".join(c) for c in report.contradiction_clusters])
    section("most central entities (share of the network linked to them)",
            [f"{e}  {score:.3f}" for e, score in report.central_entities])
    return out


def analyze(root: Path) -> tuple[list[str], int]:
    """`kb analyze`: the network report of the knowledge base in `root`, and the exit code
    (1 when there are depends-on cycles, which are errors)."""
    from kb.check import check  # lazily: kb.check imports the rules in this module

    checked = check(root)
    assessments = checked.context.assessments(checked.kb.claims)
    report = analyse(checked.kb, assessments)
    return report_lines(report, checked.kb), 1 if report.cycles else 0
