"""Dumps: deterministic bytes, every format round-trips through rdflib, record dumps, CSV, VoID."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyoxigraph as ox
import pytest
from click.testing import CliRunner
from graph_data import RICH
from rdf_compare import plain
from rdflib import Dataset, Graph
from rdflib.compare import isomorphic

from kb.check import check
from kb.cli import main
from kb.export import CSV_COLUMNS, FORMATS, claims_csv, dump, record_dump, void
from kb.graph import KBGraph, build_graph
from kb.namespaces import VOID

from conftest import MakeKB

RDFLIB_FORMAT = {"ttl": "turtle", "nt": "nt", "nq": "nquads", "trig": "trig",
                 "jsonld": "json-ld"}


@pytest.fixture
def root(make_kb: MakeKB) -> Path:
    return make_kb(RICH)


@pytest.fixture
def g(root: Path) -> KBGraph:
    return build_graph(check(root))


def reference(g: KBGraph) -> Graph:
    return plain(Graph().parse(data=g.ntriples().decode(), format="nt"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_through_rdflib(g: KBGraph, fmt: str) -> None:
    data = dump(g, fmt)
    if fmt in ("nq", "trig", "jsonld"):
        ds = Dataset()
        ds.parse(data=data.decode(), format=RDFLIB_FORMAT[fmt])
        graphs = {str(c.identifier) for c in ds.graphs() if len(c)}
        assert graphs == set(g.named_graphs()), fmt
        union = Graph()
        for quad in ds.quads((None, None, None, None)):
            union.add(quad[:3])
    else:
        union = Graph().parse(data=data.decode(), format=RDFLIB_FORMAT[fmt])
    assert len(union) == len(reference(g))
    assert isomorphic(plain(union), reference(g)), fmt


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_through_pyoxigraph(g: KBGraph, fmt: str) -> None:
    """Oxigraph reads every dump back as the same quads (no blank nodes: sets compare)."""
    quads = set(ox.parse(dump(g, fmt), format=FORMATS[fmt]))
    want = set(ox.parse(g.nquads(), format=ox.RdfFormat.N_QUADS))
    if fmt in ("ttl", "nt"):
        want = {ox.Quad(q.subject, q.predicate, q.object) for q in want}
    assert quads == want and len(quads) > 300


@pytest.mark.parametrize("fmt", ["ttl", "jsonld"])
def test_record_dumps_round_trip_through_pyoxigraph(g: KBGraph, fmt: str) -> None:
    own = set(ox.parse(g.graph_nquads(g.iris.graph("claim", "trade-fall-2025")),
                       format=ox.RdfFormat.N_TRIPLES))
    data = record_dump(g, "claim", "trade-fall-2025", fmt)
    assert set(ox.parse(data, format=FORMATS[fmt])) == own and len(own) > 30


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_dumps_are_byte_identical_across_builds(root: Path, fmt: str) -> None:
    first = dump(build_graph(check(root)), fmt)
    second = dump(build_graph(check(root)), fmt)
    assert first == second and len(first) > 1000


def test_export_command_writes_the_same_bytes_twice(root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for name in ("a.trig", "b.trig"):
        result = runner.invoke(main, ["--root", str(root), "export", "--format", "trig",
                                      "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    result = runner.invoke(main, ["--root", str(root), "export", "--format", "nt"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == dump(build_graph(check(root)), "nt")


def test_export_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--root", str(tmp_path / "nope"), "export"])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["ttl", "jsonld"])
def test_record_dump_is_the_records_named_graph(g: KBGraph, fmt: str) -> None:
    data = record_dump(g, "claim", "trade-record-2024", fmt)
    parsed = plain(Graph().parse(data=data.decode(), format=RDFLIB_FORMAT[fmt]))
    own = g.graph_nquads(g.iris.graph("claim", "trade-record-2024")).decode()
    assert isomorphic(parsed, plain(Graph().parse(data=own, format="nt")))
    assert (None, None, None) in parsed and len(parsed) > 30


def test_claims_csv(g: KBGraph, root: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(claims_csv(check(root), g).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == sorted(by_id)
    assert by_id["trade-fall-2025"]["status"] == "refuted"
    assert by_id["trade-fall-2025"]["refutes"] == "1"
    assert by_id["growth-needs-fall"]["independent_sources"] == "1"
    assert by_id["opinion"]["due_for_review"] == "true"


def test_void_description(g: KBGraph) -> None:
    v = Graph().parse(data=void(g).decode(), format="turtle")
    ds = next(v.subjects(VOID.triples, None))
    assert int(str(v.value(ds, VOID.triples))) == len(reference(g))
    assert len(list(v.objects(ds, VOID.dataDump))) == 4
    assert len(list(v.objects(ds, VOID.classPartition))) >= 8
