"""What the site's model (kb.pages.build_model) keeps between builds, in the user's cache.

Pieces of the model that cost the most and rarely change are kept (kb.memo: marshal data behind
its digest) under digests of what they are made from, so a build after one edit does not work
them out again; a memo that is missing, damaged, stale or of other code is not used (tested in
tests/test_build_caches.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import kb as kb_package
from kb.memo import read_memo, write_memo
from kb.quotes import Normalised, locate, normalise

if TYPE_CHECKING:
    from kb.pages import SiteModel

_FORMAT = 2  # 2: in kb/modelmemo.py (was kb/pages.py)


@dataclass
class ModelMemo:
    """`located`: (digest of a snapshot's text, quote) → where the quote is in it, or None —
    normalising the texts took 1.3 s at 10,000 claims. `peers`: the quantity charts' peers of
    every claim (those with any), valid while `peers_key`, a digest of what decides them, is
    the same — 0.8 s."""

    located: dict[tuple[str, str], tuple[int, int] | None] = field(default_factory=dict)
    peers_key: str = ""
    peers: dict[str, list[str]] = field(default_factory=dict)
    used: dict[tuple[str, str], tuple[int, int] | None] = field(default_factory=dict)
    changed: bool = False


# The modules whose code decides what the memo holds (a test keeps this list in step).
MEMO_MODULES = ("pages", "quantities", "modelmemo", "quotes", "charts", "model", "memo")


def _memo_key() -> tuple[object, ...]:
    from kb.cache import code_fingerprint

    return (_FORMAT, kb_package.__version__, sys.version,
            code_fingerprint(MEMO_MODULES))


def memo_path(root: Path, folder: Path | None = None) -> Path:
    from kb.cache import cache_path

    return cache_path(root, "model", folder).with_suffix(".memo")


def load_memo(root: Path, folder: Path | None = None) -> ModelMemo:
    """The memo of the last build of `root` (an empty one when there is none to trust)."""
    value = read_memo(memo_path(root, folder), _memo_key())
    if not (isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], dict)
            and isinstance(value[1], str) and isinstance(value[2], dict)):
        return ModelMemo()
    return ModelMemo(value[0], value[1], value[2])


def save_memo(root: Path, memo: ModelMemo, model: SiteModel,
              folder: Path | None = None) -> None:
    """Keep what this build worked out, when it differs from what was read: only the quotes it
    looked up, so the memo does not grow with every past edit. A build that patched the
    model's indexes (kb.modelindex) looked up only the changed claims' quotes and keeps the
    others it read too: a quote edited away stays until a build makes the indexes afresh."""
    complete = model._peers_known or len(model._peers) >= len(model.claim_ids)
    peers_key = model.peers_key  # worked out once, by build_model
    peers = ({c: p for c, p in model._peers.items() if p} if complete else {})
    if not memo.changed and memo.used == memo.located and (
            not complete or (peers_key == memo.peers_key and peers == memo.peers)):
        return
    write_memo(memo_path(root, folder), _memo_key(),
               (memo.used, peers_key if complete else "", peers))


def locate_quote(memo: ModelMemo | None, normalised: dict[str, Normalised], sid: str,
                 text_digest: str, text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` is in the text of source `sid`: from the memo when it knows, else found
    (the text normalised once, into `normalised`) and added to it."""
    if memo is None:
        if sid not in normalised:
            normalised[sid] = normalise(text)
        return locate(normalised[sid], quote)
    key = (text_digest, quote)
    if key in memo.used:
        return memo.used[key]
    if key in memo.located:
        where = memo.located[key]
    else:
        if sid not in normalised:
            normalised[sid] = normalise(text)
        where = locate(normalised[sid], quote)
        memo.changed = True
    memo.used[key] = where
    return where
