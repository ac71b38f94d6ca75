"""The canonical form of a record file (docs/editing.md), made with ruamel.yaml's round trip,
so that every comment stays where it was:
- keys in the order of kb/specs.py's specs, unknown keys after them in their own order;
- free text (text and URL fields, and fields the schema does not know) in double quotes;
  identifiers, choices, dates and periods plain, unless plain would read as something else;
  block scalars (`|`, `>`) as written;
- two-space indentation, list items indented by two (`  - source: …`);
- scalars never folded (a quote stays on one line, so it can be searched for); a flow
  collection (`[a, b]`, `{by: x}`) stays flow while its line fits in 100 columns, else block;
- `null` for nothing; the `yaml-language-server` modeline at the top.

kb.fmt rewrites files into it (after proving each rewrite); kb.new writes new files in it.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
)

from kb.jsonschema import core_value, modeline
from kb.problems import Loc
from kb.specs import RECORDS, Field, ObjectSpec
from kb.yamlstrict import Scalar, parse, scalar_kind

WIDTH = 100
_QUOTED_TYPES = frozenset({"text", "url"})
# text fields that hold a name-like word (an id, an editor's handle): plain, like identifiers
_WORD_FIELDS = frozenset({"id", "by"})
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")
_MODELINE = "# yaml-language-server:"
_NOWHERE = Loc("", 0, 0)


class _Representer(RoundTripRepresenter):
    pass


def _represent_none(rep: RoundTripRepresenter, data: None) -> Any:
    # ruamel writes an empty value for None inside a mapping; `null` says it on purpose
    return rep.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(type(None), _represent_none)


class _Resolver(VersionedResolver):
    """YAML 1.2 core schema as kb reads it: no timestamps, so dates stay text as written."""

    @property
    def versioned_resolver(self) -> Any:
        table = super().versioned_resolver
        return {ch: [(tag, rx) for tag, rx in rules if tag != "tag:yaml.org,2002:timestamp"]
                for ch, rules in table.items()}


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.Representer = _Representer
    y.Resolver = _Resolver
    y.width = 1 << 16  # never fold scalars; flow collections are wrapped by _fit below
    y.indent(mapping=2, sequence=4, offset=2)
    y.preserve_quotes = True
    return y


# --- the canonical form ------------------------------------------------------------------


def _scalar_style(value: str, ftype: str | None) -> str:
    if isinstance(value, LiteralScalarString | FoldedScalarString):
        kept: str = value  # block scalars (| and >) stay as written
        return kept
    if ftype not in _QUOTED_TYPES and ftype is not None and _PLAIN_SAFE.match(value) and (
        scalar_kind(Scalar(value, True, _NOWHERE)) == "str"
    ):
        return str(value)
    quoted: str = DoubleQuotedScalarString(value)
    return quoted


def _canon(value: Any, f: Field | None, indent: int) -> Any:
    """The value with canonical quoting and key order; collections are changed in place."""
    if isinstance(value, CommentedMap):
        _canon_map(value, f.obj if f is not None else None, indent)
        return value
    if isinstance(value, CommentedSeq):
        for i, item in enumerate(value):
            value[i] = _canon(item, f, indent + 2)
        return value
    if isinstance(value, str):
        return _scalar_style(value, f.type if f is not None else None)
    return value


def _canon_map(cm: CommentedMap, spec: ObjectSpec | None, indent: int) -> None:
    fields = spec.fields if spec is not None else {}
    for key in list(cm):
        f = fields.get(str(key))
        if f is not None and key in _WORD_FIELDS:
            f = Field("slug", f.required, f.many, f.choices, f.obj, f.doc)
        cm[key] = _canon(cm[key], f, indent + 2)
    order = [k for k in fields if k in cm] + [k for k in cm if k not in fields]
    if order != list(cm):
        _reorder(cm, order)
    for key in cm:
        _fit(cm, key, indent)


def _split(token: Any) -> tuple[str, str]:
    """A key's trailing comment: the part on its own line, and the lines that lead the next key."""
    if token is None:
        return "\n", ""
    head, _, rest = token.value.partition("\n")
    return head + "\n", rest


def _reorder(cm: CommentedMap, order: list[Any]) -> None:
    """Reorder keys; full-line comments stay in front of the key they were in front of."""
    old = list(cm)
    scalar_keys = {k for k in old if not isinstance(cm[k], CommentedMap | CommentedSeq)
                   or cm[k].fa.flow_style()}
    tokens = {k: cm.ca.items.get(k, [None] * 4)[2] for k in old}
    own, lead = {}, {}
    after_last = ""
    for i, k in enumerate(old):
        if k not in scalar_keys:
            continue
        own[k], rest = _split(tokens[k])
        if i + 1 < len(old):
            lead[old[i + 1]] = rest
        else:
            after_last = rest
    for k in order:
        cm.move_to_end(k)
    new = list(cm)
    for j, k in enumerate(new):
        if k not in scalar_keys:
            continue
        nxt = new[j + 1] if j + 1 < len(new) else None
        text = own[k] + (lead.pop(nxt, "") if nxt is not None else after_last)
        if j == 0 and new[0] != old[0]:
            text = own[k] + lead.pop(k, "") + text[len(own[k]):]
        _set_token(cm, k, tokens[k], text)
    leftover = "".join(lead.values())  # leads of keys whose neighbour holds a block value
    if leftover:
        last = next((k for k in reversed(new) if k in scalar_keys), None)
        if last is not None:
            token = cm.ca.items.get(last, [None] * 4)[2]
            _set_token(cm, last, token, (token.value if token else "\n") + leftover)


def _set_token(cm: CommentedMap, key: Any, token: Any, text: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    if text == "\n":
        if key in cm.ca.items:
            cm.ca.items[key][2] = None
        return
    if token is None:
        token = CommentToken(text, CommentMark(0), None)
    else:
        token.value = text
    cm.ca.items.setdefault(key, [None] * 4)[2] = token


def _flow_text(value: Any) -> str:
    if isinstance(value, CommentedMap):
        return "{" + ", ".join(f"{k}: {_flow_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, CommentedSeq):
        return "[" + ", ".join(_flow_text(v) for v in value) + "]"
    if isinstance(value, DoubleQuotedScalarString):
        text: str = value
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    return str(value)


def _fit(cm: CommentedMap, key: Any, indent: int) -> None:
    """A flow collection whose line would pass WIDTH becomes block style, with its children."""
    value = cm[key]
    if not isinstance(value, CommentedMap | CommentedSeq) or not value.fa.flow_style():
        return
    if not len(value) or indent + len(f"{key}: ") + len(_flow_text(value)) <= WIDTH:
        return
    _to_block(value)


def _to_block(value: Any) -> None:
    if isinstance(value, CommentedMap | CommentedSeq):
        value.fa.set_block_style()
        for child in value.values() if isinstance(value, CommentedMap) else value:
            _to_block(child)


# --- checking a rewrite -------------------------------------------------------------------


_SCAN_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # libyaml: marks count characters


def comments(text: str) -> Counter[str]:
    """Every comment of a YAML text, found between the scanner's tokens (not by ruamel)."""
    found: Counter[str] = Counter()
    end = 0
    for token in yaml.scan(text, Loader=_SCAN_LOADER):
        gap = text[end : token.start_mark.index]
        found.update(c.rstrip() for c in re.findall(r"#[^\n]*", gap))
        end = max(end, token.end_mark.index)
    found.update(c.rstrip() for c in re.findall(r"#[^\n]*", text[end:]))
    return found


def data_of(text: str) -> str:
    """The data of a text, key order aside; repr so NaN equals itself and 1, 1.0, True differ."""
    root, _ = parse(text, "")
    return repr(_sorted(core_value(root)))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((k, _sorted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


# --- whole files: a record rewritten, a new record -----------------------------------------


def has_modeline(text: str) -> bool:
    for line in text.splitlines():
        if line.startswith(_MODELINE):
            return True
        if line.strip() and not line.startswith("#"):
            return False
    return False


def format_text(text: str, kind: str, shown: str) -> str:
    """The canonical text of a record file; raises ValueError when it cannot be made safely."""
    data = _yaml().load(text)
    if not isinstance(data, CommentedMap):
        raise ValueError("the file holds no mapping")
    _canon_map(data, RECORDS[kind], 0)
    out = io.StringIO()
    _yaml().dump(data, out)
    new = out.getvalue()
    if not has_modeline(new):
        new = modeline(kind, shown) + "\n" + new
    return new


def render_record(kind: str, data: dict[str, Any], relpath: str) -> str:
    """A new record file in canonical form: lists of words in flow style ([a, b]), lists of
    objects in block style, small objects (quantity, reviews, related) in flow style."""
    cm = _build(data, top=True)
    _canon_map(cm, RECORDS[kind], 0)
    out = io.StringIO()
    _yaml().dump(cm, out)
    return modeline(kind, relpath) + "\n" + out.getvalue()


_FLOW_OBJECTS = frozenset({"quantity", "reviews", "related"})


def _build(value: Any, top: bool = False, name: str = "") -> Any:
    if isinstance(value, dict):
        cm = CommentedMap((k, _build(v, name=k)) for k, v in value.items())
        if name in _FLOW_OBJECTS:
            cm.fa.set_flow_style()
        return cm
    if isinstance(value, list):
        seq = CommentedSeq(_build(v, name=name) for v in value)
        if not any(isinstance(v, dict) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value
