"""The search index made from stubs (kb.search): what pagefind reads of each indexed page.

The stubs must index exactly as the whole pages did: the same data-pagefind-body block (from the
include both templates use), so the same fragments (pagefind names each by its content's hash),
and a reader's search in the browser finds and opens the page.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lhtml
from test_browser import _available, one_page, serving
from test_site_build import HOSTILE_SCRIPT, RICH, write_kb

from kb import search
from kb.check import CheckOptions, check
from kb.load import read_inputs
from kb.network import independent_sources, source_groups
from kb.pages import SiteModel, build_model
from kb.render import Extras, make_env, render_pages
from kb.write import Page

from conftest import TODAY

PAGEFIND = search.pagefind_executable()
# Skip only where pagefind is missing and this is not CI; under CI=true it must run.
needs_pagefind = pytest.mark.skipif(PAGEFIND is None and not os.environ.get("CI"),
                                    reason="pagefind is not installed")
needs_browser = pytest.mark.skipif(not _available() and not os.environ.get("CI"),
                                   reason="chromium or playwright is not installed")
BODY_START, BODY_END = b"<div data-pagefind-body>", b"<!--/pagefind-body-->"


@dataclass
class Rich:
    root: Path
    model: SiteModel
    stubs: list[Page]
    pages: dict[str, bytes]  # the real site, rendered as for a pagefind build


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Rich:
    import datetime as dt

    root = write_kb(tmp_path_factory.mktemp("stubs") / "kb", RICH)
    checked = check(root, CheckOptions(today=dt.date.fromisoformat(TODAY), use_cache=False),
                    read_inputs(root))
    assert not checked.report.errors, list(checked.report)
    kb = checked.kb
    model = build_model(kb, checked.config, checked.context.today, {},
                        independent_sources(kb, source_groups(kb)))
    stubs = search.stub_pages(model, make_env(root))
    pages = render_pages(model, Extras(search="pagefind"), root, jobs=1)
    return Rich(root, model, stubs, {p.path: p.data for p in pages})


def _body(data: bytes) -> bytes:
    start = data.index(BODY_START)
    return data[start:data.index(BODY_END, start) + len(BODY_END)]


def _script(folder: Path, text: str) -> str:
    exe = folder / "fake-pagefind"
    exe.write_text("#!/bin/sh\n" + text, encoding="utf-8")
    exe.chmod(0o755)
    return str(exe)


def _fragments(index: Path) -> dict[str, dict[str, Any]]:
    """Pagefind's record of each page (URL → content, title, word count), and its file name:
    of one bundle, or of every shard's (a site's pagefind/0, pagefind/1 …)."""
    found = {}
    folders = [index / "fragment"] if (index / "fragment").is_dir() else sorted(
        index.glob("*/fragment"))
    for f in sorted(f for folder in folders for f in folder.iterdir()):
        data = json.loads(gzip.decompress(f.read_bytes()).removeprefix(b"pagefind_dcd"))
        found[data["url"]] = {**data, "file": f.name}
    return found


# -- the stubs ---------------------------------------------------------------------------------
def test_one_stub_per_indexed_page_sorted(rich: Rich) -> None:
    paths = [p.path for p in rich.stubs]
    assert paths == sorted(paths)
    assert paths == sorted(p for p in rich.pages if search.indexed(p))
    kb = rich.model.kb
    assert len(paths) == len(kb.claims) + len(kb.sources) + len(kb.entities)


def test_stub_holds_the_pages_language_title_and_search_block(rich: Rich) -> None:
    for stub in rich.stubs:
        page = rich.pages[stub.path]
        # Byte for byte the block of the page: the same include made both.
        assert _body(stub.data) == _body(page), stub.path
        doc, real = lhtml.fromstring(stub.data), lhtml.fromstring(page)
        assert doc.get("lang") == real.get("lang") == "en"
        assert doc.findtext(".//title") == real.findtext(".//title"), stub.path
        assert len(doc.cssselect("[data-pagefind-body]")) == 1
        assert doc.cssselect("[data-pagefind-body] h1")[0].text_content() == \
            real.cssselect("h1")[0].text_content()
        assert len(stub.data) < 2000 < len(page)


def test_stub_escapes_what_the_knowledge_base_says(rich: Rich) -> None:
    stub = next(p for p in rich.stubs if p.path == "claims/hostile/index.html")
    doc = lhtml.fromstring(stub.data)
    assert doc.cssselect("h1")[0].text_content() == HOSTILE_SCRIPT
    assert not doc.cssselect("script") and b"<script>" not in stub.data


def test_stubs_are_deterministic(rich: Rich) -> None:
    again = search.stub_pages(rich.model, make_env(rich.root))
    assert again == rich.stubs


# -- the key -----------------------------------------------------------------------------------
def test_stub_key_changes_with_a_stub_and_only_then(rich: Rich, tmp_path: Path) -> None:
    exe = _script(tmp_path, "exit 0\n")
    key = search.stub_key(exe, rich.stubs)
    assert len(key) == 32
    assert search.stub_key(exe, list(reversed(rich.stubs))) == key  # order given: no matter
    assert search.stub_key(exe, [Page(p.path, bytes(p.data)) for p in rich.stubs]) == key
    changed = [*rich.stubs[:1], Page(rich.stubs[1].path, rich.stubs[1].data + b" "),
               *rich.stubs[2:]]
    assert search.stub_key(exe, changed) != key
    moved = [Page(rich.stubs[0].path.replace("index", "other"), rich.stubs[0].data),
             *rich.stubs[1:]]
    assert search.stub_key(exe, moved) != key
    assert search.stub_key(exe, rich.stubs[1:]) != key
    os.utime(exe, ns=(1, 1))  # another pagefind
    assert search.stub_key(exe, rich.stubs) != key
    assert search.stub_key(str(tmp_path / "missing"), rich.stubs) == ""


# -- running pagefind --------------------------------------------------------------------------
def _stub_folders() -> set[str]:
    """The stub folders there are (other builds on this machine may have theirs)."""
    parent = Path(search._scratch_parent() or tempfile.gettempdir())
    return {f.name for f in parent.glob("kb-pagefind-*")}


def _no_stub_folders(before: set[str]) -> bool:
    return _stub_folders() <= before


def test_failing_pagefind_raises_with_its_message(rich: Rich, tmp_path: Path) -> None:
    before = _stub_folders()
    exe = _script(tmp_path, "echo 'it broke here' >&2\nexit 3\n")
    job = search.start_pagefind(exe, rich.stubs, tmp_path / "site" / "pagefind")
    with pytest.raises(search.SearchError, match=r"exit code 3\): it broke here"):
        job.wait()
    assert not job.folder.exists() and _no_stub_folders(before)
    with pytest.raises(search.SearchError):  # asked again: the same answer
        job.wait()


def test_missing_pagefind_raises(rich: Rich, tmp_path: Path) -> None:
    before = _stub_folders()
    job = search.start_pagefind(str(tmp_path / "no-such-pagefind"), rich.stubs,
                                tmp_path / "pagefind")
    with pytest.raises(search.SearchError, match="could not run"):
        job.wait()
    assert _no_stub_folders(before)


def test_pagefind_that_makes_nothing_fails(rich: Rich, tmp_path: Path) -> None:
    job = search.start_pagefind(_script(tmp_path, "exit 0\n"), rich.stubs, tmp_path / "pf")
    with pytest.raises(search.SearchError, match="made no index"):
        job.wait()


def test_cancel_stops_pagefind_and_leaves_no_folder(rich: Rich, tmp_path: Path) -> None:
    before = _stub_folders()
    exe = _script(tmp_path, "exec sleep 30\n")
    job = search.start_pagefind(exe, rich.stubs, tmp_path / "pagefind")
    deadline = time.monotonic() + 10
    while job._process is None and time.monotonic() < deadline:  # let it start
        time.sleep(0.01)
    process = job._process
    assert process is not None and process.poll() is None
    t = time.monotonic()
    job.cancel()
    assert time.monotonic() - t < 5
    assert process.poll() is not None  # killed, and reaped
    assert not job.folder.exists() and _no_stub_folders(before)
    job.cancel()  # twice: nothing more to do


def test_start_returns_before_pagefind_ends(rich: Rich, tmp_path: Path) -> None:
    exe = _script(tmp_path, 'sleep 1\nmkdir -p "$4" && echo {} > "$4/pagefind-entry.json"\n')
    t = time.monotonic()
    job = search.start_pagefind(exe, rich.stubs, tmp_path / "pf")
    assert time.monotonic() - t < 0.5
    job.wait()
    assert job.seconds >= 1 and (tmp_path / "pf" / "pagefind-entry.json").is_file()


@needs_pagefind
def test_pagefind_indexes_the_stubs_as_it_did_the_pages(rich: Rich, tmp_path: Path) -> None:
    assert PAGEFIND is not None
    before = _stub_folders()
    job = search.start_pagefind(PAGEFIND, rich.stubs, tmp_path / "stubs" / search.OUTPUT)
    # The old way: pagefind over the whole pages, only those it indexes.
    site = tmp_path / "site"
    for path, data in rich.pages.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    subprocess.run([PAGEFIND, "--site", str(site), "--output-subdir", search.OUTPUT,
                    "--silent", "--glob", "{claims,sources,entities}/*/index.html"],
                   check=True, capture_output=True)
    job.wait()
    assert _no_stub_folders(before)
    new, old = tmp_path / "stubs" / search.OUTPUT, site / search.OUTPUT
    entry = json.loads((new / "pagefind-entry.json").read_text(encoding="utf-8"))
    assert entry["languages"]["en"]["page_count"] == len(rich.stubs)
    fragments = _fragments(new)
    assert fragments == _fragments(old)  # content, title, URL, word count, and file name
    assert sorted(fragments) == sorted("/" + p.path.removesuffix("index.html")
                                       for p in rich.stubs)
    claim = fragments["/claims/trade-fall-2025/"]
    assert claim["meta"]["title"] == "Trade fell to $220bn in 2025."
    assert "Trade fell to $220bn in 2025." in claim["content"]
    assert "Supports" not in claim["content"]  # the evidence is not indexed


# -- in the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(rich: Rich, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PAGEFIND is None:
        pytest.fail("pagefind is not installed")
    site = tmp_path_factory.mktemp("served")
    for path, data in rich.pages.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    from kb.render import static_files

    for page in static_files(rich.root):
        (site / page.path).parent.mkdir(parents=True, exist_ok=True)
        (site / page.path).write_bytes(page.data)
    search.start_pagefind(PAGEFIND, rich.stubs, site / search.shard_folder(0)).wait()
    with serving(site) as url:
        yield url


@needs_pagefind
@needs_browser
def test_search_in_the_browser_finds_and_opens_the_page(served: str) -> None:
    with one_page() as page:
        page.goto(served + "search/")
        page.locator("#search input").first.fill("trade fell")
        result = page.locator("#search a[href*='claims/trade-fall-2025']").first
        result.wait_for(timeout=10_000)
        assert result.inner_text().strip() == "Trade fell to $220bn in 2025."
        result.click()
        page.wait_for_url("**/claims/trade-fall-2025/")
        assert page.locator("h1").inner_text() == "Trade fell to $220bn in 2025."
        # an entity, by its name
        page.goto(served + "search/")
        page.locator("#search input").first.fill("Some One")
        page.locator("#search a[href*='entities/someone']").first.wait_for(timeout=10_000)
        assert page.errors == []

