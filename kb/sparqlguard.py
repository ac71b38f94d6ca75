"""Decide, before anything is evaluated, whether a SPARQL query may run on the public endpoint.

A query is refused unless it is a read-only query (SELECT, ASK, CONSTRUCT, DESCRIBE) whose
algebra has no SERVICE and whose FROM / FROM NAMED name only the knowledge base's own graphs:
Oxigraph does call out for SERVICE (measured: it opens the connection), so this check is what
keeps the server from being used to reach other hosts. The check reads the query's algebra
(rdflib's parser), never the text with patterns.

Two parsers read the query — rdflib here, Oxigraph in the worker — so they must read the same
text. SPARQL expands \\uXXXX escapes before parsing; rdflib does so, Oxigraph only inside
strings and IRIs, which would let `"\\u0022"` hide a SERVICE from one parser and not the other.
So the text is expanded here once and the worker is given the expanded text.

rdflib's parser recurses per nesting level and per `.` in a group and dies of RecursionError at
about 25 nested parentheses or 90 patterns in one group; a cheap scan of the text bounds both
before the parser runs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any

# rdflib's parser (pyparsing) keeps state while it parses: measured, two threads parsing at
# once get each other's errors. It holds the GIL all along, so a lock costs nothing.
_PARSER = threading.Lock()

FORMS = {"SelectQuery": "SELECT", "AskQuery": "ASK", "ConstructQuery": "CONSTRUCT",
         "DescribeQuery": "DESCRIBE"}


@dataclass(frozen=True)
class GuardLimits:
    max_query_bytes: int = 32_768
    max_depth: int = 20           # nested ( { [
    max_group_patterns: int = 64  # `.`-separated patterns in one { } group


@dataclass(frozen=True)
class CheckedQuery:
    text: str                     # the text both parsers read (escapes expanded)
    form: str                     # SELECT | ASK | CONSTRUCT | DESCRIBE
    default_graphs: tuple[str, ...]  # FROM
    named_graphs: tuple[str, ...]    # FROM NAMED


class Refused(Exception):
    """The query may not run; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _scan(text: str) -> Iterator[str]:
    """Yield the structural characters of a query — brackets and `.` — outside strings,
    IRIs and comments. Enough to measure nesting; not a tokenizer."""
    i, n = 0, len(text)
    prev = ""
    while i < n:
        c = text[i]
        if c == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
            continue
        if c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            prev = '"'
            continue
        if c == "<":
            # An IRI has no spaces; otherwise `<` is the less-than operator.
            j = i + 1
            while j < n and text[j] not in "<>\"{}|^`\\ \t\r\n":
                j += 1
            if j < n and text[j] == ">":
                i = j + 1
                prev = ">"
                continue
        decimal_point = c == "." and prev.isdigit() and i + 1 < n and text[i + 1].isdigit()
        if c in "({[)}]" or (c == "." and not decimal_point):
            yield c
        if not c.isspace():
            prev = c
        i += 1


def check_shape(text: str, limits: GuardLimits) -> None:
    depth = 0
    dots: list[int] = [0]
    for c in _scan(text):
        if c in "({[":
            depth += 1
            dots.append(0)
            if depth > limits.max_depth:
                raise Refused(400, f"query nested deeper than {limits.max_depth} levels")
        elif c in ")}]":
            depth = max(depth - 1, 0)
            if len(dots) > 1:
                dots.pop()
        else:
            dots[-1] += 1
            if dots[-1] >= limits.max_group_patterns:
                raise Refused(400, f"more than {limits.max_group_patterns} patterns in one group")


# A query's tokens as Oxigraph reads them (its SPARQL grammar): what cannot hold a keyword
# (comments, strings, IRIs, variables), prefixed names with their escapes, and words.
_TOKEN = re.compile("|".join((
    r"(?P<other>#[^\r\n]*"                                         # a comment
    r"|'''(?:[^\\]|\\.)*?'''|\"\"\"(?:[^\\]|\\.)*?\"\"\""          # long strings
    r"|'(?:[^'\\\r\n]|\\.)*'|\"(?:[^\"\\\r\n]|\\.)*\""             # strings
    r"|<(?:[^<>\"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>"  # an IRI
    r"|[?$]\w+)",                                                  # a variable
    r"(?P<prefix>[\w.-]*):(?:[\w.:%-]|\\[_~.\-!$&'()*+,;=/?#@%])*",  # a prefixed name
    r"(?P<word>[^\W\d][\w-]*)")))


def names_service(text: str) -> bool:
    """Whether the query may hold the keyword SERVICE, for the named queries of a build
    (kb.extras), which must not call out. Without a parser: rdflib's takes 0.25 s for the
    repository's nine queries, and as long to import. Oxigraph needs no space between
    keywords (`SERVICESILENT<…>`, `trueSERVICE<…>`, `SERVICEkb:x{…}` are calls), so any word
    or prefix holding "service" counts: it errs towards yes (`"x"@service`, a prefix
    `myservice:`), never towards no. Local names (`ex:serviceType`) and variables are read
    whole by Oxigraph, and hold no keyword."""
    for m in _TOKEN.finditer(text):
        part = m.group("word") or m.group("prefix")
        if part and "service" in part.lower():
            return True
    return False


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _expand(text: str) -> str:
    from rdflib.plugins.sparql.parser import expandUnicodeEscapes

    try:
        expanded = expandUnicodeEscapes(text)
    except ValueError as exc:
        raise Refused(400, f"malformed query: {exc}") from None
    if expandUnicodeEscapes(expanded) != expanded:
        # rdflib would expand again when it parses, and the parsers would disagree.
        raise Refused(400, "malformed query: an escape sequence that spells another escape")
    return expanded


def _is_update(text: str) -> bool:
    from rdflib.plugins.sparql.parser import parseUpdate

    try:
        with _PARSER:
            parseUpdate(text)
    except Exception:
        return False
    return True


def check_query(text: str, own_graphs: Set[str], limits: GuardLimits) -> CheckedQuery:
    """Refused(status, message) unless the query may be evaluated as it is."""
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    if len(text.encode("utf-8", "surrogatepass")) > limits.max_query_bytes:
        raise Refused(413, f"query longer than {limits.max_query_bytes} bytes")
    if not text.strip():
        raise Refused(400, "empty query")
    text = _expand(text)
    check_shape(text, limits)
    try:
        with _PARSER:
            query = translateQuery(parseQuery(text))
    except RecursionError:
        raise Refused(400, "query nested too deeply") from None
    except Exception as exc:
        if _is_update(text):
            raise Refused(400, "update operations are not allowed: this endpoint is read-only"
                          ) from None
        message = " ".join(str(exc).split())[:300]
        raise Refused(400, f"malformed query: {message}") from None
    algebra = query.algebra
    form = FORMS.get(algebra.name)
    if form is None:
        raise Refused(400, "only SELECT, ASK, CONSTRUCT and DESCRIBE queries are allowed")
    default: list[str] = []
    named: list[str] = []
    for node in _walk(algebra):
        name = getattr(node, "name", None)
        if name == "ServiceGraphPattern":
            raise Refused(400, "SERVICE is not allowed on this endpoint")
        if name == "DatasetClause":
            for key, into in (("default", default), ("named", named)):
                iri = dict.get(node, key)  # CompValue.get answers the key itself if absent
                if iri is None:
                    continue
                if str(iri) not in own_graphs:
                    raise Refused(400, f"FROM <{iri}> is not one of this knowledge base's graphs")
                into.append(str(iri))
    return CheckedQuery(text=text, form=form, default_graphs=tuple(dict.fromkeys(default)),
                        named_graphs=tuple(dict.fromkeys(named)))
