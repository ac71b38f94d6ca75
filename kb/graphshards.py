"""The graph cache's shards, read only when a block in them is wanted.

After an edit a build makes the blocks of a few graphs again and needs no other block of its own:
the dumps' process reads them from the cache itself (kb.dumpsproc), and the pages that show a
graph (a claim's .ttl and .jsonld) are few. Reading every shard cost 0.10 s and 32,000 page
faults at 10,000 claims (130 MB of blocks), 1.3 GB at 100,000. So the graph cache keeps an index
beside its shards: each shard file's Stat, and each graph's key and block length there. A shard
whose file has the Stat the index gives is opened, not read: the index says which graphs it
holds under which keys, and its blocks are read from the open file when one is asked for. That
file is the one the index describes whatever becomes of its path meanwhile (a save replaces a
shard's file, it never changes one). A shard the index does not describe is read at once, as
before; an index that is missing, damaged or of other code describes none.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kb.cache import paused_gc
from kb.memo import read_memo, write_memo

Stat = tuple[int, int, int]  # inode, size, mtime in ns (kb.write.Stat)
Index = dict[str, tuple[str, int]]  # graph IRI → the key of its block, and its length
INDEX = "index.memo"


def read_index(folder: Path, key: object) -> tuple[dict[int, Stat], Index]:
    """Each shard's Stat and each graph's key and length, as the last save wrote them (none
    when the index cannot be trusted)."""
    value = read_memo(folder / INDEX, key)
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], dict)
            and isinstance(value[1], dict)):
        return {}, {}
    stats, index = value
    if not all(type(i) is int and type(st) is tuple and len(st) == 3 for i, st in stats.items()):
        return {}, {}
    return stats, index


def write_index(folder: Path, key: object, stats: dict[int, Stat], index: Index) -> None:
    write_memo(folder / INDEX, key, (stats, index))


def open_shard(path: Path) -> tuple[IO[bytes] | None, Stat | None]:
    """The shard's file, open, and its Stat; (None, None) when there is none."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (kept open: see the module's docstring)
    except OSError:
        return None, None
    st = os.fstat(fh.fileno())
    return fh, (st.st_ino, st.st_size, st.st_mtime_ns)


def read_shard(fh: IO[bytes], key: object,
               well_formed: Callable[[tuple[Any, Any]], bool]) -> dict[Any, Any]:
    """The entries of an open shard file, from its start (empty when it cannot be read, is of
    other code, or holds an entry not shaped as the cache writes them)."""
    try:
        data = os.pread(fh.fileno(), os.fstat(fh.fileno()).st_size, 0)
        with paused_gc():
            stored_key, entries = pickle.loads(data)
    except Exception:  # truncated, corrupt or foreign: as if there were none
        return {}
    if stored_key != key or not isinstance(entries, dict):
        return {}
    return entries if all(map(well_formed, entries.items())) else {}
