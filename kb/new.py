"""`kb new claim|source|entity`: a new record file from flags or, in a terminal, from prompts.

The file is written in canonical form (kb fmt) with the JSON Schema modeline, never over an
existing one, and checked at once: the editor sees the new file's problems before anything else.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from kb.model import KIND_DIRS
from kb.questions import (
    QUESTIONS,
    TITLE_FIELD,
    NewError,
    Question,
    ask,
    convert,
    existing_ids,
    slugify,
    suggest_id,
)
from kb.specs import RECORDS, SLUG, SLUG_MAX

# --- the new record -----------------------------------------------------------------------


@dataclass
class Draft:
    kind: str
    id: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def relpath(self) -> str:
        return f"{KIND_DIRS[self.kind]}/{self.id}.yaml"


def verify_quote(root: Path, source: str, quote: str) -> str:
    """Check a quote against its source's snapshot; NewError (exit 1) when it is not there.

    Returns a note for the editor: found, or not checked (no snapshot).
    """
    from kb.quotes import locate, nearest, normalise

    ids = existing_ids(root)["source"]
    if source not in ids:
        close = difflib.get_close_matches(source, ids, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise NewError(f"no source {source!r}{hint}; add it first with `kb new source`", 1)
    snapshot = root / KIND_DIRS["source"] / f"{source}.txt"
    if not snapshot.is_file():
        return f"sources/{source}.txt does not exist: the quote is not checked against the text"
    try:
        text = snapshot.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise NewError(f"cannot read sources/{source}.txt: {exc}", 1) from None
    norm = normalise(text)
    if locate(norm, quote) is not None:
        return f"quote found in sources/{source}.txt"
    near = nearest(norm, quote)
    msg = f"the quote is not in sources/{source}.txt"
    if near:
        msg += f"; the nearest text is:\n  {near}"
    raise NewError(msg + "\ncopy the words exactly; the file was not written", 1)


def gather(root: Path, kind: str, given: dict[str, Any], interactive: bool,
           asker: Callable[[Question, dict[str, list[str]], str | None], Any] = ask) -> Draft:
    """The draft record from the flags, asking for what is missing when interactive."""
    ids = existing_ids(root)
    allowed = {q.name for q in QUESTIONS[kind]} | {"id", "from_quote"}
    stray = sorted(k for k, v in given.items() if k not in allowed and v not in (None, ()))
    if stray:
        flags = ", ".join("--" + k.replace("_", "-") for k in stray)
        article = "an" if kind == "entity" else "a"
        raise NewError(f"{flags}: not a field of {article} {kind}", 2)
    values: dict[str, Any] = {}
    for q in QUESTIONS[kind]:
        raw = given.get(q.name)
        if raw in (None, (), []):
            default = today_text() if q.name == "accessed" else None
            if interactive:
                value = asker(q, ids, default)
            elif default is not None:
                value = default
            elif q.required:
                raise NewError(f"missing --{q.name.replace('_', '-')} ({q.text.lower()}); "
                               "give it as a flag or run `kb new` in a terminal", 2)
            else:
                continue
        else:
            value = _given(q, raw, ids)
        if value not in (None, [], ""):
            values[q.name] = value
    title = values[TITLE_FIELD[kind]]
    taken = ids[kind]
    rid = given.get("id")
    if rid is None and not interactive:
        rid = slugify(title)  # a taken one is refused below: it may be the same thing twice
    if rid is None:
        rid = asker(Question("id", "Id (the file name)", "slug", required=True), ids,
                    suggest_id(title, taken))
        while interactive and rid in taken:
            click.echo(f"Error: {KIND_DIRS[kind]}/{rid}.yaml exists; choose another id",
                       err=True)
            rid = asker(Question("id", "Id (the file name)", "slug", required=True), ids,
                        suggest_id(title, taken))
    if not SLUG.match(rid) or len(rid) > SLUG_MAX:
        raise NewError(f"{rid!r} is not a valid id: a lowercase slug of at most {SLUG_MAX} "
                       "characters (a-z, 0-9, single hyphens)", 2)
    if rid in taken:
        raise NewError(f"a {kind} {rid!r} exists already; refusing to overwrite it "
                       "(give another --id if it is a different one)", 1)
    return Draft(kind, rid, values)


def _given(q: Question, raw: Any, ids: dict[str, list[str]]) -> Any:
    text = ",".join(raw) if isinstance(raw, list | tuple) else str(raw)
    if q.kind == "ref":  # flags name ids exactly: an unknown one is kb check's R301
        parts = [p for p in re.split(r"[,\s]+", text) if p]
        return parts if q.many else text.strip()
    try:
        return convert(q, text, ids)
    except NewError as exc:
        raise NewError(f"--{q.name.replace('_', '-')}: {exc}", 2) from None


def today_text() -> str:
    from kb.check import today

    return today().isoformat()


def record_data(draft: Draft) -> dict[str, Any]:
    """The draft as the file's mapping, in the order of the schema."""
    v = dict(draft.values)
    data: dict[str, Any] = {"id": draft.id}
    if draft.kind == "claim":
        source, quote, by = v.pop("source"), v.pop("quote"), v.pop("by", None)
        v["appearances"] = [{"source": source, "quote": quote}]
        if by:
            v["reviews"] = [{"by": by, "date": today_text()}]
    for name in RECORDS[draft.kind].fields:
        if name in v:
            data[name] = v[name]
    return data


@dataclass(frozen=True)
class Created:
    path: Path
    relpath: str
    problems: list[str]
    errors: int


def create(root: Path, draft: Draft) -> Created:
    """Write the draft (never over a file) and check the knowledge base with it."""
    from kb.canonical import render_record
    from kb.check import check
    from kb.output import text_line

    path = root / draft.relpath
    text = render_record(draft.kind, record_data(draft), draft.relpath)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": fail rather than overwrite
            f.write(text)
    except FileExistsError:
        raise NewError(f"{draft.relpath} exists already; refusing to overwrite it", 1) from None
    report = check(root).report
    mine = [p for p in report if p.loc.path == draft.relpath]
    errors = sum(p.severity.value == "error" for p in mine)
    return Created(path, draft.relpath, [text_line(p) for p in mine], errors)


def run(root: Path, kind: str, given: dict[str, Any], interactive: bool) -> int:
    """`kb new`: exit 0 when the new file has no errors, 1 when it has (or was refused),
    2 for bad arguments."""
    from kb.load import NotAKnowledgeBase

    try:
        note = ""
        if given.get("from_quote"):
            source, quote = given["from_quote"]
            note = verify_quote(root, source, quote)
            given = {**given, "source": source, "quote": quote}
        draft = gather(root, kind, given, interactive)
        created = create(root, draft)
    except NewError as exc:
        click.echo(f"kb new: {exc}", err=True)
        return exc.code
    except NotAKnowledgeBase as exc:
        click.echo(f"kb new: {exc}", err=True)
        return 2
    if note:
        click.echo(note)
    click.echo(f"created {created.relpath}")
    for line in created.problems:
        click.echo(line)
    if created.errors:
        click.echo(f"{created.relpath} has {created.errors} error(s): fix them before you "
                   "open a pull request", err=True)
        return 1
    return 0
