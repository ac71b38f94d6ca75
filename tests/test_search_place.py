"""Pagefind's index after an edit: made on tmpfs, then placed in the site with the files that
did not change hard-linked from the last site (kb.write.place_folder; start_pagefind's `last`).

Writing a file costs ~0.4 ms on the build machine's disk, a link ~0.03 ms: a re-indexed shard
of 840 files took 0.3-0.5 s to write and takes 0.03 s to place. The index must be the one
pagefind makes afresh, byte for byte, and only a file with the same bytes is ever linked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from test_search_stubs import PAGEFIND, Rich, _script, needs_pagefind, rich  # noqa: F401

from kb import search, searchshards
from kb.write import Page, place_folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write(folder: Path, contents: dict[str, bytes]) -> None:
    for path, data in contents.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)


def test_equal_files_are_linked_and_the_others_copied(tmp_path: Path) -> None:
    made, last, dst = tmp_path / "made", tmp_path / "last", tmp_path / "site" / "pagefind"
    write(made, {"same.txt": b"same", "sub/changed.txt": b"new bytes", "sub/added.txt": b"new",
                 "linked-by-hand.txt": b"abc"})
    write(last, {"same.txt": b"same", "sub/changed.txt": b"old bytes", "gone.txt": b"gone",
                 "elsewhere.txt": b"abc"})
    (last / "linked-by-hand.txt").symlink_to(last / "elsewhere.txt")  # same bytes, not a file
    assert place_folder(made, dst, last) == (1, 3)
    assert files(dst) == files(made)  # what pagefind made, and nothing of the last site's
    assert (dst / "same.txt").stat().st_ino == (last / "same.txt").stat().st_ino
    assert (dst / "sub" / "changed.txt").stat().st_ino != (last / "sub/changed.txt").stat().st_ino
    assert not (dst / "linked-by-hand.txt").is_symlink()
    assert (last / "sub" / "changed.txt").read_bytes() == b"old bytes"  # the last site unchanged


def test_without_a_last_site_or_links_every_file_is_copied(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    made, last = tmp_path / "made", tmp_path / "last"
    write(made, {"a": b"1", "b/c": b"2"})
    write(last, {"a": b"1", "b/c": b"2"})
    assert place_folder(made, tmp_path / "one", None) == (0, 2)

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError("links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    assert place_folder(made, tmp_path / "two", last) == (0, 2)
    assert files(tmp_path / "one") == files(tmp_path / "two") == files(made)


def test_nothing_but_regular_files_of_the_last_site_is_taken(tmp_path: Path) -> None:
    """A pipe (opening it could wait for ever), a folder, or a folder that is a link out of the
    site: their places are filled with copies."""
    made, last, outside = tmp_path / "made", tmp_path / "last", tmp_path / "outside"
    write(made, {"pipe": b"x", "folder": b"y", "out/file": b"z", "in/file": b"w"})
    write(outside, {"file": b"z"})
    write(last, {"in/file": b"w"})
    last.joinpath("folder").mkdir()
    os.mkfifo(last / "pipe")
    (last / "out").symlink_to(outside)
    dst = tmp_path / "site"
    assert place_folder(made, dst, last) == (1, 3)
    assert files(dst) == files(made)
    assert (dst / "out" / "file").stat().st_ino != (outside / "file").stat().st_ino
    assert (dst / "in" / "file").stat().st_ino == (last / "in" / "file").stat().st_ino


def _out_folders() -> set[str]:
    parent = Path(search._scratch_parent() or tempfile.gettempdir())
    return {f.name for f in parent.glob("kb-pagefind-out-*")}


def _edited(stubs: list[Page]) -> list[Page]:
    """The stubs with the first claim's statement reworded (its fragment changes)."""
    first = next(i for i, p in enumerate(stubs) if p.path.startswith("claims/"))
    page = stubs[first]
    data = page.data.replace(b"<h1>", b"<h1>Reworded: ", 1)
    assert data != page.data
    return [*stubs[:first], Page(page.path, data), *stubs[first + 1:]]


@needs_pagefind
def test_an_index_beside_the_last_is_the_one_made_afresh(rich: Rich,  # noqa: F811
                                                         tmp_path: Path) -> None:
    assert PAGEFIND is not None
    if search._scratch_parent() is None:
        pytest.skip("no /dev/shm: the index is written in place, as without `last`")
    before = _out_folders()
    last = tmp_path / "last" / "pagefind"
    search.start_pagefind(PAGEFIND, rich.stubs, last).wait()
    stubs = _edited(rich.stubs)
    placed = tmp_path / "placed" / "pagefind"
    search.start_pagefind(PAGEFIND, stubs, placed, last=last).wait()
    fresh = tmp_path / "fresh" / "pagefind"
    search.start_pagefind(PAGEFIND, stubs, fresh).wait()
    assert files(placed) == files(fresh)
    assert files(placed) != files(last)  # the edit is in it
    shared = [p for p in files(placed)
              if (last / p).is_file() and (last / p).stat().st_ino == (placed / p).stat().st_ino]
    assert len(shared) > len(files(placed)) / 2  # most of it linked, not written
    assert "pagefind-entry.json" not in shared  # it names the new metadata: written
    assert _out_folders() <= before  # pagefind's own folder is gone


@needs_pagefind
def test_a_merged_shard_is_pruned_before_it_is_placed(rich: Rich,  # noqa: F811
                                                      tmp_path: Path) -> None:
    assert PAGEFIND is not None
    last = tmp_path / "last" / "pagefind"
    search.start_pagefind(PAGEFIND, rich.stubs, last).wait()
    seen: list[list[str]] = []

    def prune(folder: Path) -> None:
        seen.append(sorted(files(folder)))
        searchshards.prune_merged(folder)

    placed = tmp_path / "placed" / "pagefind"
    search.start_pagefind(PAGEFIND, _edited(rich.stubs), placed, last=last, on_made=prune).wait()
    assert seen and "pagefind-ui.js" in seen[0]  # called with pagefind's whole bundle
    assert not (placed / "pagefind-ui.js").exists() and (placed / "pagefind-entry.json").is_file()


@needs_pagefind
def test_without_room_on_tmpfs_the_index_is_written_in_place(rich: Rich,  # noqa: F811
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    assert PAGEFIND is not None
    last = tmp_path / "last" / "pagefind"
    search.start_pagefind(PAGEFIND, rich.stubs, last).wait()
    monkeypatch.setattr(search, "ROOM", 2**62)
    placed = tmp_path / "placed" / "pagefind"
    search.start_pagefind(PAGEFIND, _edited(rich.stubs), placed, last=last).wait()
    assert not [p for p in files(placed)  # written by pagefind, nothing linked
                if (last / p).is_file() and (last / p).stat().st_ino == (placed / p).stat().st_ino]


def test_an_error_before_placing_fails_the_run(rich: Rich, tmp_path: Path) -> None:  # noqa: F811
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')

    def broken(folder: Path) -> None:
        raise ValueError("not what was expected")

    job = search.start_pagefind(exe, rich.stubs, tmp_path / "pf", on_made=broken)
    with pytest.raises(search.SearchError, match=r"could not be written.*not what was expected"):
        job.wait()


def test_an_index_that_cannot_be_placed_fails_the_run(rich: Rich,  # noqa: F811
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if search._scratch_parent() is None:
        pytest.skip("no /dev/shm: the index is written in place, as without `last`")
    before = _out_folders()
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    last = tmp_path / "last"
    last.mkdir()

    def full_disk(made: Path, dst: Path, last: Path | None) -> tuple[int, int]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(search, "place_folder", full_disk)
    job = search.start_pagefind(exe, rich.stubs, tmp_path / "pf", last=last)
    with pytest.raises(search.SearchError, match=r"could not be written.*No space left"):
        job.wait()
    assert _out_folders() <= before
