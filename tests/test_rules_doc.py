"""Every problem code is registered, documented in docs/rules.md, and the two agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kb.problems import CODES, Severity, problem

REPO = Path(__file__).resolve().parent.parent
RULES_MD = REPO / "docs" / "rules.md"
CODE = re.compile(r"^[A-Z][0-9]{3}$")


def documented() -> dict[str, str]:
    """Each `### CODE` heading of docs/rules.md with the text of its entry."""
    entries: dict[str, str] = {}
    current: str | None = None
    for line in RULES_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            m = re.match(r"^### ([A-Z][0-9]{3})\s*$", line)
            current = m[1] if m else None
            if current:
                assert current not in entries, f"{current} documented twice"
                entries[current] = ""
        elif current:
            entries[current] += line + "\n"
    return entries


def codes_used_in_source() -> dict[str, list[str]]:
    """Code strings passed to problem() anywhere in kb/, with where they are."""
    used: dict[str, list[str]] = {}
    for path in sorted((REPO / "kb").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "problem":  # problem(...) or problems.problem(...)
                continue
            for arg in [*node.args, *(k.value for k in node.keywords if k.arg == "code")]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE.match(
                        arg.value):
                    used.setdefault(arg.value, []).append(f"{path.name}:{node.lineno}")
    return used


def test_every_code_is_documented() -> None:
    missing = sorted(set(CODES) - set(documented()))
    assert missing == [], f"add a ### entry to docs/rules.md for {missing}"


def test_every_documented_code_is_registered() -> None:
    unknown = sorted(set(documented()) - set(CODES))
    assert unknown == [], f"docs/rules.md documents unregistered codes {unknown}"


@pytest.mark.parametrize("code", sorted(CODES))
def test_entry_states_the_severity_and_says_something(code: str) -> None:
    text = documented()[code]
    severity = CODES[code].severity
    assert text.lstrip().startswith(f"**{severity.value}**"), (
        f"{code}: docs say otherwise than CODES ({severity.value})")
    assert len(text.split()) >= 6, f"{code}: the entry is too short to help an editor"


def test_codes_are_well_formed_and_grouped_by_letter() -> None:
    for code, entry in CODES.items():
        assert CODE.match(code) and entry.code == code and entry.title
        assert isinstance(entry.severity, Severity)
    # each letter's entries form one block in docs/rules.md, in number order
    order = list(documented())
    letters = [c[0] for c in order]
    blocks = [x for i, x in enumerate(letters) if i == 0 or letters[i - 1] != x]
    assert len(blocks) == len(set(blocks)), f"letters split into several blocks: {blocks}"
    for letter in blocks:
        mine = [c for c in order if c[0] == letter]
        assert mine == sorted(mine)


def test_every_code_in_the_source_is_registered() -> None:
    used = codes_used_in_source()
    assert len(used) >= 25, "the scan found too few codes: has problem() been renamed?"
    unregistered = {c: where for c, where in used.items() if c not in CODES}
    assert unregistered == {}


def test_every_code_literal_in_the_source_is_registered() -> None:
    # a wider net than the call scan: any "X999" string in the package, e.g. built elsewhere
    found: set[str] = set()
    for path in (REPO / "kb").rglob("*.py"):
        found |= set(re.findall(r"[\"']([A-Z][0-9]{3})[\"']", path.read_text(encoding="utf-8")))
    assert found - set(CODES) == set()


def test_an_unregistered_code_is_refused() -> None:
    from kb.problems import Loc

    with pytest.raises(KeyError):
        problem(Loc("x", 1, 1), "Z999", "no such code")
