"""`kb check` through the command line: formats, order, escaping, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kb import __version__
from kb.cli import main
from kb.output import github_line
from kb.problems import CODES, Loc, Problem

from conftest import MINIMAL, MakeKB

TEXT_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning)"
                       r"\[(?P<code>[A-Z]\d{3})\]: (?P<msg>.+)$")

CLAIM = MINIMAL["claims/trade-record-2024.yaml"]
# errors in two files, out of file order and line order, and one warning
BROKEN = {
    "claims/trade-record-2024.yaml": CLAIM.replace("claimant: someone", "claimant: somone")
                                          .replace("stance: supports", "stance: on"),
    "sources/report.yaml": MINIMAL["sources/report.yaml"] + "archived: javascript:alert(1)\n",
    "entities/unused.yaml": "id: unused\nname: Unused\nkind: other\n",
}


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), "check", *args])


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_a_clean_knowledge_base_exits_0(make_kb: MakeKB) -> None:
    result = run(make_kb())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "5 files checked: 0 errors, 0 warnings"


def test_text_format_sorted_by_file_and_line(make_kb: MakeKB) -> None:
    result = run(make_kb(BROKEN))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "6 files checked: 3 errors, 1 warning"
    parsed = [TEXT_LINE.match(line) for line in lines[:-1]]
    assert all(parsed), lines
    got = [(m["path"], int(m["line"]), int(m["col"]), m["sev"], m["code"])
           for m in parsed if m]
    assert got == [
        ("claims/trade-record-2024.yaml", 4, 11, "error", "R301"),
        ("claims/trade-record-2024.yaml", 13, 13, "error", "S104"),
        ("entities/unused.yaml", 1, 5, "warning", "T605"),
        ("sources/report.yaml", 7, 11, "error", "V401"),
    ]
    assert lines[0] == ("claims/trade-record-2024.yaml:4:11: error[R301]: no entity 'somone' "
                        "(did you mean 'someone'?)")


def test_sorting_is_numeric_by_line(make_kb: MakeKB) -> None:
    claim = CLAIM.replace("claimant: someone", "claimant: x1").replace(
        "tags: [trade]", "tags: [trade]\n" + "\n" * 5 + "extra: 1")
    result = run(make_kb({"claims/trade-record-2024.yaml": claim}))
    lines = [m for m in map(TEXT_LINE.match, result.stdout.splitlines()) if m]
    assert [int(m["line"]) for m in lines] == [4, 23]


def test_warnings_exit_0_unless_strict(make_kb: MakeKB) -> None:
    root = make_kb({"entities/unused.yaml": "id: unused\nname: Unused\nkind: other\n"})
    result = run(root)
    assert result.exit_code == 0, result.output
    assert "warning[T605]" in result.stdout
    strict = run(root, "--strict")
    assert strict.exit_code == 1, strict.output
    assert strict.stdout == result.stdout


def test_json_format(make_kb: MakeKB) -> None:
    result = run(make_kb(BROKEN), "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert (data["files_checked"], data["errors"], data["warnings"]) == (6, 3, 1)
    first = data["problems"][0]
    assert first == {
        "path": "claims/trade-record-2024.yaml", "line": 4, "column": 11, "severity": "error",
        "code": "R301", "title": CODES["R301"].title, "message": "no entity 'somone'",
        "hint": "did you mean 'someone'?",
    }
    assert [p["code"] for p in data["problems"]] == ["R301", "S104", "T605", "V401"]


def test_json_format_of_a_clean_run(make_kb: MakeKB) -> None:
    result = run(make_kb(), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"files_checked": 5, "errors": 0, "warnings": 0,
                                         "problems": []}


def test_github_format_annotates_and_keeps_the_plain_log(make_kb: MakeKB) -> None:
    result = run(make_kb(BROKEN), "--format", "github")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    plain = run(make_kb(BROKEN, name="again"))
    # every plain line is there, each followed by its annotation
    assert lines[0::2][:-1] == plain.stdout.splitlines()[:-1]
    assert lines[1] == ("::error file=claims/trade-record-2024.yaml,line=4,col=11,"
                        "title=R301 unknown reference::no entity 'somone' "
                        "(did you mean 'someone'?)")
    assert lines[5].startswith("::warning file=entities/unused.yaml,line=1,col=5,title=T605 ")
    assert lines[-1] == "6 files checked: 3 errors, 1 warning"


def test_github_escaping_as_actions_toolkit_does() -> None:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
    p = Problem(Loc("claims/a:b,c%d.yaml", 3, 4), "S101", "100% of\r\nit: a, b", "x\ny")
    assert github_line(p) == ("::error file=claims/a%3Ab%2Cc%25d.yaml,line=3,col=4,"
                              "title=S101 unknown field::100%25 of%0D%0Ait: a, b (x%0Ay)")


def test_github_whole_file_problem_has_no_line() -> None:
    p = Problem(Loc("sources/orphan.txt", 0, 0), "Q503", "no source 'orphan'")
    assert github_line(p) == ("::warning file=sources/orphan.txt,title=Q503 source text "
                              "snapshot without a source::no source 'orphan'")


def test_github_escapes_what_comes_from_the_files(make_kb: MakeKB) -> None:
    claim = CLAIM.replace("tags: [trade]", 'tags: [trade]\n"50%\\r\\nx,y:z": 1')
    result = run(make_kb({"claims/trade-record-2024.yaml": claim}), "--format", "github")
    assert result.exit_code == 1, result.output
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 1
    assert "unknown field '50%25%0D%0Ax,y:z' in claim" in annotations[0]
    assert "\r" not in result.stdout


def test_every_format_lists_the_same_problems(make_kb: MakeKB) -> None:
    root = make_kb(BROKEN)
    text = [line for line in run(root).stdout.splitlines() if TEXT_LINE.match(line)]
    data = json.loads(run(root, "--format", "json").stdout)
    assert [f"{p['path']}:{p['line']}:{p['column']}" for p in data["problems"]] == [
        line.split(": ")[0] for line in text]


def test_output_is_deterministic_and_the_cache_does_not_change_it(make_kb: MakeKB) -> None:
    root = make_kb(BROKEN)
    first = run(root).stdout
    assert run(root).stdout == first  # second run from the cache
    assert run(root, "--no-cache").stdout == first


@pytest.mark.parametrize(("args", "message"), [
    (["--root", "{tmp}/missing", "check"], "is not a folder"),
    (["--root", "{tmp}/empty", "check"], "not a knowledge base"),
    (["--root", "{tmp}/empty", "check", "--format", "xml"], "Invalid value"),
    (["--root", "{tmp}/empty", "check", "--bogus"], "No such option"),
    (["--root", "{tmp}/empty", "check", "--today", "2026-02-30"], "not a date"),
    (["--root", "{tmp}/file.txt", "check"], "is a file"),
    (["nonsense"], "No such command"),
])
def test_the_tool_cannot_run_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    result = CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert_no_traceback(result)
    assert result.stdout == ""  # the message goes to stderr


def test_today_option_changes_what_is_due(make_kb: MakeKB) -> None:
    root = make_kb()
    result = run(root, "--today", "2028-01-01", "--strict")
    assert result.exit_code == 1, result.output
    assert "warning[T604]" in result.stdout
    result = run(root, "--today", "2026-01-01")
    assert result.exit_code == 1, result.output
    assert "error[V407]" in result.stdout  # the review is then in the future


def test_broken_input_never_gives_a_traceback(make_kb: MakeKB) -> None:
    root = make_kb({
        "claims/trade-record-2024.yaml": b"\xff\xfe\x00garbage",
        "sources/article.yaml": "- [unclosed",
        "sources/article.txt": b"\x80\x81",
        "entities/russia.yaml": "id: russia\n\tname: x\n",
        "kb.toml": b"\xff not toml",
    })
    for fmt in ("text", "github", "json"):
        result = run(root, "--format", fmt)
        assert result.exit_code == 1, result.output
        assert_no_traceback(result)


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"kb, version {__version__}"


def test_check_help() -> None:
    result = CliRunner().invoke(main, ["check", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--format", "--strict", "--today", "--no-cache"):
        assert option in result.output


# -- the `kb` program itself (kb.cli.run: exits without freeing the heap) --------------------------
def program(*args: str) -> subprocess.CompletedProcess[str]:
    """The `kb` console script, as pyproject.toml declares it, in a process of its own."""
    return subprocess.run([sys.executable, "-c", "from kb.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_program_keeps_exit_codes_and_the_whole_report(make_kb: MakeKB) -> None:
    ok = program("--root", str(make_kb()), "check")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("0 errors, 0 warnings")
    broken = program("--root", str(make_kb(BROKEN)), "check")
    assert broken.returncode == 1, broken.stderr
    lines = broken.stdout.splitlines()
    assert len([line for line in lines if TEXT_LINE.match(line)]) >= 3  # flushed, all of it
    usage = program("check", "--no-such-flag")
    assert usage.returncode == 2 and "No such option" in usage.stderr


def test_the_program_waits_for_its_cache_to_be_saved(make_kb: MakeKB, tmp_path: Path) -> None:
    """The build saves caches in forked children; the hard exit must still wait for them."""
    root = make_kb()
    built = program("--root", str(root), "build", "--out", str(tmp_path / "site"))
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    cache = Path(os.environ["KB_CACHE_DIR"])
    saved = [p for p in cache.rglob("*.pickle") if p.stat().st_size > 0]
    assert saved, "no cache file was written before the process ended"
    again = program("--root", str(root), "build", "--out", str(tmp_path / "site"))
    assert again.returncode == 0, again.stderr
    assert "0 files kept" not in again.stdout  # the second build found the first one's pages
