"""The plan of a build: which pages to render, and which to keep from the last site.

After one edit, planning is most of a build. Its walk of the last site (kb.manifest.scan_site:
46,000 lstat calls, 0.4-0.5 s of CPU at 10,000 claims) is done by a child forked when the build
starts (`SiteScanner`), at a lower priority, on the core the check leaves idle. The child
compares what it found with the last build's manifest, so only the files that differ cross the
pipe, as marshal data (plain data, which loads fast and cannot run code): none after an edit.
Every file's Stat crossed it before, 0.04 s at 10,000 claims and ~0.5 s at 100,000.
When it cannot be forked (no fork, or other threads running: `kb serve`, where a child could
wait for ever on a lock one of them held), fails, or has not finished when the plan needs it (a
busy machine), the walk is done here: the plan is the same either way (tests/test_plan.py).

The page keys are worked out here, not in a child as well: once the model is built, the dumps'
workers (kb.produce) keep the other core busy, and a child computing the claim pages' keys
made the planning slower, not faster (and repeated the parts both halves share).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.changed import Fresh
from kb.forks import Forked
from kb.incremental import Keys
from kb.manifest import Manifest, SiteChanges, scan_site
from kb.write import Link

if TYPE_CHECKING:
    from kb.render import Extras, Spec

NICE = 10  # the walk's child: below the build's own work, on an idle core only


class SiteScanner:
    """scan_site(out) against the manifest, in a child forked now (when the build starts), at a
    lower priority: it takes an idle core, never this process's. When this process needs the
    walk and the child has not finished it (a busy machine), the child is stopped and the walk
    is made here, as without a child. A file edited by hand after the walk is no more missed
    than with a walk made during the planning: either way the last look at the site is before
    the pages are written."""

    def __init__(self, out: Path, manifest: Manifest) -> None:
        self.out = out
        self.manifest = manifest

        def walk() -> Any:  # compared in the child: only what differs crosses the pipe
            found = self._walk()
            return None if found is None else (found.changed, found.extra, found.foreign)

        self._child = Forked(walk, nice=NICE)

    def result(self, wait: bool = False) -> SiteChanges | None:
        """The site against the manifest (the child's walk if it is done, or if asked to
        `wait` for it), or None when there is no site in `out`."""
        ok, value = self._child.result(wait)
        if ok and value is None:
            return None
        if (ok and isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], dict)
                and isinstance(value[1], int) and isinstance(value[2], bool)):
            return SiteChanges(*value)
        return self._walk()  # not forked, or the child failed: walk here

    def _walk(self) -> SiteChanges | None:
        scan = scan_site(self.out)
        return None if scan is None else self.manifest.compare(scan)

    def close(self) -> None:
        self._child.close()


def plan(all_specs: list[Spec], keys: Keys, manifest: Manifest | None, site: SiteChanges | None,
         extras: Extras, todo: list[Spec], kept: list[Link], keyed: dict[str, str],
         fresh: Fresh | None = None, remade: list[str] | None = None) -> None:
    """Sort the pages into those to render (`todo`) and those kept from the last site (`site`:
    its files as they are now against the manifest); `keyed`: each output file's page key.
    `fresh` (kb.changed.to_key): the claim, entity and source pages whose key is worked out;
    the others' is the one `manifest` recorded, which it would be again. None: every page's is.
    A claim's .ttl and .jsonld have a key of their own (Keys.alternates): `remade` gets the
    claims whose two files are made again, whether their page is or not.

    A file is kept as Manifest.reusable would keep it (its recorded key is the key, and the
    walk found it untouched), tested inline: after an edit at 100,000 claims this loop runs
    130,000 times and keeps 330,000 files, and a call and a list of paths for each of them
    (kb.render.outputs) took a fifth of it."""
    from kb.render import alternates_of

    pages = manifest.pages if manifest is not None and site is not None else None
    touched = site.changed if site is not None else {}
    prefix = f"{manifest.out}/" if manifest is not None else ""
    recorded = {} if manifest is None or fresh is None else manifest.pages
    worked_out = {} if fresh is None or not recorded else {
        "claim.html": fresh.claims, "entity.html": fresh.entities, "source.html": fresh.sources}
    alternates_on = extras.graph is not None and extras.record_alternates  # kb.render.outputs
    for spec in all_specs:
        path, template = spec.path, spec.template
        ids = worked_out.get(template)
        entry = None
        if ids is not None and _id(spec) not in ids:
            entry = recorded.get(path)
        key = entry[0] if entry is not None else keys.key(path, template, spec.extra)
        keyed[path] = key
        last = None if pages is None else entry if entry is not None else pages.get(path)
        if last is not None and last[0] == key and path not in touched:
            kept.append(Link(path, prefix + path, last[1]))
        else:
            todo.append(spec)
        if template != "claim.html" or not alternates_on:
            continue
        cid = _id(spec)
        ttl, jsonld = alternates_of(cid)
        a = None if pages is None else pages.get(ttl)
        known = None if entry is None else a if pages is recorded else recorded.get(ttl)
        alternates_key = known[0] if known is not None else keys.alternates(cid)
        keyed[ttl] = keyed[jsonld] = alternates_key
        b = None if pages is None else pages.get(jsonld)
        if (a is not None and b is not None and a[0] == alternates_key == b[0]
                and ttl not in touched and jsonld not in touched):
            kept.append(Link(ttl, prefix + ttl, a[1]))
            kept.append(Link(jsonld, prefix + jsonld, b[1]))
        elif remade is not None:
            remade.append(cid)


def _id(spec: Spec) -> str:
    """The id of a claim, source or entity page (kb.render makes their extra (("id", id),))."""
    extra = spec.extra
    return str(extra[0][1] if extra and extra[0][0] == "id" else dict(extra)["id"])
