"""The fast paths of the parse (yamlstrict._walk, schema._build) against their definitions.

yamlstrict walks the usual shape of a record without a call per node and hands anything unusual
(anchors, aliases, tags, deep nesting) to _Builder.node, the general walk: both must give the same
tree and the same problems. schema's value builders skip scalar_kind for most values: they must
still agree with it.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from kb import model as m
from kb.problems import Loc, Problem
from kb.schema import _is_null, _text, build, build_record
from kb.specs import CLAIM, ENTITY, SOURCE, Field, ObjectSpec
from kb.yamlstrict import MAX_DEPTH, Mapping, Node, Scalar, Sequence, _parse, scalar_kind

from conftest import MINIMAL

F = "claims/x.yaml"
BAD = Path(__file__).parent / "bad"

TRICKY = [
    "",
    "# only a comment\n",
    "---\n",
    "a: 1\n",
    "year: 2024\nquoted: \"2024\"\nsingle: '2024'\n",
    "n1: null\nn2: Null\nn3: NULL\nn4: ~\nn5:\nn6: 'null'\nn7: nulls\nn8: \"\"\n",
    "b: [true, True, TRUE, false, False, FALSE, yes, no, on, off, 'true']\n",
    "f: [1.5, -2e3, +.5, .inf, -.Inf, .nan, 1e, 0x1F, 0o17, 007, 1_000, '1.5']\n",
    "plain: a long\n  plain text\n  over lines\nafter: x\n",
    "lit: |\n  one\n  two\nfold: >-\n  three\n  four\nkeep: |+\n  five\n\nnext: x\n",
    "name: Владимир Милов\nemoji: \"\U0001F600 é\"\nkey é: ü\n",
    "a: 1\nb: 2\na: 3\nb: {c: 1, c: 2}\n",
    "a: &x 1\nb: *x\n",
    "a: &m {k: v}\nb: *m\nc: &s [1, 2]\n",
    "*x : 1\n",
    "a: !!str 2024\nb: !custom x\nc: ! 2024\nd: !!map {k: v}\ne: !!seq [1]\n",
    "? [a, b]\n: c\n? {k: v}\n: d\ne: f\n",
    "- a\n- [b, [c, {d: e}]]\n- {f: [g, h]}\n-\n- - i\n  - j\n",
    "[1, 2, 3]\n",
    "just text\n",
    "a: 1\n---\nb: 2\n---\nc: 3\n",
    "a: 1\n...\n---\nb: 2\n",
    "a:\n  b:\n    c:\n      - d: [e, {f: g}]\n",
    "a: [\n",
    "a: b: c\n",
    "a:\tb\n",
    "\ta: b\n",
    "a: \"unterminated\n",
    "a: [" * 3 + "]" * 3 + "\n",
    "a: " + "[" * (MAX_DEPTH + 20) + "]" * (MAX_DEPTH + 20) + "\n",
    "a: " + "{b: " * (MAX_DEPTH + 5) + "c" + "}" * (MAX_DEPTH + 5) + "\n",
    "- " * 5 + "x\n",
    "a: &anchor\n  - &b [1]\n  - *b\n",
    "{a: 1, b: [2, 3], c: {d: 4}}\n",
    "k: v # a comment\n# another\nl: w\n",
    "k: 'it''s'\nl: \"esc \\t \\u00e9 \\n\"\n",
]


def shape(node: Any) -> Any:
    """A node tree with every type made visible: a Scalar equals a plain tuple, a Loc too."""
    if isinstance(node, Mapping):
        return (type(node), type(node.loc), node.loc,
                [(k, shape(key), shape(value)) for k, (key, value) in node.items.items()])
    if isinstance(node, Sequence):
        return (type(node), type(node.loc), node.loc, [shape(item) for item in node.items])
    if isinstance(node, Scalar):
        return (type(node), type(node.loc), node.value, node.plain, node.loc)
    assert node is None
    return None


def both(text: str) -> tuple[tuple[Any, list[Problem]], tuple[Any, list[Problem]]]:
    fast, fast_problems = _parse(text, F, fast=True)
    general, general_problems = _parse(text, F, fast=False)
    return (shape(fast), fast_problems), (shape(general), general_problems)


@pytest.mark.parametrize("text", TRICKY)
def test_the_fast_walk_builds_what_the_general_one_does(text: str) -> None:
    fast, general = both(text)
    assert fast == general


def test_the_tricky_inputs_reach_both_walks() -> None:
    """The list above covers the problems the general walk exists for."""
    found = {p.code for text in TRICKY for p in _parse(text, F, fast=True)[1]}
    assert {"Y002", "Y003", "Y004", "Y005", "Y006", "Y007", "S103"} <= found


def test_the_fast_walk_keeps_quoting_nulls_and_places() -> None:
    root, problems = _parse("year: 2024\nq: \"2024\"\nn: ~\nl:\n  - a\n  - 'b'\n", F, fast=True)
    assert problems == []
    assert isinstance(root, Mapping)
    year, q, n, lst = (root.items[k][1] for k in ("year", "q", "n", "l"))
    assert year == Scalar("2024", True, Loc(F, 1, 7)) and scalar_kind(year) == "int"
    assert q == Scalar("2024", False, Loc(F, 2, 4)) and scalar_kind(q) == "str"
    assert isinstance(n, Scalar) and scalar_kind(n) == "null"
    assert isinstance(lst, Sequence) and [i.plain for i in lst.items] == [True, False]  # type: ignore[union-attr]
    assert root.items["l"][0].loc == Loc(F, 4, 1)
    assert type(year.loc) is Loc and type(root.items["year"][0]) is Scalar


def _corpus() -> list[str]:
    texts = [t for name, t in MINIMAL.items() if name.endswith(".yaml")]
    for path in sorted(BAD.rglob("*.yaml")):
        data = path.read_bytes()
        try:
            texts.append(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            continue
    return texts


def test_the_bad_corpus_and_minimal_kb_parse_alike_both_ways() -> None:
    texts = _corpus()
    assert len(texts) > 40
    for text in texts:
        fast, general = both(text)
        assert fast == general, text


_PIECES = ["&a ", "*a", "!t ", "!!str ", "! ", "---\n", "'", '"', "\t", "null", "~", "2024",
           "0x1F", "- ", ": ", "\n  - ", "{", "}", "[", "]", "? ", "|\n  x\n", ">-\n  y\n",
           "é", "\U0001F600", "#", " ", "\n", "true", ".inf", "1e3", "id: y\n"]


def test_mutated_records_parse_alike_both_ways() -> None:
    """Seeded random edits of real records: whatever the walks meet, they agree."""
    rnd = random.Random(7)
    texts = [t for name, t in MINIMAL.items() if name.endswith(".yaml")]
    problems_seen = 0
    for _ in range(400):
        text = rnd.choice(texts)
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(len(text) + 1)
            if rnd.random() < 0.6:
                text = text[:pos] + rnd.choice(_PIECES) + text[pos:]
            else:
                text = text[:pos] + text[pos + rnd.randint(1, 12):]
        fast, general = both(text)
        assert fast == general, text
        problems_seen += bool(fast[1])
    assert problems_seen > 50  # the edits did break things, so the general walk was used


# ---- schema: the shortcuts of the value builders ----------------------------------------------

VALUES = ["", " ", "\u00a0", "\t x", "text", "2024", "2024-01-02", "-1", "+.5", ".5", "1e3", "1e",
          "0x1F", "0o17", "007", ".inf", "-.Inf", ".nan", ".NaN", "null", "Null", "NULL", "nULL",
          "~", "~x", "nulls", "n", "N", "true", "True", "TRUE", "tRUE", "false", "yes", "no", "t",
          "f", "+", "-", ".", "..", "1.2.3", "Ünïcode", "\U0001F600", "1_000", "2024\n"]


@pytest.mark.parametrize("plain", [True, False])
def test_text_agrees_with_scalar_kind(plain: bool) -> None:
    for v in VALUES:
        s = Scalar(v, plain, Loc(F, 1, 1))
        out: list[Problem] = []
        got = _text(s, out)
        if scalar_kind(s) != "str":
            assert (got, [p.code for p in out]) == (None, ["S103"]), v
        elif not v.strip():
            assert (got, [p.code for p in out]) == (None, ["S105"]), v
        else:
            assert (got, out) == (v, []), v
        assert _is_null(s) == (scalar_kind(s) == "null"), v


CLAIM_TEXT = MINIMAL["claims/trade-record-2024.yaml"].replace("tags: [trade]\n", "")


def _claim(extra: str) -> tuple[Any, list[Problem]]:
    root, problems = _parse(CLAIM_TEXT + extra, F, fast=True)
    assert problems == []
    return build_record("claim", root, F)


@pytest.mark.parametrize(("extra", "code", "line"), [
    ("resolves_by: 2027-01-01\n", None, 0),
    ("resolves_by: \"2027-01-01\"\n", None, 0),
    ("resolves_by: 2027-02-30\n", "V402", 17),
    ("resolves_by: 2027\n", "S103", 17),
    ("resolves_by: ~\n", None, 0),
    ("resolves_by: Null\n", None, 0),
    ("resolves_by:\n", None, 0),
    ("resolves_by: \"\"\n", "S105", 17),
    ("resolves_by: nulls\n", "V402", 17),
    ("resolves_by: [2027-01-01]\n", "S103", 17),
    ("verdict: {status: true, summary: x}\n", "S103", 17),
    ("verdict: {status: refuted, summary: \"true\"}\n", None, 0),
    ("verdict: refuted\n", "S103", 17),
    ("related: [{claim: a, relation: refines}, null, {claim: \"1\", relation: context}]\n",
     "S103", 17),
    ("related: {claim: a, relation: refines}\n", "S103", 17),
])
def test_build_of_tricky_values(extra: str, code: str | None, line: int) -> None:
    record, problems = _claim(extra)
    assert isinstance(record, m.Claim)
    assert [(p.code, p.loc.line) for p in problems] == ([(code, line)] if code else [])
    field = extra.split(":")[0]
    assert record.wrote(field)


def test_built_values_have_their_exact_types_and_places() -> None:
    record, problems = _claim("resolves_by: 2027-01-01\ntags: [trade, null]\n")
    assert [(p.code, p.loc.line, p.loc.col) for p in problems] == [("S103", 18, 15)]
    assert isinstance(record, m.Claim)
    assert type(record.claimant) is m.Ref and type(record.claimant.loc) is Loc
    assert record.claimant == m.Ref("someone", Loc(F, 4, 11))
    assert record.about == [m.Ref("russia", Loc(F, 5, 9))]
    assert record.quantity == m.Quantity(value=245e9, unit="USD")
    assert record.resolves_by.isoformat() == "2027-01-01"  # type: ignore[union-attr]
    assert record.tags == ["trade"]
    assert record.at("tags[1]") == Loc(F, 18, 15)
    assert record.at("appearances[0]") == Loc(F, 9, 5)
    copy = pickle.loads(pickle.dumps(record))
    assert copy == record and copy.at("tags[1]") == Loc(F, 18, 15)


def test_required_fields_missing_null_or_empty() -> None:
    root, _ = _parse("id: x\nname: ~\nkind: person\naliases: []\n", "entities/x.yaml", True)
    entity, problems = build_record("entity", root, "entities/x.yaml")
    assert isinstance(entity, m.Entity) and entity.aliases == [] and entity.wrote("name")
    assert [(p.code, p.message, p.loc.line) for p in problems] == [
        ("S102", "'name' needs a value", 2)]
    root, _ = _parse("id: x\ntitle: t\nkind: report\nurl: \"\"\nbogus: 1\n", "sources/x.yaml",
                     True)
    source, problems = build_record("source", root, "sources/x.yaml")
    assert isinstance(source, m.Source)
    assert [(p.code, p.loc.line) for p in problems] == [("S105", 4), ("S101", 5)]
    assert {ENTITY.name, SOURCE.name, CLAIM.name} == {"entity", "source", "claim"}


def test_each_spec_gets_its_own_plan() -> None:
    """Plans are cached by spec: two specs with one field name must not share one."""

    @dataclasses.dataclass
    class One(m.Located):
        x: Any = None

    as_text = ObjectSpec("one", One, {"x": Field("text")})
    as_number = ObjectSpec("one", One, {"x": Field("number")})
    root, _ = _parse("x: 2024\n", F, True)
    assert isinstance(root, Mapping)
    assert [p.code for p in build(as_text, root)[1]] == ["S103"]
    value, problems = build(as_number, root)
    assert (value.x, problems) == (2024.0, [])
    assert [p.code for p in build(as_text, root)[1]] == ["S103"]


def _nodes(node: Node) -> int:
    if isinstance(node, Mapping):
        return 1 + sum(_nodes(k) + _nodes(v) for k, v in node.items.values())
    if isinstance(node, Sequence):
        return 1 + sum(_nodes(i) for i in node.items)
    return 1


def test_deep_nesting_is_cut_at_the_same_depth_both_ways() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 3) + "]" * (MAX_DEPTH + 3) + "\n"
    fast, problems = _parse(text, F, fast=True)
    general, _ = _parse(text, F, fast=False)
    assert [p.code for p in problems] == ["Y002"]
    assert fast is not None and _nodes(fast) == _nodes(general) == MAX_DEPTH + 2  # type: ignore[arg-type]
