"""The benchmark's synthetic knowledge bases are valid and reproducible, and the runner runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generate import generate
from kb.check import CheckOptions, check

REPO = Path(__file__).resolve().parent.parent


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "kb"
    generate(root, 300, seed=0)
    return root


def test_generated_kb_has_the_promised_shape(generated: Path) -> None:
    claims = list((generated / "claims").rglob("*.yaml"))
    assert len(claims) == 300
    assert len(list((generated / "sources").glob("*.yaml"))) == 60
    assert len(list((generated / "entities").glob("*.yaml"))) == 30
    assert len(list((generated / "sources").glob("*.txt"))) == 3  # one source in twenty
    assert (generated / "kb.toml").is_file()
    mean = sum(p.stat().st_size for p in claims) / len(claims)
    assert 800 < mean < 2000, mean
    text = "".join(p.read_text(encoding="utf-8") for p in claims)
    for kind in ("fact", "quantity", "quote", "opinion", "prediction"):
        assert f"kind: {kind}\n" in text
    for part in ("quantity: {value:", "relation: depends-on", "verdict:", "resolves_by:",
                 "stance: refutes", "stance: partly-supports", "translation:"):
        assert part in text, part
    urls = [line for p in (generated / "sources").glob("*.yaml")
            for line in p.read_text(encoding="utf-8").splitlines() if "http" in line]
    assert urls and all('"https://example.org/' in u or '"https://archive.example.org/' in u
                        for u in urls)


def test_generated_kb_checks_without_errors_or_warnings(generated: Path) -> None:
    result = check(generated, CheckOptions(use_cache=False))
    report = result.report
    assert report.files_checked == 390
    assert [str(p.loc) + " " + p.code + " " + p.message for p in report] == []
    assert len(result.kb.snapshots) == 3


def test_generation_is_deterministic(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, 300, seed=0)
    assert _tree_digest(again) == _tree_digest(generated)
    other = tmp_path / "other"
    generate(other, 300, seed=1)
    assert _tree_digest(other) != _tree_digest(generated)


def test_generate_refuses_a_folder_in_use(generated: Path) -> None:
    with pytest.raises(FileExistsError):
        generate(generated, 10)


def test_generate_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-m", "bench.generate", "20", str(out)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(list((out / "claims").rglob("*.yaml"))) == 20
    done = subprocess.run([sys.executable, "-m", "bench.generate", "20", str(out)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "not empty" in done.stderr
    assert "Traceback" not in done.stderr


def test_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", "200", "--repeat", "1", "--stages",
         "check,check-warm", "--out", str(out), "--workdir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text and "| cores |" in text and "| Python | CPython" in text
    rows = [line for line in text.splitlines() if line.startswith("| 200 | check")]
    assert [r.split("|")[2].strip() for r in rows] == ["check", "check-warm"]
    for row in rows:
        median = row.split("|")[3].strip()
        assert median.endswith(" s") and float(median[:-2]) > 0
        cpu, system = (float(row.split("|")[i].strip().removesuffix(" s")) for i in (5, 6))
        assert 0 <= system <= cpu  # the kernel's part of the CPU time
        assert row.split("|")[8].strip().endswith(" MB")
    assert "| 200 | 40 | 20 | 2 | 260 |" in text
    assert (tmp_path / "work" / "kb-200-seed0" / "kb.toml").is_file()


def test_benchmark_rejects_unknown_stage(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--stages", "nope", "--out",
                           str(tmp_path / "r.md")], cwd=REPO, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "unknown stage" in done.stderr
    assert not (tmp_path / "r.md").exists()


def test_parse_cache_is_keyed_by_every_module_the_parser_imports() -> None:
    """kb.cache.PARSER_MODULES must list every kb module that parsing depends on, or an edit
    to an unlisted one would leave a stale cache in use (found while making the cache fast)."""
    from kb.cache import PARSER_MODULES

    done = subprocess.run(
        [sys.executable, "-c", "import sys, kb.load; print(' '.join(sorted(m for m in "
         "sys.modules if m == 'kb' or m.startswith('kb.'))))"],
        cwd=REPO, capture_output=True, text=True, check=True)
    imported = {"__init__" if m == "kb" else m.removeprefix("kb.")
                for m in done.stdout.split()}
    assert imported <= set(PARSER_MODULES)


def test_warm_files_reads_every_file_of_the_knowledge_bases(generated: Path,
                                                             tmp_path: Path) -> None:
    from bench.run import warm_files

    total = sum(p.stat().st_size for p in generated.rglob("*") if p.is_file())
    assert total > 0
    assert warm_files(generated) == total
    assert warm_files(generated, tmp_path / "missing") == total  # a missing folder: nothing


def test_an_edit_stage_times_an_edit_even_after_a_site_it_did_not_build(tmp_path: Path) -> None:
    """The edit stages build their copy, untimed, before each edit: a site left there by another
    version of the code (here: its cache gone) would make the timed build a whole one."""
    import re

    from bench.stages import STAGES, Bench

    root = tmp_path / "kb"
    generate(root, 40, seed=0)
    cache = tmp_path / "cache"
    env = dict(os.environ, KB_TODAY="2026-11-28", KB_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    b = Bench(root=root, claims=40, files=52, work=tmp_path / "work", env=env)
    names = ["build-edit", "build-edit-text", "build-edit-queries"]
    names += ["build-edit-git"] if shutil.which("git") else []
    for name in names:
        stage = STAGES[name]
        assert stage.prepare is not None
        stage.prepare(b)
        shutil.rmtree(cache)  # the site stays; the manifest it was built with is gone
        stage.prepare(b)
        done = subprocess.run(stage.command(b), env=env, capture_output=True, text=True,
                              check=False, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"(\d+) pages rendered", done.stdout + done.stderr)
        assert found is not None, done.stdout + done.stderr
        assert 0 < int(found.group(1)) < 52, done.stdout  # a whole build: the 52 records and more
    if "build-edit-git" in names:  # a checkout: one commit of it all, then one an edit
        log = subprocess.run(["git", "-C", str(tmp_path / "work" / "git-kb"), "log",
                              "--format=%s"], capture_output=True, text=True, check=True)
        assert log.stdout.split("\n")[:3] == ["Reworded", "Reworded",
                                              "The generated knowledge base"]


def test_the_next_day_stage_builds_each_run_a_day_after_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from bench.stages import STAGES, Bench

    untimed: list[dt.date] = []  # the day of each build the prepare runs
    run = Bench.run

    def recording(self: Bench, argv: list[str]) -> None:
        if argv[0] == "env":
            untimed.append(dt.date.fromisoformat(argv[1].removeprefix("KB_TODAY=")))
        run(self, argv)

    monkeypatch.setattr(Bench, "run", recording)

    root = tmp_path / "kb"
    generate(root, 40, seed=0)
    env = dict(os.environ, KB_TODAY="2026-11-28", KB_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO))
    b = Bench(root=root, claims=40, files=52, work=tmp_path / "work", env=env)
    stage = STAGES["build-next-day"]
    assert stage.prepare is not None
    days = []
    for _ in range(3):
        stage.prepare(b)
        command = stage.command(b)
        days.append(dt.date.fromisoformat(command[1].removeprefix("KB_TODAY=")))
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"(\d+) pages rendered", done.stdout + done.stderr)
        assert found is not None and int(found.group(1)) < 52, done.stdout  # not a whole build
    assert days[0] > dt.date(2026, 11, 28) + dt.timedelta(days=35)  # some reviews fall due
    assert [(d - days[0]).days for d in days] == [0, 1, 2]
    assert [d + dt.timedelta(days=1) for d in untimed] == days  # built the day before


def test_the_next_day_copy_moves_only_predictions_still_to_come(tmp_path: Path) -> None:
    """Its builds run 61 days on and later: a generated prediction whose date passes then
    has no verdict, an error (T602) that would stop them."""
    from bench.stages import _predictions_resolve_later

    claims = tmp_path / "claims" / "topic"
    claims.mkdir(parents=True)
    soon = "id: soon\nkind: prediction\nresolves_by: 2027-01-05\nclaim: s\n"
    past = "id: past\nkind: prediction\nresolves_by: 2026-06-01\nverdict: {status: refuted}\n"
    (claims / "soon.yaml").write_text(soon, encoding="utf-8")
    (claims / "past.yaml").write_text(past, encoding="utf-8")
    _predictions_resolve_later(tmp_path, "2026-11-28")
    assert (claims / "soon.yaml").read_text(encoding="utf-8") == soon.replace(
        "2027-01-05", "2035-12-31")
    assert (claims / "past.yaml").read_text(encoding="utf-8") == past


@pytest.mark.skipif(shutil.which("git") is None and not os.environ.get("CI"), reason="no git")
def test_the_git_stage_never_commits_outside_its_copy(tmp_path: Path) -> None:
    """A run stopped while making the stage's checkout left a copy without .git: git then
    found the repository around it (the work folder is often inside claimkb's own checkout)."""
    from bench.stages import STAGES, Bench

    outer = tmp_path / "outer"
    outer.mkdir()
    subprocess.run(["git", "-C", str(outer), "init", "-q"], check=True)
    (outer / "tracked.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(outer), "add", "tracked.txt"], check=True)
    subprocess.run(["git", "-C", str(outer), "-c", "user.name=t", "-c", "user.email=t@e",
                    "-c", "commit.gpgsign=false", "commit", "-q", "-m", "base"], check=True)
    (outer / "tracked.txt").write_text("two\n")  # an edit of the developer's, not to commit
    root = tmp_path / "kb"
    generate(root, 20, seed=0)
    work = outer / "work"
    shutil.copytree(root, work / "git-kb")  # as a stopped run left it: no .git
    env = dict(os.environ, KB_TODAY="2026-11-28", KB_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO))
    stage = STAGES["build-edit-git"]
    assert stage.prepare is not None
    stage.prepare(Bench(root=root, claims=20, files=26, work=work, env=env))
    log = subprocess.run(["git", "-C", str(outer), "log", "--format=%s"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert log == ["base"]  # nothing committed around the copy
    assert (work / "git-kb" / ".git").is_dir()
