"""What the endpoint answers to a GET without a query: its SPARQL Service Description, or for a
browser a plain HTML form with the knowledge base's named queries as examples.

Everything that comes from the knowledge base (query titles, descriptions, texts) is escaped;
the form works without JavaScript.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Sequence
from typing import Any

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RESULT_FORMATS = ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV",
                  "SPARQL_Results_TSV", "Turtle", "N-Triples", "JSON-LD", "RDF_XML")


def service_description(url: str, graphs: Sequence[str], media_type: str) -> bytes:
    import pyoxigraph as ox

    def sd(local: str) -> ox.NamedNode:
        return ox.NamedNode(SD + local)

    a = ox.NamedNode(RDF_TYPE)
    service = ox.NamedNode(url)
    dataset, default = ox.BlankNode("dataset"), ox.BlankNode("default")
    triples = [
        ox.Triple(service, a, sd("Service")),
        ox.Triple(service, sd("endpoint"), service),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, a, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default),
        ox.Triple(default, a, sd("Graph")),
    ]
    triples += [ox.Triple(service, sd("resultFormat"), ox.NamedNode(FORMATS + name))
                for name in RESULT_FORMATS]
    for n, iri in enumerate(graphs):
        named = ox.BlankNode(f"g{n}")
        triples += [ox.Triple(dataset, sd("namedGraph"), named),
                    ox.Triple(named, a, sd("NamedGraph")),
                    ox.Triple(named, sd("name"), ox.NamedNode(iri))]
    fmt = ox.RdfFormat.from_media_type(media_type)
    return ox.serialize(triples, format=fmt, prefixes={"sd": SD, "formats": FORMATS}) or b""


_STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
textarea{width:100%;font:14px/1.4 ui-monospace,monospace}
pre{background:#f4f4f4;padding:.5rem;overflow:auto}
section{border-top:1px solid #ccc;margin-top:1.5rem}"""


def form_page(url: str, title: str, examples: Sequence[Any]) -> bytes:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<p>A read-only SPARQL 1.1 endpoint. Send queries with GET <code>?query=</code> or POST; "
        "the default graph is the union of the knowledge base's graphs. Results come as JSON, "
        "XML, CSV or TSV (graphs as Turtle, N-Triples, JSON-LD or RDF/XML) by the "
        "<code>Accept</code> header.</p>",
        f'<form method="get" action="{e(url)}"><p><label for="query">Query</label></p>',
        '<textarea id="query" name="query" rows="12">'
        "SELECT * WHERE { ?s ?p ?o } LIMIT 10</textarea>",
        '<p><button type="submit">Run</button></p></form>',
    ]
    if examples:
        parts.append("<h2>Example queries</h2>")
    for example in examples:
        link = url + "?" + urllib.parse.urlencode({"query": example.text})
        parts += [
            f'<section id="{e(example.name)}"><h3>{e(example.title)}</h3>',
            f"<p>{e(example.description)}</p>" if example.description else "",
            f"<pre><code>{e(example.text)}</code></pre>",
            f'<p><a href="{e(link)}">Run this query</a></p></section>',
        ]
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p).encode("utf-8")
