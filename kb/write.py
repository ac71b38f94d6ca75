"""The only module that writes into the site folder: everything at once, atomically.

Pages are written into a fresh folder beside the target (same file system, so the final
rename is atomic), post-processed there (the search index), and swapped in only when all of it
worked. A build that fails anywhere before the swap leaves the previous site as it was.
Pages arrive as a stream (they are never all in memory); a page that did not change since the
previous build arrives as a `Link` to its file in the previous site, and is hard-linked (one
syscall, no bytes copied) or, where the file system cannot, copied.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple


class WriteError(Exception):
    """The pages cannot be written as asked (a path twice, or a path outside the site)."""


@dataclass(frozen=True)
class Page:
    """One file of the site: its path relative to the site root (forward slashes) and bytes."""

    path: str
    data: bytes


# What the build's manifest records of each written file, to recognise it next time:
# (inode, size, mtime in ns). A hard link keeps all three, an edit by hand changes them.
Stat = tuple[int, int, int]


class Link(NamedTuple):
    """A file of the previous site that is kept as it is: linked into the new one (a named
    tuple: an edit build makes one for each of ~33,000 kept files at 10,000 claims)."""

    path: str
    source: str | Path  # the file in the previous site (a str: cheaper, by the ten thousand)
    stat: Stat | None = None  # the source's Stat, when known (a hard link keeps it)


def file_stat(st: os.stat_result) -> Stat:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class Done:
    """What a worker of the build wrote (kb.produce, kb.dumpsproc): each file's Stat, and
    their bytes; `fresh`: by a new interpreter, not a fork of the build."""

    stats: dict[str, Stat] = field(default_factory=dict)
    bytes: int = 0
    fresh: bool = False  # told, for tests and diagnosis, by kb.dumpsproc's interpreter


def answer(conn: Any, work: Callable[[], object]) -> None:
    """A worker's reply to the build through `conn` (a multiprocessing connection): (True,
    what `work` returned) or (False, the error it raised, for the build to raise)."""
    try:
        reply: tuple[bool, object] = (True, work())
    except BaseException as exc:
        reply = (False, exc)
    try:
        conn.send(reply)
    except Exception as exc:  # an error that cannot be pickled
        conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


class WorkerDied(Exception):
    """A worker process of the build ended without answering (killed, out of memory …)."""


class Recording:
    """Files written through a SiteWriter, each one's Stat and bytes counted in `done`."""

    def __init__(self, writer: SiteWriter) -> None:
        self.writer, self.done = writer, Done()

    def put(self, page: Page) -> None:
        self.writer.write(page)
        self.done.stats[page.path] = self.writer.stats[page.path]
        self.done.bytes += len(page.data)

    def append(self, path: str, data: bytes) -> None:
        """Part of a file too large to hold whole (a dump); `close` ends it."""
        self.writer.append(path, data)
        self.done.bytes += len(data)

    def close(self) -> Done:
        for path in self.writer.close_appended():
            self.done.stats[path] = self.writer.stats[path]
        return self.done


def scratch_file(folder: Path) -> int:
    """A descriptor of a new temporary file in `folder` that has no name (the kernel frees it
    with its last descriptor): for data too large to hold that another process reads back."""
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):  # no O_TMPFILE here, or not on this file system
        fd, name = tempfile.mkstemp(dir=folder, prefix=".kb-scratch-")
        os.unlink(name)
        return fd


@dataclass(frozen=True)
class WriteResult:
    out: Path
    files: int
    bytes: int
    stats: dict[str, Stat] = field(default_factory=dict)  # path → its file's Stat
    linked: int = 0  # files kept from the previous site (linked, or left in place)
    made: dict[str, Stat] = field(default_factory=dict)  # those of `stats` made by this build


def _checked_path(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path or path.endswith("/"):
        raise WriteError(f"not a site path: {path!r}")
    return p


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class SiteWriter:
    """Writes pages into a staging folder; refuses to write one path twice."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self._seen: set[str] = set()
        self._dirs: set[str] = set()
        self.bytes = 0
        self.linked = 0
        self.stats: dict[str, Stat] = {}
        self._open: dict[str, tuple[str, int]] = {}  # path → key, descriptor: `append`'s files
        self._made: list[str] = []  # the keys of the files it created, for `discard`

    def _target(self, path: str) -> tuple[str, str]:
        rel = _checked_path(path)
        key = rel.as_posix()
        if key in self._seen:
            raise WriteError(f"refusing to write {key!r} twice")
        self._seen.add(key)
        # Plain strings and os calls: at 30,000 files, pathlib's objects cost more than I/O.
        target = os.path.join(self.staging, *rel.parts)
        parent = os.path.dirname(target)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        return key, target

    def _create(self, path: str) -> tuple[str, int]:
        """A new file at `path`: its key and an open descriptor."""
        key, target = self._target(path)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another process of the build wrote it
            raise WriteError(f"refusing to write {key!r} twice") from None
        self._made.append(key)
        return key, fd

    def write(self, page: Page) -> None:
        key, fd = self._create(page.path)
        try:
            _write_all(fd, page.data)
            self.stats[key] = file_stat(os.fstat(fd))
        finally:
            os.close(fd)
        self.bytes += len(page.data)

    def append(self, path: str, data: bytes) -> None:
        """Add `data` to the end of the file at `path`, made by the first call: a file too
        large to hold whole (a dump), written as it is made. `close_appended` ends it."""
        made = self._open.get(path)
        if made is None:
            made = self._open[path] = self._create(path)
        _write_all(made[1], data)
        self.bytes += len(data)

    def close_appended(self) -> list[str]:
        """End the files `append` made (their Stats are then known); their paths."""
        files, self._open = sorted(self._open.items()), {}
        try:
            for _path, (key, fd) in files:
                self.stats[key] = file_stat(os.fstat(fd))
        finally:
            for _path, (_key, fd) in files:  # every one, whatever failed
                os.close(fd)
        return [path for path, _made in files]

    def discard(self) -> None:
        """Remove the files `write` and `append` made (a task that is done again from its
        start, in another process: kb.dumpsproc); they may then be made again."""
        for _key, fd in self._open.values():
            os.close(fd)
        self._open = {}
        for key in self._made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.staging, *key.split("/")))
            self._seen.discard(key)
            self.stats.pop(key, None)
        self._made = []

    def link(self, item: Link) -> None:
        """Keep a file of the previous site: a hard link, or a copy where links fail."""
        key, target = self._target(item.path)
        try:
            os.link(item.source, target)
            known = item.stat
        except OSError:
            shutil.copyfile(item.source, target)
            known = None
        if known is None:
            known = file_stat(os.stat(target))
        self.stats[key] = known
        self.bytes += known[1]
        self.linked += 1

    def put(self, item: Page | Link) -> None:
        if isinstance(item, Link):
            self.link(item)
        else:
            self.write(item)

    @property
    def files(self) -> int:
        return len(self._seen)


class Staging:
    """A fresh folder beside `out`, on its file system, that becomes `out` at `commit()`.

    Writers in several processes may fill it at once (each with its own SiteWriter); the
    build checks beforehand that no two of them write one path (`check_unique`), and O_EXCL
    makes the file system refuse it anyway.
    """

    def __init__(self, out: Path) -> None:
        self.out = out.resolve()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_left_behind(self.out)
        self.path = Path(tempfile.mkdtemp(prefix=_tagged(self.out, "new"), dir=self.out.parent))

    def writer(self) -> SiteWriter:
        return SiteWriter(self.path)

    def commit(self) -> None:
        os.chmod(self.path, 0o755)  # mkdtemp makes it private; a site is for reading
        _swap(self.path, self.out)

    def abort(self) -> None:
        """Throw the staging folder away at once: renamed beside the site as a set-aside
        folder, which a detached process deletes (`remove_later`), as the previous site after a
        swap. Deleting it here kept Ctrl-C waiting (1.7 s for the 46,000 files of a site of
        10,000 claims), and a second Ctrl-C stopped the deletion half-way. Never raises: it
        runs while the build's own error goes up."""
        try:
            old = _set_aside(self.path, self.out)
        except OSError:  # gone already (a commit in place ends by removing it), a full disk
            shutil.rmtree(self.path, ignore_errors=True)
            return
        remove_later(old)

    def commit_in_place(self, remove: Iterable[str] = (), folders: Iterable[str] = ()) -> None:
        """Move the staged files over those of the existing site, and delete `remove`.

        For an incremental build that changed a few files of thousands: everything was made
        and written before this is called, so a failed build still leaves the site as it was;
        what this gives up is only that a reader might, for the milliseconds of the renames,
        see some files new and some old. Each file is replaced atomically (rename). Each of
        `folders` (e.g. the search index's shards that changed: pagefind/3) is staged whole and
        replaced whole, by two renames. A large file replaced or removed is first linked or
        moved into a folder set aside beside the site, which a detached process deletes
        (`remove_later`): freeing its blocks is not waited for.
        """
        out = self.out
        if not out.is_dir():
            raise WriteError(f"{out} is not a folder")
        whole = set(folders)
        old: Path | None = None  # where replaced folders are set aside, beside the site

        def set_aside() -> Path:
            nonlocal old
            if old is None:
                old = Path(tempfile.mkdtemp(prefix=_tagged(out, "old"), dir=out.parent))
            return old

        for n, folder in enumerate(sorted(whole)):
            src, dst = self.path / folder, out / folder
            if src.is_dir():
                if dst.exists():
                    dst.rename(set_aside() / str(n))
                dst.parent.mkdir(parents=True, exist_ok=True)  # a folder in a folder (pagefind/3)
                src.rename(dst)
        aside = 0  # large files linked or moved into the set-aside folder
        try:
            for dirpath, dirnames, files in os.walk(self.path):
                rel = os.path.relpath(dirpath, self.path)
                if rel == ".":
                    dirnames[:] = [d for d in dirnames if d not in whole]
                target = str(out) if rel == "." else os.path.join(out, rel)
                if files:
                    os.makedirs(target, exist_ok=True)
                for name in files:
                    into = os.path.join(target, name)
                    # A large file replaced is linked aside first, so that the rename does
                    # not free its blocks: ext4 took 6-8 ms a dump (6-9 MB) at 10,000
                    # claims, a third of the commit; the detached removal frees them.
                    if _large(into):
                        with contextlib.suppress(OSError):  # then replaced as it is
                            os.link(into, set_aside() / f"f{aside}")
                            aside += 1
                    os.replace(os.path.join(dirpath, name), into)
            for path in remove:
                gone = _checked_path(path)
                where = str(out.joinpath(*gone.parts))
                with contextlib.suppress(FileNotFoundError):
                    if _large(where):  # as above: moved aside, freed by the removal
                        os.rename(where, set_aside() / f"f{aside}")
                        aside += 1
                    else:
                        os.unlink(where)
                for parent in gone.parents:  # folders the removal left empty go too
                    if parent == PurePosixPath("."):
                        break
                    try:
                        os.rmdir(out.joinpath(*parent.parts))
                    except OSError:
                        break
        finally:
            if old is not None:
                remove_later(old)
        shutil.rmtree(self.path, ignore_errors=True)


LARGE = 1 << 18  # bytes: a replaced file of this size or more is unlinked by remove_later


def _large(path: str) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_size >= LARGE
    except OSError:
        return False


def _plain(path: str) -> bool:
    """A path already in normal form: no empty, `.` or `..` part, no backslash. (Substring
    tests of the path between slashes, not a split: 46,000 paths a build at 10,000 claims.)"""
    inner = f"/{path}/"
    return bool(path) and "\\" not in path and "//" not in inner and "/./" not in inner \
        and "/../" not in inner


def check_unique(paths: Iterable[str]) -> None:
    """Raise WriteError when a path is not a site path or comes twice (before any is written)."""
    seen: set[str] = set()
    for path in paths:
        key = path if _plain(path) else _checked_path(path).as_posix()
        if key in seen:
            raise WriteError(f"refusing to write {key!r} twice")
        seen.add(key)


def write_site(pages: Iterable[Page | Link], out: Path,
               finish: Callable[[Path], None] | None = None) -> WriteResult:
    """Write every page into `out`, replacing what was there, or change nothing on failure.

    `finish` runs on the staging folder after the pages are written and before the swap (the
    search indexer); whatever it raises aborts the build like a failed page.
    """
    staging = Staging(out)
    try:
        writer = staging.writer()
        for page in pages:
            writer.put(page)
        if finish is not None:
            finish(staging.path)
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    return WriteResult(staging.out, writer.files, writer.bytes, writer.stats, writer.linked)


def place_folder(made: Path, dst: Path, last: Path | None) -> tuple[int, int]:
    """Put the files of a folder made outside the site (pagefind's index, on tmpfs) at `dst`
    in the staging folder; return how many were linked and how many copied.

    A file whose bytes are those of the regular file at the same place under `last` (the last
    site's copy, which the caller knows to be as the last build left it) is hard-linked from
    there; any other is copied. After an edit nearly all of a re-indexed shard's files are the
    last build's (pagefind names most by a hash of their bytes), and a link costs a tenth of a
    new file on some disks (docs/site.md). Bytes are compared, not names, so only an equal file
    is ever linked.
    """
    linked = copied = 0
    for dirpath, _dirs, files in os.walk(made):
        rel = os.path.relpath(dirpath, made)
        target = dst if rel == "." else dst / rel
        target.mkdir(parents=True, exist_ok=True)
        # a folder of the last site that leads elsewhere: nothing is taken from it
        here = None if last is None or _links_out(last, rel) else os.path.join(last, rel)
        for name in sorted(files):
            new = os.path.join(dirpath, name)
            old = None if here is None else os.path.join(here, name)
            if old is not None and _same_bytes(old, new):
                with contextlib.suppress(OSError):  # another file system, or no links: copy
                    os.link(old, target / name, follow_symlinks=False)
                    linked += 1
                    continue
            shutil.copyfile(new, target / name)
            copied += 1
    return linked, copied


def _links_out(last: Path, rel: str) -> bool:
    """Whether `last` or a folder on the way to last/rel is a symbolic link."""
    path = str(last)
    if os.path.islink(path):
        return True
    for part in [] if rel == "." else rel.split(os.sep):
        path = os.path.join(path, part)
        if os.path.islink(path):
            return True
    return False


def _same_bytes(old: str, new: str) -> bool:
    """Whether `old` is a regular file (not a symbolic link, a pipe or a folder) that holds the
    bytes of `new`."""
    try:
        fd = os.open(old, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != os.stat(new).st_size:
            return False
        with open(fd, "rb", closefd=False) as a, open(new, "rb") as b:
            return a.read() == b.read()
    finally:
        os.close(fd)


def set_aside_prefix(out: Path) -> str:
    """The start of the name beside `out` of what a build replaced (the previous site, or the
    folders an in-place commit swapped out) while a detached process deletes it: any build's
    (a build names its own with `_tagged`)."""
    return _beside(out, "old")


def _beside(out: Path, kind: str) -> str:
    """The start of the name of any build's folder beside `out` (`kind`: "new", a staging
    folder; "old", what a build set aside)."""
    return f".{out.name}.{kind}-"


def _tagged(out: Path, kind: str) -> str:
    """The start of the name of a folder this build of `out` makes beside it (`_beside`)."""
    return _beside(out, kind) + process_tag()


def process_tag() -> str:
    """For the name of a temporary folder: this process's id, its pid namespace and the
    machine's boot, for a later process to tell one that a killed process left behind
    (`left_behind`)."""
    return f"{os.getpid()}.{_where()}-"


@functools.cache  # neither changes while the process lives (a fork keeps its namespace)
def _where() -> str:
    """Where a process id means this process: its pid namespace and the machine's boot id
    ("0" where either cannot be read; then nothing is ever taken for left behind). The
    namespace ids of two machines can be equal (the first is a kernel constant); their boot
    ids are not, so two machines sharing a folder (NFS) never remove each other's."""
    try:
        space = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip().replace("-", "")[:12]
    except OSError:
        return "0"
    return f"{space}.{boot}" if space.isdigit() and boot.isalnum() else "0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # another user's, or no such id: kept
        return True
    return True


STALE = 3600.0  # seconds since a trash folder last changed, after which it is anyone's


def left_behind(folder: Path, prefixes: Iterable[str], trash: Iterable[str] = ()) -> list[Path]:
    """The folders in `folder` named `prefix` + `process_tag()` + anything by a process of this
    user, pid namespace and machine boot that is gone (killed: SIGKILL, out of memory). Names
    of older versions, links, files and anything else are never among them, nor anything
    where the namespace or boot cannot be read.

    With a prefix of `trash` (folders set aside only to be deleted), also those of this user
    from another boot or namespace that have not changed for STALE seconds: a reboot stopped
    their deletion, and no process can still want them (a set-aside folder is read only in the
    instant between two renames, and changes while it is filled)."""
    here, wanted, garbage = _where(), tuple(prefixes), tuple(trash)
    found: list[Path] = []
    if here == "0":
        return found
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        for prefix in wanted:
            if not entry.name.startswith(prefix):
                continue
            tag, dash, _rest = entry.name[len(prefix):].partition("-")
            pid, dot, where = tag.partition(".")
            mine = where == here
            if not (dash and dot and pid.isascii() and pid.isdigit()
                    and (mine or prefix in garbage)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()):
                continue
            if (int(pid) != os.getpid() and not _alive(int(pid)) if mine
                    else time.time() - st.st_ctime > STALE):
                found.append(Path(entry.path))
                break
    return found


def remove_left_behind(out: Path) -> list[Path]:
    """Remove, in a detached process each (`remove_later`), the folders beside `out` that a
    build of it made and left behind when it was killed: a staging folder can be the size of
    the site. Returns them."""
    found = left_behind(out.parent, (_beside(out, "new"), _beside(out, "old")),
                        trash=(_beside(out, "old"),))
    for folder in found:
        remove_later(folder)
    return found


def _swap(staging: Path, out: Path) -> None:
    """Put `staging` where `out` is: two renames, so `out` is never half-written."""
    if not out.exists():
        staging.rename(out)
        return
    if not out.is_dir():
        raise WriteError(f"{out} exists and is not a folder")
    old = _set_aside(out, out)
    try:
        staging.rename(out)
    except BaseException:  # an error, or Ctrl-C / SIGTERM between the two renames
        old.rename(out)  # put the previous site back
        raise
    remove_later(old)


def _set_aside(folder: Path, out: Path) -> Path:
    """Rename `folder` (the previous site, or a staging folder) beside `out` under a name of
    this build's that no other folder has (`_tagged`, "old"), for `remove_later`; its new path."""
    old = Path(tempfile.mkdtemp(prefix=_tagged(out, "old"), dir=out.parent))
    old.rmdir()
    folder.rename(old)
    return old


def remove_later(folder: Path) -> None:
    """Delete the previous site in a detached process: the new one is in place already.

    Removing ten thousand folders costs seconds on some file systems (0.7 ms a folder here),
    longer than the rest of an incremental build. The system's `rm -rf` where there is one
    (started in ~1 ms; a Python interpreter took ~25 ms of a core the build's end shares, and an
    edit build starts one each time: kb.write.Staging.commit_in_place), else Python's shutil.
    Where no process can be started, now.
    """
    rm = _rm()
    command = ([rm, "-rf", "--", str(folder)] if rm else
               [sys.executable, "-c",
                "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)",
                str(folder)])
    try:
        subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def _rm() -> str | None:
    return shutil.which("rm") if os.name == "posix" else None
