"""Incremental builds: after any one change, the site is byte for byte the one a full build makes.

Each case builds a small synthetic knowledge base, changes one thing, builds again into the same
folder (reusing what it can), then builds from scratch into another folder, and compares every
file. The manifest of the last build is never trusted blindly: corrupt, foreign or stale ones
are ignored, and so is a site file edited by hand.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.generate import generate
from kb.build import BuildOptions, BuildResult, build_site
from kb.cache import cache_path
from kb.check import CheckOptions
from kb.cli import main
from kb.search import pagefind_executable

TODAY = dt.date(2026, 11, 28)
SEARCH = "pagefind" if pagefind_executable() else "json"


def build(root: Path, out: Path, incremental: bool = True, search: str = SEARCH) -> BuildResult:
    result = build_site(root, out, BuildOptions(
        check=CheckOptions(today=TODAY), search=search, incremental=incremental))
    assert result.ok, [str(p) for p in result.checked.report.errors]
    return result


def files(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes()
            for p in sorted(site.rglob("*")) if p.is_file()}


def assert_same_site(a: Path, b: Path) -> None:
    fa, fb = files(a), files(b)
    assert sorted(fa) == sorted(fb)
    assert [p for p in fa if fa[p] != fb[p]] == []


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "kb"
    generate(root, 50, seed=3)
    return root


@pytest.fixture
def kb(generated: Path, tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(generated, root)
    return root


def first(root: Path, folder: str) -> Path:
    return sorted((root / folder).rglob("*.yaml"))[0]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _evidence_stance(root: Path) -> None:  # changes the claim's status, not its statement
    for f in sorted((root / "claims").rglob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        if "stance: supports" in text:
            f.write_text(text.replace("stance: supports", "stance: refutes", 1), "utf-8")
            return
    raise AssertionError("no claim with supporting evidence")


def _statement(root: Path) -> None:
    edit(first(root, "claims"), "claim: \"", "claim: \"Reportedly, ")


def _source(root: Path) -> None:
    edit(first(root, "sources"), "title: \"", "title: \"Revised: ")


def _entity(root: Path) -> None:
    edit(first(root, "entities"), "name: \"", "name: \"Dr ")


def _deleted(root: Path) -> None:
    # a claim nothing points at, so the knowledge base stays valid
    texts = {f: f.read_text(encoding="utf-8") for f in (root / "claims").rglob("*.yaml")}
    for f in sorted(texts):
        cid = f.stem
        if not any(f"claim: {cid}" in t for g, t in texts.items() if g != f):
            f.unlink()
            return
    raise AssertionError("every claim is referred to")


def _added(root: Path) -> None:
    src = first(root, "claims")
    text = src.read_text(encoding="utf-8")
    cid = src.stem
    new = re.sub(r"^related:\n(  - .*\n)+", "", text, flags=re.M)
    (src.parent / f"{cid}-again.yaml").write_text(
        new.replace(f"id: {cid}", f"id: {cid}-again", 1), encoding="utf-8")


def _config(root: Path) -> None:
    with (root / "kb.toml").open("a", encoding="utf-8") as fh:
        fh.write('repository = "https://github.com/example/kb"\n')


def _template(root: Path) -> None:
    package = Path(__file__).parent.parent / "kb" / "templates" / "base.html"
    (root / "templates").mkdir()
    text = package.read_text(encoding="utf-8").replace("Skip to content", "Skip to the page")
    (root / "templates" / "base.html").write_text(text, encoding="utf-8")


CHANGES: dict[str, Callable[[Path], None]] = {
    "evidence": _evidence_stance, "statement": _statement, "source": _source,
    "entity": _entity, "deleted-claim": _deleted, "added-claim": _added, "kb.toml": _config,
    "template": _template,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_incremental_equals_full(kb: Path, tmp_path: Path, change: str) -> None:
    site, fresh = tmp_path / "site", tmp_path / "fresh"
    everything = build(kb, site).rendered
    again = build(kb, site)
    assert again.rendered == 0  # nothing changed: every page kept
    CHANGES[change](kb)
    partial = build(kb, site)
    build(kb, fresh, incremental=False)
    assert_same_site(site, fresh)
    if change in ("evidence", "source", "entity", "statement"):
        assert 0 < partial.rendered < everything / 2, (partial.rendered, everything)


def test_evidence_edit_keeps_the_search_index(kb: Path, tmp_path: Path) -> None:
    if SEARCH != "pagefind":
        pytest.skip("pagefind is not installed")
    site = tmp_path / "site"
    build(kb, site)
    before = {p: f.stat().st_ino for p, f in
              ((f.relative_to(site), f) for f in (site / "pagefind").rglob("*")) if f.is_file()}
    _evidence_stance(kb)
    result = build(kb, site)
    assert "search" not in result.timings or result.timings["search"] < 0.5
    after = {f.relative_to(site): f.stat().st_ino for f in (site / "pagefind").rglob("*")
             if f.is_file()}
    assert after == before  # the same files, hard-linked, not made again


def test_corrupt_and_foreign_manifests_are_ignored(kb: Path, tmp_path: Path) -> None:
    site, fresh = tmp_path / "site", tmp_path / "fresh"
    everything = build(kb, site).rendered
    path = cache_path(kb, "build")
    assert path.is_file()
    path.write_bytes(b"\x80\x05garbage, not a pickle")
    _statement(kb)
    assert build(kb, site).rendered == everything  # corrupt: a full build
    build(kb, fresh, incremental=False)
    assert_same_site(site, fresh)
    # a manifest of another site folder is not about these files
    other = tmp_path / "other"
    build(kb, other)
    assert build(kb, site).rendered == everything


def test_site_files_edited_by_hand_are_rendered_again(kb: Path, tmp_path: Path) -> None:
    site, fresh = tmp_path / "site", tmp_path / "fresh"
    build(kb, site)
    page = sorted((site / "claims").glob("*/index.html"))[0]
    page.write_bytes(b"defaced")
    (site / "entities" / "index.html").unlink()
    result = build(kb, site)
    assert result.rendered == 2
    build(kb, fresh, incremental=False)
    assert_same_site(site, fresh)


def test_a_thousand_claims_build(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    generate(root, 1000, seed=0)
    runner = CliRunner()
    result = runner.invoke(main, ["--root", str(root), "build", "--out", str(tmp_path / "site"),
                                  "--timings"], env={"KB_TODAY": TODAY.isoformat()})
    assert result.exit_code == 0, result.output
    assert "built " in result.output and "render" in result.output
    assert len(list((tmp_path / "site" / "claims").glob("*/index.html"))) == 1000
