"""The typed model: what the YAML files mean, with every value's place in its file.

Each record keeps `loc` (where it starts) and `locs` (field name, or "field[i]" for a list
item, to the place of that value), so every later rule can point an editor at the exact spot.
"""

from __future__ import annotations

import copyreg
import datetime as dt
import pickle
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, SupportsIndex

from kb.problems import Loc, unpickled_by_tuple

CLAIM_KINDS = ("fact", "quantity", "quote", "opinion", "prediction")
STANCES = ("supports", "partly-supports", "partly-refutes", "refutes", "context")
STATUSES = (
    "supported",
    "partly-supported",
    "disputed",
    "refuted",
    "unverified",
    "not-checkable",
)
RELATIONS = ("supports", "contradicts", "refines", "duplicates", "depends-on", "context")
SOURCE_KINDS = (
    "news-article",
    "statistics",
    "report",
    "interview",
    "social-post",
    "forum-thread",
    "encyclopedia",
    "dataset",
    "other",
)
KIND_DIRS = {"claim": "claims", "source": "sources", "entity": "entities"}  # DESIGN.md §1
ENTITY_KINDS = ("person", "organization", "country", "place", "event", "product", "other")

_NOWHERE = Loc("", 0, 0)


class Ref(NamedTuple):
    """A reference to another record by id, with the place it was written.

    A named tuple, like Loc: there are tens of thousands, and a frozen slotted dataclass costs
    several times as much to make and to unpickle from the parse cache.
    """

    id: str
    loc: Loc = _NOWHERE

    def __reduce__(self) -> tuple[Any, ...]:
        return unpickled_by_tuple(self)


_NO_REF = Ref("")  # a tuple, so one shared default is safe


@dataclass
class Located:
    loc: Loc = field(default=_NOWHERE, kw_only=True, compare=False, repr=False)
    # Field → place, packed into one string (pack_locs) as a record is parsed or unpickled,
    # unpacked when first asked for. Read it through at() and wrote(), never directly.
    locs: dict[str, Loc] | str = field(default_factory=dict, kw_only=True, compare=False,
                                       repr=False)

    def at(self, name: str) -> Loc:
        """The place of a field's value, or of the record where the field is missing."""
        return self._locs().get(name, self.loc)

    def wrote(self, name: str) -> bool:
        """Whether the file gave this field (even a value that was not understood)."""
        return name in self._locs()

    def _locs(self) -> dict[str, Loc]:
        locs = self.locs
        if isinstance(locs, str):
            path = self.loc.path
            self.locs = locs = {name: Loc(path, int(line), int(col)) for name, line, col in
                                (item.split(_UNIT) for item in locs.split(_RECORD) if item)}
        return locs

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        """Pickled with the places packed into one string, all in the record's file.

        Half the time of unpickling the parse cache went on the ~50 places of each record
        (one Loc a field and list item), which a build reads only to report a problem: one
        string unpickles at once, and at() unpacks it the first time it is asked."""
        if _LAZY in self.__dict__:  # a lazy record (lazy_reduce) is pickled whole elsewhere
            _fill(self)
        reduced = super().__reduce_ex__(protocol)
        locs = self.locs
        if (not isinstance(reduced, tuple) or len(reduced) < 3
                or not isinstance(reduced[2], dict) or not isinstance(locs, dict)):
            return reduced
        packed = pack_locs(locs, self.loc.path)
        if packed is locs:
            return reduced
        state = dict(reduced[2])
        state["locs"] = packed
        return (reduced[0], reduced[1], state, *reduced[3:])


# Separators of packed places: ASCII's record and unit separators, which no field name holds.
_RECORD, _UNIT = "\x1e", "\x1f"


def pack_locs(locs: dict[str, Loc], path: str) -> dict[str, Loc] | str:
    """The places as Located.locs keeps them packed (one string), or `locs` itself when they
    cannot be: a place in another file, or a name holding a separator.

    kb.schema packs them as it makes each record: as a dict of Loc they were a fifth of what a
    cold build held when it forked its page worker (~35 MB of 172 at 10,000 claims), kept
    only to report a problem."""
    for name, loc in locs.items():
        if loc.path != path or _RECORD in name or _UNIT in name:
            return locs
    return _RECORD.join([f"{name}{_UNIT}{loc.line}{_UNIT}{loc.col}"
                         for name, loc in locs.items()])


@dataclass
class Quantity(Located):
    value: float = 0.0
    unit: str = ""


@dataclass
class Appearance(Located):
    source: Ref = _NO_REF
    quote: str = ""
    translation: str | None = None


@dataclass
class Evidence(Located):
    source: Ref = _NO_REF
    stance: str = "context"
    quote: str | None = None
    translation: str | None = None
    note: str | None = None


@dataclass
class Verdict(Located):
    status: str = ""
    summary: str | None = None


@dataclass
class Review(Located):
    by: str = ""
    date: dt.date | None = None
    note: str | None = None


@dataclass
class Relation(Located):
    claim: Ref = _NO_REF
    relation: str = "context"


_LAZY = "_lazy"  # in a lazy record's __dict__: its other fields, pickled (lazy_reduce)
_CITED = "_cited"  # in a lazy claim's __dict__: Claim.cited_sources()
_MARKERS = (_LAZY, _CITED)


@dataclass
class RecordBase(Located):
    """A claim, source or entity: what a file holds, and what the parse cache may give lazily.

    The parse cache (kb.cache.ParseCache) pickles each record with lazy_reduce: the few fields
    that every build reads of every record, and the others as one pickled string, unpickled
    the first time one of them is read. At 100,000 claims, unpickling every record whole took
    a fifth of a build after one edit, which reads the rest of a hundred or so."""

    if not TYPE_CHECKING:  # for mypy, a class with __getattr__ has every attribute

        def __getattr__(self, name: str) -> Any:
            # Reached only when `name` is not in the instance: the record's class keeps no
            # defaults (see _no_class_defaults), so a lazy record's field lands here. Filled
            # first, then looked up: another thread may have filled it since the miss.
            _fill(self)
            try:
                return self.__dict__[name]
            except KeyError:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}") from None


def _fill(record: Located) -> None:
    """Give a lazy record its other fields; one set on it meanwhile stays as set. Two threads
    may fill one record at once: the fields are set before the marker goes, and are equal."""
    state = record.__dict__
    blob = state.get(_LAZY)
    if blob is None:
        return
    for name, value in pickle.loads(blob).items():
        state.setdefault(name, value)
    state.pop(_LAZY, None)
    state.pop(_CITED, None)


@dataclass
class Claim(RecordBase):
    id: str = ""
    claim: str = ""
    kind: str = ""  # empty when the file's kind is missing or invalid (already reported)
    claimant: Ref | None = None
    about: list[Ref] = field(default_factory=list)
    period: str | None = None
    quantity: Quantity | None = None
    appearances: list[Appearance] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    verdict: Verdict | None = None
    reviews: list[Review] = field(default_factory=list)
    related: list[Relation] = field(default_factory=list)
    resolves_by: dt.date | None = None
    tags: list[str] = field(default_factory=list)

    def citations(self) -> list[Appearance | Evidence]:
        """Every place the claim cites a source: its appearances, then its evidence."""
        return [*self.appearances, *self.evidence]

    def cited_sources(self) -> list[str]:
        """The ids of the sources its citations() cite, in their order: known to a lazy
        claim without reading its appearances and evidence."""
        state = self.__dict__
        cited: list[str] | None = state.get(_CITED)
        if cited is None or "appearances" in state or "evidence" in state:  # set since
            return [c.source.id for c in self.citations()]
        return list(cited)


@dataclass
class Source(RecordBase):
    id: str = ""
    title: str = ""
    kind: str = "other"
    publisher: Ref | None = None
    authors: list[Ref] = field(default_factory=list)
    url: str = ""
    archived: str | None = None
    published: str | None = None  # YYYY, YYYY-MM or YYYY-MM-DD: a source's date may be partial
    accessed: dt.date | None = None
    language: str | None = None
    note: str | None = None


@dataclass
class Entity(RecordBase):
    id: str = ""
    name: str = ""
    kind: str = "other"
    description: str | None = None
    aliases: list[str] = field(default_factory=list)
    wikidata: str | None = None


Record = Claim | Source | Entity
# Each kind of record's class, by the name its files' folder and kb.load give it
RECORD_CLASSES: dict[str, type[Record]] = {"claim": Claim, "source": Source, "entity": Entity}

# What a lazy record holds from the start: what a build reads of every record, also of those
# whose file did not change (all a claim's row in a listing or the CSV shows: its statement,
# kind, entities, period, quantity and tags, with its relations and the ids of the sources it
# cites; a source's title, publisher and authors; an entity's name). Read another field of
# every record, and the laziness only costs: tests/test_lazy_records.py counts the records a
# build after one edit fills. `loc` must stay in each: Located has a class default.
KEPT: dict[type, tuple[str, ...]] = {
    Claim: ("id", "loc", "claim", "kind", "claimant", "about", "period", "quantity", "related",
            "tags"),
    Source: ("id", "loc", "title", "publisher", "authors"),
    Entity: ("id", "loc", "name"),
}


def _no_class_defaults(cls: type) -> None:
    """Remove the class attributes @dataclass leaves for its defaults (its __init__ keeps its
    own copies), so that a field a lazy record lacks reaches __getattr__ rather than the
    default."""
    for f in fields(cls):
        if f.name in cls.__dict__:
            delattr(cls, f.name)


for _kind in KEPT:
    _no_class_defaults(_kind)


def lazy_reduce(record: Record) -> tuple[Any, ...]:
    """How the parse cache pickles a record (a reducer of its pickler's dispatch_table): the
    fields KEPT, and the others pickled apart, as one string; a lazy record as it is."""
    state = record.__dict__
    kept = KEPT[type(record)]
    if _LAZY in state:
        if all(name in kept or name in _MARKERS for name in state):
            return (copyreg.__newobj__, (type(record),), dict(state))  # type: ignore[attr-defined]
        _fill(record)  # a field was set on it since: split it afresh
    held = {name: state[name] for name in kept}
    rest = {name: value for name, value in state.items() if name not in kept}
    locs = rest.get("locs")
    if isinstance(locs, dict):
        rest["locs"] = pack_locs(locs, record.loc.path)
    if isinstance(record, Claim):
        held[_CITED] = record.cited_sources()
    held[_LAZY] = pickle.dumps(rest, pickle.HIGHEST_PROTOCOL)
    return (copyreg.__newobj__, (type(record),), held)  # type: ignore[attr-defined]


def is_lazy(record: Record) -> bool:
    """Whether the record has not read its other fields yet (for tests and benchmarks)."""
    return _LAZY in record.__dict__


@dataclass(frozen=True)
class Snapshot:
    """A source's text, as stored beside it in sources/<id>.txt."""

    source_id: str
    path: str
    text: str


@dataclass
class KnowledgeBase:
    """Every record of a folder, by kind and id; the first of two records with one id wins."""

    root: Path
    claims: dict[str, Claim] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    # records of a kind in file order, duplicates included, for rules that look at all of them
    files: list[tuple[str, Record]] = field(default_factory=list)

    def one_record_per_id(self) -> bool:
        """Whether no two records of a kind share an id. Each kind's table holds the first
        record of each id, the empty one too (kb.load): as many records as the tables hold
        means none is a second (a comparison of lengths, where keying every record took ~5 ms
        at 10,000 claims)."""
        return len(self.files) == len(self.claims) + len(self.sources) + len(self.entities)

    def tables(self) -> dict[str, dict[str, Any]]:
        """Each kind's table (claim, source, entity: kb.load's FileInput.kind) by its name."""
        return {"claim": self.claims, "source": self.sources, "entity": self.entities}

    def record(self, kind: str, id_: str) -> Record | None:
        if kind == "claim":
            return self.claims.get(id_)
        if kind == "source":
            return self.sources.get(id_)
        return self.entities.get(id_)
