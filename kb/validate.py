"""The rules a knowledge base must keep. Each rule is a small function that yields problems.

Rules see the whole loaded knowledge base; what one file alone decides (syntax, types,
formats) was already reported by the loader and the schema.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from kb import model as m
from kb.load import kind_of
from kb.model import KIND_DIRS
from kb.network import depends_on_cycles, depends_on_weak
from kb.problems import Problem, problem
from kb.quotes import Normalised, locate, nearest, normalise
from kb.schema import SLUG, SLUG_MAX
from kb.status import Assessment, assess, contradiction


@dataclass
class Context:
    today: dt.date
    review_age_days: int = 365
    _normalised: dict[str, Normalised] = field(default_factory=dict)
    _assessed: dict[str, tuple[m.Claim, Assessment]] = field(default_factory=dict)

    def assessment(self, claim: m.Claim) -> Assessment:
        """The claim's status as of this context's day, worked out once: several rules, the
        network and the graph all need it."""
        seen = self._assessed.get(claim.id)
        if seen is None or seen[0] is not claim:
            seen = (claim, assess(claim, self.today, self.review_age_days))
            self._assessed[claim.id] = seen
        return seen[1]

    def snapshot(self, kb: m.KnowledgeBase, source_id: str) -> Normalised | None:
        snap = kb.snapshots.get(source_id)
        if snap is None:
            return None
        if source_id not in self._normalised:
            self._normalised[source_id] = normalise(snap.text)
        return self._normalised[source_id]


Rule = Callable[[m.KnowledgeBase, Context], Iterator[Problem]]


def identifiers(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    first: dict[tuple[str, str], str] = {}
    for path, record in kb.files:
        where = record.at("id")
        if not record.id:
            continue
        if not SLUG.match(record.id) or len(record.id) > SLUG_MAX:
            yield problem(where, "I201", f"'{record.id}' is not a valid identifier",
                          f"use lowercase a-z, 0-9 and single hyphens, at most {SLUG_MAX} "
                          "characters")
        stem = PurePosixPath(path).stem
        if record.id != stem:
            yield problem(where, "I202", f"id '{record.id}' differs from the file name '{stem}'",
                          f"rename the file to {record.id}.yaml or set id: {stem}")
        key = (kind_of(record), record.id)
        if key in first:
            yield problem(where, "I203", f"{key[0]} id '{record.id}' is also used by {first[key]}",
                          "give each record its own id")
        else:
            first[key] = path


def _unknown(ref: m.Ref, kind: str, known: dict[str, m.Claim] | dict[str, m.Source]
             | dict[str, m.Entity]) -> Iterator[Problem]:
    if ref.id and ref.id not in known:
        close = difflib.get_close_matches(ref.id, list(known), n=1, cutoff=0.7)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"add {KIND_DIRS[kind]}/{ref.id}.yaml or fix the id")
        yield problem(ref.loc, "R301", f"no {kind} '{ref.id}'", hint)


def references(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        if claim.claimant:
            yield from _unknown(claim.claimant, "entity", kb.entities)
        for ref in claim.about:
            yield from _unknown(ref, "entity", kb.entities)
        for item in claim.citations():
            yield from _unknown(item.source, "source", kb.sources)
        for rel in claim.related:
            yield from _unknown(rel.claim, "claim", kb.claims)
            if rel.claim.id == claim.id:
                yield problem(rel.claim.loc, "R302", "a claim cannot relate to itself", "")
    for source in kb.sources.values():
        if source.publisher:
            yield from _unknown(source.publisher, "entity", kb.entities)
        for ref in source.authors:
            yield from _unknown(ref, "entity", kb.entities)


def kind_fields(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        if not claim.kind:
            continue  # a missing or unknown kind was reported; guessing one would mislead
        if claim.quantity is not None and claim.kind != "quantity":
            yield problem(claim.at("quantity"), "V404",
                          f"a {claim.kind} claim has no quantity",
                          "set kind: quantity or remove the quantity")
        if claim.kind == "quantity" and claim.quantity is None and "quantity" not in claim.locs:
            yield problem(claim.at("kind"), "V406", "a quantity claim without its quantity",
                          "add quantity: {value: …, unit: …}")
        if claim.resolves_by is not None and claim.kind != "prediction":
            yield problem(claim.at("resolves_by"), "V405",
                          f"a {claim.kind} claim does not resolve",
                          "set kind: prediction or remove resolves_by")


def future_dates(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        for review in claim.reviews:
            if review.date and review.date > ctx.today:
                yield problem(review.at("date"), "V407",
                              f"review dated {review.date}, after today ({ctx.today})", "")
    for source in kb.sources.values():
        if source.accessed and source.accessed > ctx.today:
            yield problem(source.at("accessed"), "V407",
                          f"accessed {source.accessed}, after today ({ctx.today})", "")


def quotes_in_text(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        for item in claim.citations():
            text = ctx.snapshot(kb, item.source.id)
            if text is None or not item.quote or locate(text, item.quote) is not None:
                continue
            near = nearest(text, item.quote)
            hint = (f"the nearest text is: \"{near}\"" if near
                    else "copy the words exactly from the source's text")
            yield problem(item.at("quote"), "Q501",
                          f"quote not found in {kb.snapshots[item.source.id].path}", hint)


def verdicts(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        v = claim.verdict
        if v is not None and not v.summary:
            yield problem(v.loc, "T601", "a verdict needs a summary that says why",
                          "add summary: …")
        if v is not None and v.status:
            a = ctx.assessment(claim)
            why = contradiction(v.status, a.derived, (e.stance for e in claim.evidence))
            if why:
                yield problem(v.at("status"), "T603", f"the verdict contradicts the evidence: "
                              f"{why}", "check the verdict or the evidence stances")
        if (claim.kind == "prediction" and claim.resolves_by is not None
                and claim.resolves_by < ctx.today and v is None):
            yield problem(claim.at("resolves_by"), "T602",
                          f"the prediction's date {claim.resolves_by} has passed without a "
                          "verdict", "add a verdict that says whether it came true")


def reviews(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        a = ctx.assessment(claim)
        if not a.due_for_review or (a.last_review is None and claim.reviews):
            continue  # reviews whose dates are invalid were reported (V402)
        if a.last_review is None:
            yield problem(claim.at("reviews"), "T604", "never reviewed",
                          "add reviews: [{by: your-handle, date: YYYY-MM-DD}] once checked")
        else:
            yield problem(claim.at("reviews"), "T604",
                          f"last reviewed {a.last_review}, more than {ctx.review_age_days} "
                          "days ago", "check the claim again and add a review")


def unreferenced(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    used_entities: set[str] = set()
    used_sources: set[str] = set()
    for claim in kb.claims.values():
        used_entities.update(r.id for r in claim.about)
        if claim.claimant:
            used_entities.add(claim.claimant.id)
        used_sources.update(i.source.id for i in claim.citations())
    for source in kb.sources.values():
        used_entities.update(r.id for r in source.authors)
        if source.publisher:
            used_entities.add(source.publisher.id)
    for entity in kb.entities.values():
        if entity.id not in used_entities:
            yield problem(entity.at("id"), "T605", f"nothing refers to entity '{entity.id}'",
                          "refer to it from a claim or source, or remove the file")
    for source in kb.sources.values():
        if source.id not in used_sources:
            yield problem(source.at("id"), "T606", f"no claim cites source '{source.id}'",
                          "cite it as an appearance or evidence, or remove the file")


RULES: tuple[Rule, ...] = (
    identifiers,
    references,
    kind_fields,
    future_dates,
    quotes_in_text,
    verdicts,
    reviews,
    unreferenced,
    depends_on_cycles,
    depends_on_weak,
)


def validate(kb: m.KnowledgeBase, ctx: Context,
             rules: tuple[Rule, ...] = RULES) -> Iterator[Problem]:
    for rule in rules:
        yield from rule(kb, ctx)
