"""Property tests: whatever bytes a file holds, loading and checking return a report, never raise.

Random bytes and text, and valid files mutated the ways editors and tools break them (characters
and lines deleted, inserted, duplicated; tabs, anchors, aliases, tags, document markers, NUL
bytes, stray unicode, invalid UTF-8), go to the parser alone and to a full `kb check`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb import model as m
from kb.check import CheckOptions, check
from kb.load import parse_file
from kb.output import as_github, as_json, as_text
from kb.problems import CODES, Problem

from conftest import MINIMAL

RICH_CLAIM = """\
id: rich
claim: "A claim: with 'quotes', and — dashes."
kind: prediction
claimant: someone
about: [russia, china]
period: 2024/2025-06
appearances:
  - source: article
    quote: >
      folded text
      over lines
    translation: |
      literal
      text
evidence:
  - {source: report, stance: partly-refutes, note: "x"}
verdict: {status: refuted, summary: No.}
reviews:
  - {by: editor, date: 2026-11-01}
related:
  - {claim: other, relation: depends-on}
resolves_by: 2026-01-01
tags: [a, b-c]
"""

FILES: list[tuple[str, str, str]] = [
    ("claim", "claims/trade-record-2024.yaml", MINIMAL["claims/trade-record-2024.yaml"]),
    ("claim", "claims/rich.yaml", RICH_CLAIM),
    ("source", "sources/article.yaml", MINIMAL["sources/article.yaml"]),
    ("source", "sources/report.yaml", MINIMAL["sources/report.yaml"]),
    ("entity", "entities/someone.yaml", MINIMAL["entities/someone.yaml"]),
]
KINDS = ("claim", "source", "entity")

# what breaks YAML files in practice
SNIPPETS = ["\t", "&a ", "*a", "!", "!!str ", "!foo ", "---\n", "...\n", "\x00", "\ufeff", "\r",
            "\r\n", ":", ": ", "- ", "#", "'", '"', "{", "}", "[", "]", ",", "|", ">", "%", "@",
            "`", "?", "<<: ", "\n  ", "  ", "\u2028", "\u0085", "\ud7ff", "\U0001f600", "é",
            "\x7f", "\x1b", "\ufffe", "~", "null", "no", "010", "1.10", ".inf"]
BAD_BYTES = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80",
             b"\xc0\xaf"]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """A valid file after a few edits of the sorts that break files."""
    kind, path, text = draw(st.sampled_from(FILES))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["del-char", "ins", "dup-char", "del-line", "dup-line",
                                   "swap-lines", "ins-unicode", "indent"]))
        i = draw(st.integers(0, max(0, len(text) - 1)))
        n = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "del-char":
            text = text[:i] + text[i + 1:]
        elif op == "ins":
            text = text[:i] + draw(st.sampled_from(SNIPPETS)) + text[i:]
        elif op == "dup-char":
            text = text[:i] + text[i:i + 1] * 2 + text[i + 1:]
        elif op == "del-line":
            text = "\n".join(lines[:n] + lines[n + 1:])
        elif op == "dup-line":
            text = "\n".join(lines[:n + 1] + lines[n:])
        elif op == "swap-lines":
            k = draw(st.integers(0, max(0, len(lines) - 1)))
            lines[n], lines[k] = lines[k], lines[n]
            text = "\n".join(lines)
        elif op == "ins-unicode":
            text = text[:i] + draw(st.text(min_size=1, max_size=3)) + text[i:]
        else:
            lines[n] = " " * draw(st.integers(1, 3)) + lines[n]
            text = "\n".join(lines)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        j = draw(st.integers(0, len(data)))
        data = data[:j] + draw(st.sampled_from(BAD_BYTES)) + data[j:]
    return kind, path, data


def assert_is_report(result: tuple[m.Record | None, list[Problem]], path: str) -> None:
    record, problems = result
    assert record is None or isinstance(record, m.Claim | m.Source | m.Entity)
    for p in problems:
        assert p.code in CODES
        assert p.loc.path == path
        assert p.loc.line >= 0 and p.loc.col >= 0
    if record is None:
        # a file that yields no record always says why
        assert problems


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from(KINDS), st.binary(max_size=300))
def test_random_bytes(kind: str, data: bytes) -> None:
    assert_is_report(parse_file(kind, "claims/x.yaml", data), "claims/x.yaml")


YAMLISH = [*"ab01 -:#\n\t{}[],'\"&*!|>?%@`~.", "---", "...", "é", "\x00", "\r", "id: ", "\n  "]


@FUZZ
@given(st.sampled_from(KINDS), st.lists(st.sampled_from(YAMLISH), max_size=60).map("".join))
def test_random_yamlish_text(kind: str, text: str) -> None:
    assert_is_report(parse_file(kind, "claims/x.yaml", text.encode()), "claims/x.yaml")


@FUZZ
@given(st.sampled_from(KINDS), st.text(alphabet=st.characters(), max_size=200))
def test_random_unicode_text(kind: str, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")  # lone surrogates make invalid UTF-8
    assert_is_report(parse_file(kind, "claims/x.yaml", data), "claims/x.yaml")


@FUZZ
@given(mutated())
def test_mutated_files_parse_to_a_report(case: tuple[str, str, bytes]) -> None:
    kind, path, data = case
    assert_is_report(parse_file(kind, path, data), path)


def test_the_unmutated_files_are_valid() -> None:
    # so that the mutations above start from files the loader accepts
    for kind, path, text in FILES:
        record, problems = parse_file(kind, path, text.encode())
        assert record is not None and problems == [], (path, problems)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_file_in_a_full_check(case: tuple[str, str, bytes], as_snapshot: bool) -> None:
    _, path, data = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files: dict[str, str | bytes] = {**MINIMAL, "claims/rich.yaml": RICH_CLAIM}
        if as_snapshot:  # the mutated bytes as a source's text snapshot instead
            files["sources/report.txt"] = data
        else:
            files[path] = data
        for rel, content in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        report = check(root, CheckOptions(use_cache=False, jobs=1)).report
    assert report.exit_code() in (0, 1)
    assert all(p.code in CODES for p in report)
    # every output format copes with whatever the problems say
    assert list(as_text(report))
    assert all("\n" not in line and "\r" not in line for line in as_github(report)
               if line.startswith("::"))
    assert json.loads(as_json(report))["errors"] == len(report.errors)
