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

from conftest import MakeKB, until

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


def test_the_lock_is_held_from_the_manifest_read_to_its_save(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builds at once (here two threads: kb serve's rebuild is one): the second reads the
    manifest only after the first saved its own."""
    import kb.manifest

    root = make_kb()
    events: list[str] = []
    load, save = kb.manifest.load_manifest, kb.manifest.save_manifest

    def loading(*args: object, **kwargs: object) -> object:
        events.append("load")
        time.sleep(0.2)  # time for the other to start and reach the lock
        return load(*args, **kwargs)  # type: ignore[arg-type]

    def saving(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        save(*args, **kwargs)  # type: ignore[arg-type]
        events.append("save")
        return None

    monkeypatch.setattr(kb.manifest, "load_manifest", loading)
    monkeypatch.setattr(kb.manifest, "save_manifest", saving)
    told: list[str] = []
    results = []

    def build() -> None:
        results.append(build_site(root, tmp_path / "site",
                                  BuildOptions(waiting=lambda: told.append("waiting"))))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and all(r.ok for r in results)
    assert events == ["load", "save", "load", "save"]
    assert told == ["waiting"]


def test_a_stop_while_rendering_ends_the_build_and_leaves_nothing(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kb serve` ending while its rebuild renders: the build stops at the next batch, its
    staging folder goes, and the site is as it was."""
    import kb.produce

    root = make_kb()
    out = tmp_path / "site"
    stop = threading.Event()
    real = kb.produce.run_task
    batches: list[int] = []

    def one_then_stop(*args: object) -> object:
        batches.append(1)
        stop.set()
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.produce, "run_task", one_then_stop)
    with pytest.raises(BuildStopped):
        build_site(root, out, BuildOptions(stop=stop))
    assert batches == [1]  # not one batch more
    assert not out.exists()
    # set aside at once, then deleted by a process of its own (kb.write.remove_later)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.new-")]
    assert until(lambda: not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")])
    monkeypatch.setattr(kb.produce, "run_task", real)
    assert build_site(root, out).ok  # and the next build builds


@pytest.mark.parametrize("keep_graph", [True, False], ids=["serve", "build"])
@pytest.mark.parametrize("stage", ["check", "graph", "plan"])
def test_a_stop_between_stages_ends_the_build_before_the_next(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str,
        keep_graph: bool) -> None:
    """`kb serve` ending while its rebuild checks, makes its graph or plans: the build stops
    when that stage ends, renders nothing, and leaves no site and no staging folder. As `kb
    build` (the graph not kept), the named queries' child, forked with the graph, is stopped."""
    import kb.build
    import kb.extras
    import kb.plan
    import kb.render

    root = make_kb({"queries/statuses.rq": "# title: Statuses\n"
                    "SELECT ?claim ?status WHERE { ?claim kb:status ?status }\n"})
    children: list[str] = []
    started, closed = kb.extras.LaterResults.__init__, kb.extras.LaterResults.close

    def starting(self: kb.extras.LaterResults, *args: object) -> None:
        children.append("started")
        started(self, *args)  # type: ignore[arg-type]

    def closing(self: kb.extras.LaterResults) -> None:
        children.append("closed")
        closed(self)

    monkeypatch.setattr(kb.extras.LaterResults, "__init__", starting)
    monkeypatch.setattr(kb.extras.LaterResults, "close", closing)
    out = tmp_path / "site"
    stop = threading.Event()
    where = {"check": (kb.build, "check"), "graph": (kb.extras, "graph_extras"),
             "plan": (kb.plan, "plan")}[stage]
    real = getattr(*where)

    def then_stop(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)
        stop.set()
        return done

    monkeypatch.setattr(*where, then_stop)
    rendered: list[object] = []
    monkeypatch.setattr(kb.render, "render_one", lambda spec: rendered.append(spec))
    with pytest.raises(BuildStopped, match=f"after its {stage}"):
        build_site(root, out, BuildOptions(stop=stop, keep_graph=keep_graph))
    assert rendered == []
    assert children == ([] if keep_graph or stage == "check" else ["started", "closed"])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.new-")]
    assert until(lambda: not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")])
