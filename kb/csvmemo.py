"""The claims' CSV rows of the last build, in the user's cache, for a build after an edit.

An edit build makes the CSV (data/claims.csv) here, in the build's own process, from the rows
of the last build whose claim's graph is unchanged (kb.export.claims_csv_lines), rather than
in a process forked for it: a child forked from the build shares its memory, so every page of
it that the build writes while the child lives is copied first (reading a Python object writes
its reference count). At 10,000 claims the CSV's child lived 0.27 s, beside the model being
built, which took 0.29 s instead of 0.16 s. A memo that is missing, damaged or of other code or
another kb.toml reads as empty: every row is written again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import kb as kb_package
from kb.export import CsvLines, claims_csv_lines
from kb.memo import Journaled, read_journaled, write_journaled

if TYPE_CHECKING:
    from kb.check import Checked
    from kb.kbgraph import KBGraph

_FORMAT = 1


def _key(base: str) -> tuple[object, ...]:
    from kb.cache import code_fingerprint

    # The whole package: a row is made by the parser, the status rules and the CSV's code;
    # the IRIs' base comes from kb.toml.
    return (_FORMAT, kb_package.__version__, sys.version, code_fingerprint(), base)


def memo_path(root: Path, folder: Path | None = None) -> Path:
    from kb.cache import cache_path

    return cache_path(root, "csv", folder).with_suffix(".memo")


def load_lines(root: Path, base: str, folder: Path | None = None
               ) -> tuple[CsvLines, Journaled | None]:
    """The rows the last build of `root` kept (none when there are none to trust), and the
    memo as read, for save_lines."""
    read = read_journaled(memo_path(root, folder), _key(base))
    value = None if read is None else read.value
    if not isinstance(value, dict):
        return {}, None
    ok = all(type(v) is tuple and len(v) == 2 and type(v[0]) is str and type(v[1]) is str
             for v in value.values())
    return (value, read) if ok else ({}, None)


def save_lines(root: Path, base: str, lines: CsvLines, read: Journaled | None,
               folder: Path | None = None) -> None:
    """Keep this build's rows: what changed since the memo was `read` (kb.memo's journal)."""
    write_journaled(memo_path(root, folder), _key(base), lines, read)


def claims_csv(root: Path, checked: Checked, g: KBGraph) -> bytes:
    """data/claims.csv, from the last build's rows where their claims' graphs are unchanged;
    this build's rows are kept for the next. In an edit build's process, and in the worker that
    makes a whole build's CSV."""
    known, read = load_lines(root, g.iris.base)
    data, lines = claims_csv_lines(checked, g, known)
    save_lines(root, g.iris.base, lines, read)
    return data
