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
from pathlib import Path
from typing import Any

from kb.pages import LAST_ROWS_ROOT, ROW_LINK
from kb.write import file_stat

PATH = "claims/index.html"
_START, _END = b'<ul class="claims">\n', b"</ul>"
_ROW, _CLOSE = b'<li class="claim-row" ', b"</li>\n"
_LINK = (ROW_LINK + LAST_ROWS_ROOT + "claims/").encode()  # a row's link to its claim


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
    if rows.pop():
        return {}
    list_row, claims = keys.list_row, keys.m.kb.claims
    found: dict[str, str] = {}
    try:
        for row in rows:
            # One link a row (its texts are escaped: `<a` is the row's own), to its claim.
            at = row.find(_LINK) + len(_LINK)
            close = row.find(b'/">', at)
            if not (row.startswith(_ROW) and at >= len(_LINK) and close > at
                    and row.count(b"<a") == 1):
                return {}  # not a list SiteModel.row made
            cid = row[at:close].decode()
            old = old_rows.get(cid)
            if (type(old) is tuple and len(old) == 2 and cid in claims
                    and old[1] == list_row(cid)):
                found[cid] = (row + _CLOSE).decode()
    except UnicodeDecodeError:
        return {}
    return found
