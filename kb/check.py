"""`kb check`: load a knowledge base, run every rule, and collect one report."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from kb.cache import ParseCache
from kb.config import Config, load_config
from kb.load import load
from kb.model import KnowledgeBase
from kb.problems import Report
from kb.validate import Context, validate


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


def check(root: Path, options: CheckOptions | None = None) -> Checked:
    """Everything wrong with the knowledge base in `root`.

    Raises kb.load.NotAKnowledgeBase when the folder cannot be read as one.
    """
    options = options or CheckOptions()
    config, problems = load_config(root)
    cache = ParseCache(root) if options.use_cache else None
    kb, more = load(root, cache=cache, jobs=options.jobs)
    report = Report(files_checked=len(kb.files))
    report.extend(problems)
    report.extend(more)
    ctx = Context(options.today or today(), config.review_age_days)
    report.extend(validate(kb, ctx))
    return Checked(kb, config, ctx, report)
