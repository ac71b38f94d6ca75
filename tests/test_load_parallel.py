"""Parsing on several processes gives exactly what one process gives."""

from __future__ import annotations

import pytest

from conftest import MakeKB


def test_parallel_parse_gives_what_one_process_gives(make_kb: MakeKB,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kb import load as load_module

    root = make_kb({"claims/bad.yaml": "id: bad\nkind: nope\n"})
    one, one_problems = load_module.load(root, jobs=1)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    two, two_problems = load_module.load(root, jobs=3)
    assert [(p, r) for p, r in two.files] == [(p, r) for p, r in one.files]
    assert sorted(two_problems, key=str) == sorted(one_problems, key=str)
    assert {p.code for p in two_problems} >= {"S104", "S102"}
