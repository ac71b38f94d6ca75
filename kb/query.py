"""SPARQL over the graph: named queries, running a query, and its results as text.

Queries run on Oxigraph's engine (DESIGN.md §7: rdflib's takes seconds where Oxigraph takes
milliseconds), with the union of the named graphs as the default graph and the prefixes of
kb.namespaces predeclared. Only queries run here: an UPDATE is refused.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pyoxigraph as ox

from kb.kbgraph import KBGraph

QUERIES_DIR = "queries"
_POSITION = re.compile(r"error at (\d+):(\d+):\s*(.*)", re.S)
_HEADER = re.compile(r"#\s*(title|description)\s*:\s*(.*)")

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple


class QueryError(Exception):
    """A query that cannot be run: its text is wrong, it is an update, or it does not exist."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        if self.line:
            return f"line {self.line}, column {self.col}: {self.message}"
        return self.message


@dataclass(frozen=True)
class NamedQuery:
    name: str  # the file's stem: `kb query NAME`
    title: str
    description: str
    text: str


@dataclass
class QueryResult:
    kind: str  # "select", "ask" or "graph" (CONSTRUCT and DESCRIBE)
    variables: list[str] = field(default_factory=list)
    rows: list[list[Term | None]] = field(default_factory=list)
    total: int | None = None  # solutions in all, when `rows` holds only the first (run's keep)
    triples: list[ox.Triple] = field(default_factory=list)
    boolean: bool | None = None
    prefixes: dict[str, str] = field(default_factory=dict)
    base: str = ""  # IRIs under it are shown relative in tables

    def as_rows(self) -> tuple[list[str], list[list[Term | None]]]:
        """A graph result as subject, predicate, object rows; an ASK as one row."""
        if self.kind == "graph":
            return ["subject", "predicate", "object"], [[t.subject, t.predicate, t.object]
                                                        for t in self.triples]
        if self.kind == "ask":
            return ["boolean"], [[ox.Literal("true" if self.boolean else "false",
                                             datatype=ox.NamedNode(_XSD + "boolean"))]]
        return self.variables, self.rows


_XSD = "http://www.w3.org/2001/XMLSchema#"


def parse_header(text: str) -> tuple[str, str]:
    """The `# title:` and `# description:` of a query's leading comments.

    A comment line without a key continues the description (or title) above it.
    """
    values: dict[str, list[str]] = {"title": [], "description": []}
    key = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        hit = _HEADER.match(stripped)
        if hit:
            key = hit.group(1)
            values[key].append(hit.group(2).strip())
        elif key and stripped.lstrip("#").strip():
            values[key].append(stripped.lstrip("#").strip())
    return " ".join(values["title"]), " ".join(values["description"])


def named_queries(root: Path) -> list[NamedQuery]:
    """The queries in `root/queries/*.rq`, by name."""
    folder = root / QUERIES_DIR
    out = []
    for path in sorted(folder.glob("*.rq")) if folder.is_dir() else []:
        text = path.read_text(encoding="utf-8")
        title, description = parse_header(text)
        out.append(NamedQuery(path.stem, title or path.stem, description, text))
    return out


def _syntax_error(exc: SyntaxError, text: str) -> QueryError:
    message = str(exc)
    hit = _POSITION.match(message)
    if not hit:
        return QueryError(message)
    line, col, what = int(hit.group(1)), int(hit.group(2)), hit.group(3)
    if "Prefix not found" in what:
        what = "unknown prefix (declare it with PREFIX or use one of kb query's predeclared ones)"
    else:
        what = what.split("\n")[0]
    return QueryError(what, line, col)


def _refuse_update(text: str) -> None:
    """Raise when the text parses as a SPARQL UPDATE (tried on a throwaway empty store)."""
    try:
        ox.Store().update(text)
    except (SyntaxError, OSError, ValueError):
        return
    raise QueryError("this is a SPARQL UPDATE; kb query only reads (SELECT, ASK, CONSTRUCT, "
                     "DESCRIBE): change the YAML files instead")


def run(g: KBGraph | ox.Store, text: str, prefixes: dict[str, str] | None = None,
        keep: int | None = None) -> QueryResult:
    """Run a query over the union of the named graphs; with `keep`, a SELECT's first `keep`
    rows only are made, the others counted (`total`)."""
    base = ""
    if isinstance(g, KBGraph):
        store, prefixes, base = g.store, {**g.iris.prefixes(), **(prefixes or {})}, g.iris.base
    else:
        store, prefixes = g, dict(prefixes or {})
    try:
        result = store.query(text, use_default_graph_as_union=True, prefixes=prefixes)
    except SyntaxError as exc:
        _refuse_update(text)
        raise _syntax_error(exc, text) from None
    except (OSError, RuntimeError) as exc:
        raise QueryError(str(exc)) from None
    # Oxigraph evaluates as the results are read, and raises its evaluation errors then: an
    # I/O error (a SERVICE call), a RuntimeError (an unbound SERVICE name), a SyntaxError (a
    # service's answer), none of them about the query's text
    try:
        if isinstance(result, ox.QueryBoolean):
            return QueryResult("ask", boolean=bool(result), prefixes=prefixes, base=base)
        if isinstance(result, ox.QuerySolutions):
            names = [v.value for v in result.variables]
            kept = result if keep is None else islice(result, keep)
            rows = [[sol[i] for i in range(len(names))] for sol in kept]
            # the rest counted, no terms made
            total = None if keep is None else len(rows) + sum(1 for _ in result)
            return QueryResult("select", names, rows, total=total, prefixes=prefixes,
                               base=base)
        return QueryResult("graph", triples=list(result), prefixes=prefixes, base=base)
    except (OSError, RuntimeError, SyntaxError) as exc:
        raise QueryError(str(exc)) from None


# -- formatters ---------------------------------------------------------------------------


def short(term: Term | None, prefixes: dict[str, str], base: str = "") -> str:
    """A term as people read it in a table: prefixed or relative IRIs, bare literal values."""
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        if base and term.value.startswith(base) and "#" in term.value:
            return f"<{term.value[len(base):]}>"
        best = ""
        for name, ns in prefixes.items():
            if term.value.startswith(ns) and len(ns) > len(prefixes.get(best, "")):
                local = term.value[len(ns):]
                if re.fullmatch(r"[A-Za-z0-9_\-]*", local):
                    best = name
        return f"{best}:{term.value[len(prefixes[best]):]}" if best else f"<{term.value}>"
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        return term.value
    return str(term)


def as_table(result: QueryResult) -> str:
    """An aligned text table (or the triples as Turtle for a graph result)."""
    if result.kind == "ask":
        return "yes" if result.boolean else "no"
    if result.kind == "graph":
        return as_turtle(result).decode("utf-8")
    head = result.variables
    cells = [[short(t, result.prefixes, result.base).replace("\n", " ") for t in row]
             for row in result.rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    n = len(cells)
    lines.append(f"({n} row{'s' * (n != 1)})")
    return "\n".join(lines)


def _csv_value(term: Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.NamedNode | ox.Literal):
        return term.value
    return str(term)


def as_csv(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results CSV: plain values, CRLF line ends."""
    head, rows = result.as_rows()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(head)
    writer.writerows([[_csv_value(t) for t in row] for row in rows])
    return buf.getvalue()


def _tsv_value(term: Term | None) -> str:
    return "" if term is None else str(term)  # pyoxigraph's str() is the N-Triples form


def as_tsv(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results TSV: terms in their N-Triples form."""
    head, rows = result.as_rows()
    lines = ["\t".join(f"?{h}" for h in head)]
    lines += ["\t".join(_tsv_value(t) for t in row) for row in rows]
    return "\n".join(lines) + "\n"


def _json_term(term: Term) -> dict[str, object]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, object] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != _XSD + "string":
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": {
        "subject": _json_term(term.subject), "predicate": _json_term(term.predicate),
        "object": _json_term(term.object)}}


def as_json(result: QueryResult) -> str:
    """SPARQL 1.1 Query Results JSON."""
    if result.kind == "ask":
        return json.dumps({"head": {}, "boolean": bool(result.boolean)}, indent=2)
    head, rows = result.as_rows()
    bindings = [{h: _json_term(t) for h, t in zip(head, row, strict=True) if t is not None}
                for row in rows]
    return json.dumps({"head": {"vars": head}, "results": {"bindings": bindings}},
                      indent=2, ensure_ascii=False)


def as_turtle(result: QueryResult) -> bytes:
    """A graph result as Turtle, triples sorted so that runs are byte-identical."""
    triples = sorted(set(result.triples), key=str)
    return ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=result.prefixes) or b""


FORMATTERS = {"table": as_table, "csv": as_csv, "tsv": as_tsv, "json": as_json}


def format_result(result: QueryResult, fmt: str) -> str:
    if fmt == "ttl":
        if result.kind != "graph":
            raise QueryError("--format ttl is for CONSTRUCT and DESCRIBE queries; "
                             "use table, csv, tsv or json")
        return as_turtle(result).decode("utf-8")
    return FORMATTERS[fmt](result)


def resolve(root: Path, arg: str) -> str:
    """The query text that `kb query ARG` means: a .rq file, a named query, or the text itself."""
    path = Path(arg)
    if arg.endswith(".rq"):
        if not path.is_file():
            raise QueryError(f"no such query file: {arg}")
        return path.read_text(encoding="utf-8")
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", arg):
        named = {q.name: q for q in named_queries(root)}
        if arg in named:
            return named[arg].text
        known = ", ".join(named) or "none"
        raise QueryError(f"no named query '{arg}' in {QUERIES_DIR}/ (known: {known})")
    return arg


@dataclass(frozen=True)
class Outcome:
    """What `kb query` prints, to stdout and stderr, and its exit code."""

    out: str
    err: str = ""
    code: int = 0


def query_command(root: Path, arg: str | None, fmt: str, list_only: bool) -> Outcome:
    """`kb query`: list the named queries, or run one query and format its results."""
    from kb.graph import load_graph
    from kb.load import NotAKnowledgeBase

    if list_only or not arg:
        queries = named_queries(root)
        if not queries:
            return Outcome("", f"kb: no named queries in {root / QUERIES_DIR}",
                           0 if list_only else 2)
        width = max(len(q.name) for q in queries)
        lines = [f"{q.name.ljust(width)}  {q.title}" for q in queries]
        return Outcome("\n".join(lines), "" if list_only else "kb: give a query (or --list)",
                       0 if list_only else 2)
    try:
        text = resolve(root, arg)
        _checked, g = load_graph(root)
        return Outcome(format_result(run(g, text), fmt))
    except QueryError as exc:
        return Outcome("", f"kb: query error: {exc}", 1)
    except NotAKnowledgeBase as exc:
        return Outcome("", f"kb: {exc}", 2)
