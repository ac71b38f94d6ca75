"""The parse cache: it saves work, and no stale, foreign or corrupt cache ever changes a result."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

import kb.cache
import kb.load
from kb.cache import SHARDS, ParseCache, digest, shard_of, wait_for_saves, write_pickle
from kb.check import CheckOptions, check
from kb.output import text_line

from conftest import MINIMAL, MakeKB

CLAIM = "claims/trade-record-2024.yaml"
BROKEN_CLAIM = MINIMAL[CLAIM].replace("claimant: someone", "claimant: somone")
RECORDS = sorted(path for path in MINIMAL if path.endswith(".yaml"))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths kb.load parses afresh (a counting wrapper around the real parse_file)."""
    seen: list[str] = []
    real = kb.load.parse_file

    def counting(kind: str, path: str, data: bytes) -> kb.load.Parsed:
        seen.append(path)
        return real(kind, path, data)

    monkeypatch.setattr(kb.load, "parse_file", counting)
    return seen


def outcome(root: Path, use_cache: bool = True) -> tuple[list[str], list[tuple[str, object]]]:
    """What a check reports, and the records it built (compared by value)."""
    checked = check(root, CheckOptions(use_cache=use_cache, jobs=1))
    return [text_line(p) for p in checked.report], list(checked.kb.files)


def test_second_run_parses_nothing(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb({CLAIM: BROKEN_CLAIM})
    first = outcome(root)
    assert len(parses) == 5
    parses.clear()
    second = outcome(root)
    assert parses == []
    assert second == first
    assert any("R301" in line for line in second[0])


def test_a_changed_file_is_parsed_again(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    clean = outcome(root)
    assert clean[0] == []
    parses.clear()
    (root / CLAIM).write_text(BROKEN_CLAIM, encoding="utf-8")
    changed = outcome(root)
    assert parses == [CLAIM]
    assert [line.split(": ")[1] for line in changed[0]] == ["error[R301]"]
    parses.clear()
    (root / CLAIM).write_text(MINIMAL[CLAIM], encoding="utf-8")  # and back again
    assert outcome(root) == clean
    assert parses == [CLAIM]


def test_a_new_and_a_deleted_file(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    outcome(root)
    parses.clear()
    (root / "entities" / "new.yaml").write_text("id: new\nname: New\nkind: other\n")
    (root / "sources" / "article.yaml").unlink()
    lines, _ = outcome(root)
    assert parses == ["entities/new.yaml"]
    assert any("T605" in line for line in lines)
    assert any("R301" in line and "'article'" in line for line in lines)
    cache = ParseCache(root)
    assert ("source", "sources/article.yaml") not in cache.entries  # dropped on save
    assert ("entity", "entities/new.yaml") in cache.entries


def test_no_cache_option_parses_everything(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    outcome(root)
    parses.clear()
    outcome(root, use_cache=False)
    assert len(parses) == 5


def cache_path(root: Path) -> Path:
    """The shard that holds CLAIM."""
    wait_for_saves()
    return ParseCache(root).shard_path(shard_of(CLAIM))


def read_all(root: Path) -> tuple[object, dict[object, object]]:
    """The key and the entries of every shard, as one dict."""
    cache = ParseCache(root)
    return cache.key, cache.entries


def write_all(root: Path, key: object, entries: dict[object, object]) -> None:
    """Write `entries` under `key`, each into its shard, as if a cache had been saved so."""
    cache = ParseCache(root)
    shards: list[dict[object, object]] = [{} for _ in range(SHARDS)]
    for k, v in entries.items():
        shards[shard_of(k[1])][k] = v  # type: ignore[index]
    for index, shard in enumerate(shards):
        cache.shard_path(index).unlink(missing_ok=True)
        if shard:
            cache.shard_path(index).write_bytes(pickle.dumps((key, cache.pack(shard))))


CORRUPTIONS: dict[str, Callable[[Path, bytes], bytes]] = {
    "garbage": lambda root, good: b"\x00\xffnot a pickle at all" * 10,
    "empty": lambda root, good: b"",
    "truncated": lambda root, good: good[: len(good) // 2],
    "one byte flipped at the end": lambda root, good: good[:-1] + bytes([good[-1] ^ 0xFF]),
    "a list": lambda root, good: pickle.dumps([1, 2, 3]),
    "None": lambda root, good: pickle.dumps(None),
    "a three-tuple": lambda root, good: pickle.dumps((1, 2, 3)),
    "right key, entries not a dict": lambda root, good: pickle.dumps(
        (ParseCache(root).key, ["x"])),
    "right key, entries of the wrong shape": lambda root, good: pickle.dumps(
        (ParseCache(root).key, {("claim", CLAIM): 5, ("source", CLAIM): (1,),
                                "odd key": ("a", "b", "c")})),
    "right key and digest, value of the wrong shape": lambda root, good: pickle.dumps(
        (ParseCache(root).key,
         {("claim", CLAIM): (digest((root / CLAIM).read_bytes()), "not a parse result")})),
    # the records as marshal data (kb.recordcodec), inside a good pickle: no class is named
    "right key, records' data cut short": lambda root, good: _recoded(
        good, lambda data: data[: len(data) // 2]),
    "right key, records of a kind that does not exist": lambda root, good: _recoded(
        good, lambda data: data.replace(b"claim", b"clxim")),
}


def _recoded(good: bytes, change: Callable[[bytes], bytes]) -> bytes:
    key, (data, rest) = pickle.loads(good)
    assert data and change(data) != data
    return pickle.dumps((key, (change(data), rest)))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupt_cache_is_ignored(make_kb: MakeKB, parses: list[str], name: str) -> None:
    root = make_kb({CLAIM: BROKEN_CLAIM})
    expected = outcome(root, use_cache=False)
    outcome(root)  # writes a good cache
    path = cache_path(root)
    good = path.read_bytes()
    path.write_bytes(CORRUPTIONS[name](root, good))
    assert outcome(root) == expected
    # and the cache is rebuilt, so the next run is fast again
    parses.clear()
    assert outcome(root) == expected
    assert parses == []


def test_a_cache_of_another_version_is_ignored(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb({CLAIM: BROKEN_CLAIM})
    expected = outcome(root, use_cache=False)
    outcome(root)
    key, entries = read_all(root)
    assert len(entries) == 5
    # entries that match every file's digest but say something else: only the key tells
    poisoned: dict[object, object] = {k: (d, (None, [])) for k, (d, _) in entries.items()}
    for other in [(key[0] + 1, *key[1:]), (key[0], "0.0.0", *key[2:]), (*key[:2], "2.7", key[3]),
                  (*key[:3], "another-code-fingerprint")]:
        write_all(root, other, poisoned)
        parses.clear()
        assert outcome(root) == expected
        assert len(parses) == 5


def test_the_poisoned_cache_would_be_used_with_the_right_key(make_kb: MakeKB) -> None:
    # the control for the test above: it is the key, not chance, that keeps poison out
    root = make_kb({CLAIM: BROKEN_CLAIM})
    outcome(root)
    key, entries = read_all(root)
    write_all(root, key, {k: (d, (None, [])) for k, (d, _) in entries.items()})
    _, files = outcome(root)
    assert files == []


def test_a_stale_entry_is_never_used(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    outcome(root)
    key, entries = read_all(root)
    assert ("claim", CLAIM) in entries
    # an entry for the old content of a file whose content then changed
    (root / CLAIM).write_text(BROKEN_CLAIM, encoding="utf-8")
    write_all(root, key, entries)
    parses.clear()
    lines, _ = outcome(root)
    assert parses == [CLAIM]
    assert any("R301" in line for line in lines)


def test_an_unwritable_cache_folder_costs_only_time(make_kb: MakeKB, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("KB_CACHE_DIR", str(blocker))
    root = make_kb({CLAIM: BROKEN_CLAIM})
    assert outcome(root) == outcome(root, use_cache=False)


def test_the_cache_lives_outside_the_knowledge_base(make_kb: MakeKB) -> None:
    root = make_kb()
    outcome(root)
    path = cache_path(root)
    assert path.is_file()
    assert root.resolve() not in path.resolve().parents
    assert path.parent.name.startswith("parse-")


def test_two_knowledge_bases_do_not_share_entries(make_kb: MakeKB) -> None:
    a = make_kb(name="a")
    b = make_kb({CLAIM: BROKEN_CLAIM}, name="b")
    assert cache_path(a) != cache_path(b)
    assert outcome(a)[0] == []
    assert outcome(b)[0] != []
    assert outcome(a)[0] == []


# --- shards and saving in the background ------------------------------------------------------

def shard_files(root: Path) -> dict[str, tuple[int, int]]:
    """Each shard file's name, with its inode and modification time (a rewrite changes both)."""
    wait_for_saves()
    folder = ParseCache(root).folder
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.pickle")}


def test_one_edit_rewrites_one_shard(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    clean = outcome(root)
    before = shard_files(root)
    assert len(before) == len({shard_of(path) for path in RECORDS})  # one per shard in use
    parses.clear()
    (root / CLAIM).write_text(BROKEN_CLAIM, encoding="utf-8")
    assert outcome(root) != clean
    assert parses == [CLAIM]
    after = shard_files(root)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {f"{shard_of(CLAIM):02x}.pickle"}
    parses.clear()
    assert outcome(root) == outcome(root, use_cache=False)
    assert sorted(parses) == RECORDS  # (by the run without the cache only)


def test_nothing_changed_writes_nothing(make_kb: MakeKB) -> None:
    root = make_kb()
    outcome(root)
    before = shard_files(root)
    outcome(root)
    assert shard_files(root) == before


def test_a_truncated_shard_costs_only_its_own_files(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb({CLAIM: BROKEN_CLAIM})
    expected = outcome(root, use_cache=False)
    outcome(root)
    path = cache_path(root)
    path.write_bytes(path.read_bytes()[:-20])
    parses.clear()
    assert outcome(root) == expected
    assert sorted(parses) == [p for p in RECORDS if shard_of(p) == shard_of(CLAIM)]
    assert CLAIM in parses


def test_a_cold_cache_is_saved_in_the_background(make_kb: MakeKB, parses: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.cache, "BACKGROUND_MIN", 1)
    root = make_kb()
    outcome(root)
    assert kb.cache._SAVERS, "the save should have been handed to a child process"
    child = kb.cache._SAVERS[-1]
    assert child != os.getpid()
    wait_for_saves()
    assert kb.cache._SAVERS == []
    parses.clear()
    outcome(root)
    assert parses == []


def test_a_save_at_the_end_of_a_process_lands_before_it_exits(make_kb: MakeKB) -> None:
    root = make_kb()
    code = ("import sys; from pathlib import Path; import kb.cache; "
            "kb.cache.BACKGROUND_MIN = 1; from kb.check import check; "
            "check(Path(sys.argv[1])); assert kb.cache._SAVERS")
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, timeout=60)
    # the process waited for its child at exit: every shard is there and whole, at once
    assert sorted(path for _, path in ParseCache(root).entries) == sorted(RECORDS)


def test_a_half_written_shard_is_never_in_place(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # a writer that dies half-way leaves the old shard as it was, and no stray file is read
    path = tmp_path / "00.pickle"
    write_pickle(path, "key", {"old": 1})

    class DiesHalfWay:
        def __init__(self, fh: BinaryIO, protocol: int | None = None) -> None:
            self.fh = fh

        def dump(self, obj: object) -> None:
            self.fh.write(pickle.dumps(obj)[:10])
            raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(pickle, "Pickler", DiesHalfWay)
        write_pickle(path, "key", {"new": 2})
    assert kb.cache.read_pickle(path, "key") == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00.pickle"]


def test_readers_during_a_background_save_see_whole_shards(make_kb: MakeKB) -> None:
    # many files, so that the child takes a while; meanwhile every shard in place must load
    files = {f"entities/e{i}.yaml": f"id: e{i}\nname: E {i}\nkind: other\n" for i in range(600)}
    root = make_kb(files)
    check(root, CheckOptions(jobs=1))
    assert kb.cache._SAVERS
    folder_path = kb.cache.cache_path(root, "parse").with_suffix("")  # without waiting
    seen = 0
    while kb.cache._SAVERS and os.waitpid(kb.cache._SAVERS[0], os.WNOHANG) == (0, 0):
        for shard in folder_path.glob("*.pickle"):
            try:
                data = shard.read_bytes()
            except FileNotFoundError:
                continue
            pickle.loads(data)  # never truncated: raises if a half-written file were in place
            seen += 1
    kb.cache._SAVERS.clear()
    assert len(list(folder_path.glob("*.pickle"))) == SHARDS
    assert not list(folder_path.glob(".tmp-*"))


def test_no_fork_beside_other_threads(make_kb: MakeKB, parses: list[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a child forked while another thread holds a lock could hang: save in this process then
    import threading

    monkeypatch.setattr(kb.cache, "BACKGROUND_MIN", 1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        root = make_kb()
        outcome(root)
        assert kb.cache._SAVERS == []
    finally:
        stop.set()
        other.join()
    parses.clear()
    outcome(root)
    assert parses == []


def _places(record: object) -> dict[str, object]:
    """Every field's place in a record and the records inside it, through at()."""
    from kb.model import Located

    out: dict[str, object] = {}

    def walk(prefix: str, obj: object) -> None:
        if isinstance(obj, Located):
            for name in ("id", "claim", "kind", "about", "about[0]", "source", "stance", "quote",
                         "quantity", "evidence", "evidence[0]", "reviews[0]", "nonexistent"):
                out[f"{prefix}{name}"] = (obj.at(name), obj.wrote(name))
            for name, value in vars(obj).items():
                for i, item in enumerate(value if isinstance(value, list) else [value]):
                    walk(f"{prefix}{name}[{i}].", item)

    walk("", record)
    return out


def test_places_come_back_from_the_cache_as_they_were_parsed(make_kb: MakeKB) -> None:
    """Records are pickled with their places packed (kb.model.Located.__reduce_ex__): every
    place, and whether a field was written at all, must read the same after the round trip."""
    root = make_kb()
    fresh = check(root, CheckOptions(use_cache=False, jobs=1)).kb.files
    check(root, CheckOptions(use_cache=True, jobs=1))
    cached = check(root, CheckOptions(use_cache=True, jobs=1)).kb.files
    assert [p for p, _ in cached] == [p for p, _ in fresh]
    for (_, a), (_, b) in zip(fresh, cached, strict=True):
        assert isinstance(b.locs, str)  # from the cache, still packed
        assert _places(b) == _places(a)
        assert b.locs == a.locs  # unpacked by the reads above into the same mapping


def test_places_that_cannot_be_packed_are_pickled_as_they_are() -> None:
    from kb.model import Claim
    from kb.problems import Loc

    odd = Claim(id="x", loc=Loc("claims/x.yaml", 1, 1),
                locs={"id": Loc("claims/x.yaml", 1, 5), "odd\x1ename": Loc("claims/x.yaml", 2, 1),
                      "elsewhere": Loc("claims/other.yaml", 3, 1)})
    back = pickle.loads(pickle.dumps(odd, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.locs == odd.locs and isinstance(back.locs, dict)
    plain = Claim(id="y", loc=Loc("claims/y.yaml", 1, 1), locs={"id": Loc("claims/y.yaml", 1, 5)})
    packed = pickle.loads(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL))
    assert isinstance(packed.locs, str)
    assert packed.at("id") == Loc("claims/y.yaml", 1, 5) and packed.wrote("id")
    assert packed.at("claim") == Loc("claims/y.yaml", 1, 1) and not packed.wrote("claim")


def test_a_problem_found_across_files_points_at_a_cached_record(make_kb: MakeKB) -> None:
    """A cross-file rule (an unknown claimant) reports the place from a record read from the
    cache, exactly where a fresh parse puts it."""
    root = make_kb({CLAIM: BROKEN_CLAIM})
    fresh, _ = outcome(root, use_cache=False)
    outcome(root)
    cached, _ = outcome(root)
    assert cached == fresh
    assert any(":" in line and "somone" in line for line in cached), cached


def test_locs_and_refs_unpickle_without_their_python_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parse cache holds ~240,000 of them at 10,000 claims: they are made by tuple.__new__
    itself, not by the named tuple's __new__, a Python function (kb.problems.unpickled_by_tuple)."""
    from kb.model import Ref
    from kb.problems import Loc

    value = [Ref("trade", Loc("claims/a.yaml", 3, 7)), Loc("b.yaml"), Ref("x")]
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    calls: list[type] = []
    for cls in (Loc, Ref):
        real = cls.__new__

        def counting(c: type, *args: object, real: Any = real) -> Any:
            calls.append(c)
            return real(c, *args)

        monkeypatch.setattr(cls, "__new__", counting)
    back = pickle.loads(data)
    assert back == value and calls == []
    assert [type(v) for v in back] == [Ref, Loc, Ref] and type(back[0].loc) is Loc
    assert back[0].loc.line == 3 and back[2].loc == Loc("", 0, 0)


class _SlowToPickle:
    """Pickling it takes 30 s: a cache save that is still writing when it is stopped."""

    def __reduce__(self) -> tuple[Any, ...]:
        import time

        time.sleep(30)
        return (_SlowToPickle, ())


def test_stopped_saves_end_at_once_and_leave_no_temporary_file(tmp_path: Path) -> None:
    import time

    from kb.cache import _SAVERS, fork_child, stop_saves

    target = tmp_path / "cache" / "slow.pickle"
    target.parent.mkdir()
    pid = fork_child(lambda: write_pickle(target, "key", _SlowToPickle()))
    assert pid is not None
    deadline = time.monotonic() + 10
    while not list(target.parent.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)  # its temporary file is open
    assert [p.name[:5] for p in target.parent.iterdir()] == [".tmp-"]
    start = time.monotonic()
    stop_saves()
    assert time.monotonic() - start < 5
    assert pid not in _SAVERS
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    assert list(target.parent.iterdir()) == []  # removed by the interrupted child


def test_a_stopped_build_does_not_wait_for_its_saves(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import kb.build
    from kb.cache import _SAVERS, fork_child

    forked: list[int | None] = []

    def stopped(*args: object) -> None:
        forked.append(fork_child(lambda: time.sleep(30)))
        raise KeyboardInterrupt

    monkeypatch.setattr(kb.build, "build_site", stopped)
    start = time.monotonic()
    outcome = kb.build.build_command(tmp_path, tmp_path / "site")
    assert outcome.code == 2 and outcome.lines == ["kb: the build was stopped before it ended"]
    assert forked[0] is not None and not _SAVERS
    wait_for_saves()
    assert time.monotonic() - start < 5


def test_temporary_files_of_killed_saves_are_removed_after_an_hour(make_kb: MakeKB) -> None:
    import time

    root = make_kb()
    ParseCache(root)  # its folder
    folder = kb.cache.cache_path(root, "parse").with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    old, new, kept = folder / ".tmp-old", folder.parent / ".tmp-new", folder / "keep.pickle"
    beside = folder.parent / ".tmp-old-memo"
    for path in (old, new, kept, beside):
        path.write_bytes(b"half a save")
    hours_ago = time.time() - 7200
    for path in (old, kept, beside):
        os.utime(path, (hours_ago, hours_ago))
    ParseCache(root)
    assert not old.exists() and not beside.exists()
    assert new.exists() and kept.exists()  # a save that may be under way; not a temporary
