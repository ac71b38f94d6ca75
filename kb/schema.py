"""The builder that turns a file's nodes into the model, as kb.specs describes the format.

Each value is checked against its Field (text, number, date, period, URL, ref …) and becomes a
value of kb.model, or a problem with its place and a stable code (docs/rules.md).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from kb import model as m
from kb.problems import Loc, Problem, problem
from kb.specs import RECORDS, SLUG, Field, ObjectSpec
from kb.yamlstrict import MAYBE_NOT_TEXT, Mapping, Node, Scalar, Sequence, scalar_kind

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_WIKIDATA = re.compile(r"^Q[1-9][0-9]*$")
_new = tuple.__new__


_TYPE_WORDS = {"null": "nothing (null)", "bool": "a yes/no value", "int": "a number",
               "float": "a number", "str": "text"}


def _describe(node: Node) -> str:
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    return _TYPE_WORDS[scalar_kind(node)] + f" ({node.value!r})"


# The value builders below add their problems to `out` and return None for a value they refuse:
# a record has some 50 values, and a fresh list and tuple for each was a third of the build.


def _text(s: Scalar, out: list[Problem]) -> str | None:
    v = s.value
    # only a plain scalar that starts like a number, null or boolean can be other than text
    if s.plain and (not v or v[0] in MAYBE_NOT_TEXT) and scalar_kind(s) != "str":
        out.append(problem(s.loc, "S103", f"expected text, got {_describe(s)}",
                           f'put it in quotes: "{v}"'))
        return None
    if not v or v.isspace():  # what `not v.strip()` says, without making the stripped copy
        out.append(problem(s.loc, "S105", "empty text", "write the text or remove the field"))
        return None
    return v


def _number(s: Scalar, out: list[Problem]) -> float | None:
    kind = scalar_kind(s)
    if kind not in ("int", "float"):
        out.append(problem(s.loc, "S103", f"expected a number, got {_describe(s)}",
                           "write a plain number without quotes, e.g. 245e9"))
        return None
    v = s.value.lstrip("+-")
    if kind == "int" and (v.startswith(("0o", "0x")) or (len(v) > 1 and v.startswith("0"))):
        out.append(problem(s.loc, "S103", f"{s.value} is ambiguous (octal or hex in YAML 1.1)",
                           "write the number in decimal without leading zeros"))
        return None
    if v.lower() in (".inf", ".nan"):  # YAML's spellings, which Python's float() refuses
        out.append(problem(s.loc, "S104", f"{s.value} is not a finite number", ""))
        return None
    value = float(s.value)
    if value != value or value in (float("inf"), float("-inf")):
        out.append(problem(s.loc, "S104", f"{s.value} is not a finite number", ""))
        return None
    return value


def _date(is_partial: bool, s: Scalar, out: list[Problem]) -> Any:
    text = _text(s, out)
    if text is None:
        return None
    pattern, form = (_PARTIAL_DATE, "YYYY, YYYY-MM or YYYY-MM-DD") if is_partial else (
        _DATE, "YYYY-MM-DD")
    if pattern.match(text):
        padded = text + "-01" * (2 - text.count("-"))
        try:
            day = dt.date.fromisoformat(padded)
        except ValueError:
            pass
        else:
            return text if is_partial else day
    out.append(problem(s.loc, "V402", f"{text!r} is not a valid date", f"write it as {form}"))
    return None


def period_bounds(text: str) -> tuple[dt.date, dt.date] | None:
    """The first and last day a period covers, or None when it is not a valid period."""
    parts = text.split("/")
    if len(parts) > 2:
        return None
    days = []
    for i, part in enumerate(parts):
        if not _PARTIAL_DATE.match(part):
            return None
        y, mo, d = (int(x) for x in [*part.split("-"), "0", "0"][:3])
        try:
            if i == 0 or len(parts) == 1:
                days.append(dt.date(y, mo or 1, d or 1))
            if i == len(parts) - 1:
                end_mo = mo or 12
                if d:
                    end = dt.date(y, end_mo, d)
                else:
                    nxt = dt.date(y + (end_mo == 12), end_mo % 12 + 1, 1)
                    end = nxt - dt.timedelta(days=1)
                days.append(end)
        except ValueError:
            return None
    first, last = days[0], days[-1]
    return (first, last) if first <= last else None


def _period(s: Scalar, out: list[Problem]) -> str | None:
    text = _text(s, out)
    if text is None:
        return None
    if period_bounds(text) is None:
        out.append(problem(s.loc, "V403", f"{text!r} is not a valid period",
                           "write YYYY, YYYY-MM, YYYY-MM-DD, or A/B with A before B"))
        return None
    return text


_SPACE = re.compile(r"\s")  # the characters str.isspace() names (both are Py_UNICODE_ISSPACE)


def valid_url(text: str) -> bool:
    if _SPACE.search(text):  # a generator over the characters was 0.1 ms a URL
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _url(s: Scalar, out: list[Problem]) -> str | None:
    text = _text(s, out)
    if text is None:
        return None
    if not valid_url(text):
        out.append(problem(s.loc, "V401", f"{text!r} is not an http or https URL",
                           "give the page's full http:// or https:// address"))
        return None
    return text


def _pattern(pattern: re.Pattern[str], what: str, s: Scalar, out: list[Problem]) -> str | None:
    text = _text(s, out)
    if text is None:
        return None
    if not pattern.match(text):
        out.append(problem(s.loc, "S104", f"{text!r} is not {what}", ""))
        return None
    return text


def _slug(s: Scalar, out: list[Problem]) -> str | None:
    text = _text(s, out)
    if text is not None and not SLUG.match(text):
        out.append(problem(s.loc, "I201", f"{text!r} is not a lowercase slug",
                           "use a-z, 0-9 and single hyphens"))
        return None
    return text


def _ref(s: Scalar, out: list[Problem]) -> m.Ref | None:
    text = _text(s, out)
    # tuple.__new__ skips the named tuple's Python-level __new__: a record has a dozen refs
    return _new(m.Ref, (text, s.loc)) if text is not None else None


def _enum(choices: tuple[str, ...], s: Scalar, out: list[Problem]) -> str | None:
    text = _text(s, out)
    if text is not None and text not in choices:
        close = difflib.get_close_matches(text, choices, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        out.append(problem(s.loc, "S104", f"{text!r} is not allowed here",
                           hint + "one of: " + ", ".join(choices)))
        return None
    return text


ValueBuilder = Callable[[Scalar, list[Problem]], Any]


def _scalar(spec: Field) -> ValueBuilder:
    """The builder of one scalar field's values, chosen once per field (see _plan)."""
    t = spec.type
    if t == "text":
        return _text
    if t == "number":
        return _number
    if t in ("date", "partial-date"):
        return partial(_date, t == "partial-date")
    if t == "period":
        return _period
    if t == "url":
        return _url
    if t == "lang":
        return partial(_pattern, _LANG, "a BCP 47 language tag such as en or pt-BR")
    if t == "wikidata":
        return partial(_pattern, _WIKIDATA, "a Wikidata Q-number such as Q42")
    if t == "slug":
        return _slug
    if t == "ref":
        return _ref
    if t == "enum":
        return partial(_enum, spec.choices)
    raise AssertionError(t)  # pragma: no cover


_NULL_STARTS = frozenset("~nN")  # the first characters of the core schema's non-empty nulls


def _is_null(node: Node) -> bool:
    if node.__class__ is not Scalar or not node.plain:
        return False
    v = node.value
    return not v or (v[0] in _NULL_STARTS and scalar_kind(node) == "null")


@dataclass(frozen=True)
class _Entry:
    """One field of a plan: how its values are built."""

    many: bool
    scalar: ValueBuilder | None  # for a scalar field
    obj: _Plan | None  # for an object field


@dataclass(frozen=True)
class _Plan:
    """An ObjectSpec made ready for building: each field's value builder chosen once."""

    spec: ObjectSpec
    fields: dict[str, _Entry]
    required: tuple[str, ...]


_PLANS: dict[int, _Plan] = {}  # by id of the spec, which the plan keeps alive


def _plan(spec: ObjectSpec) -> _Plan:
    plan = _PLANS.get(id(spec))
    if plan is None:
        entries = {name: _Entry(f.many, None if f.type == "object" else _scalar(f),
                                _plan(f.obj) if f.obj is not None else None)
                   for name, f in spec.fields.items()}
        plan = _PLANS[id(spec)] = _Plan(spec, entries, tuple(
            name for name, f in spec.fields.items() if f.required))
    return plan


def _one(entry: _Entry, node: Node, out: list[Problem]) -> Any:
    if entry.obj is not None:
        if node.__class__ is not Mapping:
            out.append(problem(node.loc, "S103", f"expected a mapping ({entry.obj.spec.name}), "
                                                 f"got {_describe(node)}"))
            return None
        return _build(entry.obj, node, out)
    if node.__class__ is not Scalar:
        out.append(problem(node.loc, "S103", f"expected a single value, got {_describe(node)}"))
        return None
    assert entry.scalar is not None  # a field is an object or a scalar
    return entry.scalar(node, out)


def build(spec: ObjectSpec, node: Mapping) -> tuple[Any, list[Problem]]:
    """A model object from a mapping, with a problem for every field that is not as specified."""
    problems: list[Problem] = []
    return _build(_plan(spec), node, problems), problems


def _build(plan: _Plan, node: Mapping, problems: list[Problem]) -> Any:
    spec = plan.spec
    fields = plan.fields
    values: dict[str, Any] = {}
    locs: dict[str, Loc] = {}
    for name, (key, value_node) in node.items.items():
        entry = fields.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, list(spec.fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else (
                "known fields: " + ", ".join(spec.fields))
            problems.append(problem(key.loc, "S101", f"unknown field '{name}' in {spec.name}",
                                    hint))
            continue
        locs[name] = value_node.loc
        if value_node.__class__ is Scalar:  # the usual case first, without further calls
            if _is_null(value_node):
                continue
            if entry.scalar is not None and not entry.many:
                value = entry.scalar(value_node, problems)
                if value is not None:
                    values[name] = value
                continue
        if entry.many:
            if value_node.__class__ is not Sequence:
                problems.append(problem(value_node.loc, "S103",
                                        f"'{name}' must be a list, got {_describe(value_node)}",
                                        f"write it as a list: {name}: [ … ]"))
                continue
            items = []
            for i, item in enumerate(value_node.items):
                locs[f"{name}[{i}]"] = item.loc
                value = (entry.scalar(item, problems)
                         if entry.scalar is not None and item.__class__ is Scalar
                         else _one(entry, item, problems))
                if value is not None:
                    items.append(value)
            values[name] = items
        else:
            value = _one(entry, value_node, problems)
            if value is not None:
                values[name] = value
    for name in plan.required:
        if name in values and values[name] != []:
            continue
        fspec = spec.fields[name]
        if name not in locs:
            problems.append(problem(node.loc, "S102", f"{spec.name} needs '{name}'", fspec.doc))
        elif _is_null(value := node.items[name][1]) or (
            isinstance(value, Sequence) and not value.items
        ):
            problems.append(problem(locs[name], "S102",
                                    f"'{name}' needs a value" + (" (at least one item)"
                                                                 if fspec.many else ""),
                                    fspec.doc))
    return spec.cls(**values, loc=node.loc, locs=m.pack_locs(locs, node.loc.path))


def build_record(kind: str, root: Node | None, path: str) -> tuple[m.Record | None, list[Problem]]:
    """One record of `kind` from the document of a file, or None when there is nothing to build."""
    spec = RECORDS[kind]
    article = "an" if kind[0] in "aeiou" else "a"
    if root is None:
        return None, [problem(Loc(path, 1, 1), "S103", f"the file holds no {kind}",
                              f"write a mapping with the fields of {article} {kind}")]
    if not isinstance(root, Mapping):
        return None, [problem(root.loc, "S103",
                              f"expected a mapping of {kind} fields, got {_describe(root)}")]
    record, problems = build(spec, root)
    return record, problems
