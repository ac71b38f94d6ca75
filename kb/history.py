"""Each file's history from git: one `git log` for the whole knowledge base.

Where the folder is not a git checkout, or git is missing, there is no history, and nothing is
invented in its place.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.forks import widen_pipe

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
    return GitLog(root, paths).histories()


class GitLog:
    """file_histories, with `git log` started now and its output read when asked for: `kb
    build` starts it first and reads it after the check (0.08 s at 10,000 claims and one
    commit; more with a long history). Its pipe is widened to 1 MiB, so that git can write
    that much before it waits for the reader. It asks for each file's blob at each commit
    (--raw): claim_histories reads them by that id (git cat-file took 2.5 s for 10,000
    `<commit>:<path>` names, each a walk of the commit's trees, and 0.15 s for their ids)."""

    def __init__(self, root: Path,
                 paths: tuple[str, ...] = ("claims", "sources", "entities")) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.blobs: dict[tuple[str, str], str] = {}  # (commit, path) → the blob there
        if shutil.which("git") is None:
            return
        # core.quotePath off: a name outside ASCII comes as it is, not quoted in octal
        cmd = ["git", "-C", str(root), "-c", "core.quotePath=false", "log",
               f"--format={_RS}%H{_US}%aI{_US}%an{_US}%s",
               "--raw", "--no-abbrev", "--no-renames", "--relative", "--", *paths]
        try:
            self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)
        except OSError:
            return
        widen_pipe(self._process.stdout)

    def histories(self) -> dict[str, list[Commit]]:
        """Each file's commits, oldest first; none when git failed or this is no checkout."""
        process, self._process = self._process, None
        if process is None:
            return {}
        try:
            out, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return {}
        if process.returncode != 0:
            return {}
        histories, self.blobs = _histories(out.decode("utf-8", errors="replace"))
        return histories

    def close(self) -> None:
        """Stop git if its output was not read (a build that ended early)."""
        process, self._process = self._process, None
        if process is not None:
            with suppress(OSError):
                process.kill()
            process.communicate()


_FILE_MODES = ("100644", "100755", "000000")


def _histories(out: str) -> tuple[dict[str, list[Commit]], dict[tuple[str, str], str]]:
    """git log's output: each file's commits, and the blob each commit left at each path
    (--raw's lines, ":<mode> <mode> <blob before> <blob after> <status>\t<path>")."""
    histories: dict[str, list[Commit]] = {}
    blobs: dict[tuple[str, str], str] = {}
    for block in out.split(_RS)[1:]:
        header, _, lines = block.partition("\n")
        sha, date, author, subject = header.split(_US, 3)
        commit = Commit(sha, dt.datetime.fromisoformat(date), author, subject)
        for line in lines.split("\n"):
            meta, tab, name = line.partition("\t")
            fields = meta.split()
            # a file's version, or its deletion (mode 000000); not a submodule or a link
            if not (tab and line.startswith(":") and len(fields) >= 4 and name.strip()
                    and fields[1] in _FILE_MODES):
                continue
            name = name.strip()
            histories.setdefault(name, []).append(commit)
            blobs[(sha, name)] = fields[3]
    for commits in histories.values():
        commits.reverse()
    return histories, blobs


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

    None for a spec that names nothing (the file did not exist at that commit), and for every
    spec when git cannot be run.
    """
    blobs = _cat_file(root, [f"{s.split(':', 1)[0]}:./{s.split(':', 1)[1]}" for s in specs])
    return [None] * len(specs) if blobs is None else blobs


def _cat_file(root: Path, names: list[str]) -> list[bytes | None] | None:
    """The objects `names` name (blob ids, or `<commit>:./<path>`), from one `git cat-file`;
    None for a name that names nothing, or None for all when git could not be run."""
    if not names:
        return []
    if shutil.which("git") is None:
        return None
    feed = "".join(f"{name}\n" for name in names)
    try:
        out = subprocess.run(["git", "-C", str(root), "cat-file", "--batch"],
                             input=feed.encode("utf-8"), capture_output=True, check=True,
                             timeout=300).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    blobs: list[bytes | None] = []
    pos = 0
    try:
        for _ in names:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3:  # "<id> <type> <size>", then the contents and a newline
                size = int(header[2])
                blobs.append(out[pos : pos + size] if header[1] == b"blob" else None)
                pos += size + 1  # whatever the type: the next answer starts after them
            else:  # "<name> missing"
                blobs.append(None)
    except ValueError:  # cut short: nothing of it is trusted
        return None
    return blobs


def claim_histories(root: Path, paths: tuple[str, ...] = ("claims",),
                    review_age_days: int = 365,
                    histories: dict[str, list[Commit]] | None = None,
                    cache: bool = False,
                    parsed: Callable[[], Mapping[str, tuple[str, Any]]] | None = None,
                    blobs: Mapping[tuple[str, str], str] | None = None
                    ) -> dict[str, list[HistoryStep]]:
    """For each claim file under `paths`, its status at each commit that touched it, oldest
    first. One `git log` and one `git cat-file` for the whole knowledge base.

    A step is assessed as of its commit's date, so a prediction reads as it did then. With
    `cache`, each step is kept in the user's cache under its commit and path, which name the
    same bytes for ever (StepsMemo): only the steps of new commits are read and parsed. Each
    build parsed every version of every claim file again: 4.7 s of an edit build at 10,000
    claims in a git checkout, against ~2 s for the same build without git. `parsed` gives
    (asked only when there are versions to read) path → the digest of the bytes the check
    parsed, and its record: a version with those bytes, most often the last, is not parsed
    again (in a first build, ~13,000 parses).
    `histories` and `blobs`: a GitLog's, at hand already, to spare a second `git log`.
    """
    if histories is None:
        log = GitLog(root, paths)
        known, blobs = log.histories(), log.blobs
    else:
        known = histories
    blobs = blobs or {}
    inside = tuple(f"{d}/" for d in paths)
    histories = {p: cs for p, cs in known.items()
                 if p.endswith(".yaml") and (p.startswith(inside) or p in paths)}
    order = [(f"{c.sha}:{p}", p, c) for p, commits in sorted(histories.items()) for c in commits]
    memo = StepsMemo(root, review_age_days) if cache and order else None
    kept = memo.steps if memo is not None else {}
    todo = [(spec, path, c) for spec, path, c in order if spec not in kept]
    # each version by its blob's id where git log gave it; none for a file deleted there
    names = [blobs.get((c.sha, path)) or f"{c.sha}:./{path}" for _spec, path, c in todo]
    wanted = sorted({name for name in names if name.strip("0")})
    read = _cat_file(root, wanted)
    found = dict(zip(wanted, read, strict=True)) if read is not None else {}
    checked = parsed() if parsed is not None and todo else {}
    made: dict[str, Step] = {}
    unsure: set[str] = set()  # steps to work out again next time: git did not give them
    for (spec, path, c), name in zip(todo, names, strict=True):
        data = found.get(name)
        if data is not None or not name.strip("0"):  # read, or deleted in that commit
            made[spec] = _step(path, data, c, review_age_days, checked.get(path))
        elif name in found and ":" in name:  # no such path in that commit
            made[spec] = _step(path, None, c, review_age_days, None)
            unsure.add(spec)  # (as git log named no blob: not kept)
        else:  # an object this clone lacks (shallow, partial), or git failed
            made[spec] = (None, None, "could not be read", False)
            unsure.add(spec)
    out: dict[str, list[HistoryStep]] = {}
    steps = {**kept, **made}
    for spec, path, commit in order:
        out.setdefault(path, []).append(HistoryStep(commit, *steps[spec]))
    if memo is not None and (len(made) > len(unsure) or len(kept) != len(order)):
        memo.save({spec: steps[spec] for spec, _path, _c in order if spec not in unsure})
    return out


Step = tuple[str | None, str | None, str, bool]  # HistoryStep's fields but its commit


def _step(path: str, data: bytes | None, commit: Commit, review_age_days: int,
          checked: tuple[str, Any] | None) -> Step:
    from kb.cache import digest
    from kb.load import parse_file
    from kb.model import Claim
    from kb.status import assess

    if data is None:
        return (None, None, "deleted", True)
    if checked is not None and digest(data) == checked[0]:
        record = checked[1]  # the bytes the check parsed: the same record
    else:
        record, _ = parse_file("claim", path, data)
    if not isinstance(record, Claim):
        return (None, None, "could not be read", False)
    a = assess(record, commit.date.date(), review_age_days)
    return (a.status, a.derived, a.reason, False)


class StepsMemo:
    """Each step worked out, under `<commit>:<path>`, in the user's cache (kb.memo: marshal
    data behind a digest, a journal of what was added). Keyed by the code that parses and
    assesses a claim and the review age (kb.toml), which a step depends on besides its bytes
    and its commit's date; a memo that is missing, damaged or under another key is empty."""

    def __init__(self, root: Path, review_age_days: int, folder: Path | None = None) -> None:
        from kb.cache import PARSER_MODULES, cache_path, code_fingerprint
        from kb.memo import read_journaled

        self.path = cache_path(root, "history", folder).with_suffix(".memo")
        self.key = (1, sys.version, code_fingerprint((*PARSER_MODULES, "history", "status")),
                    review_age_days)
        self.read = read_journaled(self.path, self.key)
        value = self.read.value if self.read is not None else None
        self.steps: dict[str, Step] = {}
        # Its shape only: marshal makes plain values, the digest tells damage, and the key
        # (the code) says these were written as _step makes them (a walk of each field cost
        # 0.17 s at 100,000 claims).
        if isinstance(value, dict) and all(type(step) is tuple and len(step) == 4
                                           for step in value.values()):
            self.steps = value

    def save(self, steps: dict[str, Step]) -> None:
        from kb.memo import write_journaled

        write_journaled(self.path, self.key, steps, self.read)


def claim_history(root: Path, relpath: str, review_age_days: int = 365) -> list[HistoryStep]:
    """One claim file's steps (see claim_histories), oldest first; [] outside git."""
    return claim_histories(root, (relpath,), review_age_days).get(relpath, [])
