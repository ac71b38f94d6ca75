"""A cache of parsed files, keyed by each file's path and content.

It lives outside the knowledge base (in the user's cache folder), because a cache file that
came with a pull request must never be trusted: entries are pickles. A cache from another
version of claimkb or Python, or one that cannot be read, is ignored and rebuilt; an entry is
used only when the file's bytes hash to the same digest, so a stale cache is never wrong.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import kb

_FORMAT = 1


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _code_fingerprint() -> str:
    """Changes whenever the package's code does, so a cache never outlives the parser."""
    h = hashlib.blake2b(digest_size=12)
    pkg = Path(kb.__file__).parent
    for path in sorted(pkg.glob("*.py")):
        st = path.stat()
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def default_dir() -> Path:
    base = os.environ.get("KB_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "claimkb" if base else Path.home() / ".cache" / "claimkb"


class ParseCache:
    def __init__(self, root: Path, folder: Path | None = None) -> None:
        folder = folder or default_dir()
        name = hashlib.blake2b(str(root.resolve()).encode(), digest_size=10).hexdigest()
        self.path = folder / f"parse-{name}.pickle"
        self.key = (_FORMAT, kb.__version__, sys.version, _code_fingerprint())
        self.entries: dict[tuple[str, str], tuple[str, Any]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with self.path.open("rb") as fh:
                key, entries = pickle.load(fh)
        except Exception:  # missing, truncated, corrupt or foreign: start afresh
            return
        if key == self.key and isinstance(entries, dict):
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
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".parse-")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((self.key, self.entries), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time
