"""`kb check`: load a knowledge base, run every rule, and collect one report."""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kb import __version__ as kb_version
from kb.cache import ParseCache, cache_path, code_fingerprint, read_pickle, write_pickle
from kb.config import CONFIG_FILE, Config, load_config
from kb.load import Inputs, load, read_inputs
from kb.model import KnowledgeBase
from kb.problems import Report
from kb.validate import Context, run_rules


def today() -> dt.date:
    """Today, or KB_TODAY (YYYY-MM-DD) so that runs and tests can be reproduced."""
    fixed = os.environ.get("KB_TODAY")
    return dt.date.fromisoformat(fixed) if fixed else dt.date.today()


@dataclass(frozen=True)
class CheckOptions:
    today: dt.date | None = None
    use_cache: bool = True
    jobs: int | None = None


@dataclass
class Checked:
    kb: KnowledgeBase
    config: Config
    context: Context
    report: Report


def check(root: Path, options: CheckOptions | None = None,
          inputs: Inputs | None = None) -> Checked:
    """Everything wrong with the knowledge base in `root`.

    Raises kb.load.NotAKnowledgeBase when the folder cannot be read as one.
    """
    options = options or CheckOptions()
    config, problems = load_config(root)
    cache = ParseCache(root) if options.use_cache else None
    jobs = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    kb, more = load(root, cache=cache, jobs=jobs, inputs=inputs, save=False)
    report = Report(files_checked=len(kb.files))
    report.extend(problems)
    report.extend(more)
    ctx = Context(options.today or today(), config.review_age_days)
    # the cache is saved while the rules run (in the helper that runs half of them, if any)
    save = cache.save_changes if cache is not None else None
    report.extend(run_rules(kb, ctx, jobs, save))
    return Checked(kb, config, ctx, report)


def check_report(root: Path, options: CheckOptions | None = None) -> Report:
    """The report of `check`, reused as a whole when nothing it depends on has changed.

    The key covers every input of a check: each file's path and content, kb.toml, the date,
    and the code of the whole package, so a reused report is always the one a fresh check
    would give. Editors run `kb check` again and again; most runs change nothing.
    """
    options = options or CheckOptions()
    if not options.use_cache:
        return check(root, options).report
    inputs = read_inputs(root)
    config_file = root / CONFIG_FILE
    key = (
        inputs.fingerprint(),
        config_file.read_bytes() if config_file.is_file() else b"",
        (options.today or today()).isoformat(),
        kb_version,
        sys.version,
        code_fingerprint(),
    )
    path = cache_path(root, "report")
    report = read_pickle(path, key)
    if isinstance(report, Report):
        return report
    report = check(root, options, inputs).report
    write_pickle(path, key, report)
    return report


def check_command(root: Path, options: CheckOptions, shacl: bool = False) -> Report:
    """What `kb check` reports: the rules, and with `shacl` the graph against its shapes."""
    if not shacl:
        return check_report(root, options)
    from kb.shacl import shacl_problems  # the graph stage: loaded only when asked for

    checked = check(root, options)
    checked.report.extend(shacl_problems(checked))
    return checked.report
