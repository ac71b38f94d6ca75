"""kb diff on a real git repository: records, statuses and problems between two commits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import main

from conftest import MINIMAL, MakeKB

needs_git = pytest.mark.skipif(shutil.which("git") is None and not os.environ.get("CI"),
                               reason="git is not installed")


def git(root: Path, *args: str, date: str = "2026-11-01T12:00:00+00:00",
        author: str = "Editor One") -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": "e@example.org",
           "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": "e@example.org",
           "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def commit(root: Path, message: str, **kw: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message, **kw)
    return git(root, "rev-parse", "HEAD").strip()


def init(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "commit.gpgsign", "false")


NEW_CLAIM = """\
id: trade-fall-2025
claim: Trade fell in 2025.
kind: fact
appearances:
  - source: article
    quote: "the value of trade hit a record"
"""

REFUTING = """\
  - source: article
    stance: refutes
    quote: "hit a record $245bn"
    note: An editor's reading, for the test.
"""


def parse_markdown(text: str) -> dict[str, list[str]]:
    """Sections by heading, each with its list items: the report compared by meaning."""
    sections: dict[str, list[str]] = {}
    current = "summary"
    for line in text.splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            sections[current] = []
        elif line.startswith("- "):
            sections.setdefault(current, []).append(line[2:])
    return sections


def ids(items: list[str]) -> set[tuple[str, str]]:
    found = set()
    for item in items:
        m = re.match(r"(claim|source|entity) `([a-z0-9-]+)`", item)
        assert m, item
        found.add((m.group(1), m.group(2)))
    return found


@pytest.fixture
def history(make_kb: MakeKB) -> tuple[Path, str]:
    root = make_kb()
    init(root)
    base = commit(root, "base")
    (root / "claims/trade-fall-2025.yaml").write_text(NEW_CLAIM, encoding="utf-8")
    commit(root, "add a claim")
    path = root / "claims/trade-record-2024.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("reviews:", REFUTING + "reviews:"),
                    encoding="utf-8")
    commit(root, "add refuting evidence")
    (root / "sources/report.yaml").unlink()
    commit(root, "delete a source")
    return root, base


@needs_git
def test_markdown_report(history: tuple[Path, str]) -> None:
    root, base = history
    result = CliRunner().invoke(main, ["--root", str(root), "diff", base, "HEAD"])
    assert result.exit_code == 0, result.output
    md = parse_markdown(result.output)
    summary = md[next(k for k in md if k.startswith("Knowledge base changes"))]
    assert "**Claims:** 1 added, 1 changed, 0 removed" in summary
    assert "**Sources:** 0 added, 0 changed, 1 removed" in summary
    assert ids(md["Added"]) == {("claim", "trade-fall-2025")}
    assert ids(md["Changed"]) == {("claim", "trade-record-2024")}
    assert "(`evidence`)" in md["Changed"][0]
    assert ids(md["Removed"]) == {("source", "report")}
    statuses = {s.split("`")[1]: s for s in md["Status changes"]}
    assert set(statuses) == {"trade-record-2024", "trade-fall-2025"}
    assert "**supported** → **disputed**" in statuses["trade-record-2024"]
    assert "1 source supports, 1 refutes" in statuses["trade-record-2024"]
    assert "*new* → **unverified**" in statuses["trade-fall-2025"]
    new = md["New problems"]
    assert any("R301" in p and "report" in p for p in new), new
    assert all(p.startswith("`claims/") or p.startswith("`sources/") for p in new)


@needs_git
def test_json_report_and_working_tree(history: tuple[Path, str]) -> None:
    root, base = history
    (root / "entities/china.yaml").write_text("id: china\nname: China\nkind: country\n",
                                              encoding="utf-8")
    result = CliRunner().invoke(main, ["--root", str(root), "diff", "HEAD", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["head"] == "working tree"
    assert data["records"] == [{"kind": "entity", "id": "china", "change": "added",
                                "fields": [], "title": "China"}]
    assert data["statuses"] == []
    assert [p["code"] for p in data["new_problems"]] == ["T605"]  # nothing refers to it
    full = json.loads(CliRunner().invoke(
        main, ["--root", str(root), "diff", base, "--format", "json"]).output)
    assert {(r["kind"], r["id"], r["change"]) for r in full["records"]} == {
        ("claim", "trade-fall-2025", "added"), ("claim", "trade-record-2024", "changed"),
        ("source", "report", "removed"), ("entity", "china", "added")}


@needs_git
def test_snapshot_change_and_no_change(make_kb: MakeKB) -> None:
    root = make_kb()
    init(root)
    commit(root, "base")
    same = CliRunner().invoke(main, ["--root", str(root), "diff", "HEAD"])
    assert same.exit_code == 0, same.output
    assert "No claims, sources or entities changed." in same.output
    (root / "sources/article.txt").write_text(MINIMAL["sources/article.txt"] + "More.\n",
                                              encoding="utf-8")
    changed = parse_markdown(CliRunner().invoke(main, ["--root", str(root), "diff",
                                                       "HEAD"]).output)
    assert changed["Changed"] == ["source `article`: An article (`text snapshot`)"]


@needs_git
def test_bad_ref_and_not_a_repository(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    init(root)
    commit(root, "base")
    bad = CliRunner().invoke(main, ["--root", str(root), "diff", "no-such-branch"])
    assert bad.exit_code == 2
    assert "no-such-branch" in bad.output and "Traceback" not in bad.output
    plain = tmp_path / "plain"
    plain.mkdir()
    outside = CliRunner().invoke(main, ["--root", str(plain), "diff", "HEAD"])
    assert outside.exit_code == 2, outside.output
