"""The knowledge base's files, looked at in a child while the build loads its caches
(kb.prefetch), are the files read_inputs reads here: the same records, digests, bytes,
snapshots and problems, whether the child could do it or not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import kb.prefetch as prefetch
from kb.load import Inputs, NotAKnowledgeBase, read_inputs
from kb.prefetch import InputsReader

GENERATED = (20, 3)  # claims, seed: the conftest's `generated` and `kb`


def _seen(inputs: Inputs) -> tuple[object, ...]:
    return (inputs.root,
            [(f.kind, f.path, f.digest, f.data) for f in inputs.records],
            inputs.snapshots, [(p.code, str(p.loc)) for p in inputs.problems])


def _edit(kb: Path) -> None:
    claim = sorted((kb / "claims").rglob("*.yaml"))[0]
    claim.write_text(claim.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")


def test_the_child_reads_what_read_inputs_reads(kb: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kb.statcache.RACY_NS", 0)  # files just copied: trusted at once
    read_inputs(kb)  # statuses recorded: unchanged files are then known by their digest
    time.sleep(0.01)
    _edit(kb)  # and one is read again
    reader = InputsReader(kb)
    assert reader._child.started
    with monkeypatch.context() as patched:
        def not_here(root: Path) -> Inputs:
            raise AssertionError("read here, not in the child")

        patched.setattr(prefetch, "read_inputs", not_here)
        got = reader.inputs()
        assert reader.inputs() is got  # read once
    read = [f._data is not None for f in got.records]
    assert sum(read) == 1  # the edited file; the others are known by their digest
    assert got.snapshots  # the generated knowledge base has text snapshots
    assert _seen(got) == _seen(read_inputs(kb))


def test_a_file_the_child_cannot_read_comes_back_with_its_problem(
        kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not read a second time here: at 100,000 claims that was 1.4 s more, every check and
    build, for as long as the file stayed unreadable."""
    (kb / "claims" / "broken.yaml").symlink_to(kb / "nowhere.yaml")
    reader = InputsReader(kb)
    with monkeypatch.context() as patched:
        def not_here(root: Path) -> Inputs:
            raise AssertionError("read here, not in the child")

        patched.setattr(prefetch, "read_inputs", not_here)
        got = reader.inputs()
    assert [p.code for p in got.problems] == ["Y008"]
    assert _seen(got) == _seen(read_inputs(kb))


def test_not_a_knowledge_base_is_said_as_before(tmp_path: Path) -> None:
    reader = InputsReader(tmp_path / "missing")
    with pytest.raises(NotAKnowledgeBase):
        reader.inputs()
    reader.close()


def test_without_a_fork_the_files_are_read_here(kb: Path) -> None:
    """In another thread (`kb serve`'s rebuilds) no child is forked."""
    found: list[InputsReader] = []
    worker = threading.Thread(target=lambda: found.append(InputsReader(kb)))
    worker.start()
    worker.join()
    assert not found[0]._child.started
    assert _seen(found[0].inputs()) == _seen(read_inputs(kb))


def test_a_reader_closed_unread_leaves_no_child(kb: Path) -> None:
    reader = InputsReader(kb)
    pid = reader._child.pid
    reader.close()
    assert pid is not None and reader._child.pid is None
    with pytest.raises(ChildProcessError):
        import os

        os.waitpid(pid, 0)  # reaped already
