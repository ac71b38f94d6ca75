"""A report as text for people, as GitHub workflow commands, or as JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable

from kb.problems import CODES, Problem, Report


def text_line(p: Problem) -> str:
    line = f"{p.loc}: {p.severity.value}[{p.code}]: {p.message}"
    return f"{line} ({p.hint})" if p.hint else line


def summary(report: Report) -> str:
    e, w = len(report.errors), len(report.warnings)
    return (f"{report.files_checked} files checked: {e} error{'s' * (e != 1)}, "
            f"{w} warning{'s' * (w != 1)}")


def as_text(report: Report) -> Iterable[str]:
    yield from (text_line(p) for p in report)
    yield summary(report)


def _escape_data(s: str) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github_line(p: Problem) -> str:
    level = "error" if p.severity.value == "error" else "warning"
    props = [f"file={_escape_property(p.loc.path)}"]
    if p.loc.line:
        props += [f"line={p.loc.line}", f"col={p.loc.col}"]
    props.append(f"title={_escape_property(f'{p.code} {CODES[p.code].title}')}")
    message = f"{p.message} ({p.hint})" if p.hint else p.message
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def as_github(report: Report) -> Iterable[str]:
    """Each problem as a plain log line and as an annotation on the file's line."""
    for p in report:
        yield text_line(p)
        yield github_line(p)
    yield summary(report)


def as_json(report: Report) -> str:
    return json.dumps(
        {
            "files_checked": report.files_checked,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "problems": [
                {
                    "path": p.loc.path,
                    "line": p.loc.line,
                    "column": p.loc.col,
                    "severity": p.severity.value,
                    "code": p.code,
                    "title": CODES[p.code].title,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in report
            ],
        },
        indent=2,
        ensure_ascii=False,
    )
