"""The benchmark times kb as installed: its modules compiled to bytecode first (bench.run)."""

from __future__ import annotations

from pathlib import Path


def test_the_benchmark_compiles_the_code_it_times_as_an_install_does(tmp_path: Path) -> None:
    from bench.run import compile_kb

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "sub" / "mod.py").write_text("Y = 2\n")
    said = compile_kb(package)
    assert said.startswith("compiled first"), said
    assert list((package / "__pycache__").glob("__init__.*.pyc"))
    assert list((package / "sub" / "__pycache__").glob("mod.*.pyc"))
