"""The strict YAML reader (kb/yamlstrict.py) and the schema builder (kb/schema.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from kb import model as m
from kb.load import parse_file
from kb.problems import Loc, Problem
from kb.schema import build, build_record, period_bounds, valid_url
from kb.specs import CLAIM, QUANTITY
from kb.yamlstrict import Mapping, Node, Scalar, Sequence, decode, parse, scalar_kind

F = "claims/x.yaml"


def codes(problems: list[Problem]) -> list[tuple[str, int, int]]:
    return [(p.code, p.loc.line, p.loc.col) for p in problems]


def tree(text: str) -> Node:
    root, problems = parse(text, F)
    assert problems == [], problems
    assert root is not None
    return root


def value(node: Node, *path: str | int) -> Node:
    for step in path:
        if isinstance(step, int):
            assert isinstance(node, Sequence)
            node = node.items[step]
        else:
            assert isinstance(node, Mapping)
            node = node.items[step][1]
    return node


# ---- decode --------------------------------------------------------------------------------

def test_decode_drops_the_bom_and_normalises_line_ends() -> None:
    text, problems = decode("\ufeffa: 1\r\nb: 2\rc: 3\n".encode(), F)
    assert problems == []
    assert text == "a: 1\nb: 2\nc: 3\n"


def test_decode_keeps_a_bom_free_file_as_it_is() -> None:
    text, problems = decode("name: Владимир Милов\n".encode(), F)
    assert (text, problems) == ("name: Владимир Милов\n", [])


@pytest.mark.parametrize(("data", "line", "col", "byte"), [
    (b"\xff", 1, 1, 0xFF),
    (b"a: b\nname: Ren\xe9\n", 2, 10, 0xE9),
    ("a: é\nb: ü\n\nx: ".encode() + b"\x80", 4, 4, 0x80),
    (b"a: \xe2\x82\n", 1, 4, 0xE2),  # a truncated three-byte sequence
])
def test_decode_reports_the_first_bad_byte(data: bytes, line: int, col: int, byte: int) -> None:
    text, problems = decode(data, F)
    assert text is None
    assert codes(problems) == [("Y001", line, col)]
    assert f"0x{byte:02x}" in problems[0].message


# ---- YAML 1.2 typing -----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "kind"), [
    ("no", "str"), ("No", "str"), ("on", "str"), ("off", "str"), ("yes", "str"), ("y", "str"),
    ("n", "str"), ("Y", "str"),
    ("true", "bool"), ("False", "bool"), ("TRUE", "bool"),
    ("null", "null"), ("~", "null"), ("", "null"), ("NULL", "null"),
    ("2024", "int"), ("010", "int"), ("-7", "int"), ("0o17", "int"), ("0x1F", "int"),
    ("1.10", "float"), ("245e9", "float"), ("1.", "float"), (".5", "float"), (".inf", "float"),
    ("-.Inf", "float"), (".NaN", "float"),
    ("1_000", "str"), ("0b101", "str"), ("2024-01-13", "str"), ("12:30", "str"),
    ("0o9", "str"), ("+.nan", "str"), ("1e", "str"), ("Russia", "str"),
])
def test_scalar_kind_follows_the_yaml_1_2_core_schema(raw: str, kind: str) -> None:
    assert scalar_kind(Scalar(raw, True, Loc(F, 1, 1))) == kind


@pytest.mark.parametrize("text", ['a: "2024"', "a: '010'", "a: |\n  yes\n", "a: >\n  1.10\n"])
def test_quoted_and_block_scalars_are_text(text: str) -> None:
    node = value(tree(text), "a")
    assert isinstance(node, Scalar)
    assert not node.plain
    assert scalar_kind(node) == "str"


# ---- positions -----------------------------------------------------------------------------

def test_positions_are_one_based_for_block_and_flow_nodes() -> None:
    root = tree("id: x\nabout: [russia, china]\nevidence:\n  - source: r\n    stance: refutes\n"
                "quantity: {value: 1, unit: USD}\n")
    assert isinstance(root, Mapping)
    assert root.loc == Loc(F, 1, 1)
    key, val = root.items["id"]
    assert (key.loc, val.loc) == (Loc(F, 1, 1), Loc(F, 1, 5))
    assert value(root, "about").loc == Loc(F, 2, 8)
    assert value(root, "about", 0).loc == Loc(F, 2, 9)
    assert value(root, "about", 1).loc == Loc(F, 2, 17)
    assert value(root, "evidence").loc == Loc(F, 4, 3)
    assert value(root, "evidence", 0).loc == Loc(F, 4, 5)
    assert value(root, "evidence", 0, "stance").loc == Loc(F, 5, 13)
    assert value(root, "quantity").loc == Loc(F, 6, 11)
    assert value(root, "quantity", "unit").loc == Loc(F, 6, 28)


def test_positions_count_characters_not_bytes_and_ignore_the_bom() -> None:
    text, _ = decode("\ufeffname: Владимир\r\nkind: person\r\n".encode(), F)
    assert text is not None
    root = tree(text)
    assert value(root, "kind").loc == Loc(F, 2, 7)
    root = tree("aliases: [Владимир Милов, V. Milov]\n")
    assert value(root, "aliases", 1).loc == Loc(F, 1, 27)


def test_an_empty_file_has_no_document() -> None:
    assert parse("", F) == (None, [])
    assert parse("# only a comment\n", F) == (None, [])


# ---- what the strict reader refuses --------------------------------------------------------

def test_duplicate_key_names_the_first_and_keeps_it() -> None:
    root, problems = parse("a: 1\nb: 2\na: 3\n", F)
    assert codes(problems) == [("Y003", 3, 1)]
    assert "line 1" in problems[0].message
    a = value(root, "a")  # type: ignore[arg-type]
    assert isinstance(a, Scalar) and a.value == "1"


def test_duplicate_key_in_a_flow_mapping_inside_a_list() -> None:
    _, problems = parse("reviews:\n  - {by: a, date: 2026-01-01, by: b}\n", F)
    assert codes(problems) == [("Y003", 2, 31)]


def test_duplicate_keys_differ_from_quoted_twins() -> None:
    # "a" and a are the same key; 1 and "1" too: YAML compares the key text here
    _, problems = parse('a: 1\n"a": 2\n', F)
    assert codes(problems) == [("Y003", 2, 1)]


@pytest.mark.parametrize(("text", "expected"), [
    ("a: &x 1\nb: *x\n", [("Y004", 1, 4), ("Y004", 2, 4)]),
    ("a: &x [1]\n", [("Y004", 1, 4)]),
    ("base: &b {u: 1}\nq:\n  <<: *b\n", [("Y004", 1, 7), ("Y004", 3, 7)]),
    ("a: !!str 1\n", [("Y005", 1, 4)]),
    ("a: !foo x\n", [("Y005", 1, 4)]),
    ("a: ! 2024\n", [("Y005", 1, 4)]),
    ("a: !!map {b: 1}\n", [("Y005", 1, 4)]),
    ("a: !!seq [1]\n", [("Y005", 1, 4)]),
    ("a: !<tag:yaml.org,2002:str> x\n", [("Y005", 1, 4)]),
    ("a: 1\n---\nb: 2\n", [("Y006", 2, 1)]),
    ("---\na: 1\n---\nb: 2\n---\nc: 3\n", [("Y006", 3, 1), ("Y006", 5, 1)]),
    ("a: 1\n...\n---\nb: 2\n", [("Y006", 3, 1)]),
    ("a:\tb\n", [("Y007", 1, 3)]),
    ("a: 'x\ty'\nb:\n  - c\t\n", [("Y007", 1, 6), ("Y007", 3, 6)]),
])
def test_strict_reader_refuses(text: str, expected: list[tuple[str, int, int]]) -> None:
    _, problems = parse(text, F)
    assert sorted(codes(problems)) == sorted(expected)


@pytest.mark.parametrize(("text", "line"), [
    ('a: "open\n', 2),
    ("a: [1, 2\nb: 3\n", 2),
    ("a: b: c\n", 1),
    ("a:\n  - b\n c: d\n", 3),
    ("\tkey: value\n", 1),
    ("a: 1\n\x00\n", 2),
    ("a: \x07\n", 1),
])
def test_syntax_errors_have_a_position_and_no_tree(text: str, line: int) -> None:
    root, problems = parse(text, F)
    assert root is None
    y002 = [p for p in problems if p.code == "Y002"]
    assert len(y002) == 1
    assert y002[0].loc.line == line
    assert y002[0].loc.col >= 1


def test_a_control_character_is_placed_after_multibyte_text() -> None:
    _, problems = parse("name: Владимир\x01\n", F)
    assert codes(problems) == [("Y002", 1, 15)]


@pytest.mark.parametrize("text", [
    "a: " + "[" * 150 + "]" * 150,
    "a: " + "{b: " * 150 + "1" + "}" * 150,
    "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 400)) + "  " * 400 + "x: 1\n",
], ids=["flow-lists", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_an_error_not_a_crash(text: str) -> None:
    _, problems = parse(text, F)
    assert [p.code for p in problems] == ["Y002"]
    assert "nested more than 100 levels" in problems[0].message
    assert parse_file("claim", F, text.encode())[0] is None


@pytest.mark.parametrize("text", [
    "a: " + "[" * 5000 + "]" * 5000,
    "a: " + "{b: " * 2000 + "1" + "}" * 2000,
], ids=["flow-lists", "flow-mappings"])
def test_extreme_nesting_is_a_syntax_error(text: str) -> None:
    # libyaml 0.2.6 stops at 1,000 levels itself, older ones leave it to the builder
    _, problems = parse(text, F)
    assert [p.code for p in problems] == ["Y002"]
    assert "nest" in problems[0].message


def test_a_hundred_levels_are_still_read() -> None:
    root = tree("a: " + "[" * 99 + "]" * 99)
    node = value(root, "a")
    for _ in range(98):
        node = value(node, 0)
    assert isinstance(node, Sequence) and node.items == []


def test_all_problems_of_a_file_are_reported() -> None:
    _, problems = parse("a: &x 1\nb: *x\na: 2\nc: !!str d\n", F)
    assert sorted(p.code for p in problems) == ["Y003", "Y004", "Y004", "Y005"]


# ---- schema --------------------------------------------------------------------------------

CLAIM_TEXT = """\
id: x
claim: no
kind: prediction
claimant: someone
about: [russia, china]
period: "2024/2025-06"
appearances:
  - source: article
    quote: "on"
evidence:
  - {source: report, stance: partly-refutes, note: yes}
verdict: {status: refuted, summary: It did not happen.}
reviews:
  - by: editor
    date: 2026-11-01
related:
  - {claim: y, relation: depends-on}
resolves_by: 2026-01-01
tags: [trade, energy]
"""


def build_claim(text: str) -> tuple[m.Claim, list[Problem]]:
    record, problems = parse_file("claim", F, text.encode())
    assert isinstance(record, m.Claim)
    return record, problems


def test_a_full_claim_is_typed_as_the_schema_says() -> None:
    claim, problems = build_claim(CLAIM_TEXT)
    assert problems == []
    assert claim.id == "x"
    assert claim.claim == "no"  # YAML 1.2: text, never False
    assert claim.appearances[0].quote == "on"
    assert claim.evidence[0].note == "yes"
    assert claim.evidence[0].stance == "partly-refutes"
    assert claim.claimant == m.Ref("someone", Loc(F, 4, 11))
    assert [r.id for r in claim.about] == ["russia", "china"]
    assert claim.period == "2024/2025-06"
    assert claim.resolves_by == dt.date(2026, 1, 1)
    assert claim.reviews[0].date == dt.date(2026, 11, 1)
    assert claim.verdict is not None and claim.verdict.status == "refuted"
    assert claim.related[0].claim.id == "y" and claim.related[0].relation == "depends-on"
    assert claim.tags == ["trade", "energy"]


def test_every_value_keeps_its_loc() -> None:
    claim, _ = build_claim(CLAIM_TEXT)
    assert claim.loc == Loc(F, 1, 1)
    assert claim.at("id") == Loc(F, 1, 5)
    assert claim.at("claim") == Loc(F, 2, 8)
    assert claim.at("about") == Loc(F, 5, 8)
    assert claim.at("about[0]") == Loc(F, 5, 9)
    assert claim.at("about[1]") == Loc(F, 5, 17)
    assert claim.about[1].loc == Loc(F, 5, 17)
    assert claim.at("appearances[0]") == Loc(F, 8, 5)
    assert claim.appearances[0].loc == Loc(F, 8, 5)
    assert claim.appearances[0].at("quote") == Loc(F, 9, 12)
    assert claim.appearances[0].source.loc == Loc(F, 8, 13)
    assert claim.evidence[0].loc == Loc(F, 11, 5)
    assert claim.evidence[0].at("stance") == Loc(F, 11, 30)
    assert claim.verdict is not None
    assert claim.verdict.at("summary") == Loc(F, 12, 37)
    assert claim.reviews[0].at("date") == Loc(F, 15, 11)
    assert claim.related[0].claim.loc == Loc(F, 17, 13)
    assert claim.at("resolves_by") == Loc(F, 18, 14)
    assert claim.at("tags[1]") == Loc(F, 19, 15)
    assert claim.at("quantity") == claim.loc  # a missing field points at the record


def test_a_parsed_record_keeps_its_places_packed_until_asked() -> None:
    """~50 places a record, read only to report a problem: one string each, not a dict of
    Loc (a fifth of what a cold build held); at() unpacks them the first time."""
    claim, _ = build_claim(CLAIM_TEXT)
    assert isinstance(claim.locs, str) and isinstance(claim.appearances[0].locs, str)
    assert claim.wrote("tags") and not claim.wrote("quantity")
    assert isinstance(claim.locs, dict) and claim.at("tags[1]") == Loc(F, 19, 15)


def test_a_null_value_is_absent_but_located() -> None:
    claim, problems = build_claim(CLAIM_TEXT.replace("claimant: someone", "claimant:")
                                  .replace("tags: [trade, energy]", "tags: ~"))
    assert problems == []
    assert claim.claimant is None and claim.tags == []
    assert claim.at("claimant") == Loc(F, 4, 10)


@pytest.mark.parametrize(("old", "new", "code", "col"), [
    ("claim: no", "claim: 2024", "S103", 8),
    ("claim: no", "claim: 010", "S103", 8),
    ("claim: no", "claim: 1.10", "S103", 8),
    ("claim: no", "claim: true", "S103", 8),
    ("claim: no", "claim: ''", "S105", 8),
    ("claim: no", "claim: [a]", "S103", 8),
    ("kind: prediction", "kind: no", "S104", 7),
    ("kind: prediction", "kind: yes", "S104", 7),
    ("kind: prediction", "kind: Prediction", "S104", 7),
    ("kind: prediction", "kind: 1", "S103", 7),
    ("about: [russia, china]", "about: russia", "S103", 8),
    ("verdict: {status", "verdict: {status: on, x: 1, status2", "S104", 19),
    ("resolves_by: 2026-01-01", "resolves_by: 2026-02-29", "V402", 14),
    ("resolves_by: 2026-01-01", "resolves_by: 2026-1-1", "V402", 14),
    ("resolves_by: 2026-01-01", "resolves_by: 2026-01", "V402", 14),
    ("resolves_by: 2026-01-01", "resolves_by: '2026-01-01T00:00'", "V402", 14),
    ('period: "2024/2025-06"', 'period: "2025/2024"', "V403", 9),
    ('period: "2024/2025-06"', 'period: "2024/2025/2026"', "V403", 9),
    ('period: "2024/2025-06"', "period: 2024", "S103", 9),
    ("tags: [trade, energy]", "tags: [trade, Energy]", "I201", 15),
    ("related:\n", "colour: red\nrelated:\n", "S101", 1),
])
def test_schema_problems(old: str, new: str, code: str, col: int) -> None:
    text = CLAIM_TEXT.replace(old, new, 1)
    assert text != CLAIM_TEXT
    _, problems = build_claim(text)
    assert code in [p.code for p in problems], problems
    assert next(p.loc.col for p in problems if p.code == code) == col


def test_unknown_field_hint_names_the_closest_field() -> None:
    _, problems = build_claim(CLAIM_TEXT.replace("resolves_by:", "resolve_by:"))
    s101 = [p for p in problems if p.code == "S101"]
    assert len(s101) == 1 and "resolves_by" in s101[0].hint
    assert s101[0].loc == Loc(F, 18, 1)


def test_missing_required_fields_point_at_the_record_or_the_empty_value() -> None:
    root = tree("id: x\nkind: fact\nappearances: []\n")
    assert isinstance(root, Mapping)
    _, problems = build(CLAIM, root)
    assert sorted(codes(problems)) == [("S102", 1, 1), ("S102", 3, 14)]


@pytest.mark.parametrize(("raw", "expected", "code"), [
    ("245e9", 245e9, None), ("-3.5", -3.5, None), ("0", 0.0, None), ("12", 12.0, None),
    ("010", None, "S103"), ("0x1F", None, "S103"), ("0o7", None, "S103"), ('"245"', None, "S103"),
    ("1_000", None, "S103"), (".inf", None, "S104"), ("-.inf", None, "S104"),
    (".nan", None, "S104"), ("1e400", None, "S104"), ("yes", None, "S103"),
])
def test_quantity_values(raw: str, expected: float | None, code: str | None) -> None:
    root = tree(f"value: {raw}\nunit: USD\n")
    assert isinstance(root, Mapping)
    quantity, problems = build(QUANTITY, root)
    assert [p.code for p in problems] == ([code] if code else [])
    if expected is not None:
        assert quantity.value == expected


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("entity", "", "no entity"),
    ("source", "- a\n- b\n", "a list"),
    ("claim", "just text\n", "text"),
    ("claim", "---\n", "nothing"),
])
def test_a_file_that_is_not_a_mapping(kind: str, text: str, message: str) -> None:
    root, _ = parse(text, F)
    record, problems = build_record(kind, root, F)
    assert record is None
    assert codes(problems) == [("S103", 1 if text != "---\n" else 2, 1)]
    assert message in problems[0].message


def test_parse_file_stops_at_a_syntax_error_and_at_bad_utf8() -> None:
    assert parse_file("claim", F, b"a: [\n")[0] is None
    record, problems = parse_file("claim", F, b"id: \xff\n")
    assert record is None and [p.code for p in problems] == ["Y001"]


def test_parse_file_accepts_bom_and_crlf() -> None:
    data = ("\ufeff" + CLAIM_TEXT).replace("\n", "\r\n").encode()
    claim, problems = build_claim(data.decode("utf-8"))
    assert problems == []
    record, problems = parse_file("claim", F, data)
    assert problems == [] and record == claim
    assert isinstance(record, m.Claim) and record.at("tags[1]") == Loc(F, 19, 15)


def test_source_published_may_be_partial_but_accessed_may_not() -> None:
    text = ("id: s\ntitle: T\nkind: report\nurl: https://example.org/\npublished: 2025-12\n"
            "accessed: 2026-11\n")
    record, problems = parse_file("source", "sources/s.yaml", text.encode())
    assert isinstance(record, m.Source)
    assert record.published == "2025-12"
    assert codes(problems) == [("V402", 6, 11)]


@pytest.mark.parametrize(("text", "bounds"), [
    ("2024", (dt.date(2024, 1, 1), dt.date(2024, 12, 31))),
    ("2024-02", (dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
    ("2023-12", (dt.date(2023, 12, 1), dt.date(2023, 12, 31))),
    ("2024-03-05", (dt.date(2024, 3, 5), dt.date(2024, 3, 5))),
    ("2022/2024-06", (dt.date(2022, 1, 1), dt.date(2024, 6, 30))),
    ("2024/2024", (dt.date(2024, 1, 1), dt.date(2024, 12, 31))),
    ("2025/2024", None), ("2024-13", None), ("2025-02-30", None), ("24", None),
    ("2024/", None), ("/2024", None), ("2024/2025/2026", None), ("last year", None),
])
def test_period_bounds(text: str, bounds: tuple[dt.date, dt.date] | None) -> None:
    assert period_bounds(text) == bounds


@pytest.mark.parametrize(("url", "ok"), [
    ("https://example.org/a?b=c#d", True), ("http://example.org", True),
    ("javascript:alert(1)", False), ("JavaScript:alert(1)", False), ("file:///etc/passwd", False),
    ("data:text/html,<b>x</b>", False), ("ftp://example.org/", False), ("//example.org/", False),
    ("/relative", False), ("https://", False), ("https:///path", False),
    ("https://exa mple.org/", False), ("https://[::1", False), ("mailto:a@example.org", False),
    ("https://example.org/a\u00a0b", False), ("https://example.org/\u2003", False),
    ("https://example.org/a\tb", False), ("https://example.org/a\u200bb", True),  # not a space
])
def test_valid_url(url: str, ok: bool) -> None:
    assert valid_url(url) is ok
