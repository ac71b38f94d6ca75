"""kb.produce.Workers: the dumps' processes, one a task, exit when their task is done."""

from __future__ import annotations

import gc
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from kb.produce import State, Task, Workers


def _state(tmp_path: Path) -> State:
    staging = tmp_path / "staging"
    staging.mkdir()
    return State(None, SimpleNamespace(graph=None), None, staging)  # type: ignore[arg-type]


def test_a_process_a_task_and_none_left_after_the_results(tmp_path: Path) -> None:
    work = [Task(dump="records-ttl"), Task(dump="records-jsonld")]
    workers = Workers(_state(tmp_path), work, jobs=2, per_task=True)
    procs = list(workers._procs.values())
    assert len(procs) == 2  # forked at once, one a task
    done = list(workers.results())
    assert len(done) == 2
    assert all(p.exitcode == 0 for p in procs)  # joined: their memory is back
    assert not any(p in multiprocessing.active_children() for p in procs)
    workers.close()


def test_an_error_in_a_task_reaches_the_parent(tmp_path: Path) -> None:
    workers = Workers(_state(tmp_path), [Task(dump="no-such-file")], jobs=2, per_task=True)
    with pytest.raises(ValueError, match="no such data file"):
        list(workers.results())
    workers.close()
    assert not workers._procs


def test_close_stops_a_task_still_running(tmp_path: Path) -> None:
    workers = Workers(_state(tmp_path), [Task(dump="records-ttl")], jobs=2, per_task=True)
    procs = list(workers._procs.values())
    workers.close()
    assert all(p.exitcode is not None for p in procs)
    assert not workers._procs


def test_the_heap_stays_frozen_once_the_workers_are_forked(tmp_path: Path) -> None:
    """Unfrozen at once, this process's next full collection would walk every object the workers
    share (7-11 s at 100,000 claims); kb.build.build_site unfreezes them when the build ends."""
    gc.unfreeze()
    kept: list[list[int]] = [[] for _ in range(1000)]  # tracked, made before the fork
    workers = Workers(_state(tmp_path), [Task(dump="records-ttl")], jobs=2, per_task=True)
    try:
        assert gc.get_freeze_count() >= len(kept) + 1
        list(workers.results())
        assert gc.get_freeze_count() >= len(kept) + 1  # still, after the workers are done
    finally:
        workers.close()
        gc.unfreeze()
