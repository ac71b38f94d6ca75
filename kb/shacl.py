"""The graph checked against the SHACL shapes shipped in the package (kb/shapes.ttl), by pySHACL.

pySHACL works on rdflib graphs, so the union of the named graphs is parsed from its N-Triples
dump into one rdflib Graph (one Graph, not a Dataset: pySHACL checks each graph of a Dataset on
its own, and a claim's status concept lives in the vocabulary's graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from rdflib import Graph, URIRef
from rdflib.namespace import Namespace
from rdflib.term import Node

from kb.check import Checked
from kb.graph import build_graph
from kb.kbgraph import KBGraph
from kb.model import KIND_DIRS
from kb.namespaces import Iris
from kb.problems import Loc, Problem, problem

SH = Namespace("http://www.w3.org/ns/shacl#")


@dataclass(frozen=True)
class Violation:
    focus: str
    path: str
    message: str
    severity: str  # "Violation", "Warning" or "Info"
    shape: str


def shapes_graph(iris: Iris) -> Graph:
    """The shapes, with kb: resolved against the knowledge base's base_url."""
    text = files("kb").joinpath("shapes.ttl").read_text(encoding="utf-8")
    return Graph().parse(data=text, format="turtle", publicID=iris.base)


def data_graph(g: KBGraph) -> Graph:
    return Graph().parse(data=g.ntriples().decode("utf-8"), format="nt")


def validate(g: KBGraph) -> list[Violation]:
    """Every SHACL result for the graph, sorted (empty when it conforms)."""
    from pyshacl import validate as shacl_validate

    _conforms, report, _text = shacl_validate(data_graph(g), shacl_graph=shapes_graph(g.iris),
                                              advanced=True, allow_warnings=True)
    assert isinstance(report, Graph)
    out = []
    for result in report.subjects(SH.resultSeverity, None):
        def one(p: URIRef, r: Node = result) -> str:
            value = report.value(r, p)
            return "" if value is None else str(value)

        out.append(Violation(one(SH.focusNode), one(SH.resultPath), one(SH.resultMessage),
                             one(SH.resultSeverity).rsplit("#", 1)[-1],
                             one(SH.sourceShape)))
    return sorted(out, key=lambda v: (v.focus, v.path, v.message))


def _file_of(g: KBGraph, focus: str) -> str:
    """The file a node comes from: its page's kind and id name the named graph."""
    if focus.startswith(g.iris.base):
        rest = focus[len(g.iris.base):].split("#", 1)[0]
        kinds = {d: k for k, d in KIND_DIRS.items()}
        folder, _, id_ = rest.partition("/")
        if folder in kinds:
            return g.graphs.get(g.iris.graph(kinds[folder], id_), "")
        if rest.startswith("graph/"):
            return g.graphs.get(focus, "")
    return g.graphs.get(g.iris.vocab_graph, "")


def shacl_problems(checked: Checked) -> list[Problem]:
    """`kb check --shacl`: each SHACL violation as a G901 problem at the file it comes from."""
    g = build_graph(checked)
    out = []
    for v in validate(g):
        where = _file_of(g, v.focus) or "kb:graph"
        path = f" {v.path}" if v.path else ""
        out.append(problem(Loc(where), "G901", f"<{v.focus}>{path}: {v.message}",
                           "a bug in kb or in the shapes; please report it"))
    return out
