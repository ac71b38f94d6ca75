"""The workflow and pre-commit files, parsed, and their commands run as the forge would run them.

Steps that `uses:` an action exist only on GitHub and are skipped; the install step is checked
against the installed package rather than re-run (it would re-point this environment's install).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_diff import NEW_CLAIM, commit, git, init, needs_git, parse_markdown

from kb.jsonschema import core_value
from kb.yamlstrict import parse

from conftest import REPO, MakeKB

needs_kb = pytest.mark.skipif(shutil.which("kb") is None and not os.environ.get("CI"),
                              reason="the kb console script is not on PATH")


def load(rel: str) -> Any:
    text = (REPO / rel).read_text(encoding="utf-8")
    root, problems = parse(text, rel)
    assert not problems, problems
    return core_value(root)  # YAML 1.2, as GitHub reads it: `on` stays a key, not true


def _expand(text: str, github: dict[str, str]) -> str:
    out = re.sub(r"\$\{\{\s*github\.(\w+)\s*\}\}", lambda m: github[m.group(1)], text)
    assert "${{" not in out, out
    return out


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str],
             github: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it: expressions filled in, its `env:`, `bash -eo pipefail`."""
    script = _expand(step["run"], github)
    step_env = {k: _expand(str(v), github) for k, v in step.get("env", {}).items()}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env={**os.environ, **env, **step_env}, capture_output=True,
                          text=True, timeout=300)


def runs(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job["steps"]
    assert all(("uses" in s) != ("run" in s) for s in steps)
    for s in steps:
        if "uses" in s:
            assert s["uses"].startswith("actions/"), s  # only GitHub's own actions
    return [s for s in steps if "run" in s]


def check_install_step(step: dict[str, Any]) -> None:
    assert step["run"] == "python -m pip install ."
    assert importlib.metadata.version("claimkb")  # what the step gives: claimkb and `kb`
    eps = importlib.metadata.entry_points(group="console_scripts")
    assert any(ep.name == "kb" and ep.value == "kb.cli:run" for ep in eps)


@pytest.fixture
def pull_request(make_kb: MakeKB) -> Path:
    """A knowledge base repository with main, a pull-request branch, and origin/main."""
    root = make_kb()
    init(root)
    base = commit(root, "base")
    git(root, "update-ref", "refs/remotes/origin/main", base)
    git(root, "checkout", "-q", "-b", "pr")
    (root / "claims/trade-fall-2025.yaml").write_text(NEW_CLAIM, encoding="utf-8")
    commit(root, "add a claim")
    return root


@needs_git
@needs_kb
def test_check_workflow(pull_request: Path, tmp_path: Path) -> None:
    wf = load(".github/workflows/check.yml")
    assert "pull_request" in wf["on"]
    assert wf["permissions"] == {"contents": "read"}
    job = wf["jobs"]["check"]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # kb diff needs the base branch
    install, check, summarise = runs(job)
    check_install_step(install)
    assert summarise["if"] == "always()"
    assert "${{" not in summarise["run"]  # expressions reach the script only through env
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}
    github = {"base_ref": "main", "head_ref": "pr"}

    done = run_step(check, pull_request, env, github)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "files checked: 0 errors" in done.stdout

    summary.write_text("", encoding="utf-8")
    done = run_step(summarise, pull_request, env, github)
    assert done.returncode == 0, done.stdout + done.stderr
    md = parse_markdown(summary.read_text(encoding="utf-8"))
    assert md["Added"] == ["claim `trade-fall-2025`: Trade fell in 2025."]
    assert any("trade-fall-2025" in s and "*new*" in s for s in md["Status changes"])

    # a pull request with an error: annotations, a failing check, and still a summary
    (pull_request / "claims/trade-fall-2025.yaml").write_text(
        NEW_CLAIM.replace("kind: fact", "kind: guess"), encoding="utf-8")
    commit(pull_request, "break it")
    done = run_step(check, pull_request, env, github)
    assert done.returncode == 1
    assert "::error file=claims/trade-fall-2025.yaml,line=3,col=7,title=S104" in done.stdout
    done = run_step(summarise, pull_request, env, github)
    assert done.returncode == 0, done.stderr
    md = parse_markdown(summary.read_text(encoding="utf-8"))
    assert any("S104" in p for p in md["New problems"])


@needs_git
@needs_kb
def test_pages_workflow(pull_request: Path) -> None:
    wf = load(".github/workflows/pages.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    upload = next(s for s in build["steps"]
                  if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    site = upload["with"]["path"]
    install, *commands = runs(build)
    check_install_step(install)
    for step in commands:
        done = run_step(step, pull_request, {"CI": "true"}, {})
        assert done.returncode == 0, (step["run"], done.stdout, done.stderr)
    assert (pull_request / site / "index.html").is_file()  # what the artifact uploads


def test_pre_commit_hooks_for_other_repositories() -> None:
    hooks = load(".pre-commit-hooks.yaml")
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"kb-check", "kb-fmt"}
    assert by_id["kb-check"]["entry"] == "kb check"
    assert by_id["kb-check"]["pass_filenames"] is False
    assert by_id["kb-fmt"]["entry"] == "kb fmt --check"
    for h in hooks:
        assert h["language"] == "python"  # pre-commit installs this package for it
        files = re.compile(h["files"])
        assert files.search("claims/trade-record-2024.yaml")
        assert files.search("sources/article.yaml")
        assert not files.search("README.md") and not files.search("kb/cli.py")


@needs_kb
def test_pre_commit_config_hooks_run(make_kb: MakeKB) -> None:
    config = load(".pre-commit-config.yaml")
    [local] = config["repos"]
    assert local["repo"] == "local"
    hooks = {h["id"]: h for h in local["hooks"]}
    assert {"kb-check", "kb-fmt"} <= set(hooks)
    root = make_kb()
    changed = ["claims/trade-record-2024.yaml", "entities/russia.yaml"]
    for hook_id in ("kb-check", "kb-fmt", "kb-schema"):
        hook = hooks[hook_id]
        assert hook["language"] == "system"
        files = [f for f in changed if re.search(hook["files"], f)]
        args = [] if hook.get("pass_filenames") is False else files
        done = subprocess.run([*hook["entry"].split(), *args], cwd=root, capture_output=True,
                              text=True, timeout=120)
        if hook_id == "kb-fmt":  # MINIMAL's files carry no modeline: not canonical
            assert done.returncode == 1 and "not canonical: entities/russia.yaml" in done.stdout
        elif hook_id == "kb-schema":  # a knowledge base without schema/: stale
            assert done.returncode == 1
        else:
            assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(["kb", "fmt"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0
    done = subprocess.run(["kb", "schema"], cwd=root, capture_output=True, text=True)
    for hook_id in ("kb-fmt", "kb-schema"):
        hook = hooks[hook_id]
        args = [] if hook.get("pass_filenames") is False else changed
        again = subprocess.run([*hook["entry"].split(), *args], cwd=root, capture_output=True,
                               text=True)
        assert again.returncode == 0, again.stdout + again.stderr
