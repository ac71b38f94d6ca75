"""Quotes: normalising, locating in the original text's offsets, nearest match, context."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.quotes import context, locate, nearest, norm_text, normalise

TEXT = ("Last year, the value of trade between Russia and China hit a record $245bn (£182bn).\n\n"
        "  Mr Milov  called it “deeply\tdisadvantageous” for\u00a0Russia. It isn’t over.\n")


def test_normalise_collapses_white_space_and_straightens_quotes() -> None:
    n = normalise("  a\t\tb\n\u00a0c “d” ‘e’ „f‟  ")
    assert n.text == "a b c \"d\" 'e' \"f\""
    assert len(n.offsets) == len(n.text)


def test_normalise_offsets_point_into_the_original() -> None:
    n = normalise(TEXT)
    for i, ch in enumerate(n.text):
        original = TEXT[n.offsets[i]]
        assert original == ch or (ch == " " and original.isspace()) or (
            ch in "'\"" and original in "‘’‚‛′“”„‟″")
    assert list(n.offsets) == sorted(set(n.offsets))


def test_normalise_of_nothing() -> None:
    assert normalise("") == normalise(" \n\t ")
    assert normalise("").text == ""


@pytest.mark.parametrize("quote", [
    "the value of trade between Russia and China hit a record $245bn",
    "Mr Milov called it \"deeply disadvantageous\"",
    "called it “deeply disadvantageous” for Russia.",
    "It isn't over.",
    "  record   $245bn\n(£182bn)  ",
    "Last",
])
def test_locate_gives_offsets_in_the_original_text(quote: str) -> None:
    found = locate(normalise(TEXT), quote)
    assert found is not None
    start, end = found
    assert norm_text(TEXT[start:end]) == norm_text(quote)
    # the match starts and ends on the quote's own characters, not on white space around it
    assert not TEXT[start].isspace() and not TEXT[end - 1].isspace()


@pytest.mark.parametrize("quote", [
    "the value of trade hit a record",  # words left out
    "deeply … disadvantageous",  # an ellipsis is not a wildcard
    "last year",  # case matters
    "",
    "   ",
])
def test_locate_refuses(quote: str) -> None:
    assert locate(normalise(TEXT), quote) is None


def test_locate_finds_the_first_occurrence() -> None:
    text = "a b. a  b."
    assert locate(normalise(text), "a b") == (0, 3)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab “”‘’\"'\n\t\u00a0.")), max_size=40),
       st.integers(0, 40), st.integers(0, 40))
def test_locate_maps_back_for_any_text(text: str, i: int, j: int) -> None:
    """Any stretch of the normalised text is found, and maps back to an equivalent original."""
    n = normalise(text)
    quote = n.text[min(i, j):max(i, j)]
    found = locate(n, quote)
    if not quote.strip():
        assert found is None
        return
    assert found is not None
    start, end = found
    assert norm_text(text[start:end]) == norm_text(quote)


def test_nearest_shows_the_closest_stretch() -> None:
    n = normalise(TEXT)
    near = nearest(n, "the value of trade between Russia and China reached a record $245bn")
    assert near is not None
    assert near.startswith("the value of trade between Russia and China")
    assert "record" in near


def test_nearest_with_nothing_alike() -> None:
    n = normalise(TEXT)
    assert nearest(n, "zzzz qqqq xxxx") is None
    assert nearest(n, "") is None
    assert nearest(normalise(""), "anything") is None


def test_nearest_prefers_the_better_of_two_candidates() -> None:
    n = normalise("trade fell by 5% in 2025. Trade rose by 9% in 2024.")
    assert nearest(n, "Trade rose by 8% in 2024") == "Trade rose by 9% in 2024"


def test_context_gives_a_sentence_either_side() -> None:
    text = "One. Two says the thing here. Three. Four."
    start = text.index("the thing")
    end = start + len("the thing")
    before, after = context(text, start, end)
    assert before == "One. Two says "
    assert after == " here. Three."
    assert context(text, start, end, sentences=0) == ("Two says ", " here.")


def test_context_at_the_edges_of_the_text() -> None:
    text = "Alpha beta. Gamma."
    assert context(text, 0, 5) == ("", " beta. Gamma.")
    assert context(text, 12, len(text)) == ("Alpha beta. ", "")


def test_context_stops_at_line_breaks() -> None:
    text = "Heading\nA line with the quote in it\nNext line\nLast line\n"
    start = text.index("the quote")
    before, after = context(text, start, start + 9, sentences=0)
    assert (before, after) == ("A line with ", " in it\n")
