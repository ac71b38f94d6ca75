"""kb.plan: the walk of the last site in a forked child gives what a walk here gives, and a
child that cannot be forked, fails or is not waited for changes nothing but the time taken."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kb import manifest, plan
from kb.forks import Forked, can_fork
from kb.manifest import Manifest, SiteChanges, scan_site
from kb.plan import SiteScanner

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def make_site(out: Path) -> Manifest:
    """A site, and a manifest that records it but for one file changed, one gone and one
    added since (as hand edits would)."""
    for rel in ("index.html", "claims/a/index.html", "claims/a.ttl", "sources/s/index.html",
                "pagefind/0/a.pf"):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    scan = scan_site(out)
    assert scan is not None
    stats = scan.stats
    pages = {p: ("key", stats[p]) for p in ("index.html", "claims/a/index.html", "claims/a.ttl")}
    pages["claims/b/index.html"] = ("key", (1, 2, 3))  # gone
    pages["claims/a.ttl"] = ("key", (4, 5, 6))  # changed
    return Manifest(str(out), pages, search_files={"pagefind/0/a.pf": stats["pagefind/0/a.pf"]})


def test_the_site_against_its_manifest(tmp_path: Path) -> None:
    recorded = make_site(tmp_path / "site")
    scan = scan_site(tmp_path / "site")
    assert scan is not None
    changes = recorded.compare(scan)
    assert changes == SiteChanges({"claims/b/index.html": None,
                                   "claims/a.ttl": scan.stats["claims/a.ttl"]}, 1, False)
    assert not recorded.as_recorded(changes)  # a file gone, one added
    assert recorded.reusable(changes, "index.html", "key") is not None
    assert recorded.reusable(changes, "index.html", "another key") is None
    assert recorded.reusable(changes, "claims/a.ttl", "key") is None  # changed by hand
    assert recorded.search_reusable(changes, [""], "pagefind") == {}  # no key: made again
    recorded.search_keys = ["k"]
    assert list(recorded.search_reusable(changes, ["k"], "pagefind")) == [0]
    (tmp_path / "site" / "sources/s/index.html").unlink()
    del recorded.pages["claims/b/index.html"]
    recorded.pages["claims/a.ttl"] = ("key", scan.stats["claims/a.ttl"])
    again = scan_site(tmp_path / "site")
    assert again is not None and recorded.as_recorded(recorded.compare(again))
    (tmp_path / "site" / "pagefind/0/a.pf").write_text("edited by hand, and longer")
    again = scan_site(tmp_path / "site")
    assert again is not None and recorded.search_reusable(recorded.compare(again), ["k"],
                                                          "pagefind") == {}


@needs_fork
def test_the_walk_in_a_child_is_the_walk_here(tmp_path: Path) -> None:
    out = tmp_path / "site"
    recorded = make_site(out)
    scanner = SiteScanner(out, recorded)
    assert scanner._child.started == can_fork()  # a test runner's thread: walked here
    found = scanner.result(wait=True)
    walked = scan_site(out)
    assert walked is not None and found == recorded.compare(walked)
    assert found is not None and sorted(found.changed) == ["claims/a.ttl", "claims/b/index.html"]
    assert found.extra == 1 and not found.foreign
    scanner.close()  # once read, nothing is left to stop


@needs_fork
def test_the_child_sees_what_is_not_a_build_s(tmp_path: Path) -> None:
    out = tmp_path / "site"
    recorded = make_site(out)
    (out / "link").symlink_to(out / "index.html")
    found = SiteScanner(out, recorded).result(wait=True)
    assert found is not None and found.foreign
    assert SiteScanner(tmp_path / "missing", recorded).result(wait=True) is None  # no site


def test_beside_other_threads_the_walk_is_done_here(tmp_path: Path) -> None:
    out = tmp_path / "site"
    recorded = make_site(out)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        scanner = SiteScanner(out, recorded)
        assert not scanner._child.started
        assert scanner.result(wait=True) == _here(recorded, out)
    finally:
        stop.set()
        thread.join()


def _scanner_whose_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         does: Callable[[], object]) -> tuple[SiteScanner, Path, Manifest]:
    """A SiteScanner of a new site whose forked child calls `does()` before its walk (this
    process walks as usual); the site, and its manifest."""
    out = tmp_path / "site"
    recorded = make_site(out)
    parent = os.getpid()
    real = manifest.scan_site

    def in_the_child(folder: Path) -> manifest.SiteScan | None:
        if os.getpid() != parent:
            does()
        return real(folder)

    monkeypatch.setattr(plan, "scan_site", in_the_child)
    return SiteScanner(out, recorded), out, recorded


def _here(recorded: Manifest, out: Path) -> SiteChanges:
    walked = scan_site(out)
    assert walked is not None
    return recorded.compare(walked)


def _fail() -> None:
    raise RuntimeError("the child fails")


@needs_fork
def test_a_failing_child_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scanner, out, recorded = _scanner_whose_child(tmp_path, monkeypatch, _fail)
    assert scanner._child.started == can_fork()
    assert scanner.result(wait=True) == _here(recorded, out)  # walked here instead
    assert Forked(lambda: 1 / 0).result() == (False, None)
    assert Forked(lambda: {"a": (1, 2)}).result() == (True, {"a": (1, 2)})


@needs_fork
def test_a_walk_not_finished_when_needed_is_made_here(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # a busy machine: the child's walk never ends
    scanner, out, recorded = _scanner_whose_child(tmp_path, monkeypatch,
                                                  threading.Event().wait)
    pid = scanner._child.pid
    assert scanner.result() == _here(recorded, out)  # not waited for: walked here
    if pid is not None:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # and the child was stopped and reaped


@needs_fork
def test_a_child_not_waited_for_is_stopped_and_reaped(tmp_path: Path) -> None:
    if not can_fork():
        pytest.skip("a thread runs beside the tests: nothing is forked")
    child = Forked(lambda: threading.Event().wait())  # would wait for ever
    pid = child.pid
    assert pid is not None
    child.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind
    assert child.result() == (False, None)


# --- the plan's inline tests of a kept file against Manifest.reusable ---------------------------

def _reference_plan(all_specs: list[Any], keys: Any, recorded_manifest: Manifest | None,
                    site: SiteChanges | None, extras: Any, fresh: Any) -> tuple[Any, ...]:
    """The plan as it was written before its tests were inlined: kb.render.outputs for each
    spec's files, Manifest.reusable for each file kept."""
    from kb.render import outputs

    todo: list[Any] = []
    kept: list[Any] = []
    keyed: dict[str, str] = {}
    remade: list[str] = []
    m = recorded_manifest
    reusable = m.reusable if m is not None and site is not None else None
    recorded = {} if m is None or fresh is None else m.pages
    worked_out = {} if fresh is None else {
        "claim.html": fresh.claims, "entity.html": fresh.entities, "source.html": fresh.sources}
    for spec in all_specs:
        entry = None
        ids = worked_out.get(spec.template) if recorded else None
        if ids is not None and dict(spec.extra)["id"] not in ids:
            entry = recorded.get(spec.path)
        key = entry[0] if entry is not None else keys.key(spec.path, spec.template, spec.extra)
        page, *alternates = outputs(spec, extras)
        keyed[page] = key
        found = reusable(site, page, key) if reusable and site else None
        if found is not None:
            kept.append(found)
        else:
            todo.append(spec)
        if not alternates:
            continue
        cid = dict(spec.extra)["id"]
        known = recorded.get(alternates[0]) if entry is not None else None
        alternates_key = known[0] if known is not None else keys.alternates(cid)
        links = []
        for p in alternates:
            keyed[p] = alternates_key
            links.append(reusable(site, p, alternates_key) if reusable and site else None)
        if all(links):
            kept += [link for link in links if link is not None]
        else:
            remade.append(cid)
    return todo, kept, list(keyed.items()), remade


def test_the_plan_keeps_what_the_manifest_would(kb: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plan of a first build, edit builds, a build after a hand edit of the site and one
    without the last site's walk gives what the reference loop gives, file for file."""
    from test_incremental import CHANGES, build

    compared: list[tuple[int, int, int]] = []
    real = plan.plan

    def both(all_specs: list[Any], keys: Any, recorded: Manifest | None,
             site: SiteChanges | None, extras: Any, todo: list[Any], kept: list[Any],
             keyed: dict[str, str], fresh: Any = None, remade: list[str] | None = None) -> None:
        real(all_specs, keys, recorded, site, extras, todo, kept, keyed, fresh, remade)
        expected = _reference_plan(all_specs, keys, recorded, site, extras, fresh)
        assert (todo, kept, list(keyed.items()), remade) == expected
        compared.append((len(todo), len(kept), fresh is None))

    monkeypatch.setattr(plan, "plan", both)
    out = tmp_path / "site"
    build(kb, out)
    for name in ("statement", "review", "evidence", "deleted-claim"):
        CHANGES[name](kb)
        build(kb, out)
    page = next(out.glob("claims/*/index.html"))
    page.write_text(page.read_text(encoding="utf-8") + "<!-- by hand -->", encoding="utf-8")
    record = sorted(out.glob("claims/*.jsonld"))[-1]  # another claim's, and only one of its two
    record.write_bytes(record.read_bytes() + b"\n")
    build(kb, out)
    monkeypatch.setattr(plan.SiteScanner, "result", lambda self, wait=False: None)
    build(kb, out)
    assert len(compared) == 7
    assert compared[0][1] == 0  # the first build keeps nothing
    assert all(kept > 0 for _todo, kept, _ in compared[1:6])  # the edits keep most files
    assert compared[6][1] == 0  # without the walk nothing is known to be untouched
