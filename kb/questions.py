"""The questions of `kb new`: each value of a new record, how it is asked in a terminal and
checked, and the ids it may name or take (kb.new gathers the answers into a file)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kb import model as m
from kb.model import KIND_DIRS
from kb.schema import period_bounds, valid_url
from kb.specs import SLUG, SLUG_MAX

REF_KINDS = {"claimant": "entity", "about": "entity", "source": "source",
             "publisher": "entity", "authors": "entity"}


@dataclass(frozen=True)
class Question:
    """One value of a new record: its flag name, how it is asked and checked."""

    name: str
    text: str
    kind: str = "text"  # text | choice | ref | date | period | url | lang | wikidata | slug
    required: bool = False
    many: bool = False
    choices: tuple[str, ...] = ()
    ref: str = ""  # the kind a ref points at


QUESTIONS: dict[str, list[Question]] = {
    "claim": [
        Question("claim", "The claim, in your words", required=True),
        Question("kind", "Kind", "choice", required=True, choices=m.CLAIM_KINDS),
        Question("source", "Source where the claim is made (id)", "ref", required=True,
                 ref="source"),
        Question("quote", "The exact words of that source", required=True),
        Question("claimant", "Who makes the claim (entity id)", "ref", ref="entity"),
        Question("about", "What it is about (entity ids, comma-separated)", "ref", many=True,
                 ref="entity"),
        Question("period", "The time it is about (YYYY, YYYY-MM, YYYY-MM-DD or A/B)", "period"),
        Question("quantity", "The figure and unit, e.g. 245e9 USD", "quantity"),
        Question("resolves_by", "When the prediction can be checked (YYYY-MM-DD)", "date"),
        Question("tags", "Tags (comma-separated)", "slug", many=True),
        Question("by", "Your handle, to record a review dated today", "text"),
    ],
    "source": [
        Question("title", "Title or headline", required=True),
        Question("kind", "Kind", "choice", required=True, choices=m.SOURCE_KINDS),
        Question("url", "URL (http or https)", "url", required=True),
        Question("publisher", "Publisher (entity id)", "ref", ref="entity"),
        Question("authors", "Authors (entity ids, comma-separated)", "ref", many=True,
                 ref="entity"),
        Question("published", "Published (YYYY, YYYY-MM or YYYY-MM-DD)", "partial-date"),
        Question("accessed", "Accessed (YYYY-MM-DD)", "date"),
        Question("language", "Language (en, ru, de …)", "lang"),
    ],
    "entity": [
        Question("name", "Name", required=True),
        Question("kind", "Kind", "choice", required=True, choices=m.ENTITY_KINDS),
        Question("description", "One sentence on who or what it is"),
        Question("aliases", "Other names (comma-separated)", many=True),
        Question("wikidata", "Wikidata Q-number, only if you looked it up", "wikidata"),
    ],
}
TITLE_FIELD = {"claim": "claim", "source": "title", "entity": "name"}


class NewError(Exception):
    """Bad input for a new record; `code` is the exit code (1: refused, 2: bad arguments)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --- ids ----------------------------------------------------------------------------------


def slugify(text: str, limit: int = 60) -> str:
    """A lowercase slug from a title: ascii letters and digits, words joined by hyphens."""
    text = "".join(" " if unicodedata.category(c) in ("Pd", "Zs") else c for c in text)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"(?<=\w)'(?=\w)", "", ascii_text)  # Russia's → russias
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for w in words:
        if len(slug) + len(w) + 1 > min(limit, SLUG_MAX):
            break
        slug = f"{slug}-{w}" if slug else w
    return slug or "new"


def existing_ids(root: Path) -> dict[str, list[str]]:
    """The ids of every kind, from the file names (cheap: no file is parsed)."""
    out: dict[str, list[str]] = {}
    for kind, folder in KIND_DIRS.items():
        base = root / folder
        pattern = "**/*.yaml" if kind == "claim" else "*.yaml"
        out[kind] = sorted({p.stem for p in base.glob(pattern)}) if base.is_dir() else []
    return out


def suggest_id(title: str, taken: list[str]) -> str:
    base = slugify(title)
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


# --- checking one answer ------------------------------------------------------------------


def complete_ref(value: str, ids: list[str]) -> str:
    """An id as typed, or the one id it is a prefix of; NewError naming close ids otherwise."""
    if value in ids:
        return value
    starts = [i for i in ids if i.startswith(value)]
    if len(starts) == 1:
        return starts[0]
    close = starts[:8] or difflib.get_close_matches(value, ids, n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    raise NewError(f"no such id: {value!r}{hint}")


def convert(q: Question, raw: str, ids: dict[str, list[str]]) -> Any:
    """The value of an answer, or NewError saying what is wrong with it."""
    text = raw.strip()
    if q.many:
        return [convert(Question(q.name, q.text, q.kind, ref=q.ref, choices=q.choices), part,
                        ids) for part in re.split(r"[,\s]+" if q.kind != "text" else r",",
                                                  text) if part.strip()]
    if q.kind == "choice" and text not in q.choices:
        raise NewError(f"{text!r} is not one of: {', '.join(q.choices)}")
    if q.kind == "ref":
        return complete_ref(text, ids[q.ref])
    if q.kind == "slug" and not SLUG.match(text):
        raise NewError(f"{text!r} is not a lowercase slug (a-z, 0-9, single hyphens)")
    if q.kind == "url" and not valid_url(text):
        raise NewError(f"{text!r} is not an http or https URL")
    if q.kind == "period" and period_bounds(text) is None:
        raise NewError(f"{text!r} is not a period: YYYY, YYYY-MM, YYYY-MM-DD or A/B")
    if q.kind in ("date", "partial-date"):
        form = r"\d{4}-\d{2}-\d{2}" if q.kind == "date" else r"\d{4}(-\d{2}(-\d{2})?)?"
        if not re.fullmatch(form, text) or period_bounds(text) is None:
            shape = "YYYY-MM-DD" if q.kind == "date" else "YYYY[-MM[-DD]]"
            raise NewError(f"{text!r} is not a date ({shape})")
    if q.kind == "lang" and not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*", text):
        raise NewError(f"{text!r} is not a language tag such as en or pt-BR")
    if q.kind == "wikidata" and not re.fullmatch(r"Q[1-9][0-9]*", text):
        raise NewError(f"{text!r} is not a Wikidata Q-number such as Q42")
    if q.kind == "quantity":
        parts = text.split(None, 1)
        try:
            number = float(parts[0])
        except (ValueError, IndexError):
            raise NewError(f"{text!r} is not a figure and a unit, e.g. 245e9 USD") from None
        if len(parts) < 2 or number != number or abs(number) == float("inf"):
            raise NewError(f"{text!r} is not a figure and a unit, e.g. 245e9 USD")
        return {"value": _number(parts[0]), "unit": parts[1].strip()}
    if not text:
        raise NewError("an answer is needed")
    return text


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


# --- prompts ------------------------------------------------------------------------------


@contextmanager
def _completion(ids: list[str]) -> Iterator[None]:
    """Tab completion of ids while a prompt waits, where the terminal has readline."""
    try:
        import readline
    except ImportError:  # pragma: no cover - not on every platform
        yield
        return
    old = readline.get_completer()

    def complete(text: str, state: int) -> str | None:
        word = text.rsplit(",", 1)[-1].strip()
        hits = [i for i in ids if i.startswith(word)]
        return hits[state] if state < len(hits) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    try:
        yield
    finally:
        readline.set_completer(old)


def ask(q: Question, ids: dict[str, list[str]], default: str | None = None) -> Any:
    """Ask one question until the answer is valid; an empty answer skips an optional one."""
    choices = ids.get(q.ref, []) if q.kind == "ref" else list(q.choices)
    text = q.text + (" (? lists the ids)" if q.kind == "ref" else "")
    if q.kind == "choice":
        text += f" [{'/'.join(q.choices)}]"

    def proc(raw: str) -> Any:
        if raw.strip() == "?" and q.kind == "ref":
            raise click.UsageError(", ".join(choices) or f"no {q.ref} yet")
        if not raw.strip():
            if q.required:
                raise click.UsageError("an answer is needed")
            return None
        try:
            return convert(q, raw, ids)
        except NewError as exc:
            raise click.UsageError(str(exc)) from None

    with _completion(choices):
        return click.prompt(text, default=default if default is not None else "",
                            show_default=bool(default), value_proc=proc)
