"""Comparing graphs as RDF 1.1 does: a plain literal and an xsd:string one are the same."""

from __future__ import annotations

from rdflib import XSD, Graph, Literal


def plain(graph: Graph) -> Graph:
    """The graph with literals typed xsd:string made plain (Oxigraph types them, rdflib not)."""
    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.string:
            o = Literal(str(o))
        out.add((s, p, o))
    return out
