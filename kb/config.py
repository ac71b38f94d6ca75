"""Site and check settings from kb.toml, with defaults for a folder that has none."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from kb.problems import Loc, Problem, problem
from kb.schema import valid_url

CONFIG_FILE = "kb.toml"


@dataclass(frozen=True)
class Config:
    title: str = "claimkb"
    description: str = "Claims, their sources and their evidence status."
    base_url: str = "https://claimkb.example.org/"
    publisher: str = "claimkb editors"
    publisher_url: str = ""
    licence: str = "CC-BY-4.0"
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    repository: str = ""  # e.g. https://github.com/owner/repo, for "edit this file" links
    branch: str = "main"
    review_age_days: int = 365


def load_config(root: Path) -> tuple[Config, list[Problem]]:
    """The settings of a knowledge base; a broken kb.toml gives C801 and the defaults."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return Config(), []
    where = Loc(CONFIG_FILE, 1, 1)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        return Config(), [problem(where, "C801", f"kb.toml cannot be read: {exc}")]
    known = {f.name: f for f in fields(Config)}
    values: dict[str, object] = {}
    problems = []
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            problems.append(problem(where, "C801", f"unknown setting '{key}'",
                                    "known: " + ", ".join(known)))
            continue
        expected = int if f.type in ("int", int) else str
        if type(value) is not expected:
            problems.append(problem(where, "C801",
                                    f"'{key}' must be {'a number' if expected is int else 'text'}"))
            continue
        values[key] = value
    config = Config(**values)  # type: ignore[arg-type]
    for key in ("base_url", "publisher_url", "licence_url", "repository"):
        url = getattr(config, key)
        if url and not valid_url(url):
            problems.append(problem(where, "C801", f"'{key}' must be an http(s) URL"))
            config = _replace(config, key, str(getattr(Config(), key)))
    if not config.base_url.endswith("/"):
        config = _replace(config, "base_url", config.base_url + "/")
    return config, problems


def _replace(config: Config, key: str, value: str) -> Config:
    changes: dict[str, object] = {key: value}
    return replace(config, **changes)  # type: ignore[arg-type]
