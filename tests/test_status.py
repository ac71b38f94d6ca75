"""Evidence status: every row of DESIGN.md §3, the verdict override, the reason in words."""

from __future__ import annotations

import datetime as dt

import pytest

from kb import model as m
from kb.status import assess, contradiction, derivation, derive_status

TODAY = dt.date(2026, 11, 28)
BEFORE, AFTER = dt.date(2030, 12, 31), dt.date(2025, 12, 31)


@pytest.mark.parametrize(("kind", "stances", "resolves_by", "status"), [
    # supported: only `supports`
    ("fact", ["supports"], None, "supported"),
    ("quantity", ["supports", "supports"], None, "supported"),
    ("fact", ["supports", "context"], None, "supported"),
    # partly-supported: any other mix with support and no `refutes`
    ("fact", ["partly-supports"], None, "partly-supported"),
    ("fact", ["supports", "partly-supports"], None, "partly-supported"),
    ("fact", ["supports", "partly-refutes"], None, "partly-supported"),
    ("fact", ["partly-supports", "partly-refutes"], None, "partly-supported"),
    ("quote", ["partly-supports", "context"], None, "partly-supported"),
    # disputed: `supports` and `refutes` both present (any support against a full refutation)
    ("fact", ["supports", "refutes"], None, "disputed"),
    ("fact", ["refutes", "supports", "context"], None, "disputed"),
    ("fact", ["partly-supports", "refutes"], None, "disputed"),
    ("fact", ["supports", "partly-refutes", "refutes"], None, "disputed"),
    # refuted: `refutes` (or `partly-refutes`) and no support of any kind
    ("fact", ["refutes"], None, "refuted"),
    ("fact", ["partly-refutes"], None, "refuted"),
    ("fact", ["refutes", "partly-refutes", "context"], None, "refuted"),
    # unverified: no evidence, or `context` only
    ("fact", [], None, "unverified"),
    ("fact", ["context"], None, "unverified"),
    ("quantity", ["context", "context"], None, "unverified"),
    # not-checkable: an opinion, whatever the evidence
    ("opinion", [], None, "not-checkable"),
    ("opinion", ["supports"], None, "not-checkable"),
    ("opinion", ["refutes"], None, "not-checkable"),
    # a prediction before its date, or without one, is not checkable ...
    ("prediction", ["supports"], BEFORE, "not-checkable"),
    ("prediction", ["refutes"], None, "not-checkable"),
    ("prediction", [], TODAY, "unverified"),  # on the day itself it can be checked
    # ... and after it, its evidence decides like any claim's
    ("prediction", ["refutes"], AFTER, "refuted"),
    ("prediction", ["supports"], AFTER, "supported"),
    ("prediction", ["supports", "refutes"], AFTER, "disputed"),
    ("prediction", [], AFTER, "unverified"),
])
def test_derive_status_table(kind: str, stances: list[str], resolves_by: dt.date | None,
                             status: str) -> None:
    assert derive_status(kind, stances, resolves_by, TODAY) == status
    # the order of the evidence never matters
    assert derive_status(kind, list(reversed(stances)), resolves_by, TODAY) == status


def test_derive_status_accepts_any_iterable() -> None:
    assert derive_status("fact", iter(["supports", "refutes"]), None, TODAY) == "disputed"


def claim(kind: str = "fact", stances: tuple[str, ...] = (), verdict: str | None = None,
          summary: str | None = None, reviews: tuple[dt.date | None, ...] = (),
          resolves_by: dt.date | None = None) -> m.Claim:
    return m.Claim(
        id="c", claim="A claim.", kind=kind,
        evidence=[m.Evidence(source=m.Ref(f"s{i}"), stance=s) for i, s in enumerate(stances)],
        verdict=m.Verdict(status=verdict, summary=summary) if verdict else None,
        reviews=[m.Review(by="ed", date=d) for d in reviews], resolves_by=resolves_by)


def test_assess_without_verdict_shows_the_derived_status() -> None:
    a = assess(claim(stances=("supports", "supports", "partly-refutes")), TODAY, 365)
    assert (a.status, a.derived, a.verdict, a.overridden) == (
        "partly-supported", "partly-supported", None, False)
    assert a.counts == (("supports", 2), ("partly-refutes", 1))
    assert a.reason == "2 sources support, 1 partly refutes."


def test_assess_verdict_overrides_the_derived_status() -> None:
    c = claim(stances=("supports",), verdict="partly-supported",
              summary="True in dollars, not in yuan.")
    a = assess(c, TODAY, 365)
    assert a.status == "partly-supported"
    assert a.derived == "supported"
    assert a.verdict == "partly-supported"
    assert a.overridden
    assert a.reason == "True in dollars, not in yuan."


def test_a_verdict_equal_to_the_derivation_is_not_an_override() -> None:
    a = assess(claim(stances=("refutes",), verdict="refuted", summary="Wrong."), TODAY, 365)
    assert a.status == "refuted" and not a.overridden


def test_a_verdict_without_summary_still_sets_the_status_but_keeps_the_derivation() -> None:
    a = assess(claim(stances=("refutes",), verdict="disputed"), TODAY, 365)
    assert a.status == "disputed" and a.derived == "refuted"
    assert a.reason == "1 source refutes."


def test_a_verdict_on_a_prediction_decides_it_before_its_date() -> None:
    c = claim(kind="prediction", resolves_by=BEFORE, verdict="refuted", summary="Already false.")
    a = assess(c, TODAY, 365)
    assert (a.status, a.derived) == ("refuted", "not-checkable")


@pytest.mark.parametrize(("counts", "kind", "derived", "text"), [
    ((("supports", 2), ("partly-refutes", 1)), "fact", "partly-supported",
     "2 sources support, 1 partly refutes."),
    ((("supports", 1),), "fact", "supported", "1 source supports."),
    ((("partly-supports", 1), ("refutes", 3)), "fact", "disputed",
     "1 source partly supports, 3 refute."),
    ((("refutes", 2), ("context", 1)), "fact", "refuted", "2 sources refute, 1 gives context."),
    ((("context", 2),), "fact", "unverified", "2 sources give context."),
    ((), "fact", "unverified", "No evidence yet."),
    ((), "opinion", "not-checkable", "Not checkable: an opinion."),
    ((("supports", 1),), "opinion", "not-checkable",
     "Not checkable: an opinion. (1 source supports)"),
    ((), "prediction", "not-checkable", "Not checkable: a prediction whose date has not come."),
])
def test_derivation_in_words(counts: tuple[tuple[str, int], ...], kind: str, derived: str,
                             text: str) -> None:
    assert derivation(counts, kind, derived) == text


def test_counts_follow_the_stance_order_not_the_file_order() -> None:
    a = assess(claim(stances=("context", "refutes", "supports", "refutes")), TODAY, 365)
    assert a.counts == (("supports", 1), ("refutes", 2), ("context", 1))
    assert a.reason == "1 source supports, 2 refute, 1 gives context."


@pytest.mark.parametrize(("reviews", "last", "due"), [
    ((), None, True),
    ((dt.date(2026, 11, 1),), dt.date(2026, 11, 1), False),
    ((TODAY - dt.timedelta(days=365),), TODAY - dt.timedelta(days=365), False),
    ((TODAY - dt.timedelta(days=366),), TODAY - dt.timedelta(days=366), True),
    # the newest review counts, wherever it is written
    ((dt.date(2026, 6, 1), dt.date(2020, 1, 1)), dt.date(2026, 6, 1), False),
    ((None,), None, True),
])
def test_due_for_review(reviews: tuple[dt.date | None, ...], last: dt.date | None,
                        due: bool) -> None:
    a = assess(claim(stances=("supports",), reviews=reviews), TODAY, 365)
    assert (a.last_review, a.due_for_review) == (last, due)


def test_review_age_is_configurable() -> None:
    c = claim(reviews=(dt.date(2026, 11, 1),))
    assert assess(c, TODAY, 30).due_for_review is False
    assert assess(c, TODAY, 10).due_for_review is True


@pytest.mark.parametrize(("verdict", "stances", "contradicts"), [
    ("supported", ["supports"], False),
    ("supported", ["supports", "refutes"], True),
    ("supported", ["partly-refutes"], True),
    ("supported", [], True),
    ("supported", ["context"], True),
    ("partly-supported", ["supports"], False),
    ("partly-supported", ["refutes"], False),  # a judgement call the editors may make
    ("partly-supported", [], True),
    ("refuted", ["refutes"], False),
    ("refuted", ["partly-supports", "refutes"], True),
    ("refuted", ["supports"], True),
    ("disputed", ["supports", "refutes"], False),
    ("disputed", ["partly-supports", "partly-refutes"], False),
    ("disputed", ["supports"], True),
    ("disputed", ["refutes", "context"], True),
    ("unverified", [], False),
    ("unverified", ["supports"], False),
    ("not-checkable", [], False),
    ("not-checkable", ["context"], False),
])
def test_contradiction(verdict: str, stances: list[str], contradicts: bool) -> None:
    derived = derive_status("fact", stances, None, TODAY)
    why = contradiction(verdict, derived, stances)
    assert (why is not None) is contradicts
    if why:
        assert verdict in why


def test_not_checkable_verdict_against_checking_evidence() -> None:
    stances = ["supports"]
    assert contradiction("not-checkable", "supported", stances) is not None
    # an opinion is not checkable whatever the evidence says: nothing to contradict
    assert contradiction("not-checkable", "not-checkable", stances) is None
