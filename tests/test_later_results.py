"""kb.extras.LaterResults: the named queries run in a forked child give the results they give
here; a child that fails is not trusted, and one not waited for is stopped."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from test_site_build import RICH, TODAY

import kb.extras
from kb.check import CheckOptions, check
from kb.extras import SHOWN, LaterResults, Table, graph_extras, run_queries
from kb.forks import can_fork
from kb.query import named_queries

from conftest import MakeKB

QUERIES = {
    "queries/claims.rq": "# title: Claims\n"
                         "SELECT ?c ?text { ?c a schema:Claim ; schema:text ?text } ORDER BY ?c\n",
    # more rows than a page shows: the child sends the first SHOWN and the count
    "queries/triples.rq": "SELECT ?s ?p ?o ?n { ?s ?p ?o VALUES ?n { 1 2 } }\n"
                          "ORDER BY ?s ?p ?o ?n\n",
    "queries/fails.rq": "SELECT ?x { ?x ?y }\n",
}


def _never_done(g: Any, queries: list[Any]) -> None:
    # a minute, not for ever: a child left behind would hold the test run's pipes
    threading.Event().wait(60)


@pytest.fixture(autouse=True)
def _forking() -> None:
    if not can_fork():
        pytest.skip("nothing is forked: no fork here, or a thread runs beside the tests")


@pytest.fixture
def graph(make_kb: MakeKB) -> tuple[Any, list[Any]]:
    root = make_kb({**RICH, **QUERIES})
    checked = check(root, CheckOptions(today=TODAY, use_cache=False))
    assert not checked.report.errors, list(checked.report)
    # no store: the child loads one, as in a build
    g, _extras = graph_extras(checked, {}, root, {}, keep_store=False)
    assert "store" not in g.__dict__
    return g, named_queries(root)


def test_the_childs_results_are_the_ones_made_here(graph: tuple[Any, list[Any]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    g, queries = graph
    here = run_queries(g, queries)
    g.__dict__.pop("store")
    later = LaterResults(g, queries, {})
    assert later.forked

    def not_here(*args: object) -> None:  # the child has its own, forked before this
        raise AssertionError("the queries were run in the build, not in the child")

    monkeypatch.setattr(kb.extras, "run_queries", not_here)
    assert dict(later) == here
    triples = here["triples"]
    assert isinstance(triples, Table) and triples.count > SHOWN == len(triples.rows)
    assert isinstance(here["fails"], str)  # the error's text, as on its page


def test_a_failing_child_is_not_trusted(graph: tuple[Any, list[Any]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    g, queries = graph
    here = run_queries(g, queries)
    # what the child sends cannot be marshalled: it fails, and the queries are run here
    monkeypatch.setattr(kb.extras, "_as_data", lambda result: object())
    later = LaterResults(g, queries, {})
    assert later.forked
    assert later.wait() == here
    assert "store" not in g.__dict__  # dropped once they have run, as without a child


def test_a_child_not_waited_for_is_stopped(graph: tuple[Any, list[Any]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    g, queries = graph
    monkeypatch.setattr(kb.extras, "run_queries", _never_done)
    later = LaterResults(g, queries, {})
    pid = later._child.pid
    assert pid is not None
    later.close()  # a build that failed before reading them
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


def test_a_build_that_drops_the_graph_runs_them_in_a_child(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.build import BuildOptions, build_site

    root = make_kb({**RICH, **QUERIES})
    ran_in: list[int] = []  # the processes that ran the queries, as this one sees them
    real = kb.extras.run_queries

    def spy(g: Any, queries: list[Any]) -> dict[str, Table | str]:
        ran_in.append(os.getpid())  # in a child, appended to the child's list only
        return real(g, queries)

    monkeypatch.setattr(kb.extras, "run_queries", spy)
    sites = {}
    for keep_graph in (True, False):
        ran_in.clear()
        out = tmp_path / f"site-{keep_graph}"
        result = build_site(root, out, BuildOptions(
            check=CheckOptions(today=TODAY, use_cache=False), search="json",
            incremental=False, keep_graph=keep_graph))
        assert result.ok
        assert ran_in == ([os.getpid()] if keep_graph else [])
        sites[keep_graph] = {p.relative_to(out).as_posix(): p.read_bytes()
                             for p in sorted(out.rglob("*")) if p.is_file()}
    assert sites[True] == sites[False]
    assert "Claims" in sites[False]["queries/claims/index.html"].decode()


def test_a_build_that_fails_after_the_fork_stops_the_child(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.build
    from kb.build import BuildOptions, build_site

    root = make_kb({**RICH, **QUERIES})
    made: list[LaterResults] = []

    class Seen(LaterResults):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    def refused(out: Path) -> None:
        raise PermissionError(f"{out}: not allowed")

    monkeypatch.setattr(kb.extras, "LaterResults", Seen)
    monkeypatch.setattr(kb.extras, "run_queries", _never_done)
    monkeypatch.setattr(kb.build, "Staging", refused)
    with pytest.raises(PermissionError):
        build_site(root, tmp_path / "site", BuildOptions(
            check=CheckOptions(today=TODAY, use_cache=False), search="json",
            keep_graph=False))
    assert len(made) == 1 and made[0].forked
    pid = made[0]._child.pid
    assert pid is None  # stopped and reaped: a child that waited for ever would hold it
