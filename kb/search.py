"""The site's search index: pagefind, run by the build on the staging folder, or a small JSON index.

Pagefind (PyPI `pagefind[bin]`, which ships its binary) indexes the pages marked
`data-pagefind-body` (claims, sources, entities) and serves results from static files. Where it
is not installed, the build writes `search/index.json` (title, kind, URL, text of every claim,
source and entity) and the site's script searches it in the browser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from kb.pages import SiteModel
from kb.write import Page


class SearchError(Exception):
    """Pagefind was found but failed: the build stops before the new site is swapped in."""


def pagefind_executable() -> str | None:
    try:
        from pagefind_bin import get_executable  # type: ignore[import-untyped,unused-ignore]

        return str(get_executable())
    except Exception:
        return shutil.which("pagefind")


def run_pagefind(executable: str, site: Path) -> None:
    # Only the pages that are indexed: pagefind need not parse the listings at all.
    cmd = [executable, "--site", str(site), "--output-subdir", "pagefind", "--silent",
           "--glob", "{claims,sources,entities}/*/index.html"]
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
