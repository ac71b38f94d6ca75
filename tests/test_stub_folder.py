"""The stubs kept between builds (kb.stubs): written where they changed, trusted as recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_search_stubs import PAGEFIND, Rich, _fragments, needs_pagefind, rich  # noqa: F401

from kb import search
from kb.stubs import RECORD, StubFolder
from kb.write import Page


def pages(texts: dict[str, str]) -> tuple[list[Page], dict[str, str]]:
    stubs = [Page(f"claims/{name}/index.html", text.encode()) for name, text in texts.items()]
    return stubs, search.stub_digests(stubs)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def opened(path: Path) -> StubFolder:
    folder = StubFolder.open(path)
    assert folder is not None
    return folder


def test_a_written_folder_holds_its_stubs_and_the_next_build_trusts_them(tmp_path: Path) -> None:
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>", "c": "<p>c</p>"})
    folder = opened(tmp_path / "stubs")
    assert folder.missing(digests) == set(digests)  # nothing known yet
    folder.write(stubs, digests)
    folder.close()
    again = opened(tmp_path / "stubs")
    assert again.missing(digests) == set()
    assert (tmp_path / "stubs" / "claims/b/index.html").read_bytes() == b"<p>b</p>"
    # what the build expects differs for one page: only that one is to be written again
    changed = {**digests, "claims/b/index.html": "another digest"}
    assert again.missing(changed) == {"claims/b/index.html"}


def test_a_changed_or_missing_file_is_not_trusted(tmp_path: Path) -> None:
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>", "c": "<p>c</p>"})
    folder = opened(tmp_path / "stubs")
    folder.write(stubs, digests)
    folder.close()
    (tmp_path / "stubs" / "claims/a/index.html").write_bytes(b"<p>A, by hand</p>")
    (tmp_path / "stubs" / "claims/c/index.html").unlink()
    assert opened(tmp_path / "stubs").missing(digests) == {"claims/a/index.html",
                                                           "claims/c/index.html"}


def test_without_its_record_nothing_is_trusted_and_the_folder_is_made_afresh(
        tmp_path: Path) -> None:
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>"})
    folder = opened(tmp_path / "stubs")
    folder.write(stubs, digests)
    folder.close()
    (tmp_path / "stubs" / RECORD).write_bytes(b"not marshal data")  # a damaged record
    (tmp_path / "stubs" / "claims/stray").mkdir()
    (tmp_path / "stubs" / "claims/stray/index.html").write_bytes(b"<p>stray</p>")
    folder = opened(tmp_path / "stubs")
    assert folder.missing(digests) == set(digests)
    folder.write(stubs, digests)
    folder.close()
    assert not (tmp_path / "stubs" / "claims/stray").exists()  # nothing left it did not write
    assert opened(tmp_path / "stubs").missing(digests) == set()


def test_stubs_of_gone_pages_are_removed(tmp_path: Path) -> None:
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>"})
    folder = opened(tmp_path / "stubs")
    folder.write(stubs, digests)
    del digests["claims/b/index.html"]
    folder.write([], digests)
    folder.close()
    assert not (tmp_path / "stubs" / "claims/b").exists()
    assert (tmp_path / "stubs" / "claims/a/index.html").is_file()
    assert opened(tmp_path / "stubs").missing(digests) == set()


def test_a_second_build_cannot_take_a_folder_in_use(tmp_path: Path) -> None:
    first = opened(tmp_path / "stubs")
    assert StubFolder.open(tmp_path / "stubs") is None
    first.close()
    opened(tmp_path / "stubs").close()


def test_an_unmakeable_folder_is_none(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert StubFolder.open(tmp_path / "file" / "stubs") is None


@needs_pagefind
def test_pagefind_over_a_kept_folder_indexes_as_over_all_stubs(rich: Rich,  # noqa: F811
                                                                tmp_path: Path) -> None:
    """A build that writes one changed stub into the kept folder gets the index a build that
    writes every stub afresh gets."""
    assert PAGEFIND is not None
    digests = search.stub_digests(rich.stubs)
    folder = opened(tmp_path / "kept")
    search.start_pagefind(PAGEFIND, rich.stubs, tmp_path / "one" / "pagefind", folder,
                          digests).wait()
    opened(tmp_path / "kept").close()  # released when pagefind was done
    first = rich.stubs[0]
    edited = Page(first.path, first.data.replace(b"</h1>", b" (edited)</h1>", 1))
    assert edited.data != first.data
    now = [edited, *rich.stubs[1:]]
    new_digests = search.stub_digests(now)
    folder = opened(tmp_path / "kept")
    assert folder.missing(new_digests) == {first.path}
    search.start_pagefind(PAGEFIND, [edited], tmp_path / "two" / "pagefind", folder,
                          new_digests).wait()
    search.start_pagefind(PAGEFIND, now, tmp_path / "all" / "pagefind").wait()
    kept = _fragments(tmp_path / "two" / "pagefind")
    fresh = _fragments(tmp_path / "all" / "pagefind")
    assert kept == fresh
    # and the whole index, byte for byte: pagefind's files depend on the order it reads stubs in
    assert _tree(tmp_path / "two" / "pagefind") == _tree(tmp_path / "all" / "pagefind")
    assert any("(edited)" in f["meta"]["title"] for f in kept.values())
    assert os.listdir(tmp_path / "kept" / "claims")  # the folder is kept for the next build


# -- in a build ------------------------------------------------------------------------------------
GENERATED = (60, 11)  # claims, seed: the conftest's `generated` and `kb`


def _reword_first_claim(root: Path) -> str:
    claim = sorted((root / "claims").rglob("*.yaml"))[0]
    text = claim.read_text(encoding="utf-8")
    assert 'claim: "' in text
    claim.write_text(text.replace('claim: "', 'claim: "Reportedly, ', 1), encoding="utf-8")
    return claim.stem


@needs_pagefind
def test_a_reworded_claim_renders_its_stub_only_and_indexes_as_a_full_build(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.build import BuildOptions, build_site

    options = BuildOptions(search="pagefind", history=False)
    assert build_site(kb, tmp_path / "site", options).ok
    _reword_first_claim(kb)
    rendered: list[int | None] = []
    real = search.stub_pages

    def counting(model: object, env: object, only: object = None) -> list[Page]:
        made = real(model, env, only)  # type: ignore[arg-type]
        rendered.append(len(made))
        return made

    monkeypatch.setattr(search, "stub_pages", counting)
    result = build_site(kb, tmp_path / "site", options)
    assert result.ok
    monkeypatch.setattr(search, "stub_pages", real)
    full = BuildOptions(search="pagefind", history=False, incremental=False)
    assert build_site(kb, tmp_path / "full", full).ok
    made, whole = (_fragments(tmp_path / name / "pagefind") for name in ("site", "full"))
    assert made == whole
    # the stubs of the pages rendered again (the claim's, its sources' and entities'), not all
    stubs = sum(n or 0 for n in rendered)
    assert 1 <= stubs <= result.rendered and stubs < len(made) // 4, rendered
    assert any(f["meta"]["title"].startswith("Reportedly, ") for f in made.values())


@needs_pagefind
def test_a_damaged_stub_folder_is_written_afresh_and_indexes_the_same(
        kb: Path, tmp_path: Path) -> None:
    from kb.build import BuildOptions, build_site
    from kb.cache import cache_path

    options = BuildOptions(search="pagefind", history=False)
    assert build_site(kb, tmp_path / "site", options).ok
    folder = cache_path(kb, "stubs").with_suffix("")
    stub = next(folder.rglob("index.html"))
    stub.write_bytes(stub.read_bytes().replace(b"<h1>", b"<h1>Tampered ", 1))
    _reword_first_claim(kb)
    assert build_site(kb, tmp_path / "site", options).ok
    full = BuildOptions(search="pagefind", history=False, incremental=False)
    assert build_site(kb, tmp_path / "full", full).ok
    made = _fragments(tmp_path / "site" / "pagefind")
    assert made == _fragments(tmp_path / "full" / "pagefind")
    assert not any("Tampered" in f["content"] for f in made.values())
