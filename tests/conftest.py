"""Shared fixtures: a fixed "today", a private parse cache, and tiny knowledge bases on disk."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TODAY = "2026-11-28"

# A small valid knowledge base; tests copy it and change one thing.
MINIMAL: dict[str, str] = {
    "claims/trade-record-2024.yaml": """\
id: trade-record-2024
claim: Russia–China trade reached a record $245bn in 2024.
kind: quantity
claimant: someone
about: [russia]
period: "2024"
quantity: {value: 245e9, unit: USD}
appearances:
  - source: article
    quote: "the value of trade hit a record $245bn"
evidence:
  - source: report
    stance: supports
    quote: "amounted to $244.8 billion"
reviews:
  - {by: editor, date: 2026-11-01}
tags: [trade]
""",
    "sources/article.yaml": """\
id: article
title: An article
kind: news-article
url: https://example.org/article
published: 2025-12
language: en
""",
    "sources/article.txt": "Last year, the value of trade  hit a record $245bn (£182bn).\n",
    "sources/report.yaml": """\
id: report
title: A report
kind: report
publisher: someone
url: https://example.org/report
published: 2025-01-13
""",
    "entities/someone.yaml": """\
id: someone
name: Some One
kind: person
aliases: [S. One]
""",
    "entities/russia.yaml": """\
id: russia
name: Russia
kind: country
""",
}


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                  ) -> None:
    monkeypatch.setenv("KB_TODAY", TODAY)
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _commit_lock_released() -> Iterator[None]:
    """A test that left kb.build.COMMITTING held would hang every later build: it fails, and
    the lock is freed for the others."""
    yield
    from kb.build import COMMITTING

    if not COMMITTING.acquire(timeout=10):  # a rebuild's thread may still be committing
        COMMITTING.release()
        pytest.fail("kb.build.COMMITTING was left held")
    COMMITTING.release()


@pytest.fixture
def collections() -> Iterator[Callable[[], int]]:
    """How many collections the cyclic collector has started since the fixture was made: for
    the places that pause it (kb.cache.paused_gc)."""
    import gc

    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        yield lambda: len(started)
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()  # what the pauses froze, for the tests after these


MakeKB = Callable[..., Path]


@pytest.fixture
def make_kb(tmp_path: Path) -> MakeKB:
    """Write a knowledge base: MINIMAL (unless base=None) updated with `files`.

    A value of None deletes that file from the base.
    """

    def make(files: dict[str, str | bytes | None] | None = None,
             base: dict[str, str] | None = MINIMAL, name: str = "kb") -> Path:
        root = tmp_path / name
        merged: dict[str, str | bytes | None] = dict(base or {})
        merged.update(files or {})
        for rel, content in merged.items():
            if content is None:
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        for sub in ("claims", "sources", "entities"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return root

    return make


@pytest.fixture(scope="module")
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base made by bench.generate, once per module: the module's GENERATED
    (claims, seed) says which, so each module keeps the one its tests were written for."""
    from bench.generate import generate

    claims, seed = getattr(request.module, "GENERATED", (50, 3))
    root = tmp_path_factory.mktemp("gen") / "kb"
    generate(root, claims, seed=seed)
    return root


@pytest.fixture
def kb(generated: Path, tmp_path: Path) -> Path:
    """A copy of `generated` that a test may change."""
    root = tmp_path / "kb"
    shutil.copytree(generated, root)
    return root


def until(done: Callable[[], object], seconds: float = 20.0) -> bool:
    """Whether `done()` came true within `seconds` (polled): for what a detached process or
    another thread finishes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return False


def children(pid: int) -> list[int]:
    """The process's children, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, not reaped yet, is gone for this purpose)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False
