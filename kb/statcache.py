"""What each input file's bytes hashed to, trusted while the file's status is unchanged.

Reading and hashing 13,000 small files costs half a second; asking for their status, a tenth
of that. A file whose device, inode, size, modification time and change time all equal those
recorded with its digest is taken to hold the same bytes (git's index makes the same bet).
The change time cannot be set by programs (utime sets it to now), so an edit that restores
the old modification time is still seen. Two guards against the cases that bet loses:

- "racily clean" files: a file changed twice within the clock's resolution could keep one
  status for two contents. A status is recorded only when the file's times are RACY_NS older
  than the moment it was read, so a file written just before (or during) a run is read again
  next time, until its status is old enough to be trusted;
- a cache from another format, version or Python, or one that cannot be read, is ignored.

`kb check --no-cache` reads every file, as before.
"""

from __future__ import annotations

import marshal
import os
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import kb
from kb.cache import cache_path

_FORMAT = 1
RACY_NS = 2_000_000_000  # times this close to the moment of reading are not trusted yet

Status = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns
Entries = dict[str, tuple[Status, str]]  # absolute path -> (status, digest)


def status(st: os.stat_result) -> Status:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def trustworthy(st: Status, now_ns: int) -> bool:
    """Whether a status taken at `now_ns` can stand for the file's bytes next time."""
    return now_ns - max(st[3], st[4]) >= RACY_NS


def _key() -> tuple[int, str, str]:
    return (_FORMAT, kb.__version__, sys.version)


def stat_path(root: Path, folder: Path | None = None) -> Path:
    return cache_path(root, "stat", folder).with_suffix(".marshal")


def load_stats(path: Path) -> Entries:
    """The recorded statuses, or none when the file is missing, corrupt or foreign."""
    try:
        key, entries = marshal.loads(path.read_bytes())
    except Exception:  # missing, truncated, corrupt: every file is read
        return {}
    if key != _key() or not isinstance(entries, dict):
        return {}
    return entries


def save_stats(path: Path, entries: Entries) -> None:
    """Store the statuses atomically; a cache that cannot be written only costs time."""
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(marshal.dumps((_key(), entries)))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def now_ns() -> int:
    return time.time_ns()
