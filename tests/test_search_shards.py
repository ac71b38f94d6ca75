"""The search index in shards (kb.search): separate pagefind bundles, pagefind/0, pagefind/1 …,
of which an edit re-indexes only the one its page is in, merged again in the browser."""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lhtml
from test_browser import one_page, serving
from test_incremental import _statement, assert_same_site, build
from test_search_stubs import PAGEFIND, _script, needs_browser, needs_pagefind

from kb import search, searchshards
from kb.manifest import manifest_path
from kb.stubs import StubCache
from kb.write import Page

GENERATED = (60, 11)  # claims, seed: the conftest's `generated` and `kb` (78 indexed pages)
SMALL = 20  # SHARD_PAGES for those 78 pages: 4 shards


# -- which shard -----------------------------------------------------------------------------------
def test_shard_count_as_specified(monkeypatch: pytest.MonkeyPatch) -> None:
    assert searchshards.SHARD_PAGES == 1000 and searchshards.MAX_SHARDS == 32
    cases = {0: 1, 1: 1, 78: 1, 1000: 1, 1001: 2, 2000: 2, 2001: 4, 4001: 8, 13_000: 16,
             16_000: 16, 16_001: 32, 130_000: 32, 10**9: 32}
    assert {n: searchshards.shard_count(n) for n in cases} == cases
    monkeypatch.setattr(searchshards, "SHARD_PAGES", SMALL)  # read at each call
    assert searchshards.shard_count(78) == 4 and searchshards.shard_count(20) == 1


def _paths(n: int) -> list[str]:
    kinds = ("claims", "sources", "entities")
    return [f"{kinds[i % 3]}/item-{i:05d}/index.html" for i in range(n)]


def test_shard_of_spreads_pages_evenly() -> None:
    paths = _paths(13_000)
    sizes = collections.Counter(searchshards.shard_of(p, 8) for p in paths)
    assert sorted(sizes) == list(range(8))
    assert all(abs(n - 1625) < 1625 * 0.1 for n in sizes.values()), sizes
    assert {searchshards.shard_of(p, 1) for p in paths} == {0}
    # a doubled count keeps a page in its shard or moves it to shard + count
    shard_of = searchshards.shard_of
    assert all(shard_of(p, 16) in (shard_of(p, 8), shard_of(p, 8) + 8) for p in paths[:2000])


def test_shard_of_is_stable_across_processes() -> None:
    """A hash of the path alone: not Python's hash(), which changes with each process."""
    paths = _paths(50)
    here = [searchshards.shard_of(p, 32) for p in paths]
    code = ("import json, sys; from kb.searchshards import shard_of; "
            "print(json.dumps([shard_of(p, 32) for p in json.loads(sys.argv[1])]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == here
    assert len(set(here)) > 10


def test_a_shards_key_changes_with_its_stubs_only(tmp_path: Path) -> None:
    exe = _script(tmp_path, "exit 0\n")
    digests = {p: f"d{i}" for i, p in enumerate(_paths(400))}

    def keys_of(digests: dict[str, str], count: int) -> list[str]:
        return searchshards.shard_keys(exe, searchshards.split(digests, count))

    keys = keys_of(digests, 4)
    assert len(set(keys)) == 4 and all(len(k) == 32 for k in keys)
    edited = _paths(400)[7]
    changed = keys_of({**digests, edited: "other"}, 4)
    shard = searchshards.shard_of(edited, 4)
    assert [i for i in range(4) if changed[i] != keys[i]] == [shard]
    # another count: every key changes (the shards hold other pages)
    assert not set(keys_of(digests, 8)) & set(keys)


# -- indexing shards -------------------------------------------------------------------------------
def _stubs(n: int) -> list[Page]:
    return [Page(p, b"<html><body><h1>x</h1></body></html>") for p in sorted(_paths(n))]


def test_at_most_two_pagefind_runs_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "log"
    exe = _script(tmp_path, f'echo "s $(date +%s%N)" >> {log}\nsleep 0.3\n'
                            f'mkdir -p "$4" && echo {{}} > "$4/pagefind-entry.json" && '
                            f'touch "$4/pagefind-ui.js"\necho "e $(date +%s%N)" >> {log}\n')
    job = searchshards.start_shards(exe, [0, 1, 2, 3, 5], 8, _stubs(200), tmp_path / "pagefind")
    job.wait()
    running, most = 0, 0
    events = [line.split()[::-1] for line in log.read_text().splitlines()]  # [time, s|e]
    assert len(events) == 10
    for _t, kind in sorted(events, key=lambda e: (int(e[0]), e[1] == "s")):
        running += 1 if kind == "s" else -1
        most = max(most, running)
    assert most == 2
    made = sorted(f.name for f in (tmp_path / "pagefind").iterdir())
    assert made == ["0", "1", "2", "3", "5"]
    # the primary bundle keeps its UI; a merged one only what the browser fetches of it
    assert (tmp_path / "pagefind" / "0" / "pagefind-ui.js").is_file()
    assert sorted(f.name for f in (tmp_path / "pagefind" / "5").iterdir()) == \
        ["pagefind-entry.json"]


def test_a_failing_shard_fails_the_whole(tmp_path: Path) -> None:
    exe = _script(tmp_path, 'case "$4" in *"/2") echo "shard two broke" >&2; exit 4;; esac\n'
                            'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    job = searchshards.start_shards(exe, [0, 1, 2, 3], 4, _stubs(100), tmp_path / "pagefind")
    with pytest.raises(search.SearchError, match="shard two broke"):
        job.wait()
    job.cancel()


def test_cancel_stops_every_shard(tmp_path: Path) -> None:
    exe = _script(tmp_path, "exec sleep 30\n")
    job = searchshards.start_shards(exe, [0, 1, 2, 3], 4, _stubs(100), tmp_path / "pagefind")
    deadline = time.monotonic() + 10
    while (len(job.jobs) < 2 or any(j._process is None for j in job.jobs)) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(job.jobs) == 2  # two at a time: the others wait
    t = time.monotonic()
    job.cancel()
    assert time.monotonic() - t < 5
    assert len(job.jobs) == 2  # none started after the cancel
    assert all(j._process is not None and j._process.poll() is not None for j in job.jobs)
    assert not any(j.folder.exists() for j in job.jobs)


def _settles(job: searchshards.ShardIndexing, seconds: float) -> bool:
    """Whether job.settle() returns within `seconds` (in a thread: a hang fails, not stalls)."""
    waiting = threading.Thread(target=job.settle, daemon=True)
    waiting.start()
    waiting.join(seconds)
    return not waiting.is_alive()


def test_settle_waits_for_the_stubs_not_for_pagefind(tmp_path: Path) -> None:
    """A build that renders in its own process waits for the first shards' stubs, then renders
    while pagefind runs."""
    done = tmp_path / "done"
    exe = _script(tmp_path, f'sleep 3\nmkdir -p "$4" && echo {{}} > "$4/pagefind-entry.json"\n'
                            f'touch {done}\n')
    job = searchshards.start_shards(exe, [0, 1, 2], 4, _stubs(100), tmp_path / "pagefind")
    try:
        assert _settles(job, 2.5)
        assert not done.exists()  # pagefind is still running
        assert len(job.jobs) == 2 and all(j.written.is_set() for j in job.jobs)
        assert all(any(j.folder.rglob("*.html")) for j in job.jobs)
    finally:
        job.cancel()


@pytest.mark.parametrize("failure", ["stubs", "start"])
def test_settle_returns_when_a_shard_cannot_start(tmp_path: Path, failure: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubs that cannot be written, or an unforeseen error starting a run: settle() returns
    (a build never hangs on it) and wait() raises SearchError."""
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left") if failure == "stubs" else RuntimeError("no thread")

    monkeypatch.setattr(search if failure == "stubs" else searchshards,
                        "_write_stubs" if failure == "stubs" else "start_pagefind", broken)
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    job = searchshards.start_shards(exe, [0, 1], 2, _stubs(50), tmp_path / "pagefind")
    assert _settles(job, 5)
    with pytest.raises(search.SearchError):
        job.wait()
    job.cancel()


def _held_removal(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """shutil.rmtree held until `release` is set (`removing`: it was called)."""
    removing, release = threading.Event(), threading.Event()
    real = shutil.rmtree

    def held(path: Any, *args: Any, **kwargs: Any) -> None:
        removing.set()
        release.wait(10)
        real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", held)
    return removing, release


def test_the_build_waits_for_the_index_not_for_the_tidying(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """wait(tidied=False) returns once the index is made, while the runs still remove their
    stub folders (the build commits meanwhile); close() waits for that."""
    root = tmp_path / "kb"
    kept = StubCache(root)
    stubs = _stubs(30)
    digests = search.stub_digests(stubs)
    removing, release = _held_removal(monkeypatch)
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    job = searchshards.start_shards(exe, [0], 1, stubs, tmp_path / "pagefind", kept, digests)
    try:
        waiting = threading.Thread(target=job.wait, kwargs={"tidied": False}, daemon=True)
        waiting.start()
        waiting.join(10)
        assert not waiting.is_alive()  # returned with the removal held
        assert removing.wait(10) and job.jobs[0].folder.is_dir()
        assert (tmp_path / "pagefind" / "0" / "pagefind-entry.json").is_file()
    finally:
        release.set()
    job.close()
    assert not job.jobs[0].folder.exists()
    assert StubCache(root).missing(digests) == set()  # the stubs were kept, by close()


def test_stubs_that_could_not_be_kept_are_told_at_close(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stubs are kept in a thread beside the commit: its error is not lost, but the
    stubs are a cache, so it is told, not raised."""
    def broken(self: StubCache, *args: Any) -> None:
        raise RuntimeError("the stubs' shard broke")

    monkeypatch.setattr(StubCache, "write", broken)
    stubs = _stubs(10)
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    job = searchshards.start_shards(exe, [0], 1, stubs, tmp_path / "pagefind",
                                    StubCache(tmp_path / "kb"), search.stub_digests(stubs))
    job.wait(tidied=False)
    job.close()
    assert isinstance(job.kept_failure, RuntimeError)
    assert (tmp_path / "pagefind" / "0" / "pagefind-entry.json").is_file()


def test_cancel_after_the_wait_waits_for_the_tidying(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails after its wait for the index (its commit) leaves no stub folder."""
    removing, release = _held_removal(monkeypatch)
    exe = _script(tmp_path, 'mkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    job = searchshards.start_shards(exe, [0], 1, _stubs(10), tmp_path / "pagefind")
    job.wait(tidied=False)
    assert removing.wait(10)
    threading.Timer(0.3, release.set).start()
    job.cancel()
    assert release.is_set() and not job.jobs[0].folder.exists()


# -- in a build ------------------------------------------------------------------------------------
def _bundles(site: Path) -> list[str]:
    return sorted((f.name for f in (site / "pagefind").iterdir()), key=int)


def _inodes(site: Path) -> dict[str, int]:
    return {f.relative_to(site / "pagefind").as_posix(): f.stat().st_ino
            for f in (site / "pagefind").rglob("*") if f.is_file()}


def _urls(bundle: Path) -> set[str]:
    found = set()
    for f in (bundle / "fragment").iterdir():
        data = json.loads(gzip.decompress(f.read_bytes()).removeprefix(b"pagefind_dcd"))
        found.add(data["url"])
    return found


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The shards each build gives pagefind, with SHARD_PAGES small (4 shards)."""
    monkeypatch.setattr(searchshards, "SHARD_PAGES", SMALL)
    calls: list[list[int]] = []
    real = searchshards.start_shards

    def recording(executable: str, shards: list[int], *args: Any,
                  **kwargs: Any) -> searchshards.ShardIndexing:
        calls.append(list(shards))
        return real(executable, shards, *args, **kwargs)

    monkeypatch.setattr(searchshards, "start_shards", recording)
    return calls


@needs_pagefind
def test_a_full_build_makes_every_shard(kb: Path, tmp_path: Path,
                                        recorded: list[list[int]]) -> None:
    site = tmp_path / "site"
    build(kb, site)
    assert recorded == [[0, 1, 2, 3]]
    assert _bundles(site) == ["0", "1", "2", "3"]
    every: set[str] = set()
    for name in _bundles(site):
        urls = _urls(site / "pagefind" / name)
        assert urls  # 78 pages over 4 shards: none is empty
        # each page in its shard
        assert {searchshards.shard_of(u[1:] + "index.html", 4) for u in urls} == {int(name)}
        every |= urls
    indexed = [p for p in (f.relative_to(site).as_posix() for f in site.rglob("index.html"))
               if search.indexed(p)]
    assert sorted(every) == sorted("/" + p.removesuffix("index.html") for p in indexed)
    assert (site / "pagefind" / "0" / "pagefind-ui.js").is_file()
    assert not (site / "pagefind" / "1" / "pagefind-ui.js").exists()
    doc = lhtml.fromstring((site / "search" / "index.html").read_bytes())
    box = doc.get_element_by_id("search")
    assert box.get("data-root") == "../"
    assert box.get("data-bundles") == "pagefind/1/ pagefind/2/ pagefind/3/"
    assert doc.cssselect("script[src='../pagefind/0/pagefind-ui.js']")
    assert doc.cssselect("link[href='../pagefind/0/pagefind-ui.css']")


def _edited_shard(site: Path) -> int:
    """The shard of the claim _statement reworded, from its page."""
    for page in (site / "claims").glob("*/index.html"):
        if b"Reportedly, " in page.read_bytes():
            return searchshards.shard_of(page.relative_to(site).as_posix(), 4)
    raise AssertionError("no reworded claim")


@needs_pagefind
@pytest.mark.parametrize("in_place", [True, False])
def test_a_statement_edit_reindexes_its_shard_only(kb: Path, tmp_path: Path, in_place: bool,
                                                   recorded: list[list[int]]) -> None:
    site = tmp_path / "site"
    build(kb, site)
    if not in_place:  # a file no build wrote: a new folder, the kept files hard-linked
        (site / "extra.txt").write_text("by hand", encoding="utf-8")
    before = _inodes(site)
    _statement(kb)
    result = build(kb, site)
    shard = _edited_shard(site)
    assert recorded[1:] == [[shard]]
    after = _inodes(site)
    others = {p: i for p, i in before.items() if not p.startswith(f"{shard}/")}
    assert {p: after.get(p) for p in others} == others  # the same files: kept, not made
    assert any(after.get(p) != i for p, i in before.items() if p.startswith(f"{shard}/"))
    assert result.written is not None and result.written.linked >= len(others)
    full = tmp_path / "full"
    build(kb, full, incremental=False)
    assert_same_site(site, full)


@needs_pagefind
def test_a_review_edit_reindexes_nothing(kb: Path, tmp_path: Path,
                                         recorded: list[list[int]]) -> None:
    site = tmp_path / "site"
    build(kb, site)
    before = _inodes(site)
    claim = sorted((kb / "claims").rglob("*.yaml"))[0]
    text = claim.read_text(encoding="utf-8")
    assert "\nreviews:\n" in text
    claim.write_text(text.replace("\nreviews:\n", "\nreviews:\n  - {by: someone, date: "
                                  "2026-11-27}\n", 1), encoding="utf-8")
    build(kb, site)
    assert recorded[1:] == [] and _inodes(site) == before


@needs_pagefind
def test_another_count_or_a_lost_manifest_reindexes_all(kb: Path, tmp_path: Path,
                                                        recorded: list[list[int]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    build(kb, site)
    manifest_path(kb).write_bytes(b"\x80\x05garbage, not a manifest")
    _statement(kb)
    build(kb, site)
    assert recorded[1:] == [[0, 1, 2, 3]]
    monkeypatch.setattr(searchshards, "SHARD_PAGES", 40)  # 2 shards: 2 and 3 must go
    build(kb, site)
    assert recorded[2:] == [[0, 1]] and _bundles(site) == ["0", "1"]
    full = tmp_path / "full"
    build(kb, full, incremental=False)
    assert_same_site(site, full)


# -- in the browser --------------------------------------------------------------------------------
@pytest.fixture
def sharded(kb: Path, tmp_path: Path, recorded: list[list[int]]) -> Iterator[tuple[str, Path]]:
    """The site, with 4 shards, served under a base path (/sub/site/)."""
    if PAGEFIND is None:
        pytest.fail("pagefind is not installed")
    www = tmp_path / "www"
    site = www / "sub" / "site"
    build(kb, site)
    with serving(www) as url:
        yield url + "sub/site/", site


def _results(page: Any, term: str) -> list[tuple[str, str]]:
    """Every result's (link, title), after loading them all."""
    page.locator("#search input").first.fill(term)
    links = page.locator("#search .pagefind-ui__result-link")
    links.first.wait_for(timeout=10_000)
    more = page.locator("#search .pagefind-ui__button")
    while more.count():
        more.first.click()
        page.wait_for_timeout(300)
    page.wait_for_timeout(300)
    return [(a.get_attribute("href") or "", a.inner_text().strip()) for a in links.all()]


@needs_pagefind
@needs_browser
def test_search_merges_the_shards_and_opens_the_right_page(sharded: tuple[str, Path]) -> None:
    url, site = sharded
    wanted = set()  # the pages whose indexed text has the word, from every shard's fragments
    for bundle in (site / "pagefind").iterdir():
        for f in (bundle / "fragment").iterdir():
            data = json.loads(gzip.decompress(f.read_bytes()).removeprefix(b"pagefind_dcd"))
            if "aluminium" in data["content"].lower():
                wanted.add(data["url"])
    assert len({searchshards.shard_of(u[1:] + "index.html", 4) for u in wanted}) >= 2
    with one_page() as page:
        page.goto(url + "search/")
        found = _results(page, "aluminium")
        hrefs = [href for href, _title in found]
        # every page with the word, whatever its shard; each link under the base path
        assert all(h.startswith("/sub/site/") for h in hrefs), hrefs
        got = {h.removeprefix("/sub/site") for h in hrefs}
        assert wanted <= got and len(got) == len(hrefs)  # (and pages the word's stem is in)
        assert all((site / h.removeprefix("/sub/site/") / "index.html").is_file()
                   for h in hrefs)
        shards = {searchshards.shard_of(h.removeprefix("/sub/site/") + "index.html", 4)
                  for h in hrefs}
        assert len(shards) >= 2
        # a result from a merged shard (not 0) opens its page
        href, title = next((h, t) for h, t in found if searchshards.shard_of(
            h.removeprefix("/sub/site/") + "index.html", 4) != 0)
        page.locator(f"#search a[href='{href}']").first.click()
        page.wait_for_url("**" + href)
        assert page.locator("h1").first.inner_text().strip() == title
        assert page.errors == []


@needs_pagefind
def test_stubs_that_could_not_be_kept_are_a_warning_of_a_good_build(
        kb: Path, tmp_path: Path, recorded: list[list[int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept after the commit now: a failure there no longer fails the build, whose site is
    whole; `kb build` says it, and the next build makes those stubs again."""
    site = tmp_path / "site"
    build(kb, site)

    def broken(self: StubCache, *args: Any) -> None:
        raise RuntimeError("the stubs' shard broke")

    _statement(kb)
    with monkeypatch.context() as patched:  # (undo() would undo `recorded`'s shard count too)
        patched.setattr(StubCache, "write", broken)
        result = build(kb, site)
    assert [w for w in result.warnings if "stubs were not kept" in w and "shard broke" in w]
    full = tmp_path / "full"
    build(kb, full, incremental=False)
    assert_same_site(site, full)
