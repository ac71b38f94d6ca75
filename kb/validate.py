"""The rules a knowledge base must keep. Each rule is a small function that yields problems.

Rules see the whole loaded knowledge base; what one file alone decides (syntax, types,
formats) was already reported by the loader and the schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from kb import model as m
from kb.load import kind_of
from kb.model import KIND_DIRS
from kb.network import depends_on_cycles, depends_on_weak
from kb.problems import Problem, problem
from kb.quotes import Normalised, locate, nearest, normalise
from kb.specs import SLUG, SLUG_MAX
from kb.status import Assessment, assess, contradiction


@dataclass
class Context:
    today: dt.date
    review_age_days: int = 365
    _normalised: dict[str, Normalised] = field(default_factory=dict)
    _assessed: dict[str, tuple[m.Claim, Assessment]] = field(default_factory=dict)
    # Assessments the rule cache gave a shard at a time (kb.rulecache), each for the claim
    # with its id in `_of`, the knowledge base's table: as `_assessed`, by identity.
    _given: dict[str, Assessment] = field(default_factory=dict)
    _of: dict[str, m.Claim] = field(default_factory=dict)

    def assessment(self, claim: m.Claim) -> Assessment:
        """The claim's status as of this context's day, worked out once: several rules, the
        network and the graph all need it."""
        seen = self._assessed.get(claim.id)
        if seen is not None and seen[0] is claim:
            return seen[1]
        given = self._given.get(claim.id)
        if given is not None and self._of.get(claim.id) is claim:
            return given
        seen = (claim, assess(claim, self.today, self.review_age_days))
        self._assessed[claim.id] = seen
        return seen[1]

    def assessments(self, claims: dict[str, m.Claim]) -> dict[str, Assessment]:
        """Every claim's of `claims` (a knowledge base's table), in its order: one call, not
        one per claim (100,000 of them at 100,000 claims)."""
        given = self._given if self._of is claims else {}
        one = self.assessment
        return {cid: given.get(cid) or one(c) for cid, c in claims.items()}

    def take_assessments(self, claims: dict[str, m.Claim],
                         given: Iterable[dict[str, Assessment]]) -> None:
        """Assessments of the claims of `claims` (by id), worked out before for the same files
        on a day they hold on too (kb.rulecache.days_alike)."""
        self._of = claims
        for assessed in given:
            self._given.update(assessed)

    def assessed(self) -> dict[str, Assessment]:
        """Every assessment known without working one out (for tests)."""
        of = self._of
        known = {cid: a for cid, a in self._given.items() if cid in of}
        known.update((cid, pair[1]) for cid, pair in self._assessed.items())
        return known

    def snapshot(self, kb: m.KnowledgeBase, source_id: str) -> Normalised | None:
        snap = kb.snapshots.get(source_id)
        if snap is None:
            return None
        if source_id not in self._normalised:
            self._normalised[source_id] = normalise(snap.text)
        return self._normalised[source_id]


Rule = Callable[[m.KnowledgeBase, Context], Iterator[Problem]]


def _stem(path: str) -> str:
    """PurePosixPath(path).stem, without making a path object (10,000 of them cost 0.05 s)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


_KINDS = {cls: kind for kind, cls in m.RECORD_CLASSES.items()}


# Each rule is split into what one record alone decides (the "local" part, a function of the
# record, the day and the settings; kb.rulecache keeps it per file) and what needs the others.


def identifiers(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for path, record in kb.files:
        yield from id_local(path, record)
    yield from duplicate_ids(kb)


def id_local(path: str, record: m.Record) -> Iterator[Problem]:
    """I201, I202: every file's record, a duplicate's too."""
    if not record.id:
        return
    if not SLUG.match(record.id) or len(record.id) > SLUG_MAX:
        yield problem(record.at("id"), "I201", f"'{record.id}' is not a valid identifier",
                      f"use lowercase a-z, 0-9 and single hyphens, at most {SLUG_MAX} "
                      "characters")
    stem = _stem(path)
    if record.id != stem:
        yield problem(record.at("id"), "I202",
                      f"id '{record.id}' differs from the file name '{stem}'",
                      f"rename the file to {record.id}.yaml or set id: {stem}")


def duplicate_ids(kb: m.KnowledgeBase) -> Iterator[Problem]:
    """I203: the same id in two files of one kind."""
    if kb.one_record_per_id():
        return
    first: dict[tuple[str, str], str] = {}
    for path, record in kb.files:
        if not record.id:
            continue
        key = (_KINDS.get(type(record)) or kind_of(record), record.id)
        if key in first:
            yield problem(record.at("id"), "I203",
                          f"{key[0]} id '{record.id}' is also used by {first[key]}",
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
        yield from unknown_in_claim(kb, claim)
        yield from self_relations(claim)
    for source in kb.sources.values():
        yield from unknown_in_source(kb, source)


def unknown_in_claim(kb: m.KnowledgeBase, claim: m.Claim) -> Iterator[Problem]:
    """R301 in one claim: needs the other records."""
    # `ref.id in known` is tested here first: almost every reference is fine, and a generator
    # call per reference (80,000 at 10,000 claims) cost more than the rule's real work
    claims, sources, entities = kb.claims, kb.sources, kb.entities
    if claim.claimant and claim.claimant.id not in entities:
        yield from _unknown(claim.claimant, "entity", entities)
    for ref in claim.about:
        if ref.id not in entities:
            yield from _unknown(ref, "entity", entities)
    for item in claim.appearances:
        if item.source.id not in sources:
            yield from _unknown(item.source, "source", sources)
    for ev in claim.evidence:
        if ev.source.id not in sources:
            yield from _unknown(ev.source, "source", sources)
    for rel in claim.related:
        if rel.claim.id not in claims:
            yield from _unknown(rel.claim, "claim", claims)


def self_relations(claim: m.Claim) -> Iterator[Problem]:
    """R302: local."""
    for rel in claim.related:
        if rel.claim.id == claim.id:
            yield problem(rel.claim.loc, "R302", "a claim cannot relate to itself", "")


def unknown_in_source(kb: m.KnowledgeBase, source: m.Source) -> Iterator[Problem]:
    """R301 in one source."""
    entities = kb.entities
    if source.publisher and source.publisher.id not in entities:
        yield from _unknown(source.publisher, "entity", entities)
    for ref in source.authors:
        if ref.id not in entities:
            yield from _unknown(ref, "entity", entities)


def kind_fields(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        yield from claim_kind_fields(claim)


def claim_kind_fields(claim: m.Claim) -> Iterator[Problem]:
    if not claim.kind:
        return  # a missing or unknown kind was reported; guessing one would mislead
    if claim.quantity is not None and claim.kind != "quantity":
        yield problem(claim.at("quantity"), "V404",
                      f"a {claim.kind} claim has no quantity",
                      "set kind: quantity or remove the quantity")
    if claim.kind == "quantity" and claim.quantity is None and not claim.wrote("quantity"):
        yield problem(claim.at("kind"), "V406", "a quantity claim without its quantity",
                      "add quantity: {value: …, unit: …}")
    if claim.resolves_by is not None and claim.kind != "prediction":
        yield problem(claim.at("resolves_by"), "V405",
                      f"a {claim.kind} claim does not resolve",
                      "set kind: prediction or remove resolves_by")


def future_dates(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        yield from claim_future_dates(claim, ctx)
    for source in kb.sources.values():
        yield from source_future_dates(source, ctx)


def claim_future_dates(claim: m.Claim, ctx: Context) -> Iterator[Problem]:
    for review in claim.reviews:
        if review.date and review.date > ctx.today:
            yield problem(review.at("date"), "V407",
                          f"review dated {review.date}, after today ({ctx.today})", "")


def source_future_dates(source: m.Source, ctx: Context) -> Iterator[Problem]:
    if source.accessed and source.accessed > ctx.today:
        yield problem(source.at("accessed"), "V407",
                      f"accessed {source.accessed}, after today ({ctx.today})", "")


def quotes_in_text(kb: m.KnowledgeBase, ctx: Context) -> Iterator[Problem]:
    for claim in kb.claims.values():
        yield from claim_quotes(kb, ctx, claim)


def claim_quotes(kb: m.KnowledgeBase, ctx: Context, claim: m.Claim) -> Iterator[Problem]:
    """Q501: local to the claim and the text snapshots of the sources it cites."""
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
        yield from claim_verdict(claim, ctx, ctx.assessment(claim))


def claim_verdict(claim: m.Claim, ctx: Context, a: Assessment) -> Iterator[Problem]:
    v = claim.verdict
    if v is not None and not v.summary:
        yield problem(v.loc, "T601", "a verdict needs a summary that says why",
                      "add summary: …")
    if v is not None and v.status:
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
        yield from claim_review(claim, ctx, ctx.assessment(claim))


def claim_review(claim: m.Claim, ctx: Context, a: Assessment) -> Iterator[Problem]:
    if not a.due_for_review or (a.last_review is None and claim.reviews):
        return  # reviews whose dates are invalid were reported (V402)
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
        used_sources.update(claim.cited_sources())
    for source in kb.sources.values():
        used_entities.update(r.id for r in source.authors)
        if source.publisher:
            used_entities.add(source.publisher.id)
    yield from unused(kb, used_entities, used_sources)


def unused(kb: m.KnowledgeBase, used_entities: set[str], used_sources: set[str]
           ) -> Iterator[Problem]:
    """T605, T606, given every id the claims and sources refer to."""
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


# Rules that may run in a helper process: they neither fill nor read the Context's memos
# (assessments, normalised texts), which the parent keeps for the graph and pages; the two
# halves cost about the same at 10,000 claims.
HELPER_RULES: tuple[Rule, ...] = (identifiers, references, kind_fields, future_dates,
                                  unreferenced, depends_on_cycles)
PARALLEL_MIN = 3000  # records; below this a fork costs more than the rules it takes over


def run_rules(kb: m.KnowledgeBase, ctx: Context, jobs: int = 1,
              after: Callable[[bool], None] | None = None) -> list[Problem]:
    """Every rule's problems; with jobs > 1 and a large knowledge base, half the rules run in
    a forked helper. `after(background)` runs once the rules are done: in the helper, when
    there is one (which then goes on alone; the cache's saves are waited for at exit)."""
    if jobs < 2 or len(kb.files) < PARALLEL_MIN or not hasattr(os, "fork"):
        problems = list(validate(kb, ctx))
        if after is not None:
            after(True)
        return problems
    import pickle

    from kb.cache import fork_child

    mine = tuple(rule for rule in RULES if rule not in HELPER_RULES)
    theirs = tuple(rule for rule in RULES if rule in HELPER_RULES)
    read_end, write_end = os.pipe()

    def helper() -> None:
        os.close(read_end)
        with os.fdopen(write_end, "wb") as out:
            out.write(pickle.dumps(list(validate(kb, ctx, theirs)), pickle.HIGHEST_PROTOCOL))
        if after is not None:
            with contextlib.suppress(OSError):
                os.nice(5)  # saving is off the caller's path: its work comes first
            after(False)

    if fork_child(helper) is None:
        os.close(read_end)
        os.close(write_end)
        return run_rules(kb, ctx, 1, after)
    os.close(write_end)
    problems = list(validate(kb, ctx, mine))
    with os.fdopen(read_end, "rb") as answer:
        data = answer.read()
    helped: list[Problem]
    try:
        helped = pickle.loads(data)
    except Exception:  # the helper died: its rules run here, and raise here if they fail
        helped = list(validate(kb, ctx, theirs))
    return problems + helped
