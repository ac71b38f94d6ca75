"""Small files in the user's cache that a build reads back: marshal data behind a digest.

The build's manifest (kb.manifest) and the model's memo (kb.modelmemo) are plain data — str,
int, bytes, tuples, lists, dicts — so they are written with marshal, which loads ten times as
fast as a pickle of dataclasses and cannot run code. Each file is a magic line, the SHA-256 of
the data, then the data; the data starts with a key (the format, claimkb's and Python's
versions, and what else the caller puts in). A file cut short or damaged (its digest), or from
another version or format (its key), reads as None: the caller then works it all out again.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from pathlib import Path
from typing import Any

_MAGIC = b"claimkb-memo\n"
_HEAD = len(_MAGIC) + 32


def read_memo(path: Path, key: Any) -> Any:
    """The value written under `key`, or None when missing, damaged or written under another."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = data[_HEAD:]
    if data[:len(_MAGIC)] != _MAGIC or hashlib.sha256(body).digest() != data[len(_MAGIC):_HEAD]:
        return None
    try:
        stored = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key):
        return None
    return stored[1]


def write_memo(path: Path, key: Any, value: Any) -> None:
    """Write atomically (readers see the old file or the new one); a memo that cannot be
    written only costs time next build."""
    try:
        body = marshal.dumps((key, value))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + hashlib.sha256(body).digest() + body)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, ValueError):  # ValueError: a value marshal cannot write
        pass
