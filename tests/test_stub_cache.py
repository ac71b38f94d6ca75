"""The search stubs kept between builds (kb.stubs): rendered again only where they changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_search_stubs import PAGEFIND, Rich, _fragments, needs_pagefind, rich  # noqa: F401

from kb import search
from kb.stubs import KIND, StubCache
from kb.write import Page


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def pages(texts: dict[str, str]) -> tuple[list[Page], dict[str, str]]:
    stubs = [Page(f"claims/{name}/index.html", text.encode()) for name, text in texts.items()]
    return stubs, search.stub_digests(stubs)


def test_kept_stubs_come_back_with_their_digest_and_only_with_it(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>", "c": "<p>c</p>"})
    cache = StubCache(root)
    assert cache.missing(digests) == set(digests)  # nothing kept yet
    cache.write(stubs, digests)
    again = StubCache(root)  # the next build
    assert again.missing(digests) == set()
    assert [p.data for p in again.pages(digests)] == [b"<p>a</p>", b"<p>b</p>", b"<p>c</p>"]
    # the build expects another stub for one page: only that one is to be rendered again
    changed = {**digests, "claims/b/index.html": "another digest"}
    assert again.missing(changed) == {"claims/b/index.html"}


def test_a_kept_stub_whose_bytes_do_not_match_its_digest_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>"})
    cache = StubCache(root)
    cache.write(stubs, digests)
    path = "claims/a/index.html"
    cache.put(KIND, path, digests[path], b"<p>A, not what the digest says</p>")
    cache.save(background=False)
    assert StubCache(root).missing(digests) == {path}
    with pytest.raises(OSError, match="not in the cache"):
        list(StubCache(root).pages(digests))


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>"})
    cache = StubCache(root)
    cache.write(stubs, digests)
    for shard in cache.folder.iterdir():
        shard.write_bytes(b"not a pickle")
    assert StubCache(root).missing(digests) == set(digests)


def test_stubs_of_gone_pages_are_forgotten(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    stubs, digests = pages({"a": "<p>a</p>", "b": "<p>b</p>"})
    StubCache(root).write(stubs, digests)
    del digests["claims/b/index.html"]
    StubCache(root).write([], digests)
    kept = StubCache(root).entries
    assert sorted(path for _kind, path in kept) == ["claims/a/index.html"]


@needs_pagefind
def test_pagefind_over_kept_stubs_indexes_as_over_all_stubs(rich: Rich,  # noqa: F811
                                                            tmp_path: Path) -> None:
    """A build that renders one changed stub and takes the others from the cache gets, byte for
    byte, the index a build that renders every stub gets."""
    assert PAGEFIND is not None
    root = tmp_path / "kb"
    digests = search.stub_digests(rich.stubs)
    search.start_pagefind(PAGEFIND, rich.stubs, tmp_path / "one" / "pagefind", StubCache(root),
                          digests).wait()
    first = rich.stubs[0]
    edited = Page(first.path, first.data.replace(b"</h1>", b" (edited)</h1>", 1))
    assert edited.data != first.data
    now = [edited, *rich.stubs[1:]]
    new_digests = search.stub_digests(now)
    cache = StubCache(root)
    assert cache.missing(new_digests) == {first.path}
    search.start_pagefind(PAGEFIND, [edited], tmp_path / "two" / "pagefind", cache,
                          new_digests).wait()
    search.start_pagefind(PAGEFIND, now, tmp_path / "all" / "pagefind").wait()
    kept = _fragments(tmp_path / "two" / "pagefind")
    assert kept == _fragments(tmp_path / "all" / "pagefind")
    assert any("(edited)" in f["meta"]["title"] for f in kept.values())
    # and the whole index, byte for byte: pagefind's files depend on the order it reads stubs in
    assert _tree(tmp_path / "two" / "pagefind") == _tree(tmp_path / "all" / "pagefind")


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
def test_a_damaged_kept_stub_is_rendered_again_and_indexes_the_same(
        kb: Path, tmp_path: Path) -> None:
    from kb.build import BuildOptions, build_site

    options = BuildOptions(search="pagefind", history=False)
    assert build_site(kb, tmp_path / "site", options).ok
    cache = StubCache(kb)
    (kind, path), (digest, data) = next(iter(cache.entries.items()))
    cache.put(kind, path, digest, data.replace(b"<h1>", b"<h1>Tampered ", 1))
    cache.save(background=False)
    _reword_first_claim(kb)
    assert build_site(kb, tmp_path / "site", options).ok
    full = BuildOptions(search="pagefind", history=False, incremental=False)
    assert build_site(kb, tmp_path / "full", full).ok
    made = _fragments(tmp_path / "site" / "pagefind")
    assert made == _fragments(tmp_path / "full" / "pagefind")
    assert not any("Tampered" in f["content"] for f in made.values())
