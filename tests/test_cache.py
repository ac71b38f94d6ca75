"""The parse cache: it saves work, and no stale, foreign or corrupt cache ever changes a result."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

import kb.load
from kb.cache import ParseCache, digest
from kb.check import CheckOptions, check
from kb.output import text_line

from conftest import MINIMAL, MakeKB

CLAIM = "claims/trade-record-2024.yaml"
BROKEN_CLAIM = MINIMAL[CLAIM].replace("claimant: someone", "claimant: somone")


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
    return ParseCache(root).path


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
        (ParseCache(root).key, {("claim", CLAIM): 5, ("source", "sources/report.yaml"): (1,),
                                "odd key": ("a", "b", "c")})),
    "right key and digest, value of the wrong shape": lambda root, good: pickle.dumps(
        (ParseCache(root).key,
         {("claim", CLAIM): (digest((root / CLAIM).read_bytes()), "not a parse result")})),
    "a class that does not exist": lambda root, good: good.replace(b"Claim", b"Clxim"),
}


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
    path = cache_path(root)
    key, entries = pickle.loads(path.read_bytes())
    # entries that match every file's digest but say something else: only the key tells
    poisoned: dict[object, object] = {k: (d, (None, [])) for k, (d, _) in entries.items()}
    for other in [(key[0] + 1, *key[1:]), (key[0], "0.0.0", *key[2:]), (*key[:2], "2.7", key[3]),
                  (*key[:3], "another-code-fingerprint")]:
        path.write_bytes(pickle.dumps((other, poisoned)))
        parses.clear()
        assert outcome(root) == expected
        assert len(parses) == 5


def test_the_poisoned_cache_would_be_used_with_the_right_key(make_kb: MakeKB) -> None:
    # the control for the test above: it is the key, not chance, that keeps poison out
    root = make_kb({CLAIM: BROKEN_CLAIM})
    outcome(root)
    path = cache_path(root)
    key, entries = pickle.loads(path.read_bytes())
    path.write_bytes(pickle.dumps((key, {k: (d, (None, [])) for k, (d, _) in entries.items()})))
    _, files = outcome(root)
    assert files == []


def test_a_stale_entry_is_never_used(make_kb: MakeKB, parses: list[str]) -> None:
    root = make_kb()
    outcome(root)
    path = cache_path(root)
    key, entries = pickle.loads(path.read_bytes())
    assert ("claim", CLAIM) in entries
    # an entry for the old content of a file whose content then changed
    (root / CLAIM).write_text(BROKEN_CLAIM, encoding="utf-8")
    path.write_bytes(pickle.dumps((key, entries)))
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


def test_two_knowledge_bases_do_not_share_entries(make_kb: MakeKB) -> None:
    a = make_kb(name="a")
    b = make_kb({CLAIM: BROKEN_CLAIM}, name="b")
    assert cache_path(a) != cache_path(b)
    assert outcome(a)[0] == []
    assert outcome(b)[0] != []
    assert outcome(a)[0] == []
