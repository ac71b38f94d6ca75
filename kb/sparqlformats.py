"""Result formats of the endpoint: content negotiation, and writers for query results that stop
at a row cap and a byte cap (Oxigraph's own writers cannot stop part-way).

SELECT results are written here (JSON, XML, CSV, TSV per the W3C result-format notes), graphs
by Oxigraph's serialisers. Every writer stops at a row boundary, so a capped result is still a
well-formed document; the caller marks it as truncated in a response header.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

# Media types in the server's order of preference; the first is the default.
RESULT_TYPES = ("application/sparql-results+json", "application/sparql-results+xml",
                "text/csv", "text/tab-separated-values")
BOOLEAN_TYPES = ("application/sparql-results+json", "application/sparql-results+xml")
GRAPH_TYPES = ("text/turtle", "application/n-triples", "application/ld+json",
               "application/rdf+xml")
# Other names clients use for the same formats.
ALIASES = {"application/json": "application/sparql-results+json",
           "application/xml": "application/sparql-results+xml",
           "text/xml": "application/sparql-results+xml",
           "application/x-turtle": "text/turtle", "text/plain": "application/n-triples",
           "application/json+ld": "application/ld+json"}
TEXT_TYPES = {"text/csv", "text/tab-separated-values", "text/turtle", "text/html",
              "application/n-triples"}
MAX_ACCEPT_RANGES = 64


def types_for(form: str) -> tuple[str, ...]:
    return {"SELECT": RESULT_TYPES, "ASK": BOOLEAN_TYPES}.get(form, GRAPH_TYPES)


@dataclass(frozen=True)
class _Range:
    type: str
    subtype: str
    q: float


def _ranges(accept: str) -> list[_Range]:
    out: list[_Range] = []
    for part in accept.split(",")[:MAX_ACCEPT_RANGES]:
        fields = part.strip().split(";")
        mtype = fields[0].strip().lower()
        if mtype.count("/") != 1:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()[:8]), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        t, s = mtype.split("/")
        out.append(_Range(t, s, q))
    return out


def _quality(served: str, ranges: Sequence[_Range]) -> float:
    """q of the most specific range that matches the type (or one of its aliases); 0 if none."""
    names = [served] + [alias for alias, target in ALIASES.items() if target == served]
    best = (-1, 0.0)
    for name in names:
        t, s = name.split("/")
        for r in ranges:
            if (r.type, r.subtype) == (t, s):
                spec = 2
            elif r.type == t and r.subtype == "*":
                spec = 1
            elif (r.type, r.subtype) == ("*", "*"):
                spec = 0
            else:
                continue
            best = max(best, (spec, r.q))
    return best[1]


def negotiate(accept: str | None, available: Sequence[str]) -> str | None:
    """The served type the Accept header likes best (ties: the server's order), or None."""
    if not accept or not accept.strip():
        return available[0]
    ranges = _ranges(accept)
    scored = [(_quality(served, ranges), -order, served) for order, served in enumerate(available)]
    q, _, chosen = max(scored)
    return chosen if q > 0 else None


def content_type(media_type: str) -> str:
    if media_type in TEXT_TYPES or media_type.startswith("application/sparql-results"):
        return f"{media_type}; charset=utf-8"
    return media_type


# --- terms -----------------------------------------------------------------------------------

def _kind(term: Any) -> str:
    return type(term).__name__  # NamedNode | BlankNode | Literal | Triple


def _json_term(term: Any) -> dict[str, Any]:
    kind = _kind(term)
    if kind == "NamedNode":
        return {"type": "uri", "value": term.value}
    if kind == "BlankNode":
        return {"type": "bnode", "value": term.value}
    if kind == "Literal":
        out: dict[str, Any] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": {"subject": _json_term(term.subject),
                                        "predicate": _json_term(term.predicate),
                                        "object": _json_term(term.object)}}


def _xml_term(term: Any) -> str:
    kind = _kind(term)
    if kind == "NamedNode":
        return f"<uri>{escape(term.value)}</uri>"
    if kind == "BlankNode":
        return f"<bnode>{escape(term.value)}</bnode>"
    if kind == "Literal":
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return (f"<literal datatype={quoteattr(term.datatype.value)}>"
                    f"{escape(term.value)}</literal>")
        return f"<literal>{escape(term.value)}</literal>"
    return (f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>"
            f"{_xml_term(term.predicate)}</predicate><object>{_xml_term(term.object)}"
            "</object></triple>")


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_term(term: Any) -> str:
    kind = _kind(term)
    if kind in ("NamedNode", "Literal"):
        return _csv_field(term.value)
    if kind == "BlankNode":
        return f"_:{term.value}"
    return _csv_field(str(term))


def _tsv_term(term: Any) -> str:
    # str() of an Oxigraph term is its N-Triples form; a tab may only occur inside a literal.
    return str(term).replace("\t", "\\t")


# --- writers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    body: bytes
    rows: int
    truncated: bool


class _Budget:
    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.rows = 0
        self.size = 0
        self.truncated = False

    def take(self, chunk: str, reserve: int) -> bool:
        """Whether one more row of this text fits; counts it if so."""
        size = len(chunk.encode("utf-8"))
        if self.rows >= self.max_rows or self.size + size + reserve > self.max_bytes:
            self.truncated = True
            return False
        self.rows += 1
        self.size += size
        return True


def write_solutions(variables: Sequence[str], solutions: Iterable[Any], media_type: str,
                    max_rows: int, max_bytes: int) -> Written:
    budget = _Budget(max_rows, max_bytes)
    parts: list[str] = []
    if media_type == "application/sparql-results+json":
        head = '{"head":{"vars":' + json.dumps(list(variables)) + '},"results":{"bindings":['
        tail, sep = "]}}\n", ","
    elif media_type == "application/sparql-results+xml":
        head = ('<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns='
                '"http://www.w3.org/2005/sparql-results#"><head>'
                + "".join(f"<variable name={quoteattr(v)}/>" for v in variables)
                + "</head><results>")
        tail, sep = "</results></sparql>\n", "\n"
    elif media_type == "text/csv":
        head, tail, sep = ",".join(variables) + "\r\n", "", ""
    else:
        head, tail, sep = "\t".join(f"?{v}" for v in variables) + "\n", "", ""
    budget.size = len(head.encode("utf-8"))
    for solution in solutions:
        row = _row(variables, solution, media_type)
        if not budget.take(row + sep, len(tail)):
            break
        parts.append(row)
    joiner = sep if sep != "," else ","
    body = head + joiner.join(parts) + tail
    return Written(body.encode("utf-8"), budget.rows, budget.truncated)


def _row(variables: Sequence[str], solution: Any, media_type: str) -> str:
    values = [solution[v] for v in variables]
    if media_type == "application/sparql-results+json":
        return json.dumps({v: _json_term(t) for v, t in zip(variables, values, strict=True)
                           if t is not None}, ensure_ascii=False, separators=(",", ":"))
    if media_type == "application/sparql-results+xml":
        return "<result>" + "".join(
            f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>"
            for v, t in zip(variables, values, strict=True) if t is not None) + "</result>"
    if media_type == "text/csv":
        return ",".join("" if t is None else _csv_term(t) for t in values) + "\r\n"
    return "\t".join("" if t is None else _tsv_term(t) for t in values) + "\n"


def count_rows(body: bytes, media_type: str) -> int:
    """Rows in a SELECT result written by Oxigraph, counted without parsing it. Never fewer
    than there are (bar rows binding nothing at all), which is the direction a cap needs."""
    if media_type == "application/sparql-results+xml":
        return body.count(b"<result>")
    if media_type in ("text/csv", "text/tab-separated-values"):
        return max(body.count(b"\n") - 1, 0)
    # In JSON a quote inside a value is escaped, so `},{"` only ever separates two rows.
    return body.count(b'},{"') + 1 if b'"bindings":[{' in body else 0


def write_boolean(value: bool, media_type: str) -> bytes:
    if media_type == "application/sparql-results+xml":
        return ('<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns='
                '"http://www.w3.org/2005/sparql-results#"><head/><boolean>'
                f"{'true' if value else 'false'}</boolean></sparql>\n").encode()
    return (json.dumps({"head": {}, "boolean": value}) + "\n").encode()


def write_triples(triples: Iterable[Any], media_type: str, max_rows: int,
                  max_bytes: int) -> Written:
    import pyoxigraph as ox

    budget = _Budget(max_rows, max_bytes)
    kept = []
    for triple in triples:
        # N-Triples length is a fair estimate of every format's size; RDF/XML is checked after.
        if not budget.take(str(triple) + " .\n", 0):
            break
        kept.append(triple)
    fmt = ox.RdfFormat.from_media_type(media_type)
    body = ox.serialize(kept, format=fmt) or b""
    if len(body) > max_bytes:
        raise OverflowError(f"the result is larger than {max_bytes} bytes")
    return Written(body, budget.rows, budget.truncated)
