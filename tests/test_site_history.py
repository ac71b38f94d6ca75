"""A claim page lists the claim's commits, newest first, with the status each one left."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import html as lhtml

from kb.build import BuildOptions, build_site
from kb.check import CheckOptions

from conftest import MakeKB

CLAIM = "claims/trade-record-2024.yaml"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=Editor One",
                    "-c", "user.email=one@example.org", *args], check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_history_shows_status_at_each_step(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "Add the trade record claim")
    path = root / CLAIM
    path.write_text(path.read_text().replace(
        "evidence:\n", "evidence:\n  - source: report\n    stance: refutes\n"
        "    quote: \"no record at all\"\n"))
    git(root, "commit", "-q", "-am", "Add refuting evidence")

    result = build_site(root, tmp_path / "site",
                        BuildOptions(check=CheckOptions(use_cache=False), search="json"))
    assert not result.checked.report.errors, list(result.checked.report)
    doc = lhtml.parse(str(tmp_path / "site/claims/trade-record-2024/index.html")).getroot()
    steps = doc.cssselect("ol.history > li")
    assert [" ".join(li.text_content().split()) for li in steps] == [
        f"{step} Editor One: {subject} {status}"
        for step, subject, status in [
            (steps[0].cssselect("time")[0].text, "Add refuting evidence", "⇄ Disputed"),
            (steps[1].cssselect("time")[0].text, "Add the trade record claim", "✔ Supported"),
        ]]
    assert [li.cssselect(".step-status .badge")[0].get("class") for li in steps] == [
        "badge status-disputed", "badge status-supported"]
