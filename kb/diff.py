"""`kb diff BASE [HEAD]`: what a change does to the knowledge base, for a pull request.

Both versions are read from git objects (`git ls-tree` + one `git cat-file --batch`) into
temporary folders and checked like any knowledge base; the working tree stands for HEAD when no
HEAD is given. No worktree, checkout or index is touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kb.check import Checked, CheckOptions, check, today
from kb.history import read_blobs
from kb.model import KIND_DIRS, Claim, KnowledgeBase, Record
from kb.problems import Problem
from kb.specs import RECORDS
from kb.status import assess

KB_FILES = (*KIND_DIRS.values(), "kb.toml")
KINDS = tuple(KIND_DIRS)  # claim, source, entity


class DiffError(Exception):
    """A ref cannot be read (exit code 2)."""


# --- reading a version -----------------------------------------------------------------------


def _git(root: Path, *args: str) -> str:
    if shutil.which("git") is None:
        raise DiffError("git is not installed")
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiffError(f"git failed: {exc}") from exc
    if done.returncode != 0:
        raise DiffError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                        else f"git {args[0]} failed")
    return done.stdout


def materialise(root: Path, ref: str, dest: Path) -> None:
    """Write the knowledge base files of `ref` (relative to `root`) into `dest`."""
    try:
        _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError as exc:
        raise DiffError(f"{ref!r} is not a commit in {root}: {exc}") from exc
    listing = _git(root, "ls-tree", "-r", "-z", ref, "--", *KB_FILES)
    paths = [entry.split("\t", 1)[1] for entry in listing.split("\0")
             if entry and entry.split(" ", 2)[1] == "blob"]
    for sub in KIND_DIRS.values():
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for path, data in zip(paths, read_blobs(root, [f"{ref}:{p}" for p in paths]), strict=True):
        if data is None:
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@contextmanager
def version(root: Path, ref: str | None) -> Iterator[Checked]:
    """The checked knowledge base at `ref`, or in the working tree when ref is None."""
    if ref is None:
        yield check(root, CheckOptions())
        return
    with tempfile.TemporaryDirectory(prefix="kb-diff-") as tmp:
        materialise(root, ref, Path(tmp))
        yield check(Path(tmp), CheckOptions(use_cache=False))


# --- comparing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordChange:
    kind: str
    id: str
    change: str  # added | changed | removed
    fields: tuple[str, ...] = ()  # the fields that differ, for changed records
    title: str = ""  # the claim text, source title or entity name


@dataclass(frozen=True)
class StatusChange:
    id: str
    claim: str
    before: str | None  # None: the claim is new
    after: str | None  # None: the claim was removed
    reason_before: str = ""
    reason_after: str = ""


@dataclass(frozen=True)
class ProblemEntry:
    path: str
    line: int
    column: int
    severity: str
    code: str
    message: str
    hint: str


@dataclass
class Diff:
    base: str
    head: str
    records: list[RecordChange] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    new_problems: list[ProblemEntry] = field(default_factory=list)
    fixed_problems: list[ProblemEntry] = field(default_factory=list)

    def count(self, kind: str, change: str) -> int:
        return sum(r.kind == kind and r.change == change for r in self.records)


def _table(kb: KnowledgeBase, kind: str) -> dict[str, Record]:
    return dict(kb.tables()[kind])


def _title(record: Record | None) -> str:
    for name in ("claim", "title", "name"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            return value
    return ""


def _changed_fields(kind: str, a: Record, b: Record, kb_a: KnowledgeBase,
                    kb_b: KnowledgeBase) -> tuple[str, ...]:
    names = [f.name for f in fields(a)
             if f.compare and getattr(a, f.name) != getattr(b, f.name)]
    order = list(RECORDS[kind].fields)
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    if kind == "source":
        rid = getattr(a, "id", "")
        ta, tb = kb_a.snapshots.get(rid), kb_b.snapshots.get(rid)
        if (ta.text if ta else None) != (tb.text if tb else None):
            names.append("text snapshot")
    return tuple(names)


def _entry(p: Problem) -> ProblemEntry:
    return ProblemEntry(p.loc.path, p.loc.line, p.loc.col, p.severity.value, p.code,
                        p.message, p.hint)


def compare(base: Checked, head: Checked, base_name: str, head_name: str) -> Diff:
    """Records added, changed and removed; status changes; problems new and fixed."""
    diff = Diff(base_name, head_name)
    for kind in KINDS:
        before, after = _table(base.kb, kind), _table(head.kb, kind)
        for rid in sorted(before.keys() | after.keys()):
            a, b = before.get(rid), after.get(rid)
            if a is None:
                diff.records.append(RecordChange(kind, rid, "added", title=_title(b)))
            elif b is None:
                diff.records.append(RecordChange(kind, rid, "removed", title=_title(a)))
            else:
                changed = _changed_fields(kind, a, b, base.kb, head.kb)
                if changed:
                    diff.records.append(RecordChange(kind, rid, "changed", changed, _title(b)))
    day = today()
    for cid in sorted(base.kb.claims.keys() | head.kb.claims.keys()):
        ca, cb = base.kb.claims.get(cid), head.kb.claims.get(cid)
        sa = assess(ca, day, base.config.review_age_days) if ca else None
        sb = assess(cb, day, head.config.review_age_days) if cb else None
        if (sa.status if sa else None) != (sb.status if sb else None):
            text = (cb or ca or Claim()).claim
            diff.statuses.append(StatusChange(cid, text, sa.status if sa else None,
                                              sb.status if sb else None,
                                              sa.reason if sa else "", sb.reason if sb else ""))

    def key(p: Problem) -> tuple[str, str, str]:
        return (p.code, p.loc.path, p.message)

    old = {key(p) for p in base.report}
    new = {key(p) for p in head.report}
    diff.new_problems = [_entry(p) for p in head.report if key(p) not in old]
    diff.fixed_problems = [_entry(p) for p in base.report if key(p) not in new]
    return diff


def diff_refs(root: Path, base: str, head: str | None) -> Diff:
    """The difference between git ref `base` and `head` (the working tree when None)."""
    with version(root, base) as a, version(root, head) as b:
        return compare(a, b, base, head or "working tree")


# --- output ----------------------------------------------------------------------------------

_KIND_PLURAL = {"claim": "Claims", "source": "Sources", "entity": "Entities"}
_FOLDER = KIND_DIRS


def _md(text: str) -> str:
    """Text safe inside a Markdown list item: no markup, no HTML, one line."""
    out = " ".join(text.split())
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def as_markdown(diff: Diff) -> str:
    lines = [f"## Knowledge base changes: `{_md(diff.base)}` → `{_md(diff.head)}`", ""]
    counts = []
    for kind in KINDS:
        parts = [f"{diff.count(kind, c)} {c}" for c in ("added", "changed", "removed")]
        counts.append(f"- **{_KIND_PLURAL[kind]}:** " + ", ".join(parts))
    lines += counts
    lines += ["", f"- **Status changes:** {len(diff.statuses)}",
              f"- **New problems:** {len(diff.new_problems)}"
              f" ({sum(p.severity == 'error' for p in diff.new_problems)} errors)",
              f"- **Problems fixed:** {len(diff.fixed_problems)}", ""]
    if not diff.records and not diff.new_problems and not diff.fixed_problems:
        lines += ["No claims, sources or entities changed.", ""]
    for change in ("added", "changed", "removed"):
        items = [r for r in diff.records if r.change == change]
        if not items:
            continue
        lines += [f"### {change.capitalize()}", ""]
        for r in items:
            item = f"- {r.kind} `{r.id}`"
            if r.title:
                item += f": {_md(r.title)}"
            if r.fields:
                item += " (" + ", ".join(f"`{f}`" for f in r.fields) + ")"
            lines.append(item)
        lines.append("")
    if diff.statuses:
        lines += ["### Status changes", ""]
        for s in diff.statuses:
            before = f"**{s.before}**" if s.before else "*new*"
            after = f"**{s.after}**" if s.after else "*removed*"
            why = f"before: {_md(s.reason_before)} now: {_md(s.reason_after)}" if (
                s.before and s.after) else _md(s.reason_after or s.reason_before)
            lines.append(f"- `{s.id}`: {before} → {after}. {why}")
        lines.append("")
    sections: tuple[tuple[str, list[ProblemEntry]], ...] = (
        ("New problems", diff.new_problems), ("Problems fixed", diff.fixed_problems))
    for title, entries in sections:
        if not entries:
            continue
        lines += [f"### {title}", ""]
        for p in entries:
            where = f"{p.path}:{p.line}:{p.column}"
            hint = f" ({_md(p.hint)})" if p.hint else ""
            lines.append(f"- `{where}` {p.severity} {p.code}: {_md(p.message)}{hint}")
        lines.append("")
    return "\n".join(lines)


def as_json(diff: Diff) -> str:
    return json.dumps(asdict(diff), indent=2, ensure_ascii=False)


def run(root: Path, base: str, head: str | None, fmt: str) -> int:
    """`kb diff`: print the report; exit 0 when it ran (it is a report, not a gate)."""
    import click

    from kb.load import NotAKnowledgeBase

    try:
        diff = diff_refs(root, base, head)
    except (DiffError, NotAKnowledgeBase) as exc:
        click.echo(f"kb diff: {exc}", err=True)
        return 2
    click.echo(as_json(diff) if fmt == "json" else as_markdown(diff))
    return 0
