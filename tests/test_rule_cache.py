"""The rules with their per-file cache (kb.rulecache) report exactly what the rules report
without it, cold or warm, and after edits between runs; a bad rule cache is ignored."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from test_bad_corpus import CASES, case_kb

from kb.cache import SHARDS, cache_path, wait_for_saves
from kb.check import Checked, CheckOptions, check
from kb.output import text_line

from conftest import MINIMAL, MakeKB

TODAY = dt.date(2026, 11, 28)


def run(root: Path, use_cache: bool, today: dt.date = TODAY) -> Checked:
    checked = check(root, CheckOptions(today=today, use_cache=use_cache))
    wait_for_saves()
    return checked


def local_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose local rules run from now on (kb.rulecache.local), in order."""
    import kb.rulecache

    ran: list[str] = []
    real = kb.rulecache.local

    def counting(*args: object) -> object:
        ran.append(args[2])  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.rulecache, "local", counting)
    return ran


def lines(checked: Checked) -> list[str]:
    return [text_line(p) for p in checked.report]


def same(root: Path, today: dt.date = TODAY) -> list[str]:
    """The report with the caches equals the one without, and so do the assessments."""
    plain = run(root, False, today)
    cached = run(root, True, today)
    assert lines(cached) == lines(plain)
    assert sorted(cached.report.problems, key=repr) == sorted(plain.report.problems, key=repr)
    assert cached.context.assessed() == {
        cid: plain.context.assessment(c) for cid, c in plain.kb.claims.items()}
    return lines(plain)


def test_every_bad_case_reports_the_same_with_cold_and_warm_caches(make_kb: MakeKB) -> None:
    reported = 0
    for case in CASES:
        root = case_kb(make_kb, case, name=case)
        first = same(root)  # cold caches
        assert same(root) == first, case  # warm
        reported += len(first)
    assert reported > len(CASES)


EDITS: list[dict[str, str | None]] = [
    {"claims/trade-record-2024.yaml": MINIMAL["claims/trade-record-2024.yaml"].replace(
        "claimant: someone", "claimant: somebody")},  # R301 appears
    {"entities/someone.yaml": None},  # R301 in a claim and a source that did not change
    {"sources/article.txt": "Something else entirely.\n"},  # Q501 in an unchanged claim
    {"sources/article.txt": None},  # and gone again with the snapshot
    {"claims/copy.yaml": MINIMAL["claims/trade-record-2024.yaml"]},  # I202, I203
    {"claims/trade-record-2024.yaml": None},  # the copy becomes the first with its id
    {"claims/copy.yaml": "id: copy\nclaim: x\nkind: prediction\nresolves_by: 2026-01-01\n"
                         "verdict: {status: supported}\n"},  # T601, T602?, T603
    {"entities/unused.yaml": "id: unused\nname: U\nkind: other\n"},  # T605
    {"claims/a.yaml": "id: a\nclaim: a\nkind: fact\nrelated: [{claim: b, relation: depends-on}]"
                      "\n", "claims/b.yaml": "id: b\nclaim: b\nkind: fact\nrelated: "
                      "[{claim: a, relation: depends-on}]\n"},  # N701
    {"claims/b.yaml": "id: b\nclaim: b\nkind: fact\nevidence: [{source: report, stance: "
                      "refutes}]\n"},  # N702 in a, which did not change
]


def test_edits_between_runs_give_the_reports_of_fresh_runs(make_kb: MakeKB) -> None:
    root = make_kb()
    seen = {tuple(same(root))}
    for edit in EDITS:
        for rel, content in edit.items():
            path = root / rel
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(content, encoding="utf-8")
        seen.add(tuple(same(root)))
    assert len(seen) >= len(EDITS) - 2  # the edits changed the reports
    codes = {line.split("[")[1].split("]")[0] for report in seen for line in report}
    assert {"R301", "Q501", "I202", "I203", "T605", "N701", "N702"} <= codes


def test_a_later_day_finds_a_review_overdue(make_kb: MakeKB) -> None:
    root = make_kb()
    assert not any("T604" in line for line in same(root))
    later = same(root, TODAY + dt.timedelta(days=400))  # the review is now overdue
    assert any("T604" in line for line in later)


# Records whose rules change their verdicts on some day near TODAY (each date is a threshold
# of kb.rulecache.days_alike), and one whose never do.
DATED = {
    # due for review from 2026-12-02 (the last review + 365 + 1 days)
    "claims/reviewed.yaml": "id: reviewed\nclaim: r\nkind: fact\nabout: [russia]\n"
                            "reviews: [{by: e, date: 2025-12-01}, {by: e, date: 2025-11-01}]\n",
    # checkable from 2026-12-03, overdue without a verdict (T602) from 2026-12-04
    "claims/forecast.yaml": "id: forecast\nclaim: f\nkind: prediction\nabout: [russia]\n"
                            "resolves_by: 2026-12-03\nevidence: [{source: report, stance: "
                            "supports}]\nreviews: [{by: e, date: 2026-11-20}]\n",
    # a review dated after today until 2026-12-05 (V407, which names the day)
    "claims/ahead.yaml": "id: ahead\nclaim: a\nkind: fact\nabout: [russia]\n"
                         "reviews: [{by: e, date: 2026-12-05}]\n",
    # accessed after today until 2026-12-01 (V407)
    "sources/later.yaml": "id: later\ntitle: L\nkind: report\nurl: https://example.org/l\n"
                          "accessed: 2026-12-01\n",
    "claims/cites-later.yaml": "id: cites-later\nclaim: c\nkind: opinion\nabout: [russia]\n"
                               "appearances: [{source: later}]\n",
}


def test_each_day_reports_what_a_fresh_run_of_that_day_reports(make_kb: MakeKB) -> None:
    """The cache is filled on one day and used on others, forward, back and across each
    threshold: every report is a fresh run's."""
    root = make_kb(DATED)
    offsets = [0, 1, 2, 3, 4, 5, 6, 7, 8, 30, 400, 3, -1, -30, 5, 2, 6, 0, 1000, -400, 4]
    reports = {tuple(same(root, TODAY + dt.timedelta(days=n))) for n in offsets}
    assert len(reports) >= 6  # the days did change what the rules say


def test_a_new_day_runs_again_only_the_rules_of_files_it_changes(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_kb(DATED)
    run(root, True, dt.date(2026, 11, 29))
    ran = local_runs(monkeypatch)
    # A date after today is in a message that names the day: its file runs every day until then.
    ahead, later = "claims/ahead.yaml", "sources/later.yaml"
    expected = {
        dt.date(2026, 11, 30): [ahead, later],
        dt.date(2026, 12, 1): [ahead, later],  # accessed no longer in the future
        dt.date(2026, 12, 2): [ahead, "claims/reviewed.yaml"],  # due for review
        dt.date(2026, 12, 3): [ahead, "claims/forecast.yaml"],  # checkable
        dt.date(2026, 12, 4): [ahead, "claims/forecast.yaml"],  # overdue
        dt.date(2026, 12, 5): [ahead],  # its review no longer in the future
        dt.date(2026, 12, 6): [],
        dt.date(2026, 12, 30): [],
    }
    for day, files in expected.items():
        ran.clear()
        checked = run(root, True, day)
        assert sorted(ran) == sorted(files), day
        assert lines(checked) == lines(run(root, False, day)), day


def test_a_file_added_to_a_shard_keeps_the_days_of_its_aggregate(make_kb: MakeKB) -> None:
    """A shard whose aggregate holds takes a new file in: the aggregate it keeps must still end
    where its old files' verdicts change (here: a review falls due)."""
    from kb.cache import shard_of

    root = make_kb(DATED)
    day = dt.date(2026, 11, 29)
    same(root, day)
    shard = shard_of("claims/reviewed.yaml")
    name = next(f"claims/n{i}.yaml" for i in range(10_000)
                if shard_of(f"claims/n{i}.yaml") == shard)
    (root / name).write_text(f"id: {name[7:-5]}\nclaim: n\nkind: opinion\nabout: [russia]\n",
                             encoding="utf-8")
    same(root, day)  # the shard's aggregate holds; the new file joins it
    due = same(root, dt.date(2026, 12, 2))  # the review in that shard falls due
    assert any("T604" in line and "reviewed.yaml" in line for line in due)


def test_a_shard_whose_files_are_all_gone_keeps_no_aggregate(make_kb: MakeKB) -> None:
    from kb.cache import shard_of
    from kb.rulecache import AGGREGATE, RuleCache
    from kb.validate import Context

    root = make_kb({"claims/alone.yaml": "id: alone\nclaim: a\nkind: opinion\n"
                                         "about: [russia]\n"})
    run(root, True)
    index = shard_of("claims/alone.yaml")
    others = [p for p in root.rglob("*.yaml") if p.name != "alone.yaml"
              and shard_of(p.relative_to(root).as_posix()) == index]
    for path in others:  # the shard holds alone.yaml only
        path.rename(path.with_name("x-" + path.name))
    run(root, True)
    assert AGGREGATE in RuleCache(root, Context(TODAY)).shards[index]
    (root / "claims/alone.yaml").unlink()
    run(root, True)
    assert RuleCache(root, Context(TODAY)).shards[index] == {}


def test_every_use_of_the_day_by_the_rules_is_known_to_the_cache() -> None:
    """kb.rulecache.days_alike mirrors each comparison the rules make with the day. A new use
    of it in the rules' modules fails here: teach days_alike about it, then count it."""
    import io
    import tokenize

    import kb
    from kb.rulecache import RULE_MODULES

    folder = Path(kb.__file__).parent
    uses = {}
    for name in RULE_MODULES:
        if name in ("rulecache", "cache"):  # the cache itself, and the code that keys it
            continue
        text = (folder / f"{name}.py").read_text(encoding="utf-8")
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        found = 0
        for t in tokens:
            if t.type == tokenize.NAME and t.string == "today":
                found += 1
            elif t.type == tokenize.STRING and t.string[:2].lower() in ("f'", 'f"'):
                # before Python 3.12 an f-string is one token: the day in its {…} parts
                found += len(re.findall(r"\{[^{}]*\btoday\b[^{}]*\}", t.string))
        if found:
            uses[name] = found
    # validate: Context's field and assessment(), V407 twice (test, message) for claims and
    # sources, T602; status: derive_status's parameter and test, assess's parameter, call, due
    assert uses == {"validate": 7, "status": 5}


def shards(root: Path) -> list[Path]:
    folder = cache_path(root, "rules").with_suffix("")
    return sorted(folder.glob("*.pickle"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "wrong-shape"])
def test_a_bad_rule_cache_is_ignored(make_kb: MakeKB, damage: str) -> None:
    import pickle

    root = make_kb({"entities/unused.yaml": "id: unused\nname: U\nkind: other\n"})
    expected = same(root)
    assert shards(root) and len(shards(root)) <= SHARDS
    for shard in shards(root):
        data = shard.read_bytes()
        if damage == "truncate":
            shard.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            shard.write_bytes(os.urandom(200))
        elif damage == "foreign":
            key, value = pickle.loads(data)
            shard.write_bytes(pickle.dumps((("other", *key[1:]), value)))
        else:  # the right key, entries of another shape: say, no problems anywhere
            key, value = pickle.loads(data)
            shard.write_bytes(pickle.dumps((key, {k: (v[0], ((), (), (), (), (), None))
                                                  for k, v in value.items()})))
    assert lines(run(root, True)) == expected


def test_only_the_edited_file_runs_its_local_rules(make_kb: MakeKB,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"claims/c{i}.yaml": f"id: c{i}\nclaim: c{i}\nkind: fact\nabout: [russia]\n"
             for i in range(5)}
    root = make_kb(files)
    run(root, True)
    ran = local_runs(monkeypatch)
    (root / "claims/c3.yaml").write_text("id: c3\nclaim: c3\nkind: fact\nabout: [nobody]\n")
    checked = run(root, True)
    assert ran == ["claims/c3.yaml"]
    codes = {p.code for p in checked.report if p.loc.path == "claims/c3.yaml"}
    assert codes == {"R301", "S102", "T604"}
    assert lines(checked) == lines(run(root, False))


def test_the_rule_cache_is_keyed_by_every_module_the_rules_import() -> None:
    """kb.rulecache.RULE_MODULES must list every kb module the rules depend on, or an edit
    to an unlisted one would leave stale results in use."""
    import subprocess
    import sys

    from kb.rulecache import RULE_MODULES

    done = subprocess.run(
        [sys.executable, "-c", "import sys, kb.rulecache; print(' '.join(sorted(m for m in "
         "sys.modules if m == 'kb' or m.startswith('kb.'))))"],
        capture_output=True, text=True, check=True)
    imported = {"__init__" if m == "kb" else m.removeprefix("kb.")
                for m in done.stdout.split()}
    assert imported <= set(RULE_MODULES)


def test_a_cold_cache_is_filled_by_the_helper_that_runs_half_the_rules(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.check
    import kb.rulecache
    import kb.validate

    monkeypatch.setattr(kb.check, "PARALLEL_MIN", 0)
    monkeypatch.setattr(kb.validate, "PARALLEL_MIN", 0)
    root = make_kb({"entities/unused.yaml": "id: unused\nname: U\nkind: other\n",
                    "claims/x.yaml": "id: x\nclaim: x\nkind: fact\nabout: [nobody]\n"})
    plain = lines(run(root, False))
    cold = check(root, CheckOptions(today=TODAY, jobs=2))
    wait_for_saves()
    assert lines(cold) == plain
    assert set(cold.context._assessed) == set(cold.kb.claims)
    assert shards(root)  # the helper saved the rule cache

    def never(*args: object) -> object:
        raise AssertionError("a local rule ran again")

    monkeypatch.setattr(kb.rulecache, "local", never)
    warm = check(root, CheckOptions(today=TODAY, jobs=2))
    assert lines(warm) == plain


def test_a_duplicate_id_is_found_beside_a_record_without_one(make_kb: MakeKB) -> None:
    """The tables hold a record without an id under "": it must not hide a duplicate from
    duplicate_ids' quick count."""
    root = make_kb({"claims/no-id.yaml": "claim: x\nkind: fact\n",
                    "claims/dup.yaml": "id: dup\nclaim: a\nkind: fact\n",
                    "claims/dup-2.yaml": "id: dup\nclaim: b\nkind: fact\n"})
    for use_cache in (False, True):
        codes = [p.code for p in run(root, use_cache).report]
        assert codes.count("I203") == 1 and "S102" in codes, codes


# --- a shard's aggregate -------------------------------------------------------------------------

def _claim(cid: str, about: str = "russia") -> str:
    return f"id: {cid}\nclaim: {cid}\nkind: fact\nabout: [{about}]\n"


def _looked_at(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the next runs look at one by one (each of them adds to its shard's aggregate
    while every id has one record)."""
    import kb.rulecache

    seen: list[str] = []
    real = kb.rulecache._Gathered.add

    def add(self: object, path: str, *args: object) -> None:
        seen.append(path)
        real(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.rulecache._Gathered, "add", add)
    return seen


def _same_shard_as(path: str, folder: str) -> str:
    from kb.cache import shard_of

    return next(f"{folder}/extra-{i}.yaml" for i in range(100_000)
                if shard_of(f"{folder}/extra-{i}.yaml") == shard_of(path))


def test_unchanged_shards_are_taken_whole(make_kb: MakeKB,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After an edit, only the files of the edited file's shard are looked at one by one; a
    file new in a shard adds to its aggregate; each report is a fresh run's."""
    from kb.cache import shard_of

    files = {f"claims/c{i}.yaml": _claim(f"c{i}") for i in range(40)}
    root = make_kb(files)
    same(root)  # cold: the rules fill the cache and its aggregates
    seen = _looked_at(monkeypatch)
    same(root)
    assert seen == []  # nothing changed: every shard taken whole
    paths = [str(p.relative_to(root)) for p in root.rglob("*.yaml") if p.name != "kb.toml"]
    (root / "claims/c7.yaml").write_text(_claim("c7", "nobody"), encoding="utf-8")
    assert any("R301" in line for line in same(root))
    assert sorted(seen) == sorted(p for p in paths if shard_of(p) == shard_of("claims/c7.yaml"))
    seen.clear()
    new = _same_shard_as("claims/c3.yaml", "claims")
    (root / new).write_text(_claim("extra", "nobody"), encoding="utf-8")
    same(root)
    assert seen == [new]  # its shard's aggregate held: the new file is added to it
    seen.clear()
    same(root)
    assert seen == []
    (root / "claims/c3.yaml").unlink()
    same(root)
    assert sorted(seen) == sorted(p for p in [*paths, new] if p != "claims/c3.yaml"
                                  and shard_of(p) == shard_of(new))


def test_a_file_away_for_a_run_then_back_is_checked_for_unknown_ids(make_kb: MakeKB) -> None:
    """Its shard's aggregate holds again when it is back, byte for byte, but its own entry
    was dropped while it was away: R301 must be found all the same."""
    from kb.cache import shard_of

    root = make_kb({f"claims/c{i}.yaml": _claim(f"c{i}") for i in range(10)})
    taken = {shard_of(p.relative_to(root).as_posix()) for p in root.rglob("*.yaml")}
    lonely = next(name for i in range(100_000)  # a file alone in its shard
                  if shard_of(name := f"claims/lonely-{i}.yaml") not in taken)
    (root / lonely).write_text(_claim("lonely", "nobody"), encoding="utf-8")
    reported = same(root)
    assert any("R301" in line and lonely in line for line in reported)
    same(root)
    (root / lonely).rename(root / "away.txt")
    assert not any("R301" in line for line in same(root))
    (root / "away.txt").rename(root / lonely)
    assert same(root) == reported
    assert same(root) == reported


def test_a_file_edited_while_ids_were_duplicated_then_put_back(make_kb: MakeKB) -> None:
    """While two records share an id, no aggregate is used or written, but the edited file's
    own entry is: put back as it was, its shard's aggregate holds again, and its entry is of
    other bytes. R301 must be found all the same."""
    root = make_kb({f"claims/c{i}.yaml": _claim(f"c{i}") for i in range(10)})
    (root / "claims/c4.yaml").write_text(_claim("c4", "nobody"), encoding="utf-8")
    reported = same(root)
    assert any("R301" in line for line in reported)
    same(root)
    (root / "claims/copy.yaml").write_text(_claim("c1"), encoding="utf-8")
    assert any("I203" in line for line in same(root))
    (root / "claims/c4.yaml").write_text(_claim("c4"), encoding="utf-8")
    same(root)
    (root / "claims/c4.yaml").write_text(_claim("c4", "nobody"), encoding="utf-8")
    (root / "claims/copy.yaml").unlink()
    assert same(root) == reported


def test_an_assessment_given_whole_is_for_its_own_claim_only() -> None:
    """The assessments a shard gave are its claims': another claim object with the same id
    (say, a second record of that id) has its own worked out."""
    from kb import model as m
    from kb.status import assess
    from kb.validate import Context

    mine = m.Claim(id="a", claim="a", kind="fact")
    other = m.Claim(id="a", claim="a", kind="fact",
                    evidence=[m.Evidence(source=m.Ref("s"), stance="refutes")])
    ctx = Context(TODAY)
    given = assess(mine, TODAY, 365)
    ctx.take_assessments({"a": mine}, [{"a": given}])
    assert ctx.assessment(mine) is given
    assert ctx.assessment(other).status == "refuted"
    assert ctx.assessment(mine) is given  # still, beside the other's
    assert ctx.assessments({"a": mine}) == {"a": given}
    assert ctx.assessments({"a": other})["a"].status == "refuted"
