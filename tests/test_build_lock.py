"""One build of a knowledge base at a time (kb.buildlock): a second waits, says so, and builds;
the lock is the build process's alone, and a killed holder leaves none."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.build import BuildOptions, BuildStopped, build_site
from kb.buildlock import build_lock
from kb.cli import main

from conftest import MakeKB

HOLD = """\
import sys, time
from pathlib import Path
from kb.buildlock import build_lock
with build_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""

WAITING = "another build of this knowledge base is running"


def hold(root: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding the knowledge base's build lock for `seconds`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(seconds)],
                            stdout=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"held\n"
    return proc


def free(root: Path) -> bool:
    """Whether another process can take the lock at once."""
    probe = ("import sys; from pathlib import Path; from kb.buildlock import build_lock\n"
             "def busy(): raise SystemExit(1)\n"
             "with build_lock(Path(sys.argv[1]), waiting=busy): pass\n")
    return subprocess.run([sys.executable, "-c", probe, str(root)], timeout=60).returncode == 0


def test_a_build_waits_for_another_then_builds(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    holder = hold(root, 2.0)
    start = time.monotonic()
    result = CliRunner().invoke(main, ["--root", str(root), "build", "--out",
                                       str(tmp_path / "site")])
    waited = time.monotonic() - start
    holder.wait(timeout=60)
    assert result.exit_code == 0, result.output
    assert WAITING in result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert waited > 1.0  # it did not build beside the holder


def test_a_build_alone_does_not_say_it_waits(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    result = CliRunner().invoke(main, ["--root", str(root), "build", "--out",
                                       str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert WAITING not in result.output
    assert free(root)  # and the ended build holds nothing


def test_children_forked_during_a_build_do_not_hold_its_lock(make_kb: MakeKB) -> None:
    """The process that deletes the last site, forked by a build, runs on for minutes at
    100,000 claims: an inherited flock would make the next build wait for it."""
    root = make_kb()
    with build_lock(root):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child only sleeps
            time.sleep(5)
            os._exit(0)
    try:
        assert free(root)
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


def test_a_killed_holder_leaves_no_lock(make_kb: MakeKB) -> None:
    root = make_kb()
    holder = hold(root, 60)
    assert not free(root)
    holder.kill()
    holder.wait(timeout=60)
    assert free(root)


def test_a_stop_ends_the_wait_and_nothing_is_written(make_kb: MakeKB, tmp_path: Path) -> None:
    """`kb serve` ending while its rebuild waits for another build."""
    root = make_kb()
    holder = hold(root, 60)
    stop = threading.Event()
    told: list[str] = []

    def waiting() -> None:
        told.append("waiting")
        stop.set()

    try:
        with pytest.raises(BuildStopped):
            build_site(root, tmp_path / "site", BuildOptions(stop=stop, waiting=waiting))
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert told == ["waiting"]
    assert not (tmp_path / "site").exists()
