"""The parse cache keeps records as marshal data (kb.recordcodec): a record read back that way is
the record the pickled cache gave, field for field and type for type, and whatever the codec
does not foresee is pickled as before rather than changed."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from kb import model as m
from kb.cache import LAZY_RECORDS, ParseCache, read_pickle, write_pickle
from kb.load import kind_of, load
from kb.recordcodec import FIELDS, decode, encode

GENERATED = (300, 11)
REPOSITORY = Path(__file__).resolve().parent.parent


def entries_of(root: Path) -> dict[tuple[str, str], tuple[str, Any]]:
    kb, problems = load(root)
    assert not problems
    return {(kind_of(record), path): (f"digest-{path}", (record, []))
            for path, record in kb.files}


@pytest.fixture(scope="module", params=["generated", "repository"])
def entries(request: pytest.FixtureRequest, generated: Path) -> dict[tuple[str, str], Any]:
    return entries_of(generated if request.param == "generated" else REPOSITORY)


def pickled(entries: dict[tuple[str, str], Any], tmp_path: Path) -> Any:
    """The entries as the parse cache pickled them before the codec."""
    path = tmp_path / "shard.pickle"
    assert write_pickle(path, "key", entries, LAZY_RECORDS) is not None
    return read_pickle(path, "key")


def same(a: object, b: object) -> None:
    """Equal, of the same types, down to every field (== on records skips their places)."""
    assert type(a) is type(b)
    if isinstance(a, (list, tuple)) and not isinstance(a, (str, bytes)):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
            same(x, y)
    elif hasattr(a, "__dict__"):
        assert list(a.__dict__) == list(b.__dict__)
        for name in a.__dict__:
            same(a.__dict__[name], b.__dict__[name])
    else:
        assert a == b


def test_every_record_of_a_knowledge_base_is_written_as_data(
        entries: dict[tuple[str, str], Any]) -> None:
    # none left to pickle: a field the codec does not know would leave its records there,
    # and the cache would be as slow as before without any test failing
    assert {type(r) for _, (r, _) in entries.values()} == set(FIELDS)
    data, rest = encode(entries)
    assert rest == {}
    assert len(decode(data)) == len(entries)


def test_a_record_read_back_is_the_one_the_pickled_cache_gave(
        entries: dict[tuple[str, str], Any], tmp_path: Path) -> None:
    data, _ = encode(entries)
    read = decode(data)
    before = pickled(entries, tmp_path)
    assert list(read) == list(before)
    for key, (digest, (record, problems)) in read.items():
        old_digest, (old, old_problems) = before[key]
        assert digest == old_digest and problems == old_problems == []
        assert m.is_lazy(record)
        same(record, old)  # lazy: its fields KEPT and the rest as one string
        # read whole, it is the parsed record, places and all
        original = entries[key][1][0]
        assert record == original and repr(record) == repr(original)
        assert record.at("id") == original.at("id")
        if isinstance(record, m.Claim):
            assert record.cited_sources() == original.cited_sources()
            for q in ([record.quantity] if record.quantity else []) + record.related:
                assert q.at(next(iter(q._locs()))) is not None


def test_what_the_codec_does_not_foresee_is_pickled_as_it_was(
        entries: dict[tuple[str, str], Any], tmp_path: Path) -> None:
    claims = [k for k, (_, (r, _)) in entries.items() if isinstance(r, m.Claim)]
    odd = dict(list(entries.items())[:20])
    problem = claims[0]
    odd[problem] = (entries[problem][0],
                    (entries[problem][1][0], ["a problem, kept with its record"]))
    strange = claims[1]
    record = pickle.loads(pickle.dumps(entries[strange][1][0]))
    record.tags = ("a", "tuple")  # not a list of text: marshal would not give it back
    odd[strange] = (entries[strange][0], (record, []))
    _, rest = encode(odd)
    assert set(rest) == {problem, strange}
    cache = ParseCache(tmp_path / "kb", tmp_path / "cache")
    path = tmp_path / "shard.pickle"
    assert write_pickle(path, cache.key, cache.pack(odd), LAZY_RECORDS) is not None
    read = cache.unpack(read_pickle(path, cache.key))
    assert read is not None and read.keys() == odd.keys()
    assert read[problem][1][1] == ["a problem, kept with its record"]
    assert read[strange][1][0].tags == ("a", "tuple")
    for key in odd:
        assert read[key][1][0] == odd[key][1][0]


@pytest.mark.parametrize("damage", ["cut short", "another shape", "another kind", "not bytes"])
def test_damaged_records_data_is_no_shard(entries: dict[tuple[str, str], Any],
                                          damage: str, tmp_path: Path) -> None:
    import marshal

    data, rest = encode(dict(list(entries.items())[:10]))
    damaged: Any = {
        "cut short": (data[: len(data) // 2], rest),
        "another shape": (marshal.dumps([("claim", "claims/x.yaml", "d", (1, 2))]), rest),
        "another kind": (marshal.dumps([("clxim", "claims/x.yaml", "d", ())]), rest),
        "not bytes": ("text", rest),
    }[damage]
    assert ParseCache(tmp_path / "kb", tmp_path / "cache").unpack(damaged) is None
