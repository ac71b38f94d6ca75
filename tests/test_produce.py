"""kb.produce.Workers: the dumps' processes, one a task, exit when their task is done."""

from __future__ import annotations

import gc
import multiprocessing
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from kb import produce
from kb.produce import State, Task, Workers
from kb.write import Done, WorkerDied


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


def _tagging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each task's Done names the task and the process that ran it (the forked worker inherits
    the patched function)."""
    def run(state: State, task: Task) -> Done:
        return Done({f"{task.claims[0]}@{os.getpid()}": (0, 0, 0)})

    monkeypatch.setattr(produce, "run_task", run)


def test_pages_one_worker_forked_and_this_process_renders_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With jobs=2 one worker is forked and this process takes tasks as well: each task is run
    once, by one of the two (one copy of the model's pages fewer than two workers)."""
    _tagging(monkeypatch)
    work = [Task(claims=(str(n),)) for n in range(40)]
    workers = Workers(_state(tmp_path), work, jobs=2)
    assert len(workers._procs) == 1
    (proc,) = workers._procs.values()
    ran = [path for done in workers.results() for path in done.stats]
    assert sorted(int(r.split("@")[0]) for r in ran) == list(range(40))
    assert {r.split("@")[1] for r in ran} == {str(os.getpid()), str(proc.pid)}
    assert proc.exitcode == 0 and not workers._procs  # told to stop and joined
    workers.close()


@pytest.mark.parametrize("where", ["worker", "here"])
def test_an_error_in_a_page_task_reaches_the_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    here = os.getpid()

    def run(state: State, task: Task) -> Done:
        if task.claims == ("bad",) and (os.getpid() == here) == (where == "here"):
            raise ValueError(f"bad task {where}")
        return Done()

    monkeypatch.setattr(produce, "run_task", run)
    bad = 0 if where == "worker" else 29  # a worker is handed the first tasks, here the last
    work = [Task(claims=("bad",) if n == bad else (str(n),)) for n in range(30)]
    workers = Workers(_state(tmp_path), work, jobs=2)
    procs = list(workers._procs.values())
    with pytest.raises(ValueError, match=f"bad task {where}"):
        list(workers.results())
    workers.close()
    assert all(p.exitcode is not None for p in procs) and not workers._procs


def test_data_files_made_with_the_pages_come_first(tmp_path: Path) -> None:
    """kb.build gives the pages the claims' CSV in a full build: first, so that the forked
    worker (handed tasks from the front) makes it while this process renders."""
    from kb.produce import page_tasks

    work = page_tasks([], 2, ("a",), ("csv",))
    assert [t.dump for t in work] == ["csv", "records-ttl", "records-jsonld"]


def test_a_page_worker_that_dies_fails_the_build_with_a_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed (out of memory …) with a task it was handed still unread: its socket resets
    rather than ends, and the build stops with WorkerDied, which `kb build` reports."""
    here = os.getpid()

    def run(state: State, task: Task) -> Done:
        if os.getpid() != here:
            os._exit(1)
        return Done()

    monkeypatch.setattr(produce, "run_task", run)
    workers = Workers(_state(tmp_path), [Task(claims=(str(n),)) for n in range(10)], jobs=2)
    procs = list(workers._procs.values())
    with pytest.raises(WorkerDied, match="a worker of the build died"):
        list(workers.results())
    workers.close()
    assert all(p.exitcode is not None for p in procs) and not workers._procs


def test_kb_build_reports_a_dead_worker_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.build

    def dies(*args: object, **kwargs: object) -> None:
        raise WorkerDied("a worker of the build died")

    monkeypatch.setattr(kb.build, "build_site", dies)
    outcome = kb.build.build_command(tmp_path, tmp_path / "site")
    assert outcome.code == 2 and outcome.lines == ["kb: a worker of the build died"]
