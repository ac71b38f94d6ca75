"""kb fmt: canonical form without losing a value or a comment, on the seed and the bad corpus."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kb.canonical import comments
from kb.cli import main
from kb.fmt import fmt, format_file, kind_of_path
from kb.load import discover, parse_file
from kb.model import Ref
from kb.problems import Problem

from conftest import REPO, MakeKB

BAD = REPO / "tests" / "bad"


def _placeless(value: Any) -> Any:
    """A parsed record as plain data without places (Ref keeps its place in equality)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _placeless(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in ("loc", "locs")}
    if isinstance(value, Ref):
        return value.id
    if isinstance(value, list):
        return [_placeless(v) for v in value]
    return value


def _problems_sans_place(problems: list[Problem]) -> list[str]:
    # codes, not messages: a message may quote a value's spelling (`~` is written `null`)
    return sorted(p.code for p in problems)


def _assert_fmt_keeps_everything(root: Path, files: list[Path]) -> int:
    """Format each file in place; prove data, problems and comments unchanged; return changes."""
    before = {p: p.read_bytes() for p in files}
    outcomes = fmt(root, files, check_only=False)
    changed = 0
    for o in outcomes:
        kind = kind_of_path(o.path, root)
        old = before[o.path]
        new = o.path.read_bytes()
        if o.status != "changed":
            assert new == old, o.shown  # skipped and canonical files are left untouched
            continue
        changed += 1
        assert kind is not None
        rec_old, probs_old = parse_file(kind, o.shown, old)
        rec_new, probs_new = parse_file(kind, o.shown, new)
        assert _placeless(rec_new) == _placeless(rec_old), o.shown
        assert rec_old is None or _placeless(rec_old)["id"]
        assert _problems_sans_place(probs_new) == _problems_sans_place(probs_old), o.shown
        old_comments = comments(old.decode("utf-8-sig").replace("\r\n", "\n"))
        new_comments = comments(new.decode("utf-8"))
        assert old_comments <= new_comments, o.shown
        extra = new_comments - old_comments
        assert all(c.startswith("# yaml-language-server:") for c in extra), extra
    # idempotent: a second run changes nothing
    again = fmt(root, files, check_only=True)
    assert [o.shown for o in again if o.status == "changed"] == []
    return changed


def test_every_seed_file_is_canonical_and_survives_fmt(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    for sub in ("claims", "sources", "entities"):
        shutil.copytree(REPO / sub, root / sub)
    files = [p for _, p in discover(root)]
    assert len(files) >= 30
    assert _assert_fmt_keeps_everything(root, files) == 0  # the seed is already canonical


@pytest.mark.skipif(not BAD.is_dir(), reason="the bad-input corpus is not there yet")
def test_bad_corpus_keeps_its_data(tmp_path: Path) -> None:
    copy = tmp_path / "bad"
    shutil.copytree(BAD, copy)
    cases = sorted(p for p in copy.iterdir() if p.is_dir())
    total = changed = 0
    for case in cases:
        files = sorted(p for p in case.rglob("*.yaml") if kind_of_path(p, case))
        if not files:
            continue
        total += len(files)
        changed += _assert_fmt_keeps_everything(case, files)
    assert total >= 20 and changed > 0


def test_y_errors_are_left_untouched(make_kb: MakeKB) -> None:
    broken = "id: x\nname: [unclosed\nkind: person\n"
    dup = "id: y\nname: Y\nname: Z\nkind: person\n"
    root = make_kb({"entities/x.yaml": broken, "entities/y.yaml": dup})
    result = CliRunner().invoke(main, ["--root", str(root), "fmt"])
    assert result.exit_code == 1, result.output
    assert "skipped: entities/x.yaml" in result.output and "Y002" in result.output
    assert "skipped: entities/y.yaml" in result.output and "Y003" in result.output
    assert (root / "entities/x.yaml").read_text(encoding="utf-8") == broken
    assert (root / "entities/y.yaml").read_text(encoding="utf-8") == dup


SCRAMBLED = """\
# a note about this claim
tags: [trade]   # the tags
# kind comes before the id here
kind: quantity
id: trade-record-2024  # the id
claim: 'Russia–China trade reached a record $245bn in 2024.'
quantity: {unit: USD, value: 245e9}
appearances:
  # the article
  - quote: "the value of trade hit a record $245bn"   # checked
    source: article
period: "2024"
about: [russia]
claimant: ~
evidence:
- stance: supports
  source: report
  quote: >-
    amounted to
    $244.8 billion
reviews:
  - {date: 2026-11-01, by: editor}
"""

CANONICAL = """\
# yaml-language-server: $schema=../schema/claim.schema.json
# a note about this claim
id: trade-record-2024  # the id
claim: "Russia–China trade reached a record $245bn in 2024."
# kind comes before the id here
kind: quantity
claimant: null
about: [russia]
period: "2024"
quantity: {value: 245e9, unit: "USD"}
appearances:
  # the article
  - source: article
    quote: "the value of trade hit a record $245bn"   # checked
evidence:
  - source: report
    stance: supports
    quote: >-
      amounted to
      $244.8 billion
reviews:
  - {by: editor, date: 2026-11-01}
tags: [trade]   # the tags
"""


def test_canonical_form(make_kb: MakeKB) -> None:
    root = make_kb({"claims/trade-record-2024.yaml": SCRAMBLED})
    runner = CliRunner()
    check = runner.invoke(main, ["--root", str(root), "fmt", "--check"])
    assert check.exit_code == 1, check.output
    assert "not canonical: claims/trade-record-2024.yaml" in check.output
    assert (root / "claims/trade-record-2024.yaml").read_text(encoding="utf-8") == SCRAMBLED
    result = runner.invoke(main, ["--root", str(root), "fmt"])
    assert result.exit_code == 0, result.output
    assert (root / "claims/trade-record-2024.yaml").read_text(encoding="utf-8") == CANONICAL
    again = runner.invoke(main, ["--root", str(root), "fmt", "--check"])
    assert again.exit_code == 0, again.output
    checked = runner.invoke(main, ["--root", str(root), "check"])
    assert checked.exit_code == 0, checked.output


def test_long_flow_collections_become_block(make_kb: MakeKB) -> None:
    aliases = ", ".join(f'"Some One {i}"' for i in range(12))
    root = make_kb({"entities/someone.yaml":
                    f"id: someone\nname: Some One\nkind: person\naliases: [{aliases}]\n"})
    path = root / "entities/someone.yaml"
    outcome = format_file(path, root)
    assert outcome.status == "changed" and outcome.new_text is not None
    lines = outcome.new_text.splitlines()
    assert "aliases:" in lines and '  - "Some One 11"' in lines
    assert max(len(line) for line in lines) <= 100
    _assert_fmt_keeps_everything(root, [path])


def test_paths_and_folders(make_kb: MakeKB) -> None:
    root = make_kb({"entities/russia.yaml": "kind: country\nname: Russia\nid: russia\n"})
    runner = CliRunner()
    one = runner.invoke(main, ["--root", str(root), "fmt", "--check",
                               str(root / "entities/someone.yaml")])
    assert one.exit_code == 1, one.output  # MINIMAL writes no modeline
    folder = runner.invoke(main, ["--root", str(root), "fmt", str(root / "entities")])
    assert folder.exit_code == 0, folder.output
    assert "formatted: entities/russia.yaml" in folder.output
    assert (root / "entities/russia.yaml").read_text(encoding="utf-8").splitlines()[1:] == [
        "id: russia", 'name: "Russia"', "kind: country"]
