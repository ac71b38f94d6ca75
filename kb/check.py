"""`kb check`: load a knowledge base, run every rule, and collect one report."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb import __version__ as kb_version
from kb.cache import ParseCache, cache_path, code_fingerprint, read_pickle, write_pickle
from kb.config import CONFIG_FILE, Config, load_config
from kb.load import Inputs, load, read_inputs
from kb.model import KnowledgeBase
from kb.problems import Report
from kb.rulecache import RuleCache, fill, run_cached
from kb.validate import PARALLEL_MIN, Context, run_rules


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
          inputs: Inputs | Callable[[], Inputs] | None = None) -> Checked:
    """Everything wrong with the knowledge base in `root`.

    `inputs`: its files as read already, or a function that gives them, called once the
    caches are loaded (kb.prefetch reads them meanwhile). Raises kb.load.NotAKnowledgeBase
    when the folder cannot be read as one.
    """
    options = options or CheckOptions()
    config, problems = load_config(root)
    ctx = Context(options.today or today(), config.review_age_days)
    cache = ParseCache(root) if options.use_cache else None
    rules = RuleCache(root, ctx) if cache is not None else None
    jobs = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    if callable(inputs):
        inputs = inputs()
    if inputs is None:
        inputs = read_inputs(root, use_cache=options.use_cache)
    elif not options.use_cache:
        for f in inputs.records:  # no cache: every file's bytes, even those its status vouched for
            f.data  # noqa: B018
    kb, more = load(root, cache=cache, jobs=jobs, inputs=inputs, save=False)
    report = Report(files_checked=len(kb.files))
    report.extend(problems)
    report.extend(more)
    if cache is None or rules is None:
        report.extend(run_rules(kb, ctx, jobs))
    else:  # the rules of unchanged files come from their cache (kb.rulecache)
        digests = inputs.digests()
        keep = inputs.kinds_and_paths()
        if rules.empty and jobs > 1 and len(kb.files) >= PARALLEL_MIN:
            # Nothing to reuse (first run, new code or settings): the rules run on two processes
            # as without a cache, and the helper fills both caches once its rules are done.
            def after(background: bool) -> None:
                fill(kb, ctx, digests, rules)
                cache.save_changes(background)
                rules.save(keep, background)

            report.extend(run_rules(kb, ctx, jobs, after))
        else:
            report.extend(run_cached(kb, ctx, digests, rules))
            cache.save_changes()
            rules.save(keep)
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
