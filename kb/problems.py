"""Problems, their stable codes, and the report that collects them.

Every problem carries a file, line, column and a code from CODES; docs/rules.md documents each
code (a test keeps the two in step).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


class Loc(NamedTuple):
    """A place in a file; line and column count from 1 (0 means "the whole file").

    A named tuple, not a dataclass: one is made for every YAML node, and a frozen dataclass
    costs several times as much to create.
    """

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def __reduce__(self) -> tuple[Any, ...]:
        return unpickled_by_tuple(self)


def unpickled_by_tuple(value: tuple[Any, ...]) -> tuple[Any, ...]:
    """How a named tuple is pickled so that it is unpickled by tuple.__new__ itself: its own
    __new__ is a Python function, called ~240,000 times for the Locs and Refs of the parse
    cache at 10,000 claims (0.21 → 0.16 s to read it)."""
    return (tuple.__new__, (type(value), tuple(value)))


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str


def _codes(*entries: tuple[str, Severity, str]) -> dict[str, Code]:
    return {c: Code(c, s, t) for c, s, t in entries}


E, W = Severity.ERROR, Severity.WARNING

# The stable rule codes. Y: the file and its YAML; S: schema and types; I: identifiers;
# R: references; V: values; Q: quotes; T: status and review; N: the claim network; C: kb.toml;
# G: the RDF graph (kb check --shacl).
CODES: dict[str, Code] = _codes(
    ("Y001", E, "file is not valid UTF-8"),
    ("Y002", E, "YAML syntax error"),
    ("Y003", E, "duplicate key"),
    ("Y004", E, "anchor or alias"),
    ("Y005", E, "explicit tag"),
    ("Y006", E, "several documents in one file"),
    ("Y007", E, "tab character"),
    ("Y008", E, "file cannot be read"),
    ("S101", E, "unknown field"),
    ("S102", E, "missing required field"),
    ("S103", E, "wrong type"),
    ("S104", E, "value not allowed"),
    ("S105", E, "empty text"),
    ("I201", E, "identifier is not a valid slug"),
    ("I202", E, "identifier differs from the file name"),
    ("I203", E, "duplicate identifier"),
    ("R301", E, "unknown reference"),
    ("R302", E, "claim relates to itself"),
    ("V401", E, "URL is not http or https"),
    ("V402", E, "invalid date"),
    ("V403", E, "invalid period"),
    ("V404", E, "quantity on a claim that is not a quantity"),
    ("V405", E, "resolves_by on a claim that is not a prediction"),
    ("V406", W, "quantity claim without a quantity"),
    ("V407", E, "date in the future"),
    ("Q501", E, "quote not found in the source's text"),
    ("Q502", E, "source text snapshot cannot be read"),
    ("Q503", W, "source text snapshot without a source"),
    ("T601", E, "verdict without a summary"),
    ("T602", E, "prediction past its date without a verdict"),
    ("T603", W, "verdict contradicts the evidence"),
    ("T604", W, "due for review"),
    ("T605", W, "entity nothing refers to"),
    ("T606", W, "source nothing refers to"),
    ("N701", E, "depends-on cycle"),
    ("N702", W, "depends on a refuted or disputed claim"),
    ("C801", E, "invalid kb.toml"),
    ("G901", E, "graph does not conform to the SHACL shapes"),
)


@dataclass(frozen=True)
class Problem:
    loc: Loc
    code: str
    message: str
    hint: str = ""

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.loc.path, self.loc.line, self.loc.col, self.code, self.message)


def problem(loc: Loc, code: str, message: str, hint: str = "") -> Problem:
    if code not in CODES:  # a programming error, caught by the tests
        raise KeyError(f"unregistered problem code {code}")
    return Problem(loc, code, message, hint)


@dataclass
class Report:
    """All problems of one run, in the order editors read them: by file, line and column."""

    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    def sorted(self) -> list[Problem]:
        return sorted(set(self.problems), key=Problem.sort_key)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.sorted())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.sorted() if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.sorted() if p.severity is Severity.WARNING]

    def exit_code(self, strict: bool = False) -> int:
        if self.errors or (strict and self.warnings):
            return 1
        return 0


def rel(path: Path, root: Path) -> str:
    """A path as editors see it: relative to the knowledge base, with forward slashes."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
