"""Evidence status: DESIGN.md §3 as pure functions, and the reason shown to readers."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from kb.model import STANCES, Claim

SUPPORT = frozenset({"supports", "partly-supports"})
AGAINST = frozenset({"refutes", "partly-refutes"})


def derive_status(
    kind: str, stances: Iterable[str], resolves_by: dt.date | None, today: dt.date
) -> str:
    """The status the evidence gives, by the table of DESIGN.md §3.

    `context` evidence bears on no status. A prediction is not checkable until its date
    (or ever, when it names none); after it, its evidence decides like any claim's.
    """
    if kind == "opinion":
        return "not-checkable"
    if kind == "prediction" and (resolves_by is None or today < resolves_by):
        return "not-checkable"
    seen = set(stances) - {"context"}
    if not seen:
        return "unverified"
    if seen == {"supports"}:
        return "supported"
    if seen & SUPPORT:
        return "disputed" if "refutes" in seen else "partly-supported"
    return "refuted"


# What each verdict cannot stand beside, for the T603 warning.
def contradiction(verdict: str, derived: str, stances: Iterable[str]) -> str | None:
    """Why an editors' verdict contradicts the evidence, or None when it does not."""
    seen = set(stances) - {"context"}
    if verdict == "supported" and seen & AGAINST:
        return "it says supported, but evidence refutes it"
    if verdict == "refuted" and seen & SUPPORT:
        return "it says refuted, but evidence supports it"
    if verdict in ("supported", "partly-supported", "refuted", "disputed") and not seen:
        return f"it says {verdict}, but no evidence supports or refutes the claim"
    if verdict == "disputed" and not (seen & SUPPORT and seen & AGAINST):
        return "it says disputed, but the evidence does not point both ways"
    if verdict == "not-checkable" and derived != "not-checkable" and seen:
        return "it says not checkable, but evidence checks it"
    return None


@dataclass(frozen=True)
class Assessment:
    """What a reader is told about a claim's status."""

    status: str  # what the site shows: the verdict when there is one
    derived: str  # what the evidence alone gives
    verdict: str | None
    counts: tuple[tuple[str, int], ...]  # evidence items by stance, in STANCES order
    reason: str  # the verdict summary, or the derivation in words
    last_review: dt.date | None
    due_for_review: bool

    @property
    def overridden(self) -> bool:
        return self.verdict is not None and self.verdict != self.derived


_STANCE_WORDS = {
    "supports": ("supports", "support"),
    "partly-supports": ("partly supports", "partly support"),
    "partly-refutes": ("partly refutes", "partly refute"),
    "refutes": ("refutes", "refute"),
    "context": ("gives context", "give context"),
}


def derivation(counts: Iterable[tuple[str, int]], kind: str, derived: str) -> str:
    """The derivation in words: "2 sources support, 1 partly refutes"."""
    parts = []
    for i, (stance, n) in enumerate(counts):
        one, many = _STANCE_WORDS[stance]
        noun = ("source " if n == 1 else "sources ") if i == 0 else ""
        parts.append(f"{n} {noun}{one if n == 1 else many}")
    text = ", ".join(parts)
    if derived == "not-checkable":
        why = "an opinion" if kind == "opinion" else "a prediction whose date has not come"
        return f"Not checkable: {why}." + (f" ({text})" if text else "")
    if not parts:
        return "No evidence yet."
    return text[0].upper() + text[1:] + "."


def assess(claim: Claim, today: dt.date, review_age_days: int) -> Assessment:
    stances = [e.stance for e in claim.evidence]
    derived = derive_status(claim.kind, stances, claim.resolves_by, today)
    tally = Counter(stances)
    counts = tuple((s, tally[s]) for s in STANCES if tally[s])
    verdict = claim.verdict.status if claim.verdict and claim.verdict.status else None
    reason = derivation(counts, claim.kind, derived)
    if verdict and claim.verdict and claim.verdict.summary:
        reason = claim.verdict.summary
    dates = [r.date for r in claim.reviews if r.date is not None]
    last = max(dates) if dates else None
    due = last is None or (today - last).days > review_age_days
    return Assessment(verdict or derived, derived, verdict, counts, reason, last, due)
