"""Finding a quote in a source's text, after normalising white space and typographic quotes."""

from __future__ import annotations

import difflib
from array import array
from dataclasses import dataclass

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"'})


@dataclass(frozen=True)
class Normalised:
    """A text with runs of white space made one space and curly quotes made straight.

    `offsets[i]` is the place in the original text of the normalised text's i-th character, so
    a match can be reported in the original's offsets (for oa:TextPositionSelector). An array
    of machine integers: as a tuple of int objects they took nine times the room (10 MB of a
    build's memory at 10,000 claims, measured).
    """

    text: str
    offsets: array[int]


def normalise(text: str) -> Normalised:
    out: list[str] = []
    offsets = array("I")
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
    return Normalised("".join(out), offsets)


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


def nearest(haystack: Normalised, quote: str) -> str | None:
    """The stretch of text most like the quote, to show an editor what the source says.

    Anchored on the longest block the two share, then compared in a few windows around it:
    linear in the text's length, where sliding a window over all of it is quadratic.
    """
    needle = norm_text(quote)
    text = haystack.text
    if not needle or not text:
        return None
    matcher = difflib.SequenceMatcher(None, text, needle, autojunk=False)
    block = matcher.find_longest_match(0, len(text), 0, len(needle))
    if block.size == 0:
        return None
    origin = block.a - block.b  # where the quote would start if the block were in place
    best, best_ratio = None, 0.0
    scorer = difflib.SequenceMatcher(None, "", needle, autojunk=False)
    reach = len(needle) // 4 + 1
    starts = [i for i in range(max(0, origin - reach), min(len(text), origin + reach))
              if i == 0 or text[i - 1] == " "]  # windows start on a word
    for start in starts or [max(0, origin)]:
        window = text[start : start + len(needle)]
        scorer.set_seq1(window)
        if scorer.quick_ratio() <= best_ratio:
            continue
        ratio = scorer.ratio()
        if ratio > best_ratio:
            best, best_ratio = window, ratio
    return best.strip() if best is not None and best_ratio >= 0.5 else None


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
    for _ in range(sentences + 1):  # the end of the quoted sentence, then `sentences` more
        k = min((x for x in (after.find(". ", pos), after.find("\n", pos)) if x >= 0),
                default=-1)
        if k < 0:
            pos = len(after)
            break
        pos = k + 1
    return pre, after[:pos]
