"""The rules on two processes (kb.validate.run_rules) report exactly what one process reports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from test_bad_corpus import CASES, case_kb

import kb.cache
import kb.validate
from kb import model as m
from kb.check import CheckOptions, check
from kb.output import text_line
from kb.problems import Problem

from conftest import MakeKB


def lines(root: object, jobs: int) -> list[str]:
    checked = check(root, CheckOptions(use_cache=False, jobs=jobs))  # type: ignore[arg-type]
    return [text_line(p) for p in checked.report]


def test_every_bad_case_gives_the_same_report_on_two_processes(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb.validate, "PARALLEL_MIN", 0)
    forks = 0
    real_fork = kb.cache.fork_child

    def counting(work: object) -> int | None:
        nonlocal forks
        forks += 1
        return real_fork(work)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.cache, "fork_child", counting)
    reported = 0
    for case in CASES:
        root = case_kb(make_kb, case, name=case)
        one = lines(root, jobs=1)
        two = lines(root, jobs=2)
        assert two == one, case
        reported += len(one)
    assert forks >= len(CASES) // 2  # most cases went through the helper
    assert reported > len(CASES)


def test_the_parent_keeps_the_assessments(make_kb: MakeKB,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the graph and the pages read them from the context afterwards: none may be lost
    monkeypatch.setattr(kb.validate, "PARALLEL_MIN", 0)
    root = make_kb()
    checked = check(root, CheckOptions(use_cache=False, jobs=2))
    assert set(checked.context._assessed) == set(checked.kb.claims)


def test_a_helper_that_dies_costs_only_time(make_kb: MakeKB,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_kb({"claims/trade-record-2024.yaml": "id: Wrong_Id\nclaim: x\nkind: fact\n"})
    expected = lines(root, jobs=1)
    assert any("I201" in line for line in expected)
    parent = os.getpid()
    real = kb.validate.identifiers

    def dies_in_the_helper(kb_: m.KnowledgeBase, ctx: kb.validate.Context
                           ) -> Iterator[Problem]:
        if os.getpid() != parent:
            os._exit(3)
        return real(kb_, ctx)

    rules = tuple(dies_in_the_helper if r is real else r for r in kb.validate.RULES)
    monkeypatch.setattr(kb.validate, "RULES", rules)
    monkeypatch.setattr(kb.validate, "HELPER_RULES",
                        (dies_in_the_helper, *kb.validate.HELPER_RULES[1:]))
    monkeypatch.setattr(kb.validate, "PARALLEL_MIN", 0)
    assert lines(root, jobs=2) == expected
