"""Turtle, TriG and JSON-LD written straight from sorted N-Triples lines.

The graph already holds every named graph as sorted N-Triples (kb.kbgraph.KBGraph.triples, a block
a graph, made into lines a graph at a time by kb.graph.lines_of); these writers only regroup
that text, so they are pure string work and deterministic by
construction: the same lines give the same bytes. Going through a parser and Oxigraph's
serialisers instead made 721,000 Python `Quad` objects at 10,000 claims and took 3–5 s a dump
(docs/graph.md has the figures).

What the writers rely on, and kb.namespaces.nt_iri / nt_literal guarantee:
- a line is `subject predicate object` separated by single spaces; IRIs and blank node labels
  hold no space (nt_iri percent-encodes it), so only the object (a literal) may contain one;
- lines of one subject, and of one predicate within it, are adjacent (they are sorted). Were they
  not, the output would repeat a subject and still be correct, only longer;
- a literal is `"…"`, `"…"@lang` or `"…"^^<datatype>` with N-Triples escapes (`\\" \\\\ \\n \\r
  \\t \\b \\f \\uXXXX`), which are valid in Turtle as they stand and, but for `\\UXXXXXXXX`, in
  JSON too.

Prefixed names are used only where an IRI's namespace (up to its last `#` or `/`) is one of the
prefixes and the rest is a plain name (letters, digits, `_`, `-`, starting with a letter or `_`);
everything else is written in full, which is always valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Mapping
from typing import TypeVar

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_LOCAL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ECHAR = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'",
          "\\": "\\"}
_STRING_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.S)


def encode(pieces: list[str], step: int = 20_000) -> bytes:
    """"".join(pieces) as UTF-8, a slice at a time: one non-ASCII character makes a joined str
    two or four bytes a character, and encoding 100 MB of that costs twice as much."""
    return b"".join("".join(pieces[i:i + step]).encode("utf-8")
                    for i in range(0, len(pieces), step))


def prefix_lines(prefixes: Mapping[str, str]) -> str:
    """`@prefix` lines, sorted by name."""
    return "".join(f"@prefix {name}: <{ns}> .\n" for name, ns in sorted(prefixes.items()))


class _Names:
    """IRI → prefixed name where one is safe, each vocabulary term worked out once.

    Most IRIs are the knowledge base's own (claims, evidence, sources), under no prefix: a
    `startswith` on the tuple of namespaces (in C) sends them past the cache untouched."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.by_ns = {ns: name for name, ns in sorted(prefixes.items())}
        self.starts = tuple(f"<{ns}" for ns in self.by_ns)
        self.cache: dict[str, str] = {}  # only IRIs under a prefix are kept
        self.verbs: dict[str, str] = {RDF_TYPE: "a"}  # predicates; rdf:type is `a`

    def name(self, iri: str) -> str | None:
        """The prefixed name of a bare IRI, or None."""
        cut = max(iri.rfind("#"), iri.rfind("/")) + 1
        prefix = self.by_ns.get(iri[:cut])
        if prefix is not None and _LOCAL.fullmatch(iri, cut):
            return f"{prefix}:{iri[cut:]}"
        return None

    def turtle(self, term: str) -> str:
        """An N-Triples IRI or blank node as Turtle: a prefixed name where safe."""
        if not term.startswith(self.starts):
            return term
        done = self.cache.get(term)
        if done is None:
            done = term if "\\" in term else self.name(term[1:-1]) or term
            self.cache[term] = done
        return done

    def verb(self, p: str) -> str:
        done = self.verbs.get(p)
        if done is None:
            done = self.verbs[p] = self.turtle(p)
        return done


_N = TypeVar("_N", bound=_Names)
_SHARED: dict[tuple[type[_Names], tuple[tuple[str, str], ...]], _Names] = {}


def _shared(kind: type[_N], prefixes: Mapping[str, str]) -> _N:
    """One _Names a kind and set of prefixes for the process: a site writes each record's graph
    on its own (20,000 small documents at 10,000 claims), and working the vocabulary's names
    out again for each made them slower than Oxigraph's serialisers. The caches hold only
    IRIs under a prefix and short typed literals, so they stay small."""
    key = (kind, tuple(sorted(prefixes.items())))
    names = _SHARED.get(key)
    if names is None:
        if len(_SHARED) > 16:
            _SHARED.clear()
        names = _SHARED[key] = kind(prefixes)
    assert isinstance(names, kind)
    return names


def _statements(lines: Iterable[str], names: _Names, indent: str, out: list[str]) -> None:
    """Turtle statements, one a subject (`S p o, o ;` then `p o .`), appended to `out`.

    The loop runs once a triple (721,000 times at 10,000 claims), so the common cases are
    inline: a plain literal or an IRI under no prefix is written as N-Triples has it."""
    subject = predicate = ""
    more = f" ;\n{indent}\t"
    starts = names.starts
    verbs = names.verbs.get
    literals: dict[str, str] = {}  # short typed literals (numbers, dates), used again and again
    append = out.append
    for line in lines:
        s, p, o = line.split(" ", 2)
        if o[0] == '"':
            if o[-1] == ">":  # typed: abbreviate the datatype
                obj = literals.get(o, "")
                if not obj:
                    cut = o.rfind('"^^<') + 3
                    obj = o[:cut] + names.turtle(o[cut:])
                    if cut < 32:
                        literals[o] = obj
            else:
                obj = o
        elif o.startswith(starts):
            obj = names.turtle(o)
        else:
            obj = o
        if s != subject:
            if subject:
                append(" .\n")
            verb = verbs(p) or names.verb(p)
            append(f"{indent}{names.turtle(s)} {verb} {obj}")
            subject, predicate = s, p
        elif p != predicate:
            verb = verbs(p) or names.verb(p)
            append(f"{more}{verb} {obj}")
            predicate = p
        else:
            append(f", {obj}")
    if subject:
        append(" .\n")


def turtle(lines: Iterable[str], prefixes: Mapping[str, str]) -> bytes:
    """A graph's N-Triples lines (without the final " .") as Turtle."""
    out = [prefix_lines(prefixes)]
    _statements(lines, _shared(_Names, prefixes), "", out)
    return encode(out)


def trig(graphs: Mapping[str, Iterable[str]], prefixes: Mapping[str, str]) -> bytes:
    """Named graphs (graph IRI → its N-Triples lines), in the order given, as TriG."""
    return trig_and_records(graphs, prefixes)[0]


def trig_and_records(graphs: Mapping[str, Iterable[str]], prefixes: Mapping[str, str],
                     records: Container[str] = ()) -> tuple[bytes, dict[str, bytes]]:
    """TriG of the named graphs, and each graph named in `records` alone as Turtle."""
    pieces = Pieces(prefixes)
    out = [pieces.head]
    alone: dict[str, bytes] = {}
    for graph, lines in graphs.items():
        block = pieces.block(lines)
        out.append(pieces.trig(graph, block))
        if graph in records:
            alone[graph] = pieces.turtle_record(block)
    return encode(out), alone


# -- JSON-LD ------------------------------------------------------------------------------
# Written compacted against a context of the prefixes: one node object a line, a plain literal
# as a JSON string, other literals as {"@value", "@language" | "@type"}, rdf:type as "@type".

def unescape(text: str) -> str:
    """The characters of an N-Triples string body or IRI (ECHAR and UCHAR escapes undone)."""
    def one(m: re.Match[str]) -> str:
        code = m.group(1) or m.group(2)
        return chr(int(code, 16)) if code else _ECHAR.get(m.group(3), m.group(0))

    return _STRING_ESCAPE.sub(one, text) if "\\" in text else text


_WEB = ("<http://", "<https://")


class _JsonNames(_Names):
    """Terms as JSON text: a compact IRI where safe (the context defines the prefixes)."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        super().__init__(prefixes)
        self.schemes = set(prefixes) | {"_"}
        self.cache = {}
        self.values: dict[str, str] = {}  # object term → its JSON value

    def json(self, term: str) -> str:
        """An IRI or blank node as a JSON string."""
        if term.startswith(_WEB) and not term.startswith(self.starts) and "\\" not in term:
            return f'"{term[1:-1]}"'  # IRIREF excludes `"`, `\\` and controls: valid JSON
        done = self.cache.get(term)
        if done is None:
            if term.startswith("_:"):
                done = json.dumps(term)
            else:
                iri = unescape(term[1:-1])
                short = self.name(iri)
                scheme, _, rest = iri.partition(":")
                if short is None and scheme in self.schemes and not rest.startswith("//"):
                    # a JSON-LD reader would take `kb:x` for a compact IRI: refuse to write it
                    raise ValueError(f"the IRI {iri!r} cannot be written unambiguously "
                                     "in JSON-LD with these prefixes")
                done = json.dumps(short or iri, ensure_ascii=False)
            self.cache[term] = done
        return done

    def value(self, o: str) -> str:
        """An object as a JSON-LD value (short typed literals are cached)."""
        if o[0] != '"':
            return f'{{"@id": {self.json(o)}}}'
        done = self.values.get(o)
        if done is not None:
            return done
        end = o.rfind('"')
        body, rest = o[1:end], o[end + 1:]
        if "\\U" in body or "\\'" in body:  # the N-Triples escapes JSON lacks
            body = json.dumps(unescape(body), ensure_ascii=False)[1:-1]
        if not rest:  # a plain string: a JSON string is an xsd:string literal in JSON-LD
            return f'"{body}"'
        if rest[0] == "@":
            return f'{{"@value": "{body}", "@language": {json.dumps(rest[1:])}}}'
        done = f'{{"@value": "{body}", "@type": {self.json(rest[2:])}}}'
        if len(body) < 24:  # numbers, dates, booleans: few distinct ones, used again and again
            self.values[o] = done
        return done


def _json_nodes(lines: Iterable[str], names: _JsonNames, indent: str) -> list[str]:
    """One JSON object a subject, one line each: `{"@id": …, "@type": …, "p": [values]}`.

    rdf:type with IRI objects becomes "@type", with other objects (valid RDF, never made here)
    an `rdf:type` key. A key must not come twice in one object (a JSON reader keeps only the
    last), so should one come back (input out of order, or rdf:type objects of both kinds), the
    subject gets another object: JSON-LD merges node objects of one @id."""
    nodes: list[str] = []
    props: list[str] = []  # the finished `"key": value` parts of the current object
    vals: list[str] = []  # the values of the current key
    used: set[str] = set()  # the keys of the current object
    subject = key = head = ""
    keys: dict[str, str] = {}
    for line in lines:
        s, p, o = line.split(" ", 2)
        c = o[0]
        if c == '"' and o[-1] == '"' and "\\U" not in o and "\\'" not in o:
            value = o  # a plain literal's N-Triples text is its JSON string
        elif c == "<" and p == RDF_TYPE:
            p, value = "@type", names.json(o)
        elif c == "<" and o.startswith(_WEB) and not o.startswith(names.starts) \
                and "\\" not in o:
            value = f'{{"@id": "{o[1:-1]}"}}'
        else:
            value = names.value(o)
        if p == key and s == subject:
            vals.append(value)
            continue
        if vals:
            props.append(f"{head}{vals[0]}" if len(vals) == 1 else f"{head}[{', '.join(vals)}]")
        head = keys.get(p) or keys.setdefault(
            p, '"@type": ' if p == "@type" else names.json(p) + ": ")
        if s != subject or head in used:
            if props:
                nodes.append(f'{indent}{{"@id": {names.json(subject)}, {", ".join(props)}}}')
            subject, props, used = s, [], set()
        used.add(head)
        key, vals = p, [value]
    if vals:
        props.append(f"{head}{vals[0]}" if len(vals) == 1 else f"{head}[{', '.join(vals)}]")
        nodes.append(f'{indent}{{"@id": {names.json(subject)}, {", ".join(props)}}}')
    return nodes


def _indented(nodes: list[str], indent: str) -> str:
    return indent + f",\n{indent}".join(nodes) if nodes else ""


def _context(prefixes: Mapping[str, str]) -> str:
    return json.dumps({"@context": dict(sorted(prefixes.items()))}, ensure_ascii=False)[1:-1]


def jsonld(lines: Iterable[str], prefixes: Mapping[str, str]) -> bytes:
    """A graph's N-Triples lines as JSON-LD: a context of the prefixes and one node a line."""
    nodes = _json_nodes(lines, _shared(_JsonNames, prefixes), "  ")
    return encode(["{", _context(prefixes), ',\n "@graph": [\n', ",\n".join(nodes), "\n]}\n"])


def jsonld_dataset(graphs: Mapping[str, Iterable[str]], prefixes: Mapping[str, str]) -> bytes:
    """Named graphs as JSON-LD: each a node `{"@id": graph, "@graph": [...]}`."""
    return jsonld_dataset_and_records(graphs, prefixes)[0]


def jsonld_dataset_and_records(graphs: Mapping[str, Iterable[str]], prefixes: Mapping[str, str],
                               records: Container[str] = ()) -> tuple[bytes, dict[str, bytes]]:
    """The dataset as JSON-LD, and each graph named in `records` alone (as `jsonld` writes it):
    the node objects are made once and only indented differently."""
    pieces = Pieces(prefixes)
    parts = [pieces.jsonld_head]
    alone: dict[str, bytes] = {}
    for n, (graph, lines) in enumerate(graphs.items()):
        nodes = pieces.nodes(lines)
        parts.append(pieces.jsonld(graph, nodes, n == 0))
        if graph in records:
            alone[graph] = pieces.jsonld_record(nodes)
    parts.append(JSONLD_TAIL)
    return encode(parts, 2_000), alone


# -- a graph at a time ---------------------------------------------------------------------

JSONLD_TAIL = "\n]}\n"


class Pieces:
    """Each named graph's text in the dump formats, a graph at a time.

    A graph's piece depends on nothing but its lines and the prefixes (and, in JSON-LD, on
    whether it is the first: the others start with a comma), so a dump is its head, its
    graphs' pieces in order and its tail, and kb.gzdumps can keep the pieces of unchanged
    graphs compressed from one build to the next. Each graph's Turtle statements are made
    once (`block`, indented for TriG) and give its TriG, its Turtle and its record."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.names = _shared(_Names, prefixes)
        self.json_names = _shared(_JsonNames, prefixes)
        self.head = prefix_lines(prefixes)  # of a Turtle or TriG document
        self.context = _context(prefixes)
        self.jsonld_head = "{" + self.context + ',\n "@graph": ['

    def block(self, lines: Iterable[str]) -> str:
        """The graph's Turtle statements, indented by a tab (a TriG graph's body)."""
        part: list[str] = []
        _statements(lines, self.names, "\t", part)
        return "".join(part)

    def trig(self, graph: str, block: str) -> str:
        return f"{self.names.turtle('<' + graph + '>')} {{\n{block}}}\n"

    @staticmethod
    def turtle(block: str) -> str:
        """The block without its indent: N-Triples text has no raw line break, so a break
        followed by a tab is always the indent (a string replace instead of writing the
        statements again)."""
        return block[1:].replace("\n\t", "\n")

    def turtle_record(self, block: str) -> bytes:
        return (self.head + self.turtle(block)).encode("utf-8")

    def nodes(self, lines: Iterable[str]) -> list[str]:
        return _json_nodes(lines, self.json_names, "")

    def jsonld(self, graph: str, nodes: list[str], first: bool) -> str:
        """The graph as an entry of the dataset's "@graph" array."""
        sep = "\n" if first else ",\n"
        name = self.json_names.json("<" + graph + ">")
        return f'{sep}  {{"@id": {name}, "@graph": [\n{_indented(nodes, "    ")}\n  ]}}'

    def jsonld_record(self, nodes: list[str]) -> bytes:
        return encode(["{", self.context, ',\n "@graph": [\n', _indented(nodes, "  "), "\n]}\n"])
