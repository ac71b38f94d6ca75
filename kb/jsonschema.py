"""`kb schema`: JSON Schema (draft-07) for claims, sources and entities, made from kb.specs.

The schemas serve editors (completion and errors in editors that read the
`# yaml-language-server: $schema=…` modeline); `kb check` stays the authority. They are generated
from the same specs the loader reads, so they cannot drift from it, and a test fails when the
committed copies in schema/ are stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.specs import RECORDS, SLUG_MAX, Field, ObjectSpec
from kb.yamlstrict import Mapping, Node, Scalar, scalar_kind

DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_DIR = "schema"

# The loader's checks restated as ECMA 262 patterns; they are looser than the loader where a
# pattern cannot say it (that a date exists, that an interval's start is not after its end).
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
PARTIAL_DATE_PATTERN = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"
PERIOD_PATTERN = (r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?"
                  r"(/[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?)?$")
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
LANG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
WIKIDATA_PATTERN = r"^Q[1-9][0-9]*$"
TEXT_PATTERN = r"\S"  # not empty, not only white space (S105)


def core_value(node: Node | None) -> Any:
    """A node tree as plain data, typed by the YAML 1.2 core schema: what a JSON Schema sees.

    Dates stay text, as they do for the loader; `010` and `0o10` stay numbers.
    """
    if node is None:
        return None
    if isinstance(node, Mapping):
        return {k: core_value(v) for k, (_, v) in node.items.items()}
    if not isinstance(node, Scalar):
        return [core_value(item) for item in node.items]
    kind = scalar_kind(node)
    if kind == "null":
        return None
    if kind == "bool":
        return node.value.lower() == "true"
    if kind == "int":
        return int(node.value, 0) if node.value.startswith(("0o", "0x")) else int(node.value)
    if kind == "float":
        return float(node.value.replace(".inf", "inf").replace(".Inf", "inf")
                     .replace(".INF", "inf").replace(".nan", "nan").replace(".NaN", "nan")
                     .replace(".NAN", "nan"))
    return node.value


def schema_path(kind: str) -> str:
    return f"{SCHEMA_DIR}/{kind}.schema.json"


def modeline(kind: str, relpath: str) -> str:
    """The editor modeline for a record file at `relpath` (relative to the knowledge base)."""
    up = "../" * relpath.count("/")
    return f"# yaml-language-server: $schema={up}{schema_path(kind)}"


def _scalar(f: Field) -> dict[str, Any]:
    t = f.type
    if t == "text":
        return {"type": "string", "pattern": TEXT_PATTERN}
    if t == "number":
        return {"type": "number"}
    if t == "date":
        return {"type": "string", "pattern": DATE_PATTERN, "format": "date"}
    if t == "partial-date":
        return {"type": "string", "pattern": PARTIAL_DATE_PATTERN}
    if t == "period":
        return {"type": "string", "pattern": PERIOD_PATTERN}
    if t == "url":
        return {"type": "string", "pattern": URL_PATTERN, "format": "uri"}
    if t in ("ref", "slug"):
        return {"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX}
    if t == "enum":
        return {"type": "string", "enum": list(f.choices)}
    if t == "lang":
        return {"type": "string", "pattern": LANG_PATTERN}
    if t == "wikidata":
        return {"type": "string", "pattern": WIKIDATA_PATTERN}
    raise AssertionError(t)  # pragma: no cover


def _object(spec: ObjectSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, f in spec.fields.items():
        properties[name] = _field(name, f)
    out: dict[str, Any] = {"type": "object", "description": spec.doc, "properties": properties}
    required = [name for name, f in spec.fields.items() if f.required]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def _field(name: str, f: Field) -> dict[str, Any]:
    if f.type == "object":
        assert f.obj is not None
        one = _object(f.obj)
    elif name == "id":  # typed text in the spec; rule I201 makes it a slug
        one = _scalar(Field("slug"))
    else:
        one = _scalar(f)
    if f.many:
        one = {"type": "array", "items": one}
        if f.required:
            one["minItems"] = 1
    if not f.required:
        # the loader treats an optional field written as null like a missing one
        one = _nullable(one)
    return {"description": f.doc, **one}


def _nullable(one: dict[str, Any]) -> dict[str, Any]:
    one = dict(one)
    one["type"] = [one["type"], "null"]
    if "enum" in one:
        one["enum"] = [*one["enum"], None]
    return one


def record_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one record kind: claim, source or entity."""
    spec = RECORDS[kind]
    body = _object(spec)
    return {"$schema": DRAFT, "title": f"claimkb {kind}", **body}


def render(kind: str) -> str:
    return json.dumps(record_schema(kind), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class SchemaFile:
    path: Path
    up_to_date: bool


def write_schemas(out: Path, check_only: bool = False) -> list[SchemaFile]:
    """Write (or, with check_only, compare) schema/<kind>.schema.json for every record kind."""
    results = []
    for kind in RECORDS:
        path = out / f"{kind}.schema.json"
        text = render(kind)
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        fresh = current == text
        if not fresh and not check_only:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        results.append(SchemaFile(path, fresh))
    return results


def run(out: Path, check_only: bool) -> int:
    """`kb schema`: write the schemas (exit 0), or with --check list stale ones (exit 1)."""
    import click

    stale = 0
    for f in write_schemas(out, check_only):
        if f.up_to_date:
            continue
        stale += 1
        click.echo(f"{'stale' if check_only else 'wrote'} {f.path}")
    if check_only and stale:
        click.echo("run `kb schema` to regenerate the JSON Schemas", err=True)
        return 1
    return 0
