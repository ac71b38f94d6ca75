"""What `pip install .` (not editable: the README's first command) puts beside the code."""

from __future__ import annotations

import tomllib

from conftest import REPO

KB = REPO / "kb"


def _data_files() -> set[str]:
    """The files of the package that are not code, as kb reads them at run time."""
    return {p.relative_to(KB).as_posix() for p in KB.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def test_every_file_kb_reads_is_installed() -> None:
    """setuptools installs the files package-data's globs match (a glob's `*` stays within a
    folder, as Path.glob's does): a template in a new folder (templates/search/ once) was left
    out of the installed package, and `kb build` failed there, not in editable installs."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["kb"]
    installed = {p.relative_to(KB).as_posix() for g in globs for p in KB.glob(g) if p.is_file()}
    data = _data_files()
    assert {"templates/search/stub.html", "shapes.ttl", "templates/static/style.css"} <= data
    assert sorted(data - installed) == []
