"""The only module that writes into the site folder: everything at once, atomically.

Pages are written into a fresh folder beside the target (same file system, so the final
rename is atomic), post-processed there (the search index), and swapped in only when all of it
worked. A build that fails anywhere before the swap leaves the previous site as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class WriteError(Exception):
    """The pages cannot be written as asked (a path twice, or a path outside the site)."""


@dataclass(frozen=True)
class Page:
    """One file of the site: its path relative to the site root (forward slashes) and bytes."""

    path: str
    data: bytes


@dataclass(frozen=True)
class WriteResult:
    out: Path
    files: int
    bytes: int


def _checked_path(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path or path.endswith("/"):
        raise WriteError(f"not a site path: {path!r}")
    return p


class SiteWriter:
    """Writes pages into a staging folder; refuses to write one path twice."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self._seen: set[str] = set()
        self._dirs: set[Path] = set()
        self.bytes = 0

    def write(self, page: Page) -> None:
        rel = _checked_path(page.path)
        key = rel.as_posix()
        if key in self._seen:
            raise WriteError(f"refusing to write {key!r} twice")
        self._seen.add(key)
        target = self.staging.joinpath(*rel.parts)
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        target.write_bytes(page.data)
        self.bytes += len(page.data)

    @property
    def files(self) -> int:
        return len(self._seen)


def write_site(pages: Iterable[Page], out: Path,
               finish: Callable[[Path], None] | None = None) -> WriteResult:
    """Write every page into `out`, replacing what was there, or change nothing on failure.

    `finish` runs on the staging folder after the pages are written and before the swap (the
    search indexer); whatever it raises aborts the build like a failed page.
    """
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        writer = SiteWriter(staging)
        for page in pages:
            writer.write(page)
        if finish is not None:
            finish(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a site is for reading
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteResult(out, writer.files, writer.bytes)


def _swap(staging: Path, out: Path) -> None:
    """Put `staging` where `out` is: two renames, so `out` is never half-written."""
    if not out.exists():
        staging.rename(out)
        return
    if not out.is_dir():
        raise WriteError(f"{out} exists and is not a folder")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        old.rename(out)  # put the previous site back
        raise
    shutil.rmtree(old, ignore_errors=True)
