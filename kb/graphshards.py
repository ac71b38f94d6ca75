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
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO, Any, cast

from kb.cache import (
    SHARDS,
    BlobCache,
    read_pickle,
    shard_file,
    shard_of,
    unpickle,
    write_pickle,
)
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
        entries = unpickle(os.pread(fh.fileno(), os.fstat(fh.fileno()).st_size, 0), key)
    except OSError:
        return {}
    if not isinstance(entries, dict):
        return {}
    return entries if all(map(well_formed, entries.items())) else {}

KIND = "graph"  # the graph cache's one kind of entry: (KIND, graph IRI) → (its key, its block)


class IndexedShards(BlobCache):
    """kb.cache's shards of blocks, each read when one of its blocks is wanted (kb.graphcache's
    GraphCache is one)."""

    hits = 0  # blocks found

    def _load(self) -> None:
        stats, index = read_index(self.folder, self.key)
        self.stats: dict[int, Stat] = {}  # each shard file's, as read or written
        self._open: dict[int, IO[bytes]] = {}  # shards the index describes: not read yet
        for i in range(SHARDS):
            fh, st = open_shard(self.shard_path(i))
            if fh is None or st is None:
                continue
            self.stats[i] = st
            if stats.get(i) == st:
                self._open[i] = fh
                continue
            self.shards[i] = read_shard(fh, self.key, self.well_formed)
            fh.close()
        # Only the graphs of shards not read: while a shard is open its graphs are here, and
        # when it is read they go (_read), so that no lookup needs the graph's shard (a CRC of
        # its IRI: ~0.05 s a pass at 100,000 claims). Every shard described is open, usually.
        self._index = (index if all(i in self._open for i in stats) else
                       {g: v for g, v in index.items() if shard_of(g) in self._open})

    def _read(self, i: int) -> None:
        fh = self._open.pop(i, None)
        if fh is None:
            return
        self.shards[i] = read_shard(fh, self.key, self.well_formed)
        fh.close()
        index = self._index
        if self.shards[i]:  # the file the index described: the graphs it says are these
            for _kind, g in self.shards[i]:
                index.pop(g, None)
            return
        held = [g for g in index if shard_of(g) == i]
        for g in held:
            del index[g]
        if held:
            # Damaged in place (its Stat unchanged): the index goes, so that the next build
            # reads every shard and writes this one again; this one's blocks are made again.
            with suppress(OSError):
                (self.folder / INDEX).unlink()

    def drop_read(self, unread: Mapping[str, int], keys: Mapping[str, str]
                  ) -> dict[str, bytes]:
        """Forget the shards read (once the cache is saved: their blocks are the graph's now,
        not to be held twice); the blocks of `unread` graphs they hold, under `keys`."""
        found = {}
        index = self._index
        for g in unread:
            if g not in index:  # its shard has been read since
                entry = self.shards[shard_of(g)].get((KIND, g))
                if entry is not None and entry[0] == keys.get(g):
                    found[g] = entry[1]
        for i in range(SHARDS):
            if i not in self._open:
                self.shards[i] = {}
        return found

    def close(self) -> None:
        """Close the shards not read: their blocks are not wanted any more."""
        for fh in self._open.values():
            fh.close()
        self._open = {}
        self._index = {}  # only the graphs of open shards are here (_load)

    @property
    def entries(self) -> dict[tuple[str, str], tuple[str, Any]]:
        for i in list(self._open):
            self._read(i)
        return super().entries

    def get(self, kind: str, path: str, digest_: str) -> Any:
        self._read(shard_of(path))
        return super().get(kind, path, digest_)

    def put(self, kind: str, path: str, digest_: str, value: Any) -> None:
        self._read(shard_of(path))
        super().put(kind, path, digest_, value)

    def keep_only(self, keep: set[tuple[str, str]]) -> None:
        for graph in [g for g in self._index if (KIND, g) not in keep]:
            self._read(shard_of(graph))
        super().keep_only(keep)

    def find(self, graph_iri: str, key: str) -> bytes | int | None:
        """The graph's block when made from the same inputs (as `block`), or, in a shard not
        read, its length: the block is there, read when asked for (`blocks_of`)."""
        entry = self._index.get(graph_iri)
        if entry is None:
            return None if shard_of(graph_iri) in self._open else self.block(graph_iri, key)
        if entry[0] != key:
            return None
        self.hits += 1
        return entry[1]

    def blocks_of(self, graph_iri: str, keys: Mapping[str, str]) -> dict[str, bytes]:
        """The blocks of the shard holding the graph, each under the key `keys` gives it; the
        cache then forgets them (once it is saved: kb.kbgraph.Blocks holds them)."""
        i = shard_of(graph_iri)
        self._read(i)
        entries, self.shards[i] = self.shards[i], {}
        return {g: v[1] for (_kind, g), v in entries.items() if keys.get(g) == v[0]}

    def block(self, graph_iri: str, key: str) -> bytes | None:
        """The graph's block (kb.kbgraph.KBGraph.triples), when made from the same inputs."""
        block = self.get(KIND, graph_iri, key)
        if block is None:
            return None
        self.hits += 1
        return cast(bytes, block)

    def _write_shards(self) -> None:
        """The changed shards, then the index: every shard as this process read or wrote it
        (their Stats say which)."""
        for i in sorted(self.dirty):
            st = write_pickle(self.shard_path(i), self.key, self.shards[i])
            if st is None:
                self.stats.pop(i, None)
            else:
                self.stats[i] = st
        index = dict(self._index)  # the graphs of the shards not read
        for i, shard in enumerate(self.shards):
            if i in self.stats and i not in self._open:
                index.update({g: (v[0], len(v[1])) for (_kind, g), v in shard.items()})
        write_index(self.folder, self.key, self.stats, index)


def copy_blocks(folder: str, key: object, wanted: Mapping[str, str], fd: int, start: int = 0
                ) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Copy the blocks of the graphs `wanted` (graph IRI → its key) out of the graph cache in
    `folder` (its files read only under the cache's `key`), one shard at a time, into the
    file `fd` (from offset `start`), for a process that has not the build's memory
    (kb.dumpsproc): where each block is in the file (graph → offset, length), and the graphs
    not there under their key."""
    by_shard: dict[int, list[str]] = {}
    for graph in wanted:
        by_shard.setdefault(shard_of(graph), []).append(graph)
    where: dict[str, tuple[int, int]] = {}
    missing: list[str] = []
    offset = start
    for index in sorted(by_shard):
        entries = read_pickle(shard_file(Path(folder), index), key)
        for graph in by_shard[index]:
            entry = entries.get((KIND, graph)) if isinstance(entries, dict) else None
            if not (type(entry) is tuple and len(entry) == 2 and entry[0] == wanted[graph]
                    and type(entry[1]) is bytes):
                missing.append(graph)
                continue
            block = entry[1]
            view, at = memoryview(block), offset
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
            where[graph] = (offset, len(block))
            offset += len(block)
    return where, missing
