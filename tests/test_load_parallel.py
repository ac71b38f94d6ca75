"""Reading and parsing a knowledge base (kb/load.py): several processes give exactly what one
process gives, and files are found and named as pathlib would."""

from __future__ import annotations

import pytest

from conftest import MakeKB, alive, children, until


@pytest.mark.parametrize("jobs", [2, 3])
def test_parallel_parse_gives_what_one_process_gives(make_kb: MakeKB, jobs: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kb import load as load_module

    more = {f"claims/c{i}.yaml": f"id: c{i}\nkind: nope\n" for i in range(9)}
    root = make_kb({"claims/bad.yaml": "id: bad\nkind: nope\n", **more})
    one, one_problems = load_module.load(root, jobs=1)
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    two, two_problems = load_module.load(root, jobs=jobs)
    assert [(p, r) for p, r in two.files] == [(p, r) for p, r in one.files]
    assert sorted(two_problems, key=str) == sorted(one_problems, key=str)
    assert {p.code for p in two_problems} >= {"S104", "S102"}


def test_files_are_found_in_pathlib_order_and_named_as_rel_names_them(make_kb: MakeKB) -> None:
    from pathlib import Path

    from kb.load import discover, read_inputs
    from kb.problems import rel

    names = ["claims/a-b/x.yaml", "claims/a/x.yaml", "claims/a.b/y.yaml", "claims/a/b/z.yaml",
             "claims/A/x.yaml", "claims/ab.yaml", "claims/a_/x.yaml", "claims/.hidden/x.yaml",
             "sources/s-1.txt", "sources/s.txt", "sources/s-1.yaml"]
    root = make_kb({name: "id: x\n" for name in names}, base={})
    found = [path for _, path in discover(root)]
    expected = sorted([p for p in (root / "claims").rglob("*.yaml") if ".hidden" not in str(p)]
                      + sorted((root / "sources").glob("*.yaml")))
    assert found == [*sorted(found[:-1]), found[-1]]  # claims in pathlib's order, then sources
    assert sorted(found) == sorted(expected)
    inputs = read_inputs(root)
    resolved = root.resolve()
    assert [f.path for f in inputs.records] == [rel(p.resolve(), resolved) for p in found]
    assert [s for s, _ in inputs.snapshots] == ["sources/s-1.txt", "sources/s.txt"]
    assert all(not Path(f.path).is_absolute() for f in inputs.records)


def test_large_and_empty_files_are_read_whole(make_kb: MakeKB) -> None:
    from kb.load import read_inputs

    big = "id: big\n" + "# a long comment line, repeated to pass 64 KiB\n" * 3000
    root = make_kb({"claims/big.yaml": big, "claims/empty.yaml": ""})
    data = {f.path: f.data for f in read_inputs(root).records}
    assert len(big) > 1 << 17
    assert data["claims/big.yaml"] == big.encode()
    assert data["claims/empty.yaml"] == b""


def test_released_inputs_keep_the_digests_of_what_was_parsed(make_kb: MakeKB) -> None:
    """kb build drops the record files' bytes once they are parsed; the digests stay those of
    the bytes parsed, even if a file changes afterwards, and the bytes cannot be asked for."""
    import pytest

    from kb.load import read_inputs

    root = make_kb({"claims/a.yaml": "id: a\n"})
    inputs = read_inputs(root, use_cache=False)
    before = {f.path: f.digest for f in inputs.records}
    inputs.release()
    (root / "claims/a.yaml").write_text("id: a\nkind: fact\n")
    assert {f.path: f.digest for f in inputs.records} == before
    f = next(f for f in inputs.records if f.path == "claims/a.yaml")
    with pytest.raises(RuntimeError, match="released"):
        f.data  # noqa: B018


def test_kb_build_releases_the_bytes_it_parsed(make_kb: MakeKB) -> None:
    from kb.build import BuildOptions, build_site
    from kb.load import Inputs

    root = make_kb()  # conftest's MINIMAL: a claim, a source, an entity
    result = build_site(root, root / "site", BuildOptions(search="json", history=False))
    assert result.ok
    inputs = next(x for x in result.held if isinstance(x, Inputs))
    assert inputs.records and all(f._data is None for f in inputs.records)


def test_a_stop_while_parsing_does_not_wait_for_the_helpers(
        make_kb: MakeKB, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or an error) in this process's share stops the helper at once: leaving the pool
    as `with` does waited for the helper's share, here 30 s."""
    import os
    import time

    from kb import load as load_module

    root = make_kb({f"claims/c{i}.yaml": f"id: c{i}\nkind: nope\n" for i in range(20)})
    monkeypatch.setattr(load_module, "PARALLEL_THRESHOLD", 1)
    here, parse = os.getpid(), load_module._parse_batch
    before = set(children(here))  # earlier tests' children (savers, deletions) are not ours
    helpers: list[int] = []

    def slow_in_helpers(files: list[load_module.FileInput]) -> list[load_module.Parsed]:
        if os.getpid() != here:
            time.sleep(30)  # the helper: killed long before
            return parse(files)
        time.sleep(0.5)  # the helper has started on its share
        helpers.extend(p for p in children(here) if p not in before)
        raise KeyboardInterrupt

    monkeypatch.setattr(load_module, "_parse_batch", slow_in_helpers)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        load_module.load(root, jobs=2)
    assert time.monotonic() - start < 10
    assert helpers
    assert until(lambda: not any(alive(pid) for pid in helpers), 10)

