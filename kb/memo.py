"""Small files in the user's cache that a build reads back: marshal data behind a digest.

The build's manifest (kb.manifest), the model's memo (kb.modelmemo), the claims' CSV rows
(kb.csvmemo) and the claims' status steps (kb.history) are plain data — str, int, bytes,
tuples, lists, dicts — so they are written with marshal, which loads ten times as
fast as a pickle of dataclasses and cannot run code. Each file is a magic line, the SHA-256 of
the data, then the data; the data starts with a key (the format, claimkb's and Python's
versions, and what else the caller puts in). A file cut short or damaged (its digest), or from
another version or format (its key), reads as None: the caller then works it all out again.

A memo that a build rewrites after each edit, though only a few of its entries changed (the
manifest: 8 MB at 10,000 claims, ~80 MB at 100,000), is kept as that file (its base) and a
journal beside it: what changed since the base was written (read_journaled, write_journaled).
The journal names the base's digest, so one left by another base (a base written since, by
this or another build) is not applied; once it has grown to an eighth of its base, the whole
memo is written again and the journal removed. Two builds of one knowledge base do not run at
once (kb.buildlock); where they can (a file system without locks), the last whole save wins
over a journal written after it against an older base. Each user can afford that: a manifest's
pages are kept only where the site's files still have the recorded Stat, and the other memos
are keyed by content, so an older value costs time, never a wrong page.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.cache import paused_gc

_MAGIC = b"claimkb-memo\n"
_HEAD = len(_MAGIC) + 32
JOURNAL = ".journal"  # the suffix a journal adds to its base's name
_COMPACT = 8  # a journal this many times smaller than its base is still worth keeping


def _read(path: Path) -> tuple[bytes, Any, int] | None:
    """(the data's digest, what it holds, the file's size), or None when missing or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = memoryview(data)[_HEAD:]  # not a copy of megabytes
    digest = data[len(_MAGIC):_HEAD]
    if data[:len(_MAGIC)] != _MAGIC or hashlib.sha256(body).digest() != digest:
        return None
    try:
        # Without the collector: read so, the model's indexes at 100,000 claims (26 MB) took
        # 0.4-0.6 s, not 1.3 s; its collections walked the containers made so far again and again.
        with paused_gc():
            return digest, marshal.loads(body), len(data)
    except (EOFError, ValueError, TypeError):
        return None


def read_memo(path: Path, key: Any) -> Any:
    """The value written under `key`, or None when missing, damaged or written under another."""
    read = _read(path)
    if read is None:
        return None
    stored = read[1]
    if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key):
        return None
    return stored[1]


def _write(path: Path, body: bytes) -> None:
    """Write atomically (readers see the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC)
            fh.write(hashlib.sha256(body).digest())
            fh.write(body)  # three writes: the body is not copied to be joined to its head
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_memo(path: Path, key: Any, value: Any) -> None:
    """Write the whole memo (and drop a journal of the last one); a memo that cannot be
    written only costs time next build."""
    try:
        body = marshal.dumps((key, value))
    except ValueError:  # a value marshal cannot write
        return
    _drop(journal_path(path))  # first: stopped between the two, the old memo reads whole
    with suppress(OSError):
        _write(path, body)


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL)


def _drop(path: Path) -> None:
    with suppress(OSError):
        path.unlink()


# What changed in a value, in marshal's types: the same; replaced by a value; a dict's
# entries set (dict) and removed (list of keys); a tuple's items, each a change.
_SAME, _VALUE, _DICT, _TUPLE = 0, 1, 2, 3
Change = tuple[Any, ...]
UNCHANGED: Change = (_SAME,)


@dataclass
class Journaled:
    """A memo as read_journaled read it: its value, what it was as read (the next save tells
    what changed from that), and the base and journal it came from."""

    value: Any
    as_read: Any  # the value's dicts and lists copied: the caller may change the value's own
    base: bytes  # the base's digest
    size: int  # the base's data, in bytes
    changes: Change  # the journal's, since the base


def read_journaled(path: Path, key: Any) -> Journaled | None:
    """The memo at `path` with its journal applied, when there is one for that base (the
    base alone, when the journal is another base's or damaged); None as read_memo."""
    read = _read(path)
    if read is None:
        return None
    digest, stored, size = read
    if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key):
        return None
    value, changes = stored[1], UNCHANGED
    journal = _read(journal_path(path))
    with paused_gc():  # the copies are as many containers again
        if journal is not None:
            held = journal[1]
            if (isinstance(held, tuple) and len(held) == 3 and held[0] == key
                    and held[1] == digest and _fits(value, held[2])):
                value, changes = _apply(value, held[2]), held[2]
        return Journaled(value, _copied(value), digest, size, changes)


def write_journaled(path: Path, key: Any, value: Any, last: Journaled | None,
                    known: Mapping[int, tuple[dict[Any, Any], list[Any]]] | None = None) -> None:
    """Write `value` as a journal of what changed since `last` was read, or whole (write_memo)
    when there is no `last` or its journal would grow past an eighth of its base.

    `known`: for items of a tuple `value` (by index) that are dicts, what the caller knows
    changed in them since `last` was read (the entries set, the keys removed): they are not
    compared entry by entry. The caller must have made them so: the journal trusts it."""
    if last is not None:
        since_last = _diff(last.as_read, value, known)
        if since_last[0] == _SAME:
            return  # the file holds this value
        changes = _merge(last.changes, since_last, value)
        try:
            body = marshal.dumps((key, last.base, changes))
        except ValueError:  # a value marshal cannot write: neither can write_memo
            return
        if len(body) * _COMPACT <= last.size:
            try:
                _write(journal_path(path), body)
                return
            except OSError:
                pass
    write_memo(path, key, value)


def _copied(value: Any) -> Any:
    """The value's dicts and lists copied, their items shared: a caller may set and remove
    entries of the value it read, but must not change an item in place (a list in a dict)."""
    t = type(value)
    if t is dict or t is list:
        return value.copy()
    if t is tuple:
        return tuple(map(_copied, value))
    return value


_MISSING = object()


def _diff(old: Any, new: Any,
          known: Mapping[int, tuple[dict[Any, Any], list[Any]]] | None = None) -> Change:
    """What changed from `old` to `new`; `known`: write_journaled's, for a tuple's items."""
    if type(old) is dict and type(new) is dict:
        get = old.get
        # many values are the very objects read (kept entries): `is` before `!=`; and 1 ==
        # True == 1.0, so the types are compared too
        put = {k: v for k, v in new.items() if (o := get(k, _MISSING)) is not v
               and (o != v or type(o) is not type(v))}
        added = sum(1 for k in put if k not in old)
        gone = [] if len(old) + added == len(new) else [k for k in old if k not in new]
        return (_DICT, put, gone) if put or gone else UNCHANGED
    if type(old) is tuple and type(new) is tuple and len(old) == len(new):
        parts = tuple(_told(*known[i]) if known and i in known else _diff(o, n)
                      for i, (o, n) in enumerate(zip(old, new, strict=True)))
        return UNCHANGED if all(p[0] == _SAME for p in parts) else (_TUPLE, parts)
    return UNCHANGED if type(old) is type(new) and old == new else (_VALUE, new)


def _told(put: dict[Any, Any], gone: list[Any]) -> Change:
    """A dict's change as the caller knows it (write_journaled's `known`)."""
    return (_DICT, dict(put), list(gone)) if put or gone else UNCHANGED


def _merge(since_base: Change, since_last: Change, value: Any) -> Change:
    """Changes since the base, from those up to the last read and those since (to `value`)."""
    a, b = since_base[0], since_last[0]
    if b == _SAME:
        return since_base
    if a == _SAME or b == _VALUE:
        return since_last
    if a == _DICT and b == _DICT:
        put = dict(since_base[1])
        for k in since_last[2]:
            put.pop(k, None)
        put.update(since_last[1])
        gone = list(dict.fromkeys([*since_base[2], *since_last[2]]))
        return (_DICT, put, gone)
    if a == _TUPLE and b == _TUPLE and len(since_base[1]) == len(since_last[1]):
        return (_TUPLE, tuple(_merge(x, y, v)
                              for x, y, v in zip(since_base[1], since_last[1], value,
                                                 strict=True)))
    return (_VALUE, value)


def _fits(value: Any, change: Any) -> bool:
    """Whether `change` is one _diff makes and can be applied to `value` (checked before any
    of it is, since applying changes the base's dicts in place)."""
    if not (isinstance(change, tuple) and change):
        return False
    tag = change[0]
    if tag == _SAME:
        return len(change) == 1
    if tag == _VALUE:
        return len(change) == 2
    if tag == _DICT:
        return (len(change) == 3 and type(value) is dict and type(change[1]) is dict
                and type(change[2]) is list)
    if tag == _TUPLE:
        return (len(change) == 2 and type(value) is tuple and type(change[1]) is tuple
                and len(change[1]) == len(value)
                and all(_fits(v, c) for v, c in zip(value, change[1], strict=True)))
    return False


def _apply(value: Any, change: Change) -> Any:
    """`value` with `change` applied. Its dicts are changed in place, but for one that marshal
    read as one object in two places: that one is copied first, so that the other keeps it."""
    seen: dict[int, int] = {}
    _count(value, seen)
    return _applied(value, change, {i for i, n in seen.items() if n > 1})


def _count(value: Any, seen: dict[int, int]) -> None:
    if type(value) is tuple:
        for v in value:
            _count(v, seen)
    elif type(value) is dict:
        seen[id(value)] = seen.get(id(value), 0) + 1


def _applied(value: Any, change: Change, shared: set[int]) -> Any:
    tag = change[0]
    if tag == _VALUE:
        return change[1]
    if tag == _DICT:
        if id(value) in shared:
            value = dict(value)
        for k in change[2]:
            value.pop(k, None)
        value.update(change[1])
        return value
    if tag == _TUPLE:
        return tuple(_applied(v, c, shared) for v, c in zip(value, change[1], strict=True))
    return value
