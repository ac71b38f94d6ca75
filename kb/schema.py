"""The file format as data: one spec per record, and the builder that turns nodes into the model.

The specs are the single description of the format: the builder reads them, and so does the
JSON Schema generator, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kb import model as m
from kb.problems import Loc, Problem, problem
from kb.yamlstrict import Mapping, Node, Scalar, Sequence, scalar_kind

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 80
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_WIKIDATA = re.compile(r"^Q[1-9][0-9]*$")


@dataclass(frozen=True)
class Field:
    type: str  # text, number, date, partial-date, period, url, ref, enum, lang, wikidata, object
    required: bool = False
    many: bool = False
    choices: tuple[str, ...] = ()
    obj: ObjectSpec | None = None
    doc: str = ""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    cls: type[m.Located]
    fields: dict[str, Field] = field(default_factory=dict)
    doc: str = ""


QUANTITY = ObjectSpec(
    "quantity",
    m.Quantity,
    {
        "value": Field("number", required=True, doc="The number, e.g. 245e9."),
        "unit": Field("text", required=True, doc="The unit: a currency code, %, tonnes …"),
    },
    "The figure a quantity claim states.",
)
APPEARANCE = ObjectSpec(
    "appearance",
    m.Appearance,
    {
        "source": Field("ref", required=True, doc="The source in which the claim is made."),
        "quote": Field("text", required=True, doc="The exact words of the source."),
        "translation": Field("text", doc="An English translation of the quote."),
    },
    "Where a claim is made; the first is its first appearance.",
)
EVIDENCE = ObjectSpec(
    "evidence",
    m.Evidence,
    {
        "source": Field("ref", required=True, doc="The source that bears on the claim."),
        "stance": Field("enum", required=True, choices=m.STANCES, doc="How it bears on it."),
        "quote": Field("text", doc="The exact words of the source."),
        "translation": Field("text", doc="An English translation of the quote."),
        "note": Field("text", doc="The editor's note: what the evidence shows."),
    },
    "A source that supports, refutes or gives context to the claim.",
)
VERDICT = ObjectSpec(
    "verdict",
    m.Verdict,
    {
        "status": Field("enum", required=True, choices=m.STATUSES, doc="The editors' status."),
        "summary": Field("text", doc="Why the editors read it so (required: T601)."),
    },
    "The editors' own reading, which replaces the derived status.",
)
REVIEW = ObjectSpec(
    "review",
    m.Review,
    {
        "by": Field("text", required=True, doc="Who checked the claim."),
        "date": Field("date", required=True, doc="When (YYYY-MM-DD)."),
        "note": Field("text", doc="What was checked."),
    },
    "A check of the claim by an editor.",
)
RELATION = ObjectSpec(
    "relation",
    m.Relation,
    {
        "claim": Field("ref", required=True, doc="The other claim."),
        "relation": Field("enum", required=True, choices=m.RELATIONS, doc="How they relate."),
    },
    "A link from this claim to another.",
)

CLAIM = ObjectSpec(
    "claim",
    m.Claim,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "claim": Field("text", required=True, doc="The checkable statement, in your words."),
        "kind": Field("enum", required=True, choices=m.CLAIM_KINDS, doc="What sort of claim."),
        "claimant": Field("ref", doc="The entity who asserts it."),
        "about": Field("ref", many=True, doc="The entities it concerns."),
        "period": Field("period", doc="The time it is about: YYYY, YYYY-MM, YYYY-MM-DD or A/B."),
        "quantity": Field("object", obj=QUANTITY, doc="Quantity claims only."),
        "appearances": Field("object", required=True, many=True, obj=APPEARANCE,
                             doc="Where the claim is made; the first is its first appearance."),
        "evidence": Field("object", many=True, obj=EVIDENCE, doc="What bears on the claim."),
        "verdict": Field("object", obj=VERDICT, doc="The editors' reading, with a summary."),
        "reviews": Field("object", many=True, obj=REVIEW, doc="Who checked it; newest last."),
        "related": Field("object", many=True, obj=RELATION, doc="Links to other claims."),
        "resolves_by": Field("date", doc="Predictions only: when it can be checked."),
        "tags": Field("slug", many=True, doc="Lowercase slugs for grouping."),
    },
    "One checkable assertion, where it is made, and the evidence about it.",
)
SOURCE = ObjectSpec(
    "source",
    m.Source,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "title": Field("text", required=True, doc="The title or headline."),
        "kind": Field("enum", required=True, choices=m.SOURCE_KINDS, doc="What sort of source."),
        "publisher": Field("ref", doc="The entity that published it."),
        "authors": Field("ref", many=True, doc="The entities who wrote it."),
        "url": Field("url", required=True, doc="Where it can be read (http or https)."),
        "archived": Field("url", doc="An archive copy's URL, where one exists."),
        "published": Field("partial-date", doc="When it was published: YYYY[-MM[-DD]]."),
        "accessed": Field("date", doc="When it was read (YYYY-MM-DD)."),
        "language": Field("lang", doc="Its language, as a BCP 47 tag: en, ru, de …"),
        "note": Field("text", doc="Remarks on the source: provenance, copies, doubts."),
    },
    "A document that makes or tests claims.",
)
ENTITY = ObjectSpec(
    "entity",
    m.Entity,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "name": Field("text", required=True, doc="The usual name."),
        "kind": Field("enum", required=True, choices=m.ENTITY_KINDS, doc="What sort of thing."),
        "description": Field("text", doc="One sentence on who or what it is."),
        "aliases": Field("text", many=True, doc="Other names and spellings."),
        "wikidata": Field("wikidata", doc="A Wikidata Q-number, only where it was looked up."),
    },
    "A person, organisation, country, place … that claims concern.",
)

RECORDS: dict[str, ObjectSpec] = {"claim": CLAIM, "source": SOURCE, "entity": ENTITY}

_TYPE_WORDS = {"null": "nothing (null)", "bool": "a yes/no value", "int": "a number",
               "float": "a number", "str": "text"}


def _describe(node: Node) -> str:
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    return _TYPE_WORDS[scalar_kind(node)] + f" ({node.value!r})"


def _text(s: Scalar) -> tuple[str | None, list[Problem]]:
    kind = scalar_kind(s)
    if kind != "str":
        return None, [problem(s.loc, "S103", f"expected text, got {_describe(s)}",
                              f'put it in quotes: "{s.value}"')]
    if not s.value.strip():
        return None, [problem(s.loc, "S105", "empty text", "write the text or remove the field")]
    return s.value, []


def _number(s: Scalar) -> tuple[float | None, list[Problem]]:
    kind = scalar_kind(s)
    if kind not in ("int", "float"):
        return None, [problem(s.loc, "S103", f"expected a number, got {_describe(s)}",
                              "write a plain number without quotes, e.g. 245e9")]
    v = s.value.lstrip("+-")
    if kind == "int" and (v.startswith(("0o", "0x")) or (len(v) > 1 and v.startswith("0"))):
        return None, [problem(s.loc, "S103", f"{s.value} is ambiguous (octal or hex in YAML 1.1)",
                              "write the number in decimal without leading zeros")]
    if v.lower() in (".inf", ".nan"):  # YAML's spellings, which Python's float() refuses
        return None, [problem(s.loc, "S104", f"{s.value} is not a finite number", "")]
    value = float(s.value)
    if value != value or value in (float("inf"), float("-inf")):
        return None, [problem(s.loc, "S104", f"{s.value} is not a finite number", "")]
    return value, []


def _date(s: Scalar, partial: bool) -> tuple[Any, list[Problem]]:
    text, probs = _text(s)
    if text is None:
        return None, probs
    pattern, form = (_PARTIAL_DATE, "YYYY, YYYY-MM or YYYY-MM-DD") if partial else (
        _DATE, "YYYY-MM-DD")
    bad = [problem(s.loc, "V402", f"{text!r} is not a valid date", f"write it as {form}")]
    if not pattern.match(text):
        return None, bad
    padded = text + "-01" * (2 - text.count("-"))
    try:
        day = dt.date.fromisoformat(padded)
    except ValueError:
        return None, bad
    return (text if partial else day), []


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


def _period(s: Scalar) -> tuple[str | None, list[Problem]]:
    text, probs = _text(s)
    if text is None:
        return None, probs
    if period_bounds(text) is None:
        return None, [problem(s.loc, "V403", f"{text!r} is not a valid period",
                              "write YYYY, YYYY-MM, YYYY-MM-DD, or A/B with A before B")]
    return text, []


def valid_url(text: str) -> bool:
    if any(c.isspace() for c in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _url(s: Scalar) -> tuple[str | None, list[Problem]]:
    text, probs = _text(s)
    if text is None:
        return None, probs
    if not valid_url(text):
        return None, [problem(s.loc, "V401", f"{text!r} is not an http or https URL",
                              "give the page's full http:// or https:// address")]
    return text, []


def _pattern(s: Scalar, pattern: re.Pattern[str], what: str) -> tuple[str | None, list[Problem]]:
    text, probs = _text(s)
    if text is None:
        return None, probs
    if not pattern.match(text):
        return None, [problem(s.loc, "S104", f"{text!r} is not {what}", "")]
    return text, []


def _scalar(spec: Field, s: Scalar) -> tuple[Any, list[Problem]]:
    t = spec.type
    if t == "text":
        return _text(s)
    if t == "number":
        return _number(s)
    if t in ("date", "partial-date"):
        return _date(s, partial=t == "partial-date")
    if t == "period":
        return _period(s)
    if t == "url":
        return _url(s)
    if t == "lang":
        return _pattern(s, _LANG, "a BCP 47 language tag such as en or pt-BR")
    if t == "wikidata":
        return _pattern(s, _WIKIDATA, "a Wikidata Q-number such as Q42")
    if t == "slug":
        text, probs = _text(s)
        if text is not None and not SLUG.match(text):
            return None, [problem(s.loc, "I201", f"{text!r} is not a lowercase slug",
                                  "use a-z, 0-9 and single hyphens")]
        return text, probs
    if t == "ref":
        text, probs = _text(s)
        return (m.Ref(text, s.loc) if text is not None else None), probs
    if t == "enum":
        text, probs = _text(s)
        if text is not None and text not in spec.choices:
            close = difflib.get_close_matches(text, spec.choices, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            return None, [problem(s.loc, "S104", f"{text!r} is not allowed here",
                                  hint + "one of: " + ", ".join(spec.choices))]
        return text, probs
    raise AssertionError(t)  # pragma: no cover


def _is_null(node: Node) -> bool:
    return isinstance(node, Scalar) and scalar_kind(node) == "null"


def _one(spec: Field, node: Node) -> tuple[Any, list[Problem]]:
    if spec.type == "object":
        assert spec.obj is not None
        if not isinstance(node, Mapping):
            return None, [problem(node.loc, "S103",
                                  f"expected a mapping ({spec.obj.name}), got {_describe(node)}")]
        return build(spec.obj, node)
    if not isinstance(node, Scalar):
        return None, [problem(node.loc, "S103", f"expected a single value, got {_describe(node)}")]
    return _scalar(spec, node)


def build(spec: ObjectSpec, node: Mapping) -> tuple[Any, list[Problem]]:
    """A model object from a mapping, with a problem for every field that is not as specified."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    locs: dict[str, Loc] = {}
    for name, (key, value_node) in node.items.items():
        fspec = spec.fields.get(name)
        if fspec is None:
            close = difflib.get_close_matches(name, list(spec.fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else (
                "known fields: " + ", ".join(spec.fields))
            problems.append(problem(key.loc, "S101", f"unknown field '{name}' in {spec.name}",
                                    hint))
            continue
        locs[name] = value_node.loc
        if _is_null(value_node):
            continue
        if fspec.many:
            if not isinstance(value_node, Sequence):
                problems.append(problem(value_node.loc, "S103",
                                        f"'{name}' must be a list, got {_describe(value_node)}",
                                        f"write it as a list: {name}: [ … ]"))
                continue
            items = []
            for i, item in enumerate(value_node.items):
                locs[f"{name}[{i}]"] = item.loc
                value, probs = _one(fspec, item)
                problems.extend(probs)
                if value is not None:
                    items.append(value)
            values[name] = items
        else:
            value, probs = _one(fspec, value_node)
            problems.extend(probs)
            if value is not None:
                values[name] = value
    for name, fspec in spec.fields.items():
        if not fspec.required or (name in values and values[name] != []):
            continue
        if name not in locs:
            problems.append(problem(node.loc, "S102", f"{spec.name} needs '{name}'", fspec.doc))
        elif _is_null(value := node.items[name][1]) or (
            isinstance(value, Sequence) and not value.items
        ):
            problems.append(problem(locs[name], "S102",
                                    f"'{name}' needs a value" + (" (at least one item)"
                                                                 if fspec.many else ""),
                                    fspec.doc))
    return spec.cls(**values, loc=node.loc, locs=locs), problems


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


def iter_specs(spec: ObjectSpec) -> Iterator[ObjectSpec]:
    """A spec and every object spec nested in it, outermost first."""
    yield spec
    for f in spec.fields.values():
        if f.obj is not None:
            yield from iter_specs(f.obj)
