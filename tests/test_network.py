"""The claim network: depends-on cycles (N701), weak dependencies (N702), independence,
and `kb analyze`."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner
from graph_data import RICH

from kb import model as m
from kb.check import check
from kb.cli import main
from kb.network import analyse, url_key
from kb.status import assess

from conftest import MakeKB

CYCLE = {
    "claims/a.yaml": """\
id: a
claim: A holds.
kind: fact
appearances: [{source: article, quote: "Last year"}]
reviews: [{by: editor, date: 2026-11-01}]
related: [{claim: b, relation: depends-on}]
""",
    "claims/b.yaml": """\
id: b
claim: B holds.
kind: fact
appearances: [{source: article, quote: "Last year"}]
reviews: [{by: editor, date: 2026-11-01}]
related: [{claim: a, relation: depends-on}]
""",
}


def codes(root: object) -> list[str]:
    return [p.code for p in check(root).report]  # type: ignore[arg-type]


def test_depends_on_cycle_is_an_error_at_the_relation(make_kb: MakeKB) -> None:
    root = make_kb(CYCLE)
    report = check(root).report
    n701 = [p for p in report if p.code == "N701"]
    assert len(n701) == 1
    assert n701[0].loc.path == "claims/a.yaml" and n701[0].loc.line == 6
    assert "a → b → a" in n701[0].message
    result = CliRunner().invoke(main, ["--root", str(root), "check"])
    assert result.exit_code == 1 and "N701" in result.output


def test_depending_on_a_refuted_claim_is_a_warning(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    n702 = [p for p in check(root).report if p.code == "N702"]
    assert [(p.loc.path, p.message) for p in n702] == [
        ("claims/growth-needs-fall.yaml", "depends on 'trade-fall-2025', which is refuted")]
    assert "N701" not in codes(root)


def test_sources_of_one_publisher_count_once(make_kb: MakeKB) -> None:
    checked = check(make_kb(RICH))
    kb, ctx = checked.kb, checked.context
    report = analyse(kb, {c: assess(x, ctx.today, 365) for c, x in kb.claims.items()})
    assert report.independent_sources == {"growth-needs-fall": 1, "opinion": 0,
                                          "trade-fall-2025": 0, "trade-record-2024": 1}
    assert report.source_groups["report"] == report.source_groups["report-copy"]
    assert report.source_groups["article"] != report.source_groups["report"]
    assert report.single_source == ["growth-needs-fall", "trade-record-2024"]
    assert report.contradiction_clusters == [["trade-fall-2025", "trade-record-2024"]]
    assert report.orphans == ["opinion"]
    assert report.central_entities[0][0] == "someone"


def test_copies_of_one_document_count_once(make_kb: MakeKB) -> None:
    files = dict(RICH)
    files["sources/report-copy.yaml"] = files["sources/report-copy.yaml"].replace(
        "publisher: someone\n", "").replace("https://example.org/other-table",
                                            "http://www.example.org/report/?utm=1")
    files["sources/report.yaml"] = files["sources/report.yaml"].replace("publisher: someone\n",
                                                                        "")
    checked = check(make_kb(files))
    kb, ctx = checked.kb, checked.context
    report = analyse(kb, {c: assess(x, ctx.today, 365) for c, x in kb.claims.items()})
    assert report.independent_sources["growth-needs-fall"] == 1
    assert url_key("https://www.Example.org/report/?x#y") == url_key("http://example.org/report")
    assert url_key("https://example.org/a") != url_key("https://example.org/b")


def test_independent_sources_are_in_the_graph(make_kb: MakeKB) -> None:
    from kb.graph import build_graph
    from kb.query import run

    g = build_graph(check(make_kb(RICH)))
    rows = run(g, "SELECT ?c ?n WHERE { ?c kb:independentSources ?n } ORDER BY ?c").rows
    assert [getattr(r[1], "value", None) for r in rows] == ["1", "0", "0", "1"]


def test_analyze_prints_the_weak_spots(make_kb: MakeKB) -> None:
    result = CliRunner().invoke(main, ["--root", str(make_kb(RICH)), "analyze"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "supported claims with a single independent source: 2" in out
    assert "growth-needs-fall depends on trade-fall-2025 (refuted)" in out
    assert "  trade-fall-2025, trade-record-2024" in out
    assert "orphan claims (no evidence, no related claims): 1\n  opinion" in out
    cyc = CliRunner().invoke(main, ["--root", str(make_kb(CYCLE, name="c")), "analyze"])
    assert cyc.exit_code == 1 and "a → b → a" in cyc.output


def _kb_with_links(n: int, links: list[tuple[int, int, str]]) -> object:
    from pathlib import Path

    from kb import model as m

    kb = m.KnowledgeBase(Path("."))
    for i in range(n):
        kb.claims[f"c{i}"] = m.Claim(id=f"c{i}")
    for a, b, relation in links:
        kb.claims[f"c{a}"].related.append(m.Relation(claim=m.Ref(f"c{b}"), relation=relation))
    return kb


def test_the_quick_cycle_test_agrees_with_networkx() -> None:
    # the cheap test decides whether networkx runs at all: it must never miss a cycle
    import random

    import networkx as nx

    from kb.network import _has_cycle, depends_on_graph, find_cycles

    rnd = random.Random(5)
    kinds = {True: 0, False: 0}
    for _ in range(400):
        n = rnd.randint(1, 12)
        links = [(rnd.randrange(n), rnd.randrange(n + 2),  # n, n+1: claims that do not exist
                  rnd.choice(["depends-on", "depends-on", "supports"]))
                 for _ in range(rnd.randint(0, 2 * n))]
        kb = _kb_with_links(n, links)
        expected = not nx.is_directed_acyclic_graph(depends_on_graph(kb))  # type: ignore[arg-type]
        assert _has_cycle(kb) is expected, links  # type: ignore[arg-type]
        assert bool(find_cycles(kb)) is expected  # type: ignore[arg-type]
        kinds[expected] += 1
    assert min(kinds.values()) > 50  # both cases were tried often


def _random_kb(rnd: random.Random, n: int) -> m.KnowledgeBase:
    """Claims, sources and entities linked at random, with references to records that do not
    exist (they are nodes of the network too) and duplicate links."""
    kb = m.KnowledgeBase(Path("."))
    ents = [f"e{i}" for i in range(n)]
    refs = [*ents, "ghost", ""]
    for e in ents[: n - 1]:
        kb.entities[e] = m.Entity(id=e)
    for i in range(n):
        kb.sources[f"s{i}"] = m.Source(
            id=f"s{i}", url=rnd.choice(["", f"https://x.example/{i % 3}"]),
            publisher=rnd.choice([None, m.Ref(rnd.choice(refs))]),
            authors=[m.Ref(rnd.choice(refs)) for _ in range(rnd.randint(0, 2))])
    srcs = [*kb.sources, "nowhere"]
    for i in range(2 * n):
        kb.claims[f"c{i}"] = m.Claim(
            id=f"c{i}", claimant=rnd.choice([None, m.Ref(rnd.choice(refs))]),
            about=[m.Ref(rnd.choice(refs)) for _ in range(rnd.randint(0, 3))],
            appearances=[m.Appearance(source=m.Ref(rnd.choice(srcs)))
                         for _ in range(rnd.randint(0, 2))],
            evidence=[m.Evidence(source=m.Ref(rnd.choice(srcs)),
                                 stance=rnd.choice(["supports", "refutes", "context"]))
                      for _ in range(rnd.randint(0, 3))],
            related=[m.Relation(claim=m.Ref(f"c{rnd.randrange(2 * n + 2)}"),
                                relation=rnd.choice(["contradicts", "depends-on", "supports"]))
                     for _ in range(rnd.randint(0, 2))])
    return kb


def test_centrality_and_clusters_agree_with_networkx() -> None:
    """analyse counts with dicts and sets what a networkx graph of the network gave."""
    import networkx as nx

    from kb.network import build, central_entities, contradiction_clusters

    def expected_central(kb: m.KnowledgeBase) -> list[tuple[str, float]]:
        g = build(kb)
        if g.number_of_nodes() < 2:
            return []
        n = g.number_of_nodes() - 1
        scores = [(e, round(len(set(nx.all_neighbors(g, f"entity:{e}"))) / n, 6))
                  for e in kb.entities]
        scores = [s for s in scores if s[1] > 0]
        return sorted(scores, key=lambda s: (-s[1], s[0]))[:10]

    def expected_clusters(kb: m.KnowledgeBase) -> list[list[str]]:
        contra = nx.Graph()
        for cid, claim in kb.claims.items():
            for rel in claim.related:
                if rel.relation == "contradicts" and rel.claim.id in kb.claims:
                    contra.add_edge(cid, rel.claim.id)
        return sorted(sorted(c) for c in nx.connected_components(contra) if len(c) > 1)

    rnd = random.Random(7)
    clustered = 0
    for _ in range(150):
        kb = _random_kb(rnd, rnd.randint(1, 14))
        assert central_entities(kb) == expected_central(kb)
        clusters = contradiction_clusters(kb)
        assert clusters == expected_clusters(kb)
        clustered += bool(clusters)
    assert clustered > 30
