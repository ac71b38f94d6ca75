"""The machine's speed in the results' header: a fixed workload, the same on every machine."""

from __future__ import annotations

import pytest

from bench import machine
from bench.run import render


def test_workload_is_the_same_work_every_time() -> None:
    # Its digest depends on every record surviving the pickle round trip and on the sort:
    # a workload that did less would not compare machines.
    assert machine.workload(500) == machine.workload(500)
    assert machine.workload(500) != machine.workload(501)


def test_workload_time_is_a_median_of_timed_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # runs of 1, 3 and 2 seconds
    monkeypatch.setattr(machine.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(machine, "workload", lambda: "")
    assert machine.time_workload(3) == 2.0


def test_speed_is_measured_in_a_child_that_leaves_the_runner_small() -> None:
    """The runner's own resident set is what a command it forks starts with: the workload run
    in the runner made every command's max RSS at least ~80 MB."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = machine.speed(1)
    assert 0 < seconds < 60
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 20, grown_mb


def test_header_gives_both_speeds_or_none() -> None:
    with_speeds = render([], [], 1, "0.1", "0.2", "python -m bench", speeds=(0.5, 0.625))
    row = next(line for line in with_speeds.splitlines() if line.startswith("| speed"))
    assert row.endswith("| 0.500 s, 0.625 s |"), row
    assert not any(line.startswith("| speed") for line in
                   render([], [], 1, "", "", "python -m bench").splitlines())
