"""The stubs pagefind indexes: which to render, and the last build's, kept in the user's cache.

Pagefind cannot add to an index: after an edit that changes what any page shows to search (a
claim's text, its status), it indexes every stub again. Rendering all 13,000 stubs for that took
3.7 s at 10,000 claims, longer than the rest of such a build; so the stubs are kept, as the parse
cache keeps parsed files (a StubCache is a kb.cache.BlobCache: shards written atomically, a
cache from another version or that cannot be read ignored), each under its page's path with the
digest of its bytes, which is checked again when it is read. A build renders only the stubs of
the pages it renders, takes the others from here, and pagefind reads a new folder written in path
order (kb.search.Indexing): its index depends on the order in which it finds the files.

(A folder of stub files, kept between builds, was tried first: writing 13,000 small files cost
2 s and reading them back 0.4 s at 10,000 claims; 64 shards of 6 MB cost a tenth of that.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kb.cache import BlobCache
from kb.write import Page

if TYPE_CHECKING:
    from kb.manifest import Manifest
    from kb.pages import SiteModel
    from kb.render import Spec

# -- which stubs to make ----------------------------------------------------------------------
def to_render(model: SiteModel, root: Path, todo: list[Spec], page_keys: Mapping[str, str],
              manifest: Manifest | None) -> tuple[list[Page], dict[str, str]]:
    """The stubs of the indexed pages to render, and the digest of every indexed page's stub.

    A page kept from the last build shows what it showed, so its stub is the one the manifest
    has the digest of: only the rendered pages' stubs are made (all of them in a full build).
    """
    from kb import search
    from kb.render import make_env

    indexed = [p for p in page_keys if search.indexed(p)]
    old = manifest.stubs if manifest is not None else {}
    made = {s.path for s in todo if search.indexed(s.path)}
    made.update(p for p in indexed if p not in old)
    env = make_env(root)
    stubs = search.stub_pages(model, env, made if len(made) < len(indexed) else None)
    digests = {p: old[p] for p in indexed if p not in made}
    digests.update(search.stub_digests(stubs))
    return stubs, digests


def for_pagefind(model: SiteModel, root: Path, stubs: list[Page], digests: dict[str, str],
                 cache: bool, wanted: Collection[str] | None = None
                 ) -> tuple[list[Page], StubCache | None]:
    """The stubs to give pagefind, which reads every stub of the shards it indexes (`wanted`:
    their pages; None: all): with the cache of the last build's stubs, those it does not keep
    as they are now; without it, all of those."""
    from kb import search
    from kb.render import make_env

    folder = StubCache(root) if cache else None
    made = {page.path for page in stubs}
    rest = [p for p in (digests if wanted is None else wanted) if p not in made]
    # Without the cache, all of them; with it, the pages kept from the last build whose stubs
    # it lacks (a new cache …).
    need = set(rest) if folder is None else folder.missing({p: digests[p] for p in rest})
    if need:
        more = search.stub_pages(model, make_env(root), need)
        digests.update(search.stub_digests(more))
        stubs = sorted([*stubs, *more], key=lambda page: page.path)
    return stubs, folder


# -- the stubs of the last build ----------------------------------------------------------------
KIND = "stub"


class StubCache(BlobCache):
    """The stubs of the last build: (KIND, page path) → (digest, the stub's bytes)."""

    what = "stubs"
    kind = KIND

    def fingerprint(self) -> str:
        return ""  # what a stub holds is checked by its digest, whatever made it

    def wait_for_saves(self) -> None:
        pass  # written in place by write(), never by a child

    def stub(self, path: str, digest_: str) -> bytes | None:
        """The stub of this page, when it is kept with this digest and its bytes have it."""
        from kb.search import stub_digest  # kb.search imports this module

        data = self.get(KIND, path, digest_)
        return data if isinstance(data, bytes) and stub_digest(data) == digest_ else None

    def missing(self, digests: Mapping[str, str]) -> set[str]:
        """The paths of `digests` whose stub is not kept with that digest: to render again."""
        return {path for path, want in digests.items() if self.stub(path, want) is None}

    def write(self, stubs: Iterable[Page], digests: Mapping[str, str]) -> None:
        """Keep `stubs` (under their digests in `digests`) and the kept stubs of the other
        paths of `digests`; forget the rest; save the shards that changed, here and now."""
        for page in stubs:
            self.put(KIND, page.path, digests[page.path], page.data)
        self.keep_only({(KIND, path) for path in digests})
        self.save(background=False)

    def pages(self, digests: Mapping[str, str]) -> Iterator[Page]:
        """Every stub of `digests`, in path order (after write(), all of them are kept)."""
        for path in sorted(digests):
            yield self.page(path, digests[path])

    def page(self, path: str, digest_: str) -> Page:
        """The kept stub of this page with this digest; OSError when there is none."""
        data = self.stub(path, digest_)
        if data is None:
            raise OSError(f"the search stub of {path} is not in the cache")
        return Page(path, data)
