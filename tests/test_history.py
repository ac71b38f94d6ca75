"""The history of a claim from git: each commit with its date, author, message and status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_diff import REFUTING, commit, init, needs_git

from kb.history import GitLog, claim_histories, claim_history, read_blobs

from conftest import MakeKB

CLAIM = "claims/trade-record-2024.yaml"


@needs_git
def test_claim_with_several_commits(make_kb: MakeKB) -> None:
    root = make_kb()
    init(root)
    path = root / CLAIM
    original = path.read_text(encoding="utf-8")
    first = commit(root, "Add the trade claim", date="2026-01-05T09:00:00+01:00",
                   author="Editor One")
    path.write_text(original.replace("reviews:", REFUTING + "reviews:"), encoding="utf-8")
    second = commit(root, "Add refuting evidence", date="2026-02-10T10:00:00+00:00",
                    author="Editor Two")
    (root / "entities/china.yaml").write_text("id: china\nname: China\nkind: country\n",
                                              encoding="utf-8")
    commit(root, "An unrelated entity", date="2026-02-11T10:00:00+00:00")
    path.write_text(original.replace("reviews:", REFUTING + "verdict:\n  status: refuted\n"
                                     "  summary: The editors read it so.\nreviews:"),
                    encoding="utf-8")
    third = commit(root, "Verdict: refuted", date="2026-03-01T08:30:00+00:00")
    path.unlink()
    fourth = commit(root, "Remove the claim", date="2026-04-01T08:30:00+00:00")

    steps = claim_history(root, CLAIM)
    assert [s.commit.sha for s in steps] == [first, second, third, fourth]
    assert [s.commit.subject for s in steps] == ["Add the trade claim", "Add refuting evidence",
                                                 "Verdict: refuted", "Remove the claim"]
    assert [s.commit.author for s in steps[:2]] == ["Editor One", "Editor Two"]
    assert steps[0].commit.date == dt.datetime(2026, 1, 5, 9, 0,
                                               tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert [s.status for s in steps] == ["supported", "disputed", "refuted", None]
    assert [s.derived for s in steps] == ["supported", "disputed", "disputed", None]
    assert steps[1].reason == "1 source supports, 1 refutes."
    assert steps[2].reason == "The editors read it so."
    assert steps[3].deleted and not steps[0].deleted

    every = claim_histories(root)
    assert set(every) == {CLAIM}
    assert every[CLAIM] == steps


@needs_git
def test_unreadable_step_and_subfolder(make_kb: MakeKB) -> None:
    root = make_kb({"claims/2024/other.yaml": "id: other\nclaim: [broken\n"})
    init(root)
    commit(root, "broken claim")
    steps = claim_history(root, "claims/2024/other.yaml")
    assert len(steps) == 1 and steps[0].status is None
    assert steps[0].reason == "could not be read"


def test_no_git_history_outside_a_repository(make_kb: MakeKB) -> None:
    root = make_kb()
    assert claim_history(root, CLAIM) == []
    assert read_blobs(root, []) == []


@needs_git
def test_read_blobs_in_one_process(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    init(root)
    sha = commit(root, "base")
    blobs = read_blobs(root, [f"{sha}:{CLAIM}", f"{sha}:claims/missing.yaml",
                              f"{sha}:sources/article.txt"])
    assert blobs[0] == (root / CLAIM).read_bytes()
    assert blobs[1] is None
    assert blobs[2] == (root / "sources/article.txt").read_bytes()


def _two_versions(make_kb: MakeKB) -> tuple[Path, str]:
    """A checkout whose claim has two commits: added, then refuting evidence added. The
    knowledge base, and the claim as first committed."""
    root = make_kb()
    init(root)
    path = root / CLAIM
    original = path.read_text(encoding="utf-8")
    commit(root, "Add the trade claim", date="2026-01-05T09:00:00+01:00")
    path.write_text(original.replace("reviews:", REFUTING + "reviews:"), encoding="utf-8")
    commit(root, "Add refuting evidence", date="2026-02-10T10:00:00+00:00")
    return root, original


@needs_git
def test_steps_are_kept_by_commit_and_path(make_kb: MakeKB,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cache, a build reads and parses only the steps of commits it has not seen:
    each build parsed every version of every claim file again (seconds in a checkout)."""
    import kb.history as history

    root, original = _two_versions(make_kb)
    path = root / CLAIM
    fresh = claim_histories(root)
    asked: list[list[str]] = []
    real = history._cat_file

    def counted(root_: Path, names: list[str]) -> list[bytes | None] | None:
        asked.append(names)
        return real(root_, names)

    monkeypatch.setattr(history, "_cat_file", counted)
    assert claim_histories(root, cache=True) == fresh
    assert claim_histories(root, cache=True) == fresh  # from the memo
    assert [len(specs) for specs in asked] == [len(fresh[CLAIM]), 0]
    path.write_text(original, encoding="utf-8")
    third = commit(root, "Back as it was", date="2026-03-01T08:30:00+00:00")
    again = claim_histories(root, cache=True)
    log = GitLog(root)
    log.histories()
    assert asked[-1] == [log.blobs[(third, CLAIM)]]  # the new step only, by its blob's id
    assert again == claim_histories(root) and len(again[CLAIM]) == 3
    # another review age (kb.toml) assesses every step again
    claim_histories(root, review_age_days=30, cache=True)
    assert len(asked[-1]) == 2  # three steps; the third's bytes are the first's: read once


@needs_git
def test_steps_git_could_not_read_are_not_kept(make_kb: MakeKB,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.history as history
    from kb.cache import cache_path

    root = make_kb()
    init(root)
    commit(root, "Add the trade claim")
    fresh = claim_histories(root)
    with monkeypatch.context() as patched:
        patched.setattr(history, "_cat_file", lambda root_, names: None)  # git failed
        failed = claim_histories(root, cache=True)
    step = failed[CLAIM][0]  # said as it is, not taken for a deletion
    assert step.status is None and step.reason == "could not be read" and not step.deleted
    assert claim_histories(root, cache=True) == fresh  # and not remembered
    memo = cache_path(root, "history").with_suffix(".memo")
    memo.write_bytes(memo.read_bytes()[:-2])  # damaged: worked out again
    assert claim_histories(root, cache=True) == fresh


@needs_git
def test_git_log_started_early_is_read_later(make_kb: MakeKB) -> None:
    from kb.history import file_histories

    root = make_kb()
    init(root)
    commit(root, "Add the trade claim")
    log = GitLog(root)  # `kb build` starts it first, and reads it after the check
    assert log.histories() == file_histories(root) != {}
    assert log.histories() == {}  # read once
    unread = GitLog(root)
    process = unread._process
    unread.close()  # a build that ended early: git is stopped and reaped
    assert process is not None and process.returncode is not None
    assert GitLog(root.parent).histories() == {}  # not a checkout: no history


@needs_git
def test_the_checked_records_stand_for_the_versions_with_their_bytes(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `kb build` hands claim_histories: each file's parsed record, by the digest of its
    bytes. Only the versions with other bytes are parsed; the steps are the same."""
    import kb.load as load
    from kb.check import check

    root, _original = _two_versions(make_kb)
    fresh = claim_histories(root)
    checked = check(root)
    from kb.cache import digest

    parsed = {p: (digest((root / p).read_bytes()), record) for p, record in checked.kb.files}
    parses: list[str] = []
    real = load.parse_file

    def counted(kind: str, shown: str, data: bytes) -> object:
        parses.append(shown)
        return real(kind, shown, data)

    monkeypatch.setattr(load, "parse_file", counted)
    assert claim_histories(root, parsed=lambda: parsed) == fresh
    assert parses == [CLAIM]  # the first version; the second is the file as it is


@needs_git
def test_a_commit_s_id_changes_with_its_date_author_and_message(make_kb: MakeKB) -> None:
    """Page and graph keys hold a file's history as its commits' ids (kb.graphcache.commits):
    what they show of a commit (date, author, message) is digested by its id."""
    from test_diff import git

    from kb.history import file_histories

    root = make_kb()
    init(root)
    ids = [commit(root, "Add", date="2026-01-05T09:00:00+01:00", author="Editor One")]
    for message, date, author in (("Add", "2026-01-05T09:00:01+01:00", "Editor One"),
                                  ("Add", "2026-01-05T09:00:00+01:00", "Editor Two"),
                                  ("Added", "2026-01-05T09:00:00+01:00", "Editor One")):
        git(root, "commit", "-q", "--amend", "-m", message, "--reset-author", date=date,
            author=author)
        ids.append(file_histories(root)[CLAIM][-1].sha)
    assert len(set(ids)) == 4


@needs_git
def test_an_object_not_a_blob_does_not_shift_the_others(make_kb: MakeKB) -> None:
    """git cat-file answers a tree with its contents too: they are skipped, not read as the
    next answer."""
    from test_diff import git

    from kb.history import _cat_file

    root = make_kb()
    init(root)
    commit(root, "base")
    blob = git(root, "rev-parse", f"HEAD:{CLAIM}").strip()
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    assert _cat_file(root, [tree, blob, "0" * 40, blob]) == [
        None, (root / CLAIM).read_bytes(), None, (root / CLAIM).read_bytes()]


@needs_git
def test_a_name_outside_ascii_has_its_history(make_kb: MakeKB) -> None:
    from kb.history import file_histories

    name = "claims/café-trade.yaml"
    root = make_kb({name: "id: café-trade\nclaim: Trade.\nkind: fact\n"})
    init(root)
    first = commit(root, "Add")
    assert [c.sha for c in file_histories(root)[name]] == [first]
