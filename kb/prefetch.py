"""The knowledge base's files looked at in a child while the build loads its caches.

kb.load.read_inputs asks for the status of every record file (to know, from kb.statcache,
which changed) and reads the changed ones and the text snapshots: 0.09 s at 10,000 claims,
1.4 s at 100,000, of this process's time before it could parse anything. None of it depends on
the caches the check loads first (the parse cache's records, the rules' results: 0.23 s and
~3.4 s), so a child forked as the build starts does it on the other core meanwhile, and sends
back what it found as marshal data (plain data: it loads fast and cannot run code), the
problems of files it could not read as their fields. When it cannot be forked (`kb serve`'s
threads) or fails, the files are read here, as without it: the inputs are the same either way
(tests/test_prefetch.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.forks import Forked
from kb.load import FileInput, Inputs, read_inputs
from kb.problems import Loc, problem


def _as_data(inputs: Inputs) -> Any:
    return (str(inputs.root),
            [(f.kind, f.path, f._data, f._digest, f._source) for f in inputs.records],
            inputs.snapshots,
            [(p.loc.path, p.loc.line, p.loc.col, p.code, p.message, p.hint)
             for p in inputs.problems])


def _of_data(value: Any) -> Inputs | None:
    try:
        root, records, snapshots, found = value
        files = [FileInput(kind, path, data, digest_, source)
                 for kind, path, data, digest_, source in records]
        problems = [problem(Loc(path, line, col), code, message, hint)
                    for path, line, col, code, message, hint in found]
    except (TypeError, ValueError, KeyError):  # not what _as_data makes
        return None
    if not (isinstance(root, str) and isinstance(snapshots, list)
            and all(isinstance(path, str) and isinstance(data, bytes)
                    for path, data in snapshots)):
        return None
    return Inputs(Path(root), files, snapshots, problems)


class InputsReader:
    """read_inputs(root), in a child forked now; `inputs()` waits for it (or reads here)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._inputs: Inputs | None = None
        self._child = Forked(lambda: _as_data(read_inputs(root)))

    def inputs(self) -> Inputs:
        if self._inputs is None:
            ok, value = self._child.result()
            found = _of_data(value) if ok and value is not None else None
            self._inputs = found if found is not None else read_inputs(self.root)
        return self._inputs

    def close(self) -> None:
        self._child.close()
