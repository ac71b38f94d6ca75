"""A cache of parsed files, keyed by each file's path and content.

It lives outside the knowledge base (in the user's cache folder), because a cache file that
came with a pull request must never be trusted: entries are pickles. A cache from another
version of claimkb or Python, or one that cannot be read, is ignored and rebuilt; an entry is
used only when the file's bytes hash to the same digest, so a stale cache is never wrong.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kb

_FORMAT = 1


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while many objects are made at once (parsing, unpickling).

    The records hold no reference cycles, yet each collection walks every object made so far:
    at 10,000 claims that made parsing twice and unpickling the cache five times slower. The
    objects made are then frozen (moved out of the collector's sight; reference counting
    still frees them), or the first collection afterwards would walk them all again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


# The modules a parsed file depends on: kb.load and what it imports (a test keeps this list
# in step). Only they key the cache, so that work on the rest of the package keeps it warm.
PARSER_MODULES = ("__init__", "cache", "load", "model", "problems", "schema", "yamlstrict")


def code_fingerprint(modules: tuple[str, ...] | None = None) -> str:
    """Changes whenever the code of these modules (default: all of kb) does."""
    h = hashlib.blake2b(digest_size=12)
    pkg = Path(kb.__file__).parent
    paths = ([pkg / f"{name}.py" for name in modules] if modules is not None
             else sorted(pkg.glob("*.py")))
    for path in paths:
        st = path.stat()
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def default_dir() -> Path:
    base = os.environ.get("KB_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "claimkb" if base else Path.home() / ".cache" / "claimkb"


def _well_formed(item: tuple[Any, Any]) -> bool:
    """An entry as put() writes it: (kind, path) -> (digest, (record, problems))."""
    k, v = item
    return (isinstance(k, tuple) and len(k) == 2 and isinstance(v, tuple) and len(v) == 2
            and isinstance(v[0], str) and isinstance(v[1], tuple) and len(v[1]) == 2
            and isinstance(v[1][1], list))


class ParseCache:
    def __init__(self, root: Path, folder: Path | None = None) -> None:
        self.path = cache_path(root, "parse", folder)
        self.key = (_FORMAT, kb.__version__, sys.version, code_fingerprint(PARSER_MODULES))
        self.entries: dict[tuple[str, str], tuple[str, Any]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        entries = read_pickle(self.path, self.key)
        if isinstance(entries, dict) and all(map(_well_formed, entries.items())):
            self.entries = entries

    def get(self, kind: str, path: str, digest_: str) -> Any:
        entry = self.entries.get((kind, path))
        if entry is not None and entry[0] == digest_:
            return entry[1]
        return None

    def put(self, kind: str, path: str, digest_: str, value: Any) -> None:
        self.entries[(kind, path)] = (digest_, value)
        self.dirty = True

    def save(self, keep: set[tuple[str, str]] | None = None) -> None:
        """Write the cache atomically; entries of files that are gone are dropped."""
        if keep is not None and set(self.entries) - keep:
            self.entries = {k: v for k, v in self.entries.items() if k in keep}
            self.dirty = True
        if self.dirty:
            write_pickle(self.path, self.key, self.entries)


def cache_path(root: Path, what: str, folder: Path | None = None) -> Path:
    """The cache file of one kind for the knowledge base in `root`."""
    name = hashlib.blake2b(str(root.resolve()).encode(), digest_size=10).hexdigest()
    return (folder or default_dir()) / f"{what}-{name}.pickle"


def read_pickle(path: Path, key: Any) -> Any:
    """The value stored under `key`, or None when the file is missing, corrupt or foreign."""
    try:
        with path.open("rb") as fh, paused_gc():
            stored_key, value = pickle.load(fh)
    except Exception:  # missing, truncated, corrupt or foreign: start afresh
        return None
    return value if stored_key == key else None


def write_pickle(path: Path, key: Any, value: Any) -> None:
    """Store `value` under `key`, atomically; a cache that cannot be written only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump((key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
