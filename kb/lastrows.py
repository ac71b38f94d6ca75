"""The rows of the last site's list of every claim, taken back by an edit build.

A statement edit renders the listings its claim is in again, among them the list of every
claim, which makes each claim's row (kb.pages.SiteModel.row): 0.13 s at 10,000 claims, most of
that page's time, on the build's critical path. The last site holds those rows, one after the
other in claims/index.html. A row is taken back from there for a claim whose row shows what it
showed (its list row key, kb.incremental.Keys.list_row, is the last build's), when the page is
the file the last build wrote (its Stat as the manifest records it) and its rows are as
SiteModel.row writes them. Anything else, and the rows are made again. The build's result is
the same either way (tests/test_last_rows.py compares it with a full build).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kb.pages import KEPT_ROOT
from kb.write import file_stat

PATH = "claims/index.html"
_START, _END = b'<ul class="claims">\n', b"</ul>"
_ROW, _CLOSE = b'<li class="claim-row" ', b"</li>\n"
# A row's link, the first in it: no other holds `<a` (its texts are escaped).
_LINK = re.compile(rb'<a href="' + re.escape(KEPT_ROOT.encode()) + rb'claims/([^/"<]+)/"')


def last_rows(site: Path, keys: Any, manifest: Any) -> dict[str, str]:
    """claim id → its row in the last site's list of every claim, as written there, for the
    claims whose row shows what it did then (for kb.pages.SiteModel.take_rows)."""
    recorded = manifest.pages.get(PATH)
    old_rows = manifest.list_rows
    if (recorded is None or not old_rows or not keys.narrow
            or keys.common != manifest.rows_common):
        return {}
    try:
        with open(site / PATH, "rb") as fh:
            if file_stat(os.fstat(fh.fileno())) != recorded[1]:
                return {}  # not the file the last build wrote
            data = fh.read()
    except OSError:
        return {}
    # Bytes, each row decoded alone: the page's text is 12 MB in memory (its badges' icons make
    # it two bytes a character), and slicing and splitting that cost twice as much.
    start = data.find(_START) + len(_START)
    end = data.find(_END, start)
    if start < len(_START) or end < 0:
        return {}
    rows = data[start:end].split(_CLOSE)  # each row ends so, and holds no other
    ids = _LINK.findall(data, start, end)
    if rows.pop() or len(ids) != len(rows):
        return {}
    list_row, claims = keys.list_row, keys.m.kb.claims
    found: dict[str, str] = {}
    try:
        for name, row in zip(ids, rows, strict=True):
            cid = name.decode()
            old = old_rows.get(cid)
            if (old is not None and row.startswith(_ROW) and cid in claims
                    and old[1] == list_row(cid)):
                found[cid] = (row + _CLOSE).decode()
    except UnicodeDecodeError:
        return {}
    return found
