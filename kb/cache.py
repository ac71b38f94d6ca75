"""A cache of parsed files, keyed by each file's path and content.

It lives outside the knowledge base (in the user's cache folder), because a cache file that
came with a pull request must never be trusted: entries are pickles. A cache from another
version of claimkb or Python, or one that cannot be read, is ignored and rebuilt; an entry is
used only when the file's bytes hash to the same digest, so a stale cache is never wrong.

The cache is split into shards by a hash of each file's path, so that one edited file rewrites
one small shard (milliseconds), not the whole cache (seconds at 10,000 claims); each shard is
written atomically and checked on its own. Writing many shards (a cold cache) happens in a
forked child, off the caller's path.
"""

from __future__ import annotations

import atexit
import copyreg
import gc
import hashlib
import os
import pickle
import signal
import stat
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import kb
from kb import model as m
from kb.recordcodec import Entries, decode, encode

_FORMAT = 2  # a shard of records as marshal data is told apart by its shape (ParseCache.unpack)
SHARDS = 64
# Fewer shards than this to write (a few edited files): a fork would cost more than it saves.
BACKGROUND_MIN = 4


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the system (glibc's malloc_trim), after a lot
    was freed: blocks freed inside its heap stay resident otherwise, and processes forked
    next would map them too. Elsewhere, nothing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


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


def freeze_for_fork() -> None:
    """Before workers are forked: collect once, then keep every object out of the collector's
    sight until the build ends (kb.build.build_site unfreezes them).

    A worker's collector would write to the objects it shares with this process, copying their
    pages. Unfrozen as soon as the workers were forked, they were walked again by this process's
    next full collection: at 100,000 claims that one collection took 7-11 s of an edit build.
    """
    gc.collect()
    gc.freeze()


# The modules a parsed file depends on: kb.load and what it imports (a test keeps this list
# in step). Only they key the cache, so that work on the rest of the package keeps it warm.
PARSER_MODULES = ("__init__", "cache", "load", "model", "problems", "recordcodec", "schema",
                  "specs", "statcache", "yamlstrict")


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


def shard_of(path: str) -> int:
    return zlib.crc32(path.encode()) % SHARDS


def shard_file(folder: Path, index: int) -> Path:
    return folder / f"{index:02x}.pickle"


def _well_formed(item: tuple[Any, Any]) -> bool:
    """An entry as put() writes it: (kind, path) -> (digest, (record, problems))."""
    k, v = item
    return (isinstance(k, tuple) and len(k) == 2 and isinstance(v, tuple) and len(v) == 2
            and isinstance(v[0], str) and isinstance(v[1], tuple) and len(v[1]) == 2
            and isinstance(v[1][1], list))


def plain_pack(entries: Entries) -> Any:
    """A shard as it is: what the caches of other things than records store."""
    return entries


def plain_unpack(stored: Any) -> Entries | None:
    return stored if isinstance(stored, dict) else None


class ParseCache:
    """Parsed files. Subclasses keep other per-file results in the same way (kb.rulecache):
    they name their folder, the code they depend on, and what a well-formed entry is."""

    what = "parse"
    pinned: frozenset[tuple[str, str]] = frozenset()  # keys of entries that are no file's

    def __init__(self, root: Path, folder: Path | None = None,
                 extra: tuple[str | int, ...] = ()) -> None:
        self.folder = cache_path(root, self.what, folder).with_suffix("")
        self.key = (_FORMAT, kb.__version__, sys.version, self.fingerprint(), *extra)
        self.shards: list[Entries] = [{} for _ in range(SHARDS)]
        self.dirty: set[int] = set()  # shards to write
        self.wait_for_saves()
        self._load()
        for where in (self.folder, self.folder.parent):  # its shards; the memos beside it
            remove_stale_temporaries(where)

    def wait_for_saves(self) -> None:
        """A save this process started must land before the cache is read. (A subclass whose
        saves never go to a child need not wait for other caches' children.)"""
        wait_for_saves()

    def shard_path(self, index: int) -> Path:
        return shard_file(self.folder, index)

    def fingerprint(self) -> str:
        return code_fingerprint(PARSER_MODULES)

    def well_formed(self, item: tuple[Any, Any]) -> bool:
        return _well_formed(item)

    def _load(self) -> None:
        for index in range(SHARDS):
            entries = self.unpack(read_pickle(self.shard_path(index), self.key))
            if entries is not None and all(map(self.well_formed, entries.items())):
                self.shards[index] = entries

    # A shard of parsed records is stored as marshal data (kb.recordcodec), with the entries
    # it cannot hold pickled beside it; the subclasses' entries are pickled as they are.
    def pack(self, entries: Entries) -> Any:
        return encode(entries)

    def unpack(self, stored: Any) -> Entries | None:
        """The entries `pack` stored, or None when they are not as it stores them."""
        if not (type(stored) is tuple and len(stored) == 2 and type(stored[0]) is bytes
                and type(stored[1]) is dict):
            return None
        try:
            with paused_gc():
                entries = decode(stored[0])
        except (ValueError, TypeError, KeyError, IndexError, EOFError):
            return None
        entries.update(stored[1])
        return entries

    @property
    def entries(self) -> Entries:
        """Every entry of every shard (for tests and tools)."""
        return {k: v for shard in self.shards for k, v in shard.items()}

    def get(self, kind: str, path: str, digest_: str) -> Any:
        entry = self.shards[shard_of(path)].get((kind, path))
        if entry is not None and entry[0] == digest_:
            return entry[1]
        return None

    def put(self, kind: str, path: str, digest_: str, value: Any) -> None:
        index = shard_of(path)
        self.shards[index][(kind, path)] = (digest_, value)
        self.dirty.add(index)

    def keep_only(self, keep: set[tuple[str, str]]) -> None:
        """Drop the entries of files that are gone (when the cache is next saved), but those
        under the keys `pinned`, which are no file's."""
        pinned = self.pinned
        for index, shard in enumerate(self.shards):
            gone = [k for k in shard if k not in keep and k not in pinned]
            for k in gone:
                del shard[k]
            if gone:
                self.dirty.add(index)

    def save(self, keep: set[tuple[str, str]] | None = None, background: bool = True) -> None:
        """Write the changed shards; entries of files that are gone are dropped.

        With `background`, and many shards to write, a forked child writes them and this
        process goes on at once (wait_for_saves() waits for it; so does the exit)."""
        if keep is not None:
            self.keep_only(keep)
        if not self.dirty:
            return
        if not (background and len(self.dirty) >= BACKGROUND_MIN and _fork_to(self._write)):
            self._write()
        self.dirty = set()

    def save_changes(self, background: bool = True) -> None:
        self.save(background=background)

    def _write(self) -> None:
        for index in sorted(self.dirty):
            write_pickle(self.shard_path(index), self.key, self.pack(self.shards[index]),
                         LAZY_RECORDS)
        with suppress(OSError):  # the one-file cache of claimkb before the shards
            self.folder.with_suffix(".pickle").unlink(missing_ok=True)


class BlobCache(ParseCache):
    """Bytes made from each path, in the same shards: (kind, path) → (digest, bytes), where the
    digest says what they were made from (kb.graphcache) or what they are (kb.stubs)."""

    kind = ""
    pack, unpack = staticmethod(plain_pack), staticmethod(plain_unpack)

    def well_formed(self, item: tuple[Any, Any]) -> bool:
        """Checked for every entry at each load (13,000 at 10,000 claims): kept cheap."""
        k, v = item
        return (type(k) is tuple and len(k) == 2 and k[0] == self.kind and type(k[1]) is str
                and type(v) is tuple and len(v) == 2 and type(v[0]) is str
                and type(v[1]) is bytes)


# Children saving a cache; waited for before a cache is read again, and at exit.
_SAVERS: list[int] = []


def _fork_to(work: Callable[[], None]) -> bool:
    """Save in a forked child, at a lower priority; False when this platform cannot fork."""

    def niced() -> None:
        with suppress(OSError):
            os.nice(5)  # the parent's work comes first on a busy machine
        work()

    return fork_child(niced) is not None


def fork_child(work: Callable[[], None]) -> int | None:
    """Run `work()` in a forked child that may go on saving the cache after the caller is
    done with it; its id, or None when this platform cannot fork. The child is waited for
    before this process reads a cache again, and at its exit."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None  # a child forked beside other threads can deadlock on a lock they held
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: never return into the caller's code, never run its exit hooks
        code = 0
        try:
            # stop_saves interrupts it with SIGINT, even when the caller ignored SIGINT or
            # held it (kb.forks.signals_held): then write_pickle removes its temporary file
            signal.signal(signal.SIGINT, signal.default_int_handler)
            gc.disable()  # it lives briefly; its copy of the heap needs no collecting
            work()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    if not _SAVERS:
        atexit.register(wait_for_saves)
    _SAVERS.append(pid)
    return pid


def stop_saves(patience: float = 2.0) -> None:
    """Stop the cache saves this process started: the command was stopped (Ctrl-C, SIGTERM),
    and waiting for them kept it from ending (seconds at 100,000 claims). Each child is
    interrupted as Ctrl-C would (write_pickle removes its temporary file), and killed when it
    has not ended after `patience` seconds, or at a second Ctrl-C. A cache not saved costs
    time next run, never correctness."""
    pids = [pid for pid in _SAVERS if not _reaped(pid)]  # ended ones' ids are not ours now
    _SAVERS.clear()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + patience
    alive = set(pids)
    try:
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                if _reaped(pid):
                    alive.discard(pid)
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass  # stopped again: no more waiting
    for pid in alive:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _reaped(pid: int) -> bool:
    """Whether the child has ended (it is reaped here), or was reaped elsewhere."""
    try:
        return os.waitpid(pid, os.WNOHANG) != (0, 0)
    except ChildProcessError:
        return True


def wait_for_saves() -> None:
    """Wait until every cache save this process started in the background has finished."""
    while _SAVERS:
        pid = _SAVERS.pop()
        with suppress(ChildProcessError):  # already reaped by someone else's wait()
            os.waitpid(pid, 0)


TEMPORARY = ".tmp-"  # the start of a file being written (write_pickle, kb.memo, kb.gzdumps)
STALE_AFTER = 3600.0  # seconds since its last write: no save under way takes that long


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files of saves that were killed before they could remove them
    (stop_saves' last resort, SIGKILL, out of memory): those not written to for an hour. A
    newer one may be another process's save under way."""
    now = time.time()
    try:
        entries = os.scandir(folder)
    except OSError:
        return
    with entries:
        for entry in entries:
            if not entry.name.startswith(TEMPORARY):
                continue
            with suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_AFTER:
                    os.unlink(entry.path)


def cache_path(root: Path, what: str, folder: Path | None = None) -> Path:
    """The cache file of one kind for the knowledge base in `root`."""
    name = hashlib.blake2b(str(root.resolve()).encode(), digest_size=10).hexdigest()
    return (folder or default_dir()) / f"{what}-{name}.pickle"


def read_pickle(path: Path, key: Any) -> Any:
    """The value stored under `key`, or None when the file is missing, corrupt or foreign."""
    try:
        data = path.read_bytes()  # whole, then loads: a little faster than load() in chunks
    except OSError:
        return None
    return unpickle(data, key)


def unpickle(data: bytes, key: Any) -> Any:
    """The value `write_pickle` stored under `key` in `data`, or None when it is truncated,
    corrupt or foreign."""
    try:
        with paused_gc():
            stored_key, value = pickle.loads(data)
    except Exception:  # truncated, corrupt or foreign: start afresh
        return None
    return value if stored_key == key else None


# How ParseCache pickles records: read back lazily (kb.model.RecordBase).
LAZY_RECORDS: Mapping[type, Callable[[Any], Any]] = {
    kind: m.lazy_reduce for kind in m.KEPT}


def write_pickle(path: Path, key: Any, value: Any,
                 reducers: Mapping[type, Callable[[Any], Any]] | None = None,
                 ) -> tuple[int, int, int] | None:
    """Store `value` under `key`, atomically; a cache that cannot be written only costs time.
    `reducers` pickle those types their own way (pickle's dispatch_table). The Stat (inode,
    size, mtime) of the file written, or None when it could not be: taken from the file
    itself, not from `path`, which another process may have replaced since."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY)
        try:
            with os.fdopen(fd, "wb") as fh:
                with paused_gc():  # a tuple made for each record pickled: a full collection
                    pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
                    if reducers:
                        pickler.dispatch_table = {**copyreg.dispatch_table, **reducers}
                    pickler.dump((key, value))
                fh.flush()
                st = os.fstat(fh.fileno())
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
