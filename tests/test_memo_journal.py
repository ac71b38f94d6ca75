"""A memo saved as a journal of what changed since its base (kb.memo.write_journaled) reads
back as the value written, whatever happened to the files in between; and it is small."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb.memo import (
    journal_path,
    read_journaled,
    read_memo,
    write_journaled,
    write_memo,
)

KEY = ("k", 1)


def _value(n: int, mark: str = "") -> tuple[Any, ...]:
    """Shaped like the manifest: a str, dicts of tuples, a list, a tuple holding dicts."""
    return ("out", {f"p{i}": (f"key{i}{mark}", (i, i * 10, i * 100)) for i in range(n)},
            ["s0", "s1"], {f"f{i}": i for i in range(n)},
            ("common", {f"c{i}": b"row" for i in range(n)}, {}))


def _save(path: Path, value: Any) -> None:
    write_journaled(path, KEY, value, read_journaled(path, KEY))


def test_a_few_changes_are_written_as_a_journal_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    value = _value(2000)
    _save(path, value)  # no memo yet: written whole
    assert not journal_path(path).exists()
    base = path.read_bytes()
    read = read_journaled(path, KEY)
    assert read is not None and read.value == value
    pages, files, seen = read.value[1], read.value[3], read.value[4]
    pages["p1"] = ("new", (1, 2, 3))  # changed in place, as a build may
    pages["added"] = ("k", (0, 0, 0))
    del pages["p2"], files["f3"]
    seen[1]["c4"] = b"other"
    changed = (read.value[0], pages, ["s0", "s9"], files, seen)
    write_journaled(path, KEY, changed, read)
    assert path.read_bytes() == base  # the base is untouched
    assert 0 < journal_path(path).stat().st_size * 50 < len(base)
    again = read_journaled(path, KEY)
    assert again is not None and again.value == changed
    assert read_memo(path, KEY) == value  # the base alone is the older value


def test_journals_add_up_until_the_memo_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    rng = random.Random(5)
    value = _value(300)
    _save(path, value)
    compacted = 0
    for step in range(60):
        read = read_journaled(path, KEY)
        assert read is not None and read.value == value, step
        pages = dict(read.value[1])
        for _ in range(rng.randint(1, 12)):
            k = f"p{rng.randrange(400)}"
            if k in pages and rng.random() < 0.3:
                del pages[k]
            else:
                pages[k] = (f"v{step}", (step, 0, 0))
        value = (value[0], pages, value[2], value[3], value[4])
        had_journal = journal_path(path).exists()
        write_journaled(path, KEY, value, read)
        if had_journal and not journal_path(path).exists():
            compacted += 1
    assert read_journaled(path, KEY).value == value  # type: ignore[union-attr]
    assert compacted >= 1  # the journal grew past an eighth of its base, at least once


def test_a_journal_of_another_base_or_damaged_is_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    old = _value(100)
    _save(path, old)
    new = (old[0], {**old[1], "p0": ("x", (0, 0, 0))}, *old[2:])
    _save(path, new)
    journal = journal_path(path).read_bytes()
    assert read_journaled(path, KEY).value == new  # type: ignore[union-attr]
    # Another build wrote the memo whole since (or its base was replaced): the journal left
    # beside it names the base it was made against, and is not applied to this one.
    other = _value(100, "other")
    write_memo(path, KEY, other)
    journal_path(path).write_bytes(journal)
    assert read_journaled(path, KEY).value == other  # type: ignore[union-attr]
    # damaged: the base alone
    _save(path, old)
    _save(path, new)
    data = journal_path(path).read_bytes()
    journal_path(path).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert read_journaled(path, KEY).value == old  # type: ignore[union-attr]
    # under another key (another version): nothing at all
    assert read_journaled(path, ("k", 2)) is None


def test_a_journal_that_does_not_fit_its_base_is_not_applied(tmp_path: Path) -> None:
    """Checked before any of it is applied: applying changes the base's dicts in place."""
    import hashlib
    import marshal

    path = tmp_path / "m.memo"
    value = _value(10)
    write_memo(path, KEY, value)
    digest = path.read_bytes()[13:45]
    # a tuple's changes, one of them a dict's for what is a str in the base
    bad = (3, ((2, {"x": 1}, []), (2, {"p1": "changed"}, []), (0,), (0,), (0,)))
    body = marshal.dumps((KEY, digest, bad))
    journal_path(path).write_bytes(b"claimkb-memo\n" + hashlib.sha256(body).digest() + body)
    assert read_journaled(path, KEY).value == value  # type: ignore[union-attr]


def test_an_unchanged_value_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    value = _value(50)
    _save(path, value)
    before = path.stat().st_mtime_ns
    _save(path, _value(50))
    assert path.stat().st_mtime_ns == before and not journal_path(path).exists()


def test_a_dict_read_in_two_places_changes_in_one(tmp_path: Path) -> None:
    """marshal reads one dict written twice as one object: a change to one place is applied
    to a copy, not to both."""
    path = tmp_path / "m.memo"
    d = {f"k{i}": i for i in range(200)}
    write_journaled(path, KEY, (d, d), None)
    read = read_journaled(path, KEY)
    assert read is not None and read.value[0] is read.value[1]
    changed = ({**d, "new": 1}, dict(d))
    write_journaled(path, KEY, changed, read)
    assert journal_path(path).exists()
    again = read_journaled(path, KEY)
    assert again is not None and again.value == changed and "new" not in again.value[1]


def test_a_value_of_another_type_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    value = {f"k{i}": 1 for i in range(200)}
    write_journaled(path, KEY, value, None)
    read = read_journaled(path, KEY)
    changed = {**value, "k1": True, "k2": 1.0}  # equal, as Python compares them
    write_journaled(path, KEY, changed, read)
    again = read_journaled(path, KEY)
    assert again is not None
    assert [type(again.value[k]) for k in ("k0", "k1", "k2")] == [int, bool, float]


def test_changes_the_caller_knows_are_journaled_without_comparing(tmp_path: Path) -> None:
    """`known`: a dict's entries set and removed, as the build knows them (the manifest's
    pages after an edit in place): written as said, the other items compared as ever."""
    path = tmp_path / "m.memo"
    _save(path, _value(2000))
    for round_ in range(3):  # journals that add up, each from a known change
        read = read_journaled(path, KEY)
        assert read is not None
        value = read.value
        pages = dict(value[1])
        put = {f"p{round_}": ("edited", (round_, 0, 0)), f"new{round_}": ("added", (1, 2, 3))}
        gone = [f"p{1000 + round_}"]
        for k in gone:
            del pages[k]
        pages.update(put)
        files = {**value[3], "f7": -round_ - 1}  # not known: compared
        new = (value[0], pages, value[2], files, value[4])
        write_journaled(path, KEY, new, read, {1: (put, gone)})
        assert journal_path(path).exists()
        again = read_journaled(path, KEY)
        assert again is not None and again.value == new
    # what the caller says is what is written: a change it does not tell is not looked for
    read = read_journaled(path, KEY)
    assert read is not None
    untold = (read.value[0], {**read.value[1], "p5": ("untold", (0, 0, 0))}, *read.value[2:])
    write_journaled(path, KEY, untold, read, {1: ({}, [])})
    again = read_journaled(path, KEY)
    assert again is not None and again.value[1]["p5"] == read.value[1]["p5"]


def test_a_memo_is_read_without_the_collector(tmp_path: Path,
                                              collections: Callable[[], int]) -> None:
    """Reading makes as many containers as the memo holds (millions at 100,000 claims): the
    cyclic collector, run every 700 of them, walked them again and again (the model's indexes
    at 100,000 claims: 1.0-1.5 s to read, 0.4 s without it). It is paused, and back on after."""
    import gc

    path = tmp_path / "m.memo"
    value = _value(20_000)
    write_memo(path, KEY, value)
    changed = (value[0], {**value[1], "p7": ("edited", (7, 70, 700))}, *value[2:])
    _save(path, changed)  # and a journal to apply: its copies too
    assert journal_path(path).exists()
    before = collections()
    assert gc.isenabled()
    read = read_journaled(path, KEY)
    again = read_memo(path, KEY)
    assert gc.isenabled()
    assert read is not None and read.value == changed
    assert again == value  # the base alone
    assert collections() == before
