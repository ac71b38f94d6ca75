"""kb schema: JSON Schemas generated from kb/specs.py, committed, and true to the seed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.jsonschema import core_value, modeline, record_schema, render
from kb.load import discover
from kb.specs import RECORDS
from kb.yamlstrict import parse

from conftest import REPO

KINDS = tuple(RECORDS)


def _validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((REPO / "schema" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema,
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def _load(text: str) -> Any:
    root, problems = parse(text, "x.yaml")
    assert not problems, problems
    return core_value(root)  # YAML 1.2 core schema: dates stay text


@pytest.mark.parametrize("kind", KINDS)
def test_committed_schema_is_current(kind: str) -> None:
    committed = (REPO / "schema" / f"{kind}.schema.json").read_text(encoding="utf-8")
    assert committed == render(kind), "schema/ is stale: run `kb schema`"


def test_schema_follows_the_specs() -> None:
    claim = record_schema("claim")
    assert claim["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert claim["additionalProperties"] is False
    assert claim["required"] == ["id", "claim", "kind", "appearances"]
    assert claim["properties"]["appearances"]["minItems"] == 1
    evidence = claim["properties"]["evidence"]["items"]
    assert evidence["properties"]["stance"]["enum"] == list(
        RECORDS["claim"].fields["evidence"].obj.fields["stance"].choices)  # type: ignore[union-attr]
    assert evidence["additionalProperties"] is False
    source = record_schema("source")
    assert source["properties"]["url"]["pattern"].startswith("^https?://")
    assert "null" in record_schema("entity")["properties"]["wikidata"]["type"]


def test_every_seed_file_validates_and_carries_the_modeline() -> None:
    files = discover(REPO)
    assert len(files) >= 30
    validators = {k: _validator(k) for k in KINDS}
    for kind, path in files:
        text = path.read_text(encoding="utf-8")
        errors = [e.message for e in validators[kind].iter_errors(_load(text))]
        assert not errors, f"{path}: {errors}"
        rel = path.relative_to(REPO).as_posix()
        assert text.splitlines()[0] == modeline(kind, rel), path


@pytest.mark.parametrize(("kind", "text", "why"), [
    ("claim", "id: x\nclaim: c\nkind: fact\nappearances: []\n", "minItems"),
    ("claim", "id: x\nclaim: c\nkind: guess\nappearances: [{source: a, quote: q}]\n", "enum"),
    ("claim", "id: x\nclaim: c\nkind: fact\ncolour: red\n"
              "appearances: [{source: a, quote: q}]\n", "additionalProperties"),
    ("claim", 'id: x\nclaim: c\nkind: fact\nperiod: 2024\n'
              'appearances: [{source: a, quote: q}]\n', "type"),
    ("source", "id: s\ntitle: t\nkind: report\nurl: javascript:alert(1)\n", "pattern"),
    ("entity", "id: Bad_Id\nname: n\nkind: person\n", "pattern"),
    ("entity", "id: e\nname: n\nkind: person\nwikidata: Q0\n", "pattern"),
])
def test_schema_rejects_what_kb_check_rejects(kind: str, text: str, why: str) -> None:
    errors = list(_validator(kind).iter_errors(_load(text)))
    assert errors and any(e.validator == why for e in errors), [e.message for e in errors]


def test_kb_schema_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "schema"
    runner = CliRunner()
    stale = runner.invoke(main, ["schema", "--out", str(out), "--check"])
    assert stale.exit_code == 1, stale.output
    result = runner.invoke(main, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{k}.schema.json" for k in sorted(KINDS)]
    fresh = runner.invoke(main, ["schema", "--out", str(out), "--check"])
    assert fresh.exit_code == 0, fresh.output
    (out / "claim.schema.json").write_text("{}", encoding="utf-8")
    assert runner.invoke(main, ["schema", "--out", str(out), "--check"]).exit_code == 1
