"""`kb check` reuses its last report only when every input is the same."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kb import check as check_module
from kb.check import CheckOptions, check, check_report

from conftest import MakeKB


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every full check run, recorded: a reused report runs none."""
    calls: list[Path] = []
    real = check_module.check

    def counting(root: Path, *args: object, **kwargs: object) -> check_module.Checked:
        calls.append(root)
        return real(root, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(check_module, "check", counting)
    return calls


def test_unchanged_knowledge_base_reuses_the_report(make_kb: MakeKB,
                                                    counted: list[Path]) -> None:
    root = make_kb({"entities/unused.yaml": "id: unused\nname: Unused\nkind: other\n"})
    first = check_report(root)
    second = check_report(root)
    assert len(counted) == 1
    assert second.sorted() == first.sorted() == check(root).report.sorted()
    assert [p.code for p in second] == ["T605"]


@pytest.mark.parametrize("change", ["record", "snapshot", "config", "new-file", "today"])
def test_any_changed_input_runs_the_check_again(make_kb: MakeKB, counted: list[Path],
                                                change: str) -> None:
    root = make_kb()
    options = CheckOptions()
    check_report(root, options)
    if change == "record":
        path = root / "entities/russia.yaml"
        path.write_text(path.read_text().replace("kind: country", "kind: nation"))
    elif change == "snapshot":
        (root / "sources/article.txt").write_text("Nothing of the quote is here.\n")
    elif change == "config":
        (root / "kb.toml").write_text("review_age_days = 3\n")
    elif change == "new-file":
        (root / "entities/unused.yaml").write_text("id: unused\nname: U\nkind: other\n")
    else:
        options = CheckOptions(today=dt.date(2028, 1, 1))
    report = check_report(root, options)
    assert len(counted) == 2
    assert report.sorted() == check(root, options).report.sorted()
    assert report.problems, "each change above introduces a problem"


def test_corrupt_report_cache_is_ignored(make_kb: MakeKB, counted: list[Path]) -> None:
    from kb.cache import cache_path

    root = make_kb()
    expected = check_report(root).sorted()
    cache_path(root, "report").write_bytes(b"\x80\x05garbage")
    assert check_report(root).sorted() == expected
    assert len(counted) == 2

