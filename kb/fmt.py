"""`kb fmt`: put record files into one canonical form (kb.canonical), keeping every comment
and every value.

Only files the strict reader parses without a Y problem are touched. Every rewrite is proved
before it is written: the new text must parse to the same data and carry the same comments,
else the file is left as it was and reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.error import YAMLError

from kb.canonical import comments, data_of, format_text, has_modeline
from kb.jsonschema import modeline
from kb.load import discover
from kb.model import KIND_DIRS
from kb.problems import rel
from kb.yamlstrict import Mapping, decode, parse

# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    path: Path
    shown: str
    status: str  # canonical | changed | skipped
    reason: str = ""
    new_text: str | None = None


def kind_of_path(path: Path, root: Path) -> str | None:
    """claim, source or entity, from the folder a file sits in (claims/ may nest)."""
    parts = path.resolve().relative_to(root.resolve()).parts if _under(path, root) else path.parts
    by_dir = {d: k for k, d in KIND_DIRS.items()}
    for i in range(len(parts) - 2, -1, -1):
        kind = by_dir.get(parts[i])
        if kind is not None and (kind == "claim" or i == len(parts) - 2):
            return kind
    return None


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def format_file(path: Path, root: Path) -> Outcome:
    shown = rel(path.resolve(), root.resolve()) if _under(path, root) else path.as_posix()
    kind = kind_of_path(path, root)
    if kind is None:
        return Outcome(path, shown, "skipped", "not in claims/, sources/ or entities/")
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Outcome(path, shown, "skipped", f"cannot read: {exc.strerror}")
    text, problems = decode(data, shown)
    if text is not None:
        root_node, problems = parse(text, shown)
    if text is None or problems:
        p = problems[0]
        return Outcome(path, shown, "skipped", f"{p.loc.line}:{p.loc.col} {p.code} {p.message}")
    if not isinstance(root_node, Mapping):
        return Outcome(path, shown, "skipped", "the file holds no mapping")
    try:
        new = format_text(text, kind, shown)
    except (YAMLError, ValueError) as exc:
        return Outcome(path, shown, "skipped", f"cannot be formatted: {exc}")
    added = Counter() if has_modeline(text) else Counter([modeline(kind, shown)])
    if data_of(new) != data_of(text) or comments(new) != comments(text) + added:
        return Outcome(path, shown, "skipped", "formatting would change its data or comments "
                       "(please report this)")
    if new.encode("utf-8") == data:
        return Outcome(path, shown, "canonical")
    return Outcome(path, shown, "changed", new_text=new)


def targets(root: Path, paths: Iterable[Path]) -> list[Path]:
    """The record files to format: PATHS (files or folders), or every record of the root."""
    chosen = list(paths)
    if not chosen:
        return [p for _, p in discover(root)]
    found: list[Path] = []
    for p in chosen:
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.yaml") if q.is_file())
        else:
            found.append(p)
    return found


def fmt(root: Path, paths: Iterable[Path], check_only: bool) -> list[Outcome]:
    """Format files (or, with check_only, only find those that are not canonical)."""
    outcomes = [format_file(p, root) for p in targets(root, paths)]
    if not check_only:
        for o in outcomes:
            if o.status == "changed" and o.new_text is not None:
                o.path.write_text(o.new_text, encoding="utf-8")
    return outcomes


def run(root: Path, paths: tuple[Path, ...], check_only: bool) -> int:
    """`kb fmt`: exit 1 when files were skipped or, with --check, are not canonical."""
    import click

    from kb.load import NotAKnowledgeBase

    try:
        outcomes = fmt(root, paths, check_only)
    except NotAKnowledgeBase as exc:
        click.echo(f"kb fmt: {exc}", err=True)
        return 2
    for o in outcomes:
        if o.status == "changed":
            click.echo(f"{'not canonical' if check_only else 'formatted'}: {o.shown}")
        elif o.status == "skipped":
            click.echo(f"skipped: {o.shown}: {o.reason}", err=True)
    changed = sum(o.status == "changed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    verb = "would be reformatted" if check_only else "reformatted"
    n = len(outcomes)
    click.echo(f"{n} file{'s' * (n != 1)}: {changed} {verb}, {skipped} skipped", err=True)
    return 1 if skipped or (check_only and changed) else 0
