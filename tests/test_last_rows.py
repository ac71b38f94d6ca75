"""The rows of the last site's list of every claim, taken back by an edit build (kb.lastrows).

They are taken only from the page the last build wrote, only for claims whose row shows what
it did, and only when they are the rows kb.pages.SiteModel.row makes: the site is a full
build's either way.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from test_incremental import assert_same_site, build

from kb import lastrows
from kb.manifest import load_manifest
from kb.write import file_stat

GENERATED = (40, 7)  # claims, seed: the conftest's `generated` and `kb`


def _reword(path: Path) -> None:
    path.write_text(path.read_text("utf-8").replace('claim: "', 'claim: "Reworded, ', 1),
                    "utf-8")


def test_a_statement_edit_takes_every_other_row_back(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(kb, site)
    edited = sorted((kb / "claims").rglob("*.yaml"))[3]
    _reword(edited)
    result = build(kb, site)
    model = result.held[0]
    assert sorted(model._last_rows) == sorted(c for c in model.claim_ids if c != edited.stem)
    assert "Reworded, " in (site / lastrows.PATH).read_text("utf-8")
    build(kb, tmp_path / "full", incremental=False)
    assert_same_site(site, tmp_path / "full")


def test_rows_come_only_from_the_page_the_last_build_wrote(kb: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = build(kb, site)
    keys = result.held[1]
    manifest = load_manifest(kb, site)
    assert manifest is not None
    rows = lastrows.last_rows(site, keys, manifest)
    assert sorted(rows) == sorted(result.held[0].claim_ids)
    page = site / lastrows.PATH
    text = page.read_text("utf-8")
    assert all(row in text for row in rows.values())

    # another build's rows (the code, kb.toml or the templates differ), or a KB's own templates
    assert lastrows.last_rows(site, keys, dataclasses.replace(manifest, rows_common="other")) == {}
    keys.narrow = False
    assert lastrows.last_rows(site, keys, manifest) == {}
    keys.narrow = True

    # a claim whose row shows something else now
    cid = sorted(rows)[0]
    changed = dict(manifest.list_rows)
    changed[cid] = (changed[cid][0], b"another row")
    assert cid not in lastrows.last_rows(site, keys, dataclasses.replace(manifest,
                                                                        list_rows=changed))

    # an entry of the manifest that is not what Keys.list_rows writes
    broken = {**manifest.list_rows, cid: b"not a pair"}
    found = lastrows.last_rows(site, keys, dataclasses.replace(manifest, list_rows=broken))
    assert cid not in found and len(found) == len(rows) - 1

    # the file touched since (its Stat), or rows that are not SiteModel's
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 10**9))
    assert lastrows.last_rows(site, keys, manifest) == {}
    second = sorted(rows)[1]
    for odd in (text.replace(f'<a href="../claims/{cid}/">', "<a>", 1),  # no link
                text.replace(f'<a href="../claims/{cid}/">',  # two
                             f'<a href="../claims/{second}/"><a href="../claims/{cid}/">', 1)):
        page.write_text(odd, "utf-8")
        pages = {**manifest.pages, lastrows.PATH: ("", file_stat(page.stat()))}
        assert lastrows.last_rows(site, keys, dataclasses.replace(manifest, pages=pages)) == {}


def test_rows_unlike_those_made_now_are_not_taken(kb: Path, tmp_path: Path) -> None:
    result = build(kb, tmp_path / "site")
    model = result.held[0]
    rows = {cid: model.row_html(cid, lastrows.LAST_ROWS_ROOT) for cid in model.claim_ids}
    plain = [cid for cid, row in rows.items() if "&" not in row]
    escaped = [cid for cid, row in rows.items() if "&" in row]
    assert len(plain) >= 2 and escaped
    # first and last without an escaped character, so that the third compared is another
    order = [plain[0], *escaped, *plain[2:], plain[1]]
    made = {cid: rows[cid] for cid in order}
    for cid in (order[0], order[-1], escaped[0]):  # the three compared
        model._rows.clear()
        model.take_rows({**made, cid: made[cid].replace("claim-row", "claim-row old", 1)})
        assert model._last_rows == {}, cid
    model.take_rows(made)
    assert model._last_rows == made
