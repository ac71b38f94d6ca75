"""A strict YAML reader: text in, a tree of located nodes out, never an exception.

libyaml's event stream is walked directly, so that anchors, aliases, tags, several documents
and duplicate keys are seen (a composer would resolve them away) and every node keeps its line
and column. Plain scalars stay text here; `scalar_kind` applies the YAML 1.2 core schema so that
the schema layer can tell `2024` from `"2024"` and refuse to guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from kb.problems import Loc, Problem, problem

try:  # libyaml's parser is several times faster; the pure one gives the same events
    # the bare parser: a CBaseLoader is one too, plus a constructor and resolver never used here
    from yaml._yaml import CParser as _Loader

    _BYTE_OFFSETS = True  # libyaml counts offsets in UTF-8 bytes
except ImportError:  # pragma: no cover
    from yaml import BaseLoader as _Loader  # type: ignore[assignment]

    _BYTE_OFFSETS = False  # the pure-Python reader counts characters


class Scalar(NamedTuple):
    value: str
    plain: bool  # written without quotes or block style, so YAML 1.2 may read it as non-text
    loc: Loc


@dataclass(slots=True)
class Mapping:
    loc: Loc
    items: dict[str, tuple[Scalar, Node]] = field(default_factory=dict)


@dataclass(slots=True)
class Sequence:
    loc: Loc
    items: list[Node] = field(default_factory=list)


Node = Scalar | Mapping | Sequence

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


# The first characters of every null, bool, int or float of the core schema
MAYBE_NOT_TEXT = frozenset("~nNtTfF0123456789+-.")


def scalar_kind(s: Scalar) -> str:
    """What YAML 1.2's core schema makes of a scalar: null, bool, int, float or str."""
    if not s.plain:
        return "str"
    v = s.value
    if v and v[0] not in MAYBE_NOT_TEXT:  # most values: words, which only text starts with
        return "str"
    if _NULL.match(v):
        return "null"
    if _BOOL.match(v):
        return "bool"
    if _INT.match(v):
        return "int"
    if _FLOAT.match(v):
        return "float"
    return "str"


def decode(data: bytes, path: str) -> tuple[str | None, list[Problem]]:
    """UTF-8 text with a BOM dropped and line ends made \\n, or Y001 at the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [
            problem(
                Loc(path, line, col),
                "Y001",
                f"byte 0x{data[exc.start]:02x} is not valid UTF-8",
                "save the file as UTF-8",
            )
        ]
    return text.replace("\r\n", "\n").replace("\r", "\n"), []


def _tabs(text: str, path: str) -> list[Problem]:
    if "\t" not in text:  # nearly every file: skip the walk over its lines
        return []
    found = []
    for n, line in enumerate(text.split("\n"), start=1):
        col = line.find("\t")
        if col >= 0:
            found.append(
                problem(Loc(path, n, col + 1), "Y007", "tab character", "indent with spaces")
            )
    return found


def _loc(path: str, mark: Any) -> Loc:
    if mark is None:
        return Loc(path, 1, 1)
    return Loc(path, mark.line + 1, mark.column + 1)


def _offset_loc(path: str, text: str, position: int) -> Loc:
    before = (text.encode("utf-8")[:position].decode("utf-8", "ignore")
              if _BYTE_OFFSETS else text[:position])
    return Loc(path, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


MAX_DEPTH = 100


def _skip(events: list[yaml.Event], i: int) -> int:
    """The index after the collection that starts at events[i]."""
    depth = 0
    while True:
        if isinstance(events[i], yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(events[i], yaml.CollectionEndEvent):
            depth -= 1
        i += 1
        if depth == 0:
            return i


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def node(self, events: list[yaml.Event], i: int, depth: int = 0) -> tuple[Node, int]:
        ev = events[i]
        loc = _loc(self.path, ev.start_mark)
        if depth >= MAX_DEPTH and isinstance(ev, yaml.CollectionStartEvent):
            # a record needs a few levels; thousands would exhaust Python's stack
            self.problems.append(problem(loc, "Y002", f"nested more than {MAX_DEPTH} levels deep",
                                         "a record needs only a few levels"))
            return Scalar("", False, loc), _skip(events, i)
        if isinstance(ev, yaml.AliasEvent):
            self.problems.append(
                problem(loc, "Y004", f"alias *{ev.anchor}", "write the value out in full")
            )
            return Scalar("", False, loc), i + 1
        anchor = getattr(ev, "anchor", None)
        if anchor is not None:
            self.problems.append(
                problem(loc, "Y004", f"anchor &{anchor}", "remove the anchor")
            )
        tag = getattr(ev, "tag", None)
        explicit = tag is not None and not (
            isinstance(ev, yaml.ScalarEvent) and tag == "!" and not ev.implicit[0]
        )
        if explicit and not isinstance(ev, yaml.ScalarEvent | yaml.MappingStartEvent
                                       | yaml.SequenceStartEvent):
            explicit = False
        if explicit:
            self.problems.append(problem(loc, "Y005", f"tag {tag}", "remove the tag"))
        if isinstance(ev, yaml.ScalarEvent):
            plain = ev.style is None or ev.style == ""
            return Scalar(ev.value, plain and not explicit, loc), i + 1
        if isinstance(ev, yaml.SequenceStartEvent):
            seq = Sequence(loc)
            i += 1
            while not isinstance(events[i], yaml.SequenceEndEvent):
                child, i = self.node(events, i, depth + 1)
                seq.items.append(child)
            return seq, i + 1
        if isinstance(ev, yaml.MappingStartEvent):
            m = Mapping(loc)
            i += 1
            while not isinstance(events[i], yaml.MappingEndEvent):
                key, i = self.node(events, i, depth + 1)
                value, i = self.node(events, i, depth + 1)
                self.add_item(m, key, value)
            return m, i + 1
        raise AssertionError(f"unexpected event {ev!r}")  # pragma: no cover

    def add_item(self, m: Mapping, key: Node, value: Node) -> None:
        """A key and its value into a mapping, unless the key is not a name or is repeated."""
        if not isinstance(key, Scalar):
            self.problems.append(
                problem(key.loc, "S103", "a key must be a plain name", "")
            )
            return
        if key.value in m.items:
            first = m.items[key.value][0].loc
            self.problems.append(
                problem(
                    key.loc,
                    "Y003",
                    f"duplicate key '{key.value}' (first at line {first.line})",
                    "keep one of the two",
                )
            )
            return
        m.items[key.value] = (key, value)


# The walk below meets these event classes by identity: libyaml and the pure reader make
# exactly these, never subclasses.
_SCALAR_EV = yaml.ScalarEvent
_MAPPING_EV = yaml.MappingStartEvent
_MAPPING_END = yaml.MappingEndEvent
_SEQUENCE_EV = yaml.SequenceStartEvent
_SEQUENCE_END = yaml.SequenceEndEvent
_new = tuple.__new__  # makes a Loc or Scalar without the named tuple's Python-level __new__


# _walk, _mapping and _sequence build what _Builder.node builds, at a fraction of the cost: the
# plain form of a record (scalars, mappings and lists with no anchor, alias or tag, not too
# deep) without a call per scalar, anything else handed to _Builder.node, whose rules are the
# definition. tests/test_parse_fast.py holds the two to the same result.

def _walk(b: _Builder, events: list[Any], i: int, depth: int) -> tuple[Node, int]:
    """The node that starts at events[i], as b.node makes it, and the index after it."""
    ev = events[i]
    cls = ev.__class__
    if ((cls is _SCALAR_EV or cls is _MAPPING_EV or cls is _SEQUENCE_EV)
            and ev.anchor is None and ev.tag is None):
        if cls is _SCALAR_EV:
            mark = ev.start_mark
            return _new(Scalar, (ev.value, not ev.style,
                                 _new(Loc, (b.path, mark.line + 1, mark.column + 1)))), i + 1
        if depth < MAX_DEPTH:
            return (_mapping if cls is _MAPPING_EV else _sequence)(b, events, i, depth)
    return b.node(events, i, depth)


def _mapping(b: _Builder, events: list[Any], i: int, depth: int) -> tuple[Node, int]:
    path = b.path
    mark = events[i].start_mark
    node = Mapping(_new(Loc, (path, mark.line + 1, mark.column + 1)), {})
    items = node.items
    i += 1
    depth += 1
    key: Node
    value: Node
    while True:
        ev = events[i]
        cls = ev.__class__
        if cls is _MAPPING_END:
            return node, i + 1
        if cls is _SCALAR_EV and ev.anchor is None and ev.tag is None:
            mark = ev.start_mark
            key = _new(Scalar, (ev.value, not ev.style,
                                _new(Loc, (path, mark.line + 1, mark.column + 1))))
            i += 1
        else:
            key, i = _walk(b, events, i, depth)
        ev = events[i]
        cls = ev.__class__  # not narrowing ev: the stubs would make its mark optional
        if cls is _SCALAR_EV and ev.anchor is None and ev.tag is None:
            mark = ev.start_mark
            value = _new(Scalar, (ev.value, not ev.style,
                                  _new(Loc, (path, mark.line + 1, mark.column + 1))))
            i += 1
        else:
            value, i = _walk(b, events, i, depth)
        if key.__class__ is Scalar and key.value not in items:
            items[key.value] = (key, value)
        else:
            b.add_item(node, key, value)


def _sequence(b: _Builder, events: list[Any], i: int, depth: int) -> tuple[Node, int]:
    path = b.path
    mark = events[i].start_mark
    node = Sequence(_new(Loc, (path, mark.line + 1, mark.column + 1)), [])
    append = node.items.append
    i += 1
    depth += 1
    while True:
        ev = events[i]
        cls = ev.__class__
        if cls is _SEQUENCE_END:
            return node, i + 1
        if cls is _SCALAR_EV and ev.anchor is None and ev.tag is None:
            mark = ev.start_mark
            append(_new(Scalar, (ev.value, not ev.style,
                                 _new(Loc, (path, mark.line + 1, mark.column + 1)))))
            i += 1
        else:
            item, i = _walk(b, events, i, depth)
            append(item)


def parse(text: str, path: str) -> tuple[Node | None, list[Problem]]:
    """The one document of a file as a node tree, and every problem met on the way."""
    return _parse(text, path, fast=True)


def _parse(text: str, path: str, fast: bool) -> tuple[Node | None, list[Problem]]:
    """parse, walking the document with _walk (fast) or only with _Builder.node."""
    problems = _tabs(text, path)
    loader = _Loader(text)
    try:
        # iter() calls get_event from C until the end of the stream, which returns None
        events: list[yaml.Event] = list(iter(loader.get_event, None))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{what} ({exc.context})"
        problems.append(problem(_loc(path, mark), "Y002", what, "fix the YAML syntax"))
        return None, problems
    except yaml.reader.ReaderError as exc:  # a control character: it has no mark, only an offset
        problems.append(problem(_offset_loc(path, text, exc.position), "Y002",
                                f"character U+{exc.character:04X} is not allowed in YAML",
                                "remove the control character"))
        return None, problems
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(problem(_loc(path, mark), "Y002", str(exc).split("\n")[0], ""))
        return None, problems
    finally:
        loader.dispose()

    # A stream is StreamStart, then DocumentStart … DocumentEnd once a document, then StreamEnd
    if len(events) < 2 or events[1].__class__ is not yaml.DocumentStartEvent:
        return None, problems
    builder = _Builder(path)
    root, end = _walk(builder, events, 2, 0) if fast else builder.node(events, 2)
    for ev in events[end:]:  # after the first document: its end, then any further ones
        if isinstance(ev, yaml.DocumentStartEvent):
            problems.append(
                problem(
                    _loc(path, ev.start_mark),
                    "Y006",
                    "a second YAML document",
                    "keep one record per file; remove the '---' and what follows",
                )
            )
    problems.extend(builder.problems)
    return root, problems
