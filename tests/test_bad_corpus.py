"""The corpus of bad knowledge bases in tests/bad/: each case must produce what it expects.

A case is a folder `tests/bad/<case>/` with the files that differ from conftest.MINIMAL (same
relative paths; a file holding only `__delete__` removes that MINIMAL file; `<name>.symlink`
becomes a symbolic link `<name>` to the path the file holds) and `expect.txt`:

    # a comment saying what the case is about
    exact                                   (optional: nothing beyond the lines below)
    claims/x.yaml:3:8 Y001 0xff             path:line:col CODE [text in message or hint]

`col` (or `line`) may be `*`. Without `exact`, other problems may appear too (a broken file
often has knock-on effects, such as references to the record it failed to define).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kb.check import CheckOptions, check
from kb.output import text_line
from kb.problems import CODES, Problem

from conftest import MakeKB

BAD = Path(__file__).parent / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "expect.txt").is_file())
# codes that kb.check.check does not emit on its own (`kb check --shacl` checks the graph)
NOT_FROM_CHECK = {"G901"}
_LINE = re.compile(r"^(?P<path>\S+):(?P<line>\d+|\*):(?P<col>\d+|\*) (?P<code>[A-Z]\d{3})"
                   r"(?: (?P<text>.+))?$")


@dataclass(frozen=True)
class Expected:
    path: str
    line: int | None
    col: int | None
    code: str
    text: str

    def matches(self, p: Problem) -> bool:
        return (p.loc.path == self.path and p.code == self.code
                and self.line in (None, p.loc.line) and self.col in (None, p.loc.col)
                and self.text in f"{p.message} {p.hint}")

    def __str__(self) -> str:
        return (f"{self.path}:{'*' if self.line is None else self.line}:"
                f"{'*' if self.col is None else self.col} {self.code} {self.text}").rstrip()


def read_expect(case: str) -> tuple[list[Expected], bool]:
    expected: list[Expected] = []
    exact = False
    for raw in (BAD / case / "expect.txt").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "exact":
            exact = True
            continue
        m = _LINE.match(line)
        assert m, f"{case}/expect.txt: cannot read {raw!r}"
        expected.append(Expected(
            m["path"], None if m["line"] == "*" else int(m["line"]),
            None if m["col"] == "*" else int(m["col"]), m["code"], (m["text"] or "").strip()))
    return expected, exact


def case_files(case: str) -> tuple[dict[str, str | bytes | None], dict[str, str]]:
    files: dict[str, str | bytes | None] = {}
    links: dict[str, str] = {}
    folder = BAD / case
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel == "expect.txt":
            continue
        data = path.read_bytes()
        if rel.endswith(".symlink"):
            links[rel.removesuffix(".symlink")] = data.decode().strip()
        elif data.strip() == b"__delete__":
            files[rel] = None
        else:
            files[rel] = data  # bytes: BOMs, CRLF and invalid UTF-8 reach the loader unchanged
    return files, links


def case_kb(make_kb: MakeKB, case: str, name: str = "kb") -> Path:
    """The knowledge base of one bad case, its symlinks included, in the folder `name`."""
    files, links = case_files(case)
    root = make_kb(files, name=name)
    for rel, target in links.items():
        (root / rel).symlink_to(target)
    return root


def run_case(make_kb: MakeKB, case: str) -> list[Problem]:
    root = case_kb(make_kb, case)
    return check(root, CheckOptions(use_cache=False)).report.sorted()


def test_corpus_is_large_and_covers_every_loader_and_rule_code() -> None:
    assert len(CASES) >= 40
    used = {e.code for case in CASES for e in read_expect(case)[0]}
    assert set(CODES) >= NOT_FROM_CHECK
    missing = set(CODES) - NOT_FROM_CHECK - used
    assert missing == set(), f"add a case to tests/bad/ for each of {sorted(missing)}"


@pytest.mark.parametrize("case", CASES)
def test_bad_case(make_kb: MakeKB, case: str) -> None:
    expected, exact = read_expect(case)
    problems = run_case(make_kb, case)
    shown = "\n".join(text_line(p) for p in problems) or "(no problems)"
    for e in expected:
        assert any(e.matches(p) for p in problems), f"missing {e}; reported:\n{shown}"
    if exact:
        extra = [p for p in problems if not any(e.matches(p) for e in expected)]
        assert not extra, f"unexpected problems in an exact case:\n{shown}"
    assert all(p.loc.path for p in problems)
