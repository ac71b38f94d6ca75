"""`kb query` and the named queries: formats, columns, and bad queries."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from graph_data import RICH
from rdflib import Graph

from kb.check import check
from kb.cli import main
from kb.graph import build_graph
from kb.kbgraph import KBGraph
from kb.query import QueryError, named_queries, parse_header, run
from kb.sparqlguard import names_service

from conftest import REPO, MakeKB

COLUMNS = {
    "claims-by-status": ["status", "label", "claims", "definition"],
    "refuted-or-disputed": ["claim", "text", "status", "source", "title", "stance", "quote"],
    "by-or-about-entity": ["entity", "name", "kind", "claimsMade", "claimsAbout",
                           "sourcesPublished", "sourcesWritten"],
    "single-source": ["claim", "text", "status", "source", "title"],
    "due-for-review": ["claim", "text", "status", "lastReviewed"],
    "quantities-over-time": ["unit", "period", "value", "status", "claim", "text"],
    "sources-by-claims-backed": ["source", "title", "publisher", "backs", "refutes"],
    "quotes-in-source-text": ["claim", "source", "start", "end", "prefix", "exact", "suffix"],
    "claim-relations": ["claim", "relation", "other", "status", "otherStatus"],
}


@pytest.fixture
def root(make_kb: MakeKB) -> Path:
    root = make_kb(RICH)
    shutil.copytree(REPO / "queries", root / "queries")
    return root


@pytest.fixture
def g(root: Path) -> KBGraph:
    return build_graph(check(root))


def kb(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), "query", *args])


def test_at_least_eight_named_queries_with_title_and_description() -> None:
    queries = named_queries(REPO)
    assert len(queries) >= 8
    assert {q.name for q in queries} == set(COLUMNS)
    for q in queries:
        assert q.title and q.title != q.name and len(q.description.split()) >= 8, q.name


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_named_query_runs_with_its_columns(g: KBGraph, name: str) -> None:
    q = {q.name: q for q in named_queries(REPO)}[name]
    result = run(g, q.text)
    assert result.kind == "select"
    assert result.variables == COLUMNS[name]


def test_named_queries_answer_what_they_say(g: KBGraph) -> None:
    q = {q.name: q.text for q in named_queries(REPO)}

    def col(name: str, var: str) -> list[str]:
        r = run(g, q[name])
        i = r.variables.index(var)
        return [str(getattr(row[i], "value", "")) for row in r.rows]

    by_status = dict(zip(col("claims-by-status", "status"), col("claims-by-status", "claims"),
                         strict=True))
    assert by_status == {"supported": "2", "refuted": "1", "not-checkable": "1",
                         "partly-supported": "0", "disputed": "0", "unverified": "0"}
    assert col("refuted-or-disputed", "stance") == ["refutes", "partly-refutes"]
    assert sorted(col("single-source", "claim")) == sorted(
        [g.iris.claim("growth-needs-fall")] * 2 + [g.iris.claim("trade-record-2024")])
    assert col("due-for-review", "claim") == [g.iris.claim("opinion")]
    assert col("quantities-over-time", "value") == ["245000000000"]
    assert col("sources-by-claims-backed", "backs")[0] == "2"
    sources = dict(zip(col("sources-by-claims-backed", "source"),
                       zip(col("sources-by-claims-backed", "backs"),
                           col("sources-by-claims-backed", "refutes"), strict=True), strict=True))
    assert sources[g.iris.source("report")] == ("2", "1")  # refutes and partly refutes: 1 claim
    assert sources[g.iris.source("article")] == ("0", "0")  # appearances back nothing
    counts = ("claimsMade", "claimsAbout", "sourcesPublished", "sourcesWritten")
    entities = dict(zip(col("by-or-about-entity", "entity"),
                        zip(*(col("by-or-about-entity", c) for c in counts), strict=True),
                        strict=True))
    assert entities == {g.iris.entity("someone"): ("2", "0", "2", "0"),
                        g.iris.entity("russia"): ("0", "2", "0", "0")}
    assert col("claim-relations", "relation") == ["depends on", "contradicts"]
    assert len(col("quotes-in-source-text", "exact")) == 5


def test_header_parsing_with_continuation_lines() -> None:
    title, desc = parse_header("# title: T\n# description: one\n#   two\nSELECT * {}\n# x: y\n")
    assert (title, desc) == ("T", "one two")


def test_table_is_the_default_and_aligned(root: Path) -> None:
    result = kb(root, "claims-by-status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == COLUMNS["claims-by-status"]
    assert lines[1].startswith("------") and lines[-1] == "(6 rows)"
    assert lines[0].index("label") == lines[2].index(lines[2].split()[1])


def test_csv_tsv_json(root: Path) -> None:
    text = "SELECT ?c ?n WHERE { ?c kb:independentSources ?n } ORDER BY ?c"
    csv_out = kb(root, "--format", "csv", text)
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.output.splitlines()[0] == "c,n"
    assert "https://claimkb.example.org/claims/growth-needs-fall#claim,1" in csv_out.output
    tsv = kb(root, "--format", "tsv", text)
    assert tsv.output.splitlines()[0] == "?c\t?n"
    assert "<https://claimkb.example.org/claims/growth-needs-fall#claim>\t" in tsv.output
    data = json.loads(kb(root, "--format", "json", text).output)
    assert data["head"]["vars"] == ["c", "n"]
    first = data["results"]["bindings"][0]
    assert first["c"]["type"] == "uri"
    assert first["n"] == {"type": "literal", "value": "1",
                          "datatype": "http://www.w3.org/2001/XMLSchema#integer"}
    ask = json.loads(kb(root, "--format", "json", "ASK { ?s a schema:Claim }").output)
    assert ask == {"head": {}, "boolean": True}


def test_query_from_a_file_and_construct_as_turtle(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "q.rq"
    path.write_text("CONSTRUCT { ?c schema:text ?t } WHERE { ?c a schema:Claim ; schema:text ?t }")
    result = kb(root, "--format", "ttl", str(path))
    assert result.exit_code == 0, result.output
    assert len(Graph().parse(data=result.output, format="turtle")) == 4
    described = kb(root, "DESCRIBE <https://claimkb.example.org/entities/russia#entity>")
    assert described.exit_code == 0 and "Russia" in described.output


def test_list(root: Path) -> None:
    result = kb(root, "--list")
    assert result.exit_code == 0, result.output
    assert re.search(r"^claims-by-status +Claims by status$", result.output, re.M)
    assert len(result.output.splitlines()) == len(COLUMNS)


def test_syntax_error_gives_line_and_column_and_exit_1(root: Path) -> None:
    result = kb(root, "SELECT ?c\nWHERE {\n  ?c a schema:Claim\n  FILTER(\n}")
    assert result.exit_code == 1
    assert "line 5, column 1" in result.output or "line 5, column 2" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(QueryError) as err:
        run(build_graph(check(root)), "SELECT * WHERE { ?s nope:x ?o }")
    assert err.value.line == 1 and 21 <= err.value.col <= 27
    assert "unknown prefix" in str(err.value)


def test_update_is_refused(root: Path) -> None:
    result = kb(root, "INSERT DATA { <http://a.example/s> <http://a.example/p> 1 }")
    assert result.exit_code == 1
    assert "UPDATE" in result.output and "Traceback" not in result.output
    after = kb(root, "ASK { <http://a.example/s> ?p ?o }")
    assert after.output.strip() == "no"


def test_unknown_named_query_exits_1(root: Path) -> None:
    result = kb(root, "no-such-query")
    assert result.exit_code == 1
    assert "no named query 'no-such-query'" in result.output
    assert "claims-by-status" in result.output  # the known ones are listed
    missing = kb(root, "missing.rq")
    assert missing.exit_code == 1 and "no such query file" in missing.output


def test_ttl_for_a_select_is_refused(root: Path) -> None:
    result = kb(root, "--format", "ttl", "SELECT * WHERE { ?s ?p ?o } LIMIT 1")
    assert result.exit_code == 1 and "CONSTRUCT" in result.output


def test_run_keeps_the_first_rows_and_counts_the_others(g: KBGraph) -> None:
    text = "SELECT ?s ?p ?o { ?s ?p ?o } ORDER BY ?s ?p ?o"
    every = run(g, text)
    first = run(g, text, keep=3)
    assert len(every.rows) > 3 and every.total is None
    assert first.rows == every.rows[:3] and first.total == len(every.rows)


def test_an_error_met_while_the_results_are_read_is_a_query_error(g: KBGraph,
                                                                  root: Path) -> None:
    """Oxigraph raises evaluation errors as the solutions are read, not when the query is
    made: they were raised as they came (a build failed on a named query's error)."""
    with socket.socket() as s:  # a port with nothing listening: the call is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = f"SELECT * {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}"
    with pytest.raises(QueryError):
        run(g, text)
    result = kb(root, text)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("text", "calls_out"), [
    ("SELECT * { SERVICE <http://x.example/> { ?s ?p ?o } }", True),
    ("select * { ?s ?p ?o .service silent <x> {} }", True),
    ('SELECT * { ?s ?p "x\\"" . SeRvIcE<http://x.example/> {} }', True),
    # escapes in names and IRIs: their # and ' begin no comment or string
    ("SELECT * { ?s kb:a\\#b ?o . SERVICE <http://x/> { ?a ?b ?c } }", True),
    ("SELECT * { ?s kb:it\\'s ?o . SERVICE <http://x/> { ?a ?b 'x' } }", True),
    ("SELECT * { ?s <http://x/caf\\u00e9#p> ?o . SERVICE <http://x/> { ?a ?b ?c } }", True),
    # Oxigraph needs no space after a keyword, a boolean or a number
    ("SELECT * { SERVICESILENT<http://x/>{ ?a ?b ?c } }", True),
    ("SELECT * { SERVICEkb:x{ ?a ?b ?c } }", True),
    ("SELECT * { ?s ?p trueSERVICE<http://x/>{ ?a ?b ?c } }", True),
    ("SELECT * { ?s ?p 1e5SERVICE<http://x/>{ ?a ?b ?c } }", True),
    ('SELECT ?service { ?service schema:serviceType "SERVICE" } # SERVICE', False),
    ("SELECT * { ?s <http://x.example/SERVICE> _:service }", False),
    ("SELECT * { ?s ?p '''a SERVICE \\' b''' . ?s ex:a.service ?o }", False),
])
def test_names_service_reads_past_strings_iris_names_and_comments(text: str,
                                                                  calls_out: bool) -> None:
    assert names_service(text) is calls_out


def test_no_named_query_of_the_repository_is_taken_for_a_service_call() -> None:
    assert [q.name for q in named_queries(REPO) if names_service(q.text)] == []


def test_an_unbound_service_name_is_a_query_error(g: KBGraph) -> None:
    with pytest.raises(QueryError, match="unbound"):  # a RuntimeError as the rows are read
        run(g, "SELECT * { ?s ?p ?o SERVICE ?nowhere { ?a ?b ?c } }")
