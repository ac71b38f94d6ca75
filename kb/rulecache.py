"""The rules after an edit: what one file alone decides is kept per file, by its digest.

Most of the rules' work at 10,000 claims is local: a claim's kind and fields, its dates, its
verdict and reviews (and its Assessment, which the graph and the pages read too), its quotes
against the text snapshots it cites, an id against its file name. That part is a function of
the file's bytes, the review age, the code and the day, so it is cached per file (keyed by
the first three, with the days it holds on: days_alike) and only the edited files' local
rules run again; on a new day, those of the files whose verdicts the day changes. What needs
the other files — duplicate ids (I203), unknown references (R301), records nothing refers to
(T605, T606) and the claim network (N701, N702) — runs every time, on ids kept with each
file's entry. The report is the same as the rules' (kb.validate.RULES) run on the whole
knowledge base; the tests compare the two on every bad case, and on days on either side of
each date the rules compare with the day.

Each shard of the cache also keeps what all its files say together (an Aggregate): when none
of them changed, run_cached takes the shard's problems, assessments and ids at once, not file
by file. After an edit at 100,000 claims, the loop over 130,000 files took ~1 s; it now looks
one by one only at the files of the shards an edit reached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb import model as m
from kb.cache import ParseCache, code_fingerprint, digest, plain_pack, plain_unpack, shard_of
from kb.network import depends_on_cycles, depends_on_weak
from kb.problems import Problem
from kb.status import Assessment, assess
from kb.validate import (
    Context,
    claim_future_dates,
    claim_kind_fields,
    claim_quotes,
    claim_review,
    claim_verdict,
    duplicate_ids,
    id_local,
    self_relations,
    source_future_dates,
    unknown_in_claim,
    unknown_in_source,
    unused,
)

# The days a result holds on, as proleptic ordinals: from the first to before the end.
Days = tuple[int, int]
EVERY_DAY: Days = (1, dt.date.max.toordinal() + 1)

# What one file's rules leave behind: (problems of every file, problems of the first record
# with its id, entity ids, source ids and claim ids it refers to, its Assessment (claims),
# the ids of the sources it cites with the keys of their text snapshots then, which its
# Q501 depends on, and the days all that holds on).
Deps = tuple[tuple[str, ...], tuple[str | None, ...]]
Local = tuple[tuple[Problem, ...], tuple[Problem, ...], tuple[str, ...], tuple[str, ...],
              tuple[str, ...], Assessment | None, Deps, Days]

# What a shard's files say together, under the key AGGREGATE in the shard: their paths and
# digests, the sources its claims cite and the keys of their text snapshots then (Q501 depends
# on them), their problems, their claims' Assessments, the entity, source and claim ids
# they refer to, and the days on which all of their files' Locals hold. Kept only when each id
# has one record: each is then the first with its id.
Aggregate = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str | None, ...],
                  tuple[Problem, ...], dict[str, Assessment], frozenset[str], frozenset[str],
                  frozenset[str], Days]
AGGREGATE = ("", "")  # no file's (kind, path)

# Every kb module that `import kb.rulecache` loads (a test keeps this list in step): only
# they key the cache, so that work on the rest of the package keeps it warm.
RULE_MODULES = ("__init__", "cache", "load", "model", "network", "problems", "quotes",
                "recordcodec", "rulecache", "schema", "specs", "statcache", "status", "validate",
                "yamlstrict")

_KINDS: dict[type, str] = {cls: kind for kind, cls in m.RECORD_CLASSES.items()}


class RuleCache(ParseCache):
    """Per file: its Local, under a key of the rules' code and the review age (kb.toml), so a
    new setting runs every rule again. A Local holds on the days it names (days_alike): on
    another, that file's rules run again."""

    what = "rules"
    pinned = frozenset({AGGREGATE})
    pack, unpack = staticmethod(plain_pack), staticmethod(plain_unpack)

    def __init__(self, root: Path, ctx: Context, folder: Path | None = None) -> None:
        super().__init__(root, folder, (ctx.review_age_days,))

    def fingerprint(self) -> str:
        return code_fingerprint(RULE_MODULES)

    @property
    def empty(self) -> bool:
        return not any(self.shards)

    def keep_only(self, keep: set[tuple[str, str]]) -> None:
        """As ParseCache's; and a shard with no file left loses its aggregate, which could no
        longer hold."""
        super().keep_only(keep)
        for index, shard in enumerate(self.shards):
            if len(shard) == 1 and AGGREGATE in shard:
                del shard[AGGREGATE]
                self.dirty.add(index)

    def well_formed(self, item: tuple[Any, Any]) -> bool:
        """An entry as run_cached puts it (checked for all 13,000 at each load: kept cheap)."""
        k, v = item
        if k == AGGREGATE:
            return _aggregate_well_formed(v)
        if not (type(k) is tuple and len(k) == 2 and type(v) is tuple and len(v) == 2
                and type(v[0]) is str and type(v[1]) is tuple and len(v[1]) == 8):
            return False
        a, b, c, d, e, f, g, h = v[1]
        return (type(a) is tuple and type(b) is tuple and type(c) is tuple and type(d) is tuple
                and type(e) is tuple and (f is None or type(f) is Assessment)
                and type(g) is tuple and len(g) == 2 and type(g[0]) is tuple
                and type(g[1]) is tuple and len(g[0]) == len(g[1]) and _days_well_formed(h))

    def aggregates(self, digests: dict[str, str], snaps: dict[str, str],
                   day: int) -> dict[int, Aggregate]:
        """The shards' aggregates that still hold: on `day` (an ordinal), each file they were
        made from has the digest it had, and each snapshot their claims quote is the one it
        was."""
        held: dict[int, Aggregate] = {}
        get, snap = digests.get, snaps.get
        for index, shard in enumerate(self.shards):
            entry = shard.get(AGGREGATE)
            if entry is None:
                continue
            agg = entry[1]
            first, end = agg[9]
            if (first <= day < end and list(map(get, agg[0])) == list(agg[1])
                    and list(map(snap, agg[2])) == list(agg[3])):
                held[index] = agg
        return held

    def set_aggregates(self, held: dict[int, Aggregate], gathered: dict[int, _Gathered]) -> None:
        """Keep each shard's aggregate for the next run: the one that held, with the files
        looked at one by one added (files new in that shard); or those files alone, when the
        shard's did not hold (then each of its files was looked at). A file without a digest
        is in none: it is looked at every time. The aggregate of a shard with no file left
        goes when the cache is saved (keep_only)."""
        for index, parts in gathered.items():
            self.shards[index][AGGREGATE] = ("", parts.aggregate(held.get(index)))
            self.dirty.add(index)


def _days_well_formed(days: Any) -> bool:
    return type(days) is tuple and len(days) == 2 and type(days[0]) is type(days[1]) is int


def _aggregate_well_formed(v: Any) -> bool:
    if not (type(v) is tuple and len(v) == 2 and type(v[1]) is tuple and len(v[1]) == 10):
        return False
    paths, digests, cited, keys, problems, assessed, entities, sources, claims, days = v[1]
    return (type(paths) is tuple and type(digests) is tuple and len(paths) == len(digests)
            and type(cited) is tuple and type(keys) is tuple and len(cited) == len(keys)
            and type(problems) is tuple and type(assessed) is dict
            and type(entities) is frozenset and type(sources) is frozenset
            and type(claims) is frozenset and _days_well_formed(days))


class _Gathered:
    """What the files of one shard looked at one by one say together (an Aggregate's parts)."""

    __slots__ = ("assessed", "cited", "claims", "days", "digests", "entities", "paths",
                 "problems", "sources")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.digests: list[str] = []
        self.cited: dict[str, str | None] = {}  # source id → its snapshot's key
        self.problems: list[Problem] = []
        self.assessed: dict[str, Assessment] = {}
        self.entities: set[str] = set()
        self.sources: set[str] = set()
        self.claims: set[str] = set()
        self.days = EVERY_DAY  # those on which every file's Local holds

    def add(self, path: str, digest_: str, record_id: str, found: Local) -> None:
        self.paths.append(path)
        self.digests.append(digest_)
        cited, keys = found[6]
        self.cited.update(zip(cited, keys, strict=True))
        self.problems += found[0]
        self.problems += found[1]
        if found[5] is not None:
            self.assessed[record_id] = found[5]
        self.entities.update(found[2])
        self.sources.update(found[3])
        self.claims.update(found[4])
        self.days = _within(self.days, found[7])

    def aggregate(self, last: Aggregate | None) -> Aggregate:
        if last is not None:
            self.paths[:0], self.digests[:0] = last[0], last[1]
            self.cited.update(zip(last[2], last[3], strict=True))
            self.problems[:0] = last[4]
            self.assessed = {**last[5], **self.assessed}
            self.entities.update(last[6])
            self.sources.update(last[7])
            self.claims.update(last[8])
            self.days = _within(self.days, last[9])
        return (tuple(self.paths), tuple(self.digests), tuple(self.cited),
                tuple(self.cited.values()), tuple(self.problems), self.assessed,
                frozenset(self.entities), frozenset(self.sources), frozenset(self.claims),
                self.days)


def _within(a: Days, b: Days) -> Days:
    """The days of both spans (an empty span when they do not meet: it holds on no day)."""
    return max(a[0], b[0]), min(a[1], b[1])


def snapshot_keys(kb: m.KnowledgeBase) -> dict[str, str]:
    """A digest of each text snapshot's path and text: a claim's Q501 depends on them."""
    return {sid: digest(f"{snap.path}\0{snap.text}".encode("utf-8", "surrogatepass"))
            for sid, snap in kb.snapshots.items()}


def local(kb: m.KnowledgeBase, ctx: Context, path: str, record: m.Record,
          snaps: dict[str, str]) -> Local:
    """What the rules say of this file's record alone."""
    always = tuple(id_local(path, record))
    if isinstance(record, m.Claim):
        a = assess(record, ctx.today, ctx.review_age_days)
        cited = tuple(sorted({item.source.id for item in record.citations()}))
        first = (*self_relations(record), *claim_kind_fields(record),
                 *claim_future_dates(record, ctx), *claim_quotes(kb, ctx, record),
                 *claim_verdict(record, ctx, a), *claim_review(record, ctx, a))
        entities = tuple(r.id for r in record.about)
        if record.claimant:
            entities += (record.claimant.id,)
        return (always, first, entities, cited, tuple(r.claim.id for r in record.related), a,
                (cited, tuple(map(snaps.get, cited))), days_alike(record, ctx))
    if isinstance(record, m.Source):
        entities = tuple(r.id for r in record.authors)
        if record.publisher:
            entities += (record.publisher.id,)
        return (always, tuple(source_future_dates(record, ctx)), entities, (), (), None,
                NO_DEPS, days_alike(record, ctx))
    return always, (), (), (), (), None, NO_DEPS, EVERY_DAY


NO_DEPS: Deps = ((), ())


def days_alike(record: m.Record, ctx: Context) -> Days:
    """The days on which the local rules say of `record` what they say on ctx.today.

    Each comparison they make with the day, mirrored (tests/test_rule_cache.py counts the
    uses of the day in the rules' modules, so that a new one is not missed):
    - kb.status.derive_status: a prediction is not checkable before its date;
    - kb.status.assess: a claim is due for review `review_age_days` after its last review;
    - kb.validate.claim_verdict (T602): a prediction's date has passed without a verdict;
    - kb.validate.claim_future_dates, source_future_dates (V407): a date after today. Its
      message names the day, so a record with one holds on this day alone.
    """
    day = ctx.today.toordinal()
    first, end = EVERY_DAY

    def since(threshold: dt.date, after: int = 0) -> None:
        """A decision the rules take as `today >= threshold + after`."""
        nonlocal first, end
        at = threshold.toordinal() + after
        if day >= at:
            first = max(first, at)
        else:
            end = min(end, at)

    if isinstance(record, m.Source):
        if record.accessed:
            if record.accessed > ctx.today:
                return day, day + 1
            since(record.accessed)
        return first, end
    if not isinstance(record, m.Claim):
        return first, end
    dates = [r.date for r in record.reviews if r.date is not None]
    if any(d > ctx.today for d in dates):
        return day, day + 1
    if dates:  # none is after today, nor after it on any day from the last one on (V407)
        last = max(dates)
        since(last)
        since(last, ctx.review_age_days + 1)  # due for review
    if record.kind == "prediction" and record.resolves_by is not None:
        since(record.resolves_by)  # checkable from its date
        if record.verdict is None:
            since(record.resolves_by, 1)  # overdue from the day after
    return first, end


def fill(kb: m.KnowledgeBase, ctx: Context, digests: dict[str, str], cache: RuleCache) -> None:
    """Put every file's Local into `cache` (after the rules ran without it: see kb.check)."""
    snaps = snapshot_keys(kb)
    unique = kb.one_record_per_id()  # then each record is the first with its id
    gathered: dict[int, _Gathered] = {}
    for path, record in kb.files:
        d = digests.get(path)
        if d is not None:
            found = local(kb, ctx, path, record, snaps)
            cache.put(_KINDS[type(record)], path, d, found)
            if unique:
                gathered.setdefault(shard_of(path), _Gathered()).add(path, d, record.id, found)
    if unique:
        cache.set_aggregates({}, gathered)


def run_cached(kb: m.KnowledgeBase, ctx: Context, digests: dict[str, str],
               cache: RuleCache) -> list[Problem]:
    """Every problem kb.validate.RULES finds, the local part from `cache` where the file is
    unchanged (`digests`: path → digest of the bytes its record was parsed from). Fills the
    context's assessments, as the rules do."""
    snaps = snapshot_keys(kb)
    problems: list[Problem] = []
    firsts: list[tuple[m.Record, Local]] = []
    tables = kb.tables()
    assessed = ctx._assessed
    shards, get = cache.shards, snaps.get
    # ids referred to by the first record of each id: entities, sources, claims
    entities: set[str] = set()
    sources: set[str] = set()
    claims: set[str] = set()
    unique = kb.one_record_per_id()  # then each record is the first with its id
    day = ctx.today.toordinal()
    held = cache.aggregates(digests, snaps, day) if unique else {}
    covered: set[str] = set()  # the files of the shards whose aggregate holds
    for agg in held.values():
        covered.update(agg[0])
    gathered: dict[int, _Gathered] = {}

    def cached(path: str, record: m.Record, kind: str, d: str | None, index: int) -> Local:
        """The file's Local from its entry, when that is of these bytes, holds on this day and
        the snapshots it quotes are as they were; else worked out, and kept."""
        entry = shards[index].get((kind, path))
        found: Local | None = entry[1] if entry is not None and entry[0] == d else None
        if (found is None or not found[7][0] <= day < found[7][1]
                or (found[6][0] and tuple(map(get, found[6][0])) != found[6][1])):
            found = local(kb, ctx, path, record, snaps)
            if d is not None:
                cache.put(kind, path, d, found)
        return found

    # after one edit, only the files of the shards it reached (~2,000 at 100,000 claims)
    for path, record in kb.files:
        if path in covered:
            continue
        kind = _KINDS[type(record)]
        d = digests.get(path)
        index = shard_of(path)
        found = cached(path, record, kind, d, index)
        problems += found[0]
        if tables[kind].get(record.id) is not record:
            continue  # a second record with this id: the rules see only the first
        problems += found[1]
        if found[5] is not None:
            assessed[record.id] = (record, found[5])
        firsts.append((record, found))
        entities.update(found[2])
        sources.update(found[3])
        claims.update(found[4])
        if unique and d is not None:
            gathered.setdefault(index, _Gathered()).add(path, d, record.id, found)
    for agg in held.values():
        problems += agg[4]
        entities |= agg[6]
        sources |= agg[7]
        claims |= agg[8]
    if held:
        ctx.take_assessments(kb.claims, [agg[5] for agg in held.values()])
    if unique:
        cache.set_aggregates(held, gathered)

    def every_first() -> list[tuple[m.Record, Local]]:
        """With the files the aggregates stood for (only when an id is unknown: R301). A
        covered file's own entry may be gone or of other bytes while its shard's aggregate
        holds (its file was away for a run, or edited while ids were duplicated, then put
        back): its Local is then worked out again, and kept."""
        return firsts + [(record, cached(path, record, _KINDS[type(record)], digests[path],
                                         shard_of(path)))
                         for path, record in kb.files if path in covered]

    problems += duplicate_ids(kb)
    problems += _unknown(kb, every_first if held else lambda: firsts, entities, sources, claims)
    problems += unused(kb, entities, sources)
    problems += depends_on_cycles(kb, ctx)
    problems += depends_on_weak(kb, ctx)
    return problems


def _unknown(kb: m.KnowledgeBase, firsts_of: Callable[[], list[tuple[m.Record, Local]]],
             entities: set[str], sources: set[str], claims: set[str]) -> list[Problem]:
    """R301, looked for only in the records that refer to an id no record has."""
    missing = ((entities - kb.entities.keys()) | (sources - kb.sources.keys())
               | (claims - kb.claims.keys()))
    missing.discard("")  # an empty id was reported by the schema, not here
    if not missing:
        return []
    problems: list[Problem] = []
    for record, f in firsts_of():
        if missing.isdisjoint(f[2]) and missing.isdisjoint(f[3]) and missing.isdisjoint(f[4]):
            continue
        if isinstance(record, m.Claim):
            problems += unknown_in_claim(kb, record)
        elif isinstance(record, m.Source):
            problems += unknown_in_source(kb, record)
    return problems
