"""Where kb makes objects by the hundred thousand, the cyclic collector is paused: they hold no
cycles, and each of its collections walked them all again (kb.cache.paused_gc)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

from kb.cache import ParseCache, wait_for_saves, write_pickle
from kb.load import load, read_inputs

GENERATED = (600, 2)  # claims, seed: enough records for the collector's thresholds


def test_loading_from_the_parse_cache_starts_no_collection(
        generated: Path, collections: Callable[[], int]) -> None:
    load(generated, cache=ParseCache(generated))  # fills and saves the cache
    wait_for_saves()
    inputs = read_inputs(generated, use_cache=True)
    cache = ParseCache(generated)
    before = collections()
    kb, problems = load(generated, cache=cache, inputs=inputs, save=False)
    assert collections() == before
    assert len(kb.claims) == GENERATED[0] and not problems
    assert gc.isenabled()


def test_pickling_records_starts_no_collection(generated: Path, tmp_path: Path,
                                               collections: Callable[[], int]) -> None:
    kb, _problems = load(generated)
    before = collections()
    assert write_pickle(tmp_path / "records.pickle", "key", kb.files) is not None
    assert collections() == before
    assert gc.isenabled()
