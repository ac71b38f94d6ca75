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


# --- status at each step (additive: claim pages and the PROV-O graph) ---------------------


@dataclass(frozen=True)
class HistoryStep:
    """A claim file as one commit left it: its status then, or why there is none."""

    commit: Commit
    status: str | None  # the status shown (verdict or derived); None: deleted or unreadable
    derived: str | None  # what the evidence alone gave
    reason: str  # the derivation in words, the verdict's summary, "deleted", "could not be read"
    deleted: bool = False


def read_blobs(root: Path, specs: list[str]) -> list[bytes | None]:
    """The contents of `rev:path` specs (paths relative to `root`) from one `git cat-file`.

    None for a spec that names nothing (the file did not exist at that commit).
    """
    if not specs:
        return []
    if shutil.which("git") is None:
        return [None] * len(specs)
    feed = "".join(f"{s.split(':', 1)[0]}:./{s.split(':', 1)[1]}\n" for s in specs)
    try:
        out = subprocess.run(["git", "-C", str(root), "cat-file", "--batch"],
                             input=feed.encode("utf-8"), capture_output=True, check=True,
                             timeout=300).stdout
    except (OSError, subprocess.SubprocessError):
        return [None] * len(specs)
    blobs: list[bytes | None] = []
    pos = 0
    for _ in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            blobs.append(out[pos : pos + size])
            pos += size + 1  # the blob is followed by a newline
        else:  # "<spec> missing", or not a blob
            blobs.append(None)
    return blobs


def claim_histories(root: Path, paths: tuple[str, ...] = ("claims",),
                    review_age_days: int = 365,
                    histories: dict[str, list[Commit]] | None = None
                    ) -> dict[str, list[HistoryStep]]:
    """For each claim file under `paths`, its status at each commit that touched it, oldest
    first. One `git log` and one `git cat-file` for the whole knowledge base.

    A step is assessed as of its commit's date, so a prediction reads as it did then.
    """
    from kb.load import parse_file
    from kb.model import Claim
    from kb.status import assess

    # `histories`: a file_histories result already at hand, to spare a second `git log`
    known = histories if histories is not None else file_histories(root, paths)
    histories = {p: cs for p, cs in known.items() if p.endswith(".yaml") and any(
        p == d or p.startswith(f"{d}/") for d in paths)}
    order = [(p, c) for p, commits in sorted(histories.items()) for c in commits]
    blobs = read_blobs(root, [f"{c.sha}:{p}" for p, c in order])
    out: dict[str, list[HistoryStep]] = {}
    for (path, commit), data in zip(order, blobs, strict=True):
        if data is None:
            step = HistoryStep(commit, None, None, "deleted", deleted=True)
        else:
            record, _ = parse_file("claim", path, data)
            if isinstance(record, Claim):
                a = assess(record, commit.date.date(), review_age_days)
                step = HistoryStep(commit, a.status, a.derived, a.reason)
            else:
                step = HistoryStep(commit, None, None, "could not be read")
        out.setdefault(path, []).append(step)
    return out


def claim_history(root: Path, relpath: str, review_age_days: int = 365) -> list[HistoryStep]:
    """One claim file's steps (see claim_histories), oldest first; [] outside git."""
    return claim_histories(root, (relpath,), review_age_days).get(relpath, [])
