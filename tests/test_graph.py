"""The graph, asserted by querying it: DESIGN.md §4's terms, IRIs, named graphs, provenance."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from graph_data import RICH

from kb.check import check
from kb.graph import build_graph
from kb.history import file_histories
from kb.kbgraph import KBGraph
from kb.query import run

from conftest import MakeKB

B = "https://claimkb.example.org/"


def graph_of(root: Path) -> KBGraph:
    return build_graph(check(root))


@pytest.fixture
def g(make_kb: MakeKB) -> KBGraph:
    return graph_of(make_kb(RICH))


def ask(g: KBGraph, text: str) -> bool:
    result = run(g, text)
    assert result.kind == "ask"
    return bool(result.boolean)


def select(g: KBGraph, text: str) -> list[list[str]]:
    return [[t.value if t is not None else "" for t in row] for row in run(g, text).rows]


def test_every_claim_has_a_review_with_a_rating_and_a_status_concept(g: KBGraph) -> None:
    assert not ask(g, """ASK { ?c a schema:Claim .
        FILTER NOT EXISTS { ?r a schema:ClaimReview ; schema:itemReviewed ?c ;
            schema:reviewRating [ a schema:Rating ; schema:alternateName ?n ;
                                  schema:bestRating 5 ; schema:worstRating 1 ] ;
            schema:author ?a ; schema:url ?u .
          ?c kb:status [ a skos:Concept ; skos:inScheme status: ; skos:prefLabel ?l ] } }""")
    assert len(select(g, "SELECT ?c WHERE { ?c a schema:Claim }")) == 4


def test_ratings_follow_the_scale(g: KBGraph) -> None:
    rows = select(g, """SELECT ?id ?name ?value WHERE {
        ?r schema:itemReviewed ?c ; schema:reviewRating ?rating .
        ?rating schema:alternateName ?name . OPTIONAL { ?rating schema:ratingValue ?value }
        BIND(STRAFTER(STR(?c), "claims/") AS ?id) } ORDER BY ?id""")
    assert rows == [["growth-needs-fall#claim", "Supported", "5"],
                    ["opinion#claim", "Not checkable", ""],
                    ["trade-fall-2025#claim", "Refuted", "1"],
                    ["trade-record-2024#claim", "Supported", "5"]]


def test_review_dates_are_first_and_last_review(g: KBGraph) -> None:
    rows = select(g, f"""SELECT ?p ?m WHERE {{ <{B}claims/trade-fall-2025#review>
        schema:datePublished ?p ; schema:dateModified ?m }}""")
    assert rows == [["2026-10-01", "2026-11-20"]]


def test_status_scheme_matches_claimskg(g: KBGraph) -> None:
    rows = select(g, """SELECT ?n ?m WHERE { ?s skos:inScheme status: ; skos:notation ?n ;
        skos:closeMatch ?m ; skos:definition ?d } ORDER BY ?n""")
    base = "http://data.gesis.org/claimskg/rating/normalized/claimskg_"
    assert dict((n, m.removeprefix(base)) for n, m in rows) == {
        "supported": "TRUE", "partly-supported": "MIXTURE", "disputed": "MIXTURE",
        "refuted": "FALSE", "unverified": "OTHER", "not-checkable": "OTHER"}


def test_every_kb_term_has_a_label_and_a_comment(g: KBGraph) -> None:
    used = select(g, f"""SELECT DISTINCT ?t WHERE {{ {{ ?s ?t ?o }} UNION {{ ?s a ?t }}
        FILTER(STRSTARTS(STR(?t), "{B}vocab#")) }}""")
    assert len(used) > 10
    for (term,) in used:
        assert ask(g, f"ASK {{ <{term}> rdfs:label ?l ; rdfs:comment ?c }}"), term


def test_quote_selectors_point_at_the_snapshot(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    g = graph_of(root)
    rows = select(g, """SELECT ?src ?exact ?start ?end ?prefix ?suffix WHERE {
        ?i oa:hasSource ?src ; oa:hasSelector ?q, ?p .
        ?q a oa:TextQuoteSelector ; oa:exact ?exact .
        OPTIONAL { ?q oa:prefix ?prefix } OPTIONAL { ?q oa:suffix ?suffix }
        ?p a oa:TextPositionSelector ; oa:start ?start ; oa:end ?end }""")
    assert len(rows) == 5  # three appearances in article.txt, two quotes in report.txt
    for src, exact, start, end, prefix, suffix in rows:
        text = (root / "sources" / f"{src.split('/')[-1].split('#')[0]}.txt").read_text()
        s, e = int(start), int(end)
        assert text[s:e] == exact
        assert text[:s].endswith(prefix) and text[e:].startswith(suffix)
    # the stored quote normalises white space; exact keeps the source's double space
    assert any("trade  hit" in r[1] for r in rows)
    assert ["0", ""] in [[r[2], r[4]] for r in rows]  # at the very start: no prefix


def test_quote_without_snapshot_has_no_position(g: KBGraph) -> None:
    assert not ask(g, f"ASK {{ <{B}claims/growth-needs-fall#evidence-1> oa:hasSelector ?s }}")
    assert ask(g, f"""ASK {{ <{B}claims/trade-record-2024#evidence-1>
        oa:hasSource <{B}sources/report#source> ; kb:stance "supports" }}""")


def test_cito_links_and_relations(g: KBGraph) -> None:
    assert ask(g, f"ASK {{ <{B}sources/report#source> cito:confirms "
                  f"<{B}claims/trade-record-2024#claim> }}")
    assert ask(g, f"ASK {{ <{B}sources/report#source> cito:refutes "
                  f"<{B}claims/trade-fall-2025#claim> }}")
    assert ask(g, f"ASK {{ <{B}sources/report-copy#source> cito:qualifies "
                  f"<{B}claims/trade-fall-2025#claim> }}")
    assert ask(g, f"ASK {{ <{B}claims/growth-needs-fall#claim> kb:dependsOn "
                  f"<{B}claims/trade-fall-2025#claim> }}")


def test_claim_terms(g: KBGraph) -> None:
    c = f"<{B}claims/trade-record-2024#claim>"
    assert ask(g, f"""ASK {{ {c} schema:text ?t ; schema:author <{B}entities/someone#entity> ;
        schema:about <{B}entities/russia#entity> ; schema:temporalCoverage "2024" ;
        schema:firstAppearance <{B}claims/trade-record-2024#appearance-1> ;
        schema:appearance <{B}claims/trade-record-2024#appearance-1> ;
        kb:quantity [ schema:value 245e9 ; schema:unitText "USD" ] ;
        schema:mainEntityOfPage <{B}claims/trade-record-2024> ;
        kb:independentSources 1 }}""")
    assert ask(g, f"""ASK {{ <{B}sources/article#source> a schema:NewsArticle ;
        schema:url <https://example.org/article> ;
        schema:datePublished "2025-12"^^xsd:gYearMonth }}""")
    assert ask(g, f"""ASK {{ <{B}entities/someone#entity> a schema:Person ;
        schema:alternateName "S. One" }}""")


def test_named_graph_per_file_and_counts_match_the_files(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    g = graph_of(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))
    graphs = g.named_graphs()
    assert sorted(v for v in graphs.values() if v.endswith(".yaml")) == files
    assert graphs[f"{B}graph/vocab"] == "kb:vocab"
    assert graphs[f"{B}graph/claim/opinion"] == "claims/opinion.yaml"
    rows = select(g, "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    assert {r[0] for r in rows} == set(graphs)
    for kind, cls in (("claims", "schema:Claim"), ("sources", "?any"), ("entities", "?any")):
        n = len(list((root / kind).glob("*.yaml")))
        prop = {"claims": "a", "sources": "kb:sourceKind", "entities": "kb:entityKind"}[kind]
        found = select(g, f"SELECT DISTINCT ?s WHERE {{ ?s {prop} {cls} }}")
        assert len(found) == n, kind
    # the claim's own graph holds its review: what `kb publish` sends for one file
    own = g.graph_nquads(f"{B}graph/claim/opinion").decode()
    assert f"<{B}claims/opinion#review>" in own and "trade-record" not in own


def test_no_provenance_invented_outside_git(g: KBGraph) -> None:
    assert ask(g, f'ASK {{ <{B}graph/claim/opinion> kb:path "claims/opinion.yaml" }}')
    assert not ask(g, "ASK { ?g dcterms:created ?d }")
    assert not ask(g, "ASK { ?g prov:wasDerivedFrom ?d }")  # no repository in kb.toml


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_provenance_from_git(make_kb: MakeKB) -> None:
    root = make_kb({**RICH, "kb.toml": 'repository = "https://github.com/o/r"\n'})
    env = {"GIT_AUTHOR_NAME": "Ann Editor", "GIT_AUTHOR_EMAIL": "a@example.org",
           "GIT_COMMITTER_NAME": "Ann Editor", "GIT_COMMITTER_EMAIL": "a@example.org",
           "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+00:00",
           "GIT_COMMITTER_DATE": "2026-01-02T03:04:05+00:00", "PATH": "/usr/bin:/bin"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env)
    g = build_graph(check(root), file_histories(root))
    rows = select(g, f"""SELECT ?c ?m ?who ?from WHERE {{ <{B}graph/claim/opinion>
        dcterms:created ?c ; dcterms:modified ?m ; dcterms:contributor ?who ;
        prov:wasDerivedFrom ?from }}""")
    assert rows == [["2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", "Ann Editor",
                     "https://github.com/o/r/blob/main/claims/opinion.yaml"]]
