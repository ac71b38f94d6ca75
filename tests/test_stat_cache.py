"""Files whose status is unchanged are not read again (kb.statcache), and never wrongly so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kb.load
import kb.statcache
from kb.cache import digest
from kb.check import CheckOptions, check
from kb.load import read_inputs
from kb.output import text_line
from kb.problems import Problem

from conftest import MakeKB

CLAIM = "claims/trade-record-2024.yaml"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files read, by their shown path."""
    seen: list[str] = []
    real = kb.load._read

    def counting(path: str, shown: str) -> tuple[bytes | None, list[Problem]]:
        seen.append(shown)
        return real(path, shown)

    monkeypatch.setattr(kb.load, "_read", counting)
    return seen


def digests(root: Path) -> dict[str, str]:
    return {f.path: f.digest for f in read_inputs(root).records}


def truth(root: Path) -> dict[str, str]:
    return {f.path: digest(f.data) for f in read_inputs(root, use_cache=False).records}


def test_unchanged_files_are_not_read_and_their_bytes_come_when_asked(
        make_kb: MakeKB, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    first = read_inputs(root)
    records = {f.path for f in first.records}
    assert set(reads) >= records
    reads.clear()
    again = read_inputs(root)
    assert not set(reads) & records  # only the text snapshots were read
    assert {f.path: f.digest for f in again.records} == truth(root)
    f = next(f for f in again.records if f.path == CLAIM)
    assert f.data == (root / CLAIM).read_bytes() and f.digest == digest(f.data)


def test_a_file_written_just_now_is_read_again(make_kb: MakeKB, reads: list[str]) -> None:
    root = make_kb()  # its files are younger than RACY_NS: their status proves nothing yet
    read_inputs(root)
    reads.clear()
    read_inputs(root)
    assert CLAIM in reads


def test_same_size_and_modification_time_but_new_bytes_is_seen(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    path = root / CLAIM
    before = digests(root)
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(data.replace(b"record", b"RECORD"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    after = digests(root)
    assert after[CLAIM] != before[CLAIM] and after == truth(root)


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", None])
def test_a_bad_stat_cache_is_ignored(make_kb: MakeKB, reads: list[str],
                                     monkeypatch: pytest.MonkeyPatch,
                                     damage: bytes | None) -> None:
    import marshal

    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    read_inputs(root)
    spath = kb.statcache.stat_path(root.resolve())
    if damage is None:  # the right key, entries of another shape
        key, entries = marshal.loads(spath.read_bytes())
        spath.write_bytes(marshal.dumps((key, {p: ("x", 1) for p in entries})))
    else:
        spath.write_bytes(damage)
    reads.clear()
    assert digests(root) == truth(root)
    assert CLAIM in reads


def test_a_stat_cache_of_another_version_is_ignored(make_kb: MakeKB, reads: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    read_inputs(root)
    monkeypatch.setattr(kb.statcache, "_FORMAT", kb.statcache._FORMAT + 1)
    reads.clear()
    read_inputs(root)
    assert CLAIM in reads


def test_bytes_read_late_win_over_the_digest_their_status_promised(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    read_inputs(root)
    inputs = read_inputs(root)
    f = next(f for f in inputs.records if f.path == CLAIM)
    promised = f.digest
    (root / CLAIM).write_text("id: changed\n")  # after its status was taken
    assert f.data == b"id: changed\n"
    assert f.digest == digest(b"id: changed\n") != promised


def test_no_cache_reads_every_file(make_kb: MakeKB, reads: list[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb({"claims/x.yaml": "id: x\nclaim: x\nkind: nonsense\n"})
    read_inputs(root)
    inputs = read_inputs(root)
    reads.clear()
    checked = check(root, CheckOptions(use_cache=False), inputs)
    assert CLAIM in reads and "claims/x.yaml" in reads
    plain = check(root, CheckOptions(use_cache=False))
    assert [text_line(p) for p in checked.report] == [text_line(p) for p in plain.report]
    assert any("S104" in text_line(p) for p in plain.report)


def test_unreadable_and_broken_files_still_say_why(make_kb: MakeKB,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.statcache, "RACY_NS", 0)
    root = make_kb()
    (root / "claims/gone.yaml").symlink_to(root / "claims/nowhere.yaml")
    for _ in range(2):  # cold, then with the statuses recorded
        inputs = read_inputs(root)
        assert [p.code for p in inputs.problems] == ["Y008"]
        assert "claims/gone.yaml" not in {f.path for f in inputs.records}
