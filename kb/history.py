"""Each file's history from git: one `git log` for the whole knowledge base.

Where the folder is not a git checkout, or git is missing, there is no history, and nothing is
invented in its place.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_RS, _US = "\x1e", "\x1f"


@dataclass(frozen=True)
class Commit:
    sha: str
    date: dt.datetime  # the author date, with its offset
    author: str
    subject: str


def file_histories(root: Path, paths: tuple[str, ...] = ("claims", "sources", "entities")
                   ) -> dict[str, list[Commit]]:
    """For each file (relative to `root`, forward slashes), its commits, oldest first."""
    if shutil.which("git") is None:
        return {}
    cmd = ["git", "-C", str(root), "log", f"--format={_RS}%H{_US}%aI{_US}%an{_US}%s",
           "--name-only", "--no-renames", "--relative", "--", *paths]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                             errors="replace", check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    histories: dict[str, list[Commit]] = {}
    for block in out.split(_RS)[1:]:
        header, _, names = block.partition("\n")
        sha, date, author, subject = header.split(_US, 3)
        commit = Commit(sha, dt.datetime.fromisoformat(date), author, subject)
        for name in names.split("\n"):
            if name.strip():
                histories.setdefault(name.strip(), []).append(commit)
    for commits in histories.values():
        commits.reverse()
    return histories
