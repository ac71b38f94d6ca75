"""The parse cache's records as plain data (marshal) rather than pickles.

Each lazy record (kb.model.lazy_reduce) is stored as a tuple of its fields KEPT, with its
places, references, quantity and relations as tuples, and its other fields as the one pickled
string they already are. marshal reads that back without pickle's per-object work, and the
records are made from it here. At 100,000 claims an edit build read the parse cache's 130,000
records in 1.35 s; read this way, the same shards took three quarters of the time
(1.16-1.27 s against 1.51-1.72 s).

Only what round-trips exactly is written so: an entry with problems, a record that is not
lazy as lazy_reduce makes it, or a field of a type not foreseen here, stays a pickle
(`encode` returns it apart). The tests read every record of a generated knowledge base and
of this repository through the codec, compare each with the pickled cache's, and fail when
one is left to pickle: a field added to KEPT that the codec does not know cannot go unnoticed.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from typing import Any

from kb import model as m
from kb.problems import Loc

Entries = dict[tuple[str, str], tuple[str, Any]]  # (kind, path) → (digest, (record, problems))

_CLASSES: dict[str, type] = m.RECORD_CLASSES
# A record's fields in the order they are written: those KEPT, then the lazy markers.
FIELDS: dict[type, tuple[str, ...]] = {
    m.Claim: (*m.KEPT[m.Claim], "_cited", "_lazy"),
    m.Source: (*m.KEPT[m.Source], "_lazy"),
    m.Entity: (*m.KEPT[m.Entity], "_lazy"),
}
_NONE = type(None)
_PLAIN = (str, int, float, bool, bytes, _NONE)  # marshal gives back these types exactly
_new = object.__new__
_tuple = tuple.__new__


class Unfit(Exception):
    """A value this codec does not write (it is pickled instead)."""


# -- writing ------------------------------------------------------------------------------

def _loc(loc: object) -> tuple[str, int, int]:
    if type(loc) is not Loc or type(loc.path) is not str or type(loc.line) is not int \
            or type(loc.col) is not int:
        raise Unfit
    return (loc.path, loc.line, loc.col)


def _ref(ref: object) -> tuple[str, tuple[str, int, int]] | None:
    if ref is None:
        return None
    if type(ref) is not m.Ref or type(ref.id) is not str:
        raise Unfit
    return (ref.id, _loc(ref.loc))


def _refs(refs: object) -> list[tuple[str, tuple[str, int, int]] | None]:
    if type(refs) is not list:
        raise Unfit
    return [_ref(r) for r in refs]


def _located(value: Any, cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """A Quantity's or a Relation's fields, its places packed into one string."""
    if type(value) is not cls:
        raise Unfit
    state = value.__dict__
    _same_names(state, ("loc", "locs", *names))
    locs = state["locs"]
    if type(locs) is dict:
        locs = m.pack_locs(locs, _loc(state["loc"])[0])
    if type(locs) is not str:
        raise Unfit
    return state | {"locs": locs}


def _quantity(q: object) -> tuple[Any, ...] | None:
    if q is None:
        return None
    state = _located(q, m.Quantity, ("value", "unit"))
    return (_loc(state["loc"]), state["locs"], _plain(state["value"]), _plain(state["unit"]))


def _relations(related: object) -> list[tuple[Any, ...]]:
    if type(related) is not list:
        raise Unfit
    out = []
    for r in related:
        state = _located(r, m.Relation, ("claim", "relation"))
        out.append((_loc(state["loc"]), state["locs"], _ref(state["claim"]),
                    _plain(state["relation"])))
    return out


def _plain(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if type(value) is list and all(type(v) is str for v in value):
        return value
    raise Unfit


_WRITE: dict[str, Callable[[Any], Any]] = {
    "loc": _loc, "claimant": _ref, "about": _refs, "quantity": _quantity,
    "related": _relations, "publisher": _ref, "authors": _refs}


def _same_names(state: dict[str, Any], names: tuple[str, ...]) -> None:
    if tuple(state) != names and set(state) != set(names):  # in another order: as good
        raise Unfit


def _fields(record: Any) -> tuple[Any, ...]:
    names = FIELDS[type(record)]
    state = m.lazy_reduce(record)[2]
    _same_names(state, names)
    return tuple(_WRITE.get(name, _plain)(state[name]) for name in names)


def encode(entries: Entries) -> tuple[bytes, Entries]:
    """The entries as marshal data, and those it does not hold (to be pickled as before)."""
    rows = []
    rest: Entries = {}
    for key, value in entries.items():
        kind, path = key
        digest, (record, problems) = value
        if problems or _CLASSES.get(kind) is not type(record):
            rest[key] = value
            continue
        try:
            rows.append((kind, path, digest, _fields(record)))
        except Unfit:
            rest[key] = value
    return marshal.dumps(rows), rest


# -- reading ------------------------------------------------------------------------------

def _read_ref(t: tuple[str, tuple[str, int, int]] | None) -> m.Ref | None:
    return None if t is None else _tuple(m.Ref, (t[0], _tuple(Loc, t[1])))


def _read_refs(ts: list[tuple[str, tuple[str, int, int]]]) -> list[m.Ref]:
    return [_tuple(m.Ref, (i, _tuple(Loc, loc))) for i, loc in ts]


def _read_quantity(t: tuple[Any, ...] | None) -> m.Quantity | None:
    if t is None:
        return None
    q = _new(m.Quantity)
    q.__dict__ = {"loc": _tuple(Loc, t[0]), "locs": t[1], "value": t[2], "unit": t[3]}
    return q


def _read_relations(ts: list[tuple[Any, ...]]) -> list[m.Relation]:
    out = []
    for loc, locs, ref, relation in ts:
        r = _new(m.Relation)
        r.__dict__ = {"loc": _tuple(Loc, loc), "locs": locs,
                      "claim": _tuple(m.Ref, (ref[0], _tuple(Loc, ref[1]))),
                      "relation": relation}
        out.append(r)
    return out


def decode(data: bytes) -> Entries:
    """The entries `encode` wrote. Raises ValueError, TypeError, KeyError or IndexError on
    data it did not write (the caller takes the shard for damaged)."""
    out: Entries = {}
    for kind, path, digest, values in marshal.loads(data):
        cls = _CLASSES[kind]
        record: Any = _new(cls)
        state = dict(zip(FIELDS[cls], values, strict=True))
        state["loc"] = _tuple(Loc, state["loc"])
        if cls is m.Claim:
            state["claimant"] = _read_ref(state["claimant"])
            state["about"] = _read_refs(state["about"])
            state["quantity"] = _read_quantity(state["quantity"])
            state["related"] = _read_relations(state["related"])
        elif cls is m.Source:
            state["publisher"] = _read_ref(state["publisher"])
            state["authors"] = _read_refs(state["authors"])
        record.__dict__ = state
        out[(kind, path)] = (digest, (record, []))
    return out
