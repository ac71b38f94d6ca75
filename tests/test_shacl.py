"""The graph against the SHACL shapes shipped in the package (pySHACL), and `kb check --shacl`."""

from __future__ import annotations

from click.testing import CliRunner
from graph_data import RICH
from pyshacl import validate as shacl_validate
from rdflib import Literal, URIRef

from kb.check import check
from kb.cli import main
from kb.graph import build_graph
from kb.namespaces import OA, SCHEMA
from kb.shacl import data_graph, shapes_graph, validate

from conftest import MakeKB


def test_the_built_graph_conforms(make_kb: MakeKB) -> None:
    g = build_graph(check(make_kb(RICH)))
    assert validate(g) == []


def test_shapes_catch_a_broken_graph(make_kb: MakeKB) -> None:
    g = build_graph(check(make_kb(RICH)))
    data = data_graph(g)
    rating = URIRef(g.iris.rating("trade-record-2024"))
    data.set((rating, SCHEMA.ratingValue, Literal(7)))
    claim = URIRef(g.iris.claim("opinion"))
    data.remove((claim, URIRef(g.iris.vocab("status")), None))
    pos = URIRef(g.iris.appearance("trade-record-2024", 1) + "-position")
    data.set((pos, OA.start, Literal(99)))  # after its end
    conforms, _report, text = shacl_validate(data, shacl_graph=shapes_graph(g.iris))
    assert not conforms
    assert str(rating) in text and str(claim) in text and str(pos) in text


def test_shapes_resolve_kb_terms_against_the_base_url(make_kb: MakeKB) -> None:
    root = make_kb({**RICH, "kb.toml": 'base_url = "https://facts.example.net/kb/"\n'})
    g = build_graph(check(root))
    shapes = shapes_graph(g.iris)
    assert URIRef("https://facts.example.net/kb/vocab#Evidence") in set(shapes.objects())
    assert validate(g) == []


def test_check_shacl_passes_on_a_good_knowledge_base(make_kb: MakeKB) -> None:
    result = CliRunner().invoke(main, ["--root", str(make_kb(RICH)), "check", "--shacl"])
    assert "G901" not in result.output
    assert result.exit_code == 0, result.output
