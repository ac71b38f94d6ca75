"""Finding a quote in a source's text, after normalising white space and typographic quotes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"'})


@dataclass(frozen=True)
class Normalised:
    """A text with runs of white space made one space and curly quotes made straight.

    `offsets[i]` is the place in the original text of the normalised text's i-th character, so
    a match can be reported in the original's offsets (for oa:TextPositionSelector).
    """

    text: str
    offsets: tuple[int, ...]


def normalise(text: str) -> Normalised:
    out: list[str] = []
    offsets: list[int] = []
    space = True  # drop leading white space
    for i, ch in enumerate(text.translate(_QUOTES)):
        if ch.isspace():
            if not space:
                out.append(" ")
                offsets.append(i)
            space = True
            continue
        space = False
        out.append(ch)
        offsets.append(i)
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return Normalised("".join(out), tuple(offsets))


def norm_text(text: str) -> str:
    return " ".join(text.translate(_QUOTES).split())


def locate(haystack: Normalised, quote: str) -> tuple[int, int] | None:
    """The [start, end) of the quote's first occurrence, in the original text's offsets."""
    needle = norm_text(quote)
    if not needle:
        return None
    i = haystack.text.find(needle)
    if i < 0:
        return None
    j = i + len(needle) - 1
    return haystack.offsets[i], haystack.offsets[j] + 1


def nearest(haystack: Normalised, quote: str, limit: int = 200_000) -> str | None:
    """The stretch of text most like the quote, to show an editor what the source says."""
    needle = norm_text(quote)
    text = haystack.text[:limit]
    if not needle or not text:
        return None
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == " "]
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(needle)
    best, best_ratio = None, 0.0
    for s in starts:
        window = text[s : s + len(needle)]
        matcher.set_seq1(window)
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        r = matcher.ratio()
        if r > best_ratio:
            best, best_ratio = window, r
    return best if best_ratio >= 0.5 else None


def context(text: str, start: int, end: int, sentences: int = 1) -> tuple[str, str]:
    """About `sentences` sentences of text before and after [start, end)."""
    before = text[:start]
    after = text[end:]
    cut = len(before)
    for _ in range(sentences + 1):
        k = max(before.rfind(". ", 0, cut), before.rfind("\n", 0, cut))
        if k < 0:
            cut = 0
            break
        cut = k
    pre = before[cut:].lstrip(". \n")
    pos = 0
    for _ in range(sentences):
        k = min((x for x in (after.find(". ", pos), after.find("\n", pos)) if x >= 0),
                default=-1)
        if k < 0:
            pos = len(after)
            break
        pos = k + 1
    return pre, after[:pos]
