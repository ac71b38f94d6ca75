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

import kb as kb_package
from kb.export import CsvLines
from kb.memo import read_memo, write_memo

_FORMAT = 1


def _key(base: str) -> tuple[object, ...]:
    from kb.cache import code_fingerprint

    # The whole package: a row is made by the parser, the status rules and the CSV's code;
    # the IRIs' base comes from kb.toml.
    return (_FORMAT, kb_package.__version__, sys.version, code_fingerprint(), base)


def memo_path(root: Path, folder: Path | None = None) -> Path:
    from kb.cache import cache_path

    return cache_path(root, "csv", folder).with_suffix(".memo")


def load_lines(root: Path, base: str, folder: Path | None = None) -> CsvLines:
    """The rows the last build of `root` kept (none when there are none to trust)."""
    value = read_memo(memo_path(root, folder), _key(base))
    if not isinstance(value, dict):
        return {}
    ok = all(type(v) is tuple and len(v) == 2 and type(v[0]) is str and type(v[1]) is str
             for v in value.values())
    return value if ok else {}


def save_lines(root: Path, base: str, lines: CsvLines, known: CsvLines,
               folder: Path | None = None) -> None:
    """Keep this build's rows, unless they are those that were read."""
    if lines != known:
        write_memo(memo_path(root, folder), _key(base), lines)
