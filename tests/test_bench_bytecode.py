"""The benchmark times kb as installed: its modules compiled to bytecode first (bench.run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_the_benchmark_compiles_the_code_it_times_as_an_install_does(tmp_path: Path) -> None:
    from bench.run import compile_kb

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "sub" / "mod.py").write_text("Y = 2\n")
    said = compile_kb(package)
    assert said.startswith("compiled first"), said
    for module in (package / "__init__.py", package / "sub" / "mod.py"):
        # where Python looks for it (PYTHONPYCACHEPREFIX may put it elsewhere)
        assert Path(importlib.util.cache_from_source(str(module))).is_file(), module


def test_a_module_that_does_not_compile_is_said(tmp_path: Path) -> None:
    from bench.run import compile_kb

    (tmp_path / "broken.py").write_text("def f(:\n")
    assert compile_kb(tmp_path).startswith("not compiled")
