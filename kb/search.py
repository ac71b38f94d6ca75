"""The site's search index: pagefind, run by the build on the staging folder, or a small JSON index.

Pagefind (PyPI `pagefind[bin]`, which ships its binary) indexes the pages marked
`data-pagefind-body` (claims, sources, entities) and serves results from static files. Where it
is not installed, the build writes `search/index.json` (title, kind, URL, text of every claim,
source and entity) and the site's script searches it in the browser.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from kb.pages import SiteModel
from kb.write import Page, Stat, file_stat


class SearchError(Exception):
    """Pagefind was found but failed: the build stops before the new site is swapped in."""


def pagefind_executable() -> str | None:
    try:
        from pagefind_bin import get_executable  # type: ignore[import-untyped,unused-ignore]

        return str(get_executable())
    except Exception:
        return shutil.which("pagefind")


OUTPUT = "pagefind"  # the index's folder in the site
GLOB = "{claims,sources,entities}/*/index.html"  # the pages indexed
_INDEXED = ("claims", "sources", "entities")


def indexed(path: str) -> bool:
    """Whether pagefind reads this page of the site (GLOB, as a test on a path)."""
    parts = path.split("/")
    return len(parts) == 3 and parts[0] in _INDEXED and parts[2] == "index.html"


def index_key(executable: str, parts: dict[str, str]) -> str:
    """What the index is made from: pagefind itself, its options, and each page's indexed part.

    Pagefind cannot add to an index, only make one afresh; when this key is the one of the last
    build, the last index is kept as it is (the common case: evidence edited, statements not).
    """
    h = hashlib.blake2b(digest_size=16)
    try:
        st = os.stat(executable)
        h.update(f"{executable}:{st.st_size}:{st.st_mtime_ns}:{GLOB}:{OUTPUT}\n".encode())
    except OSError:
        return ""
    for path in sorted(parts):
        h.update(f"{path}:{parts[path]}\n".encode())
    return h.hexdigest()


def index_files(site: Path) -> dict[str, Stat]:
    """The index's files in the built site, as the manifest records them."""
    found: dict[str, Stat] = {}
    folder = site / OUTPUT
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            f = os.path.join(dirpath, name)
            found[Path(f).relative_to(site).as_posix()] = file_stat(os.lstat(f))
    return found


def run_pagefind(executable: str, site: Path) -> None:
    # Only the pages that are indexed: pagefind need not parse the listings at all.
    cmd = [executable, "--site", str(site), "--output-subdir", OUTPUT, "--silent",
           "--glob", GLOB]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SearchError(f"pagefind could not run: {exc}") from exc
    if done.returncode != 0:
        raise SearchError(f"pagefind failed: {(done.stderr or done.stdout).strip()[-500:]}")


def json_index(model: SiteModel) -> Page:
    """The fallback index: every claim, source and entity with the words to match."""
    items = []
    for cid in model.claim_ids:
        c = model.kb.claims[cid]
        items.append({"kind": f"claim · {model.status(cid)}", "title": c.claim,
                      "url": f"claims/{cid}/", "text": " ".join([c.claim, cid, *c.tags])})
    for sid in sorted(model.kb.sources):
        s = model.kb.sources[sid]
        items.append({"kind": "source", "title": s.title, "url": f"sources/{sid}/",
                      "text": f"{s.title} {sid}"})
    for eid in sorted(model.kb.entities):
        e = model.kb.entities[eid]
        items.append({"kind": "entity", "title": e.name, "url": f"entities/{eid}/",
                      "text": " ".join([e.name, eid, *e.aliases, e.description or ""])})
    data = json.dumps(items, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return Page("search/index.json", data.encode("utf-8"))
