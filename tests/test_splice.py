"""Long lists put into pages as bytes (kb.splice): the same bytes as rendering them whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest

from kb import splice
from kb.build import BuildOptions, build_site
from kb.check import CheckOptions

GENERATED = (120, 5)
LONG = "<li>a row &amp; more</li>\n" * 4000  # over HOLD_FROM


def _env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True)
    env.globals["held"] = jinja2.pass_context(lambda context, html: splice.hold(context, html))
    return env


@pytest.mark.parametrize("source", [
    "<p>{{ held(x) }}</p>",
    "<p>{{ held(x) }}</p><p>{{ held(y) }}</p>",
    "{% set l = held(x) %}{{ l }}{{ l }}",  # the marker twice
    "{% set l = held(x) %}{{ l }}{{ l }}{{ held(y) }}",  # twice, before another list
    "<p>{{ held(x)|length }}</p>",  # the template looks into the list
    "<p>{{ held(y) }}{{ held(x)|upper }}</p>",  # the second marker lost
    "{% set a = held(x) %}{% set b = held(y) %}{{ b }}{{ a }}{{ b }}",  # out of order, twice
    "{% set a = held(x) %}<p title=\"{{ z }}\">{{ held(y) }}</p>",  # one lost, a text forging it
    "<p>{{ z }}</p>{{ held(x) }}",  # a text like a marker, around one
], ids=["one", "two", "twice", "twice-then-another", "length", "upper", "out-of-order",
        "lost-and-forged", "forged"])
@pytest.mark.parametrize("x", [LONG, f"\x00kb-held-list-0\x00{LONG}", f"{LONG}\x00kb-held-list-"],
                         ids=["list", "a-marker-in-the-text", "part-of-one"])
def test_a_page_holding_lists_back_has_the_bytes_of_one_rendered_whole(source: str,
                                                                       x: str) -> None:
    template = _env().from_string(source)
    ctx: dict[str, Any] = {"x": x, "y": LONG.replace("a row", "another"),
                           "z": "\x00kb-held-list-0\x00 \x00kb-held-0-0\x00"}
    plain = template.render(ctx).encode("utf-8")
    assert splice.render(template, ctx) == plain
    assert splice.render(template, ctx, holding=False) == plain


def test_a_long_list_is_held_back_and_a_short_one_is_not() -> None:
    template = _env().from_string("{{ held(x) }}|{{ held(y) }}")
    held = splice._Held()
    text = template.render({"x": LONG, "y": "<li>short</li>", splice.HELD: held})
    assert held == [LONG]
    assert LONG not in text and text.endswith("|<li>short</li>")


def test_a_knowledge_base_template_filtering_a_list_gets_it_filtered(
        kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists are held back only with the package's templates: one of the knowledge base's
    own may print a list through a filter that keeps a marker whole."""
    (kb / "templates").mkdir()
    (kb / "templates" / "claims.html").write_text(
        '{% extends "base.html" %}{% block main %}'
        "<p>{{ claim_list(m, root, ids)|truncate(60) }}</p>{% endblock %}", encoding="utf-8")
    monkeypatch.setattr(splice, "HOLD_FROM", 0)
    options = BuildOptions(CheckOptions(use_cache=False), search="json", history=False,
                           incremental=False)
    assert build_site(kb, tmp_path / "site", options).ok
    page = (tmp_path / "site" / "claims" / "index.html").read_bytes()
    # the list cut after its first row's start, as the filter cuts it
    assert b'<p><ul class="claims">\n<li class="claim-row"...</p>' in page
    assert page.count(b"claim-row") == 1
    assert b"kb-held" not in page


def test_a_site_is_the_same_with_every_list_held_back_or_none(
        generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = BuildOptions(CheckOptions(use_cache=False), search="json", history=False,
                           incremental=False)
    monkeypatch.setattr(splice, "HOLD_FROM", 10**12)
    whole = build_site(generated, tmp_path / "whole", options)
    monkeypatch.setattr(splice, "HOLD_FROM", 0)
    put_back = splice._put_back
    spliced: list[int] = []

    def counted(text: str, lists: list[str]) -> bytes | None:
        data = put_back(text, lists)
        spliced.append(len(lists) if data is not None else 0)
        return data

    monkeypatch.setattr(splice, "_put_back", counted)
    held = build_site(generated, tmp_path / "held", options)
    assert whole.ok and held.ok
    # every page with a list had them put back (entity and source pages have two)
    assert len(spliced) > 50 and 0 not in spliced and 2 in spliced

    def files(site: Path) -> dict[str, bytes]:
        return {p.relative_to(site).as_posix(): p.read_bytes()
                for p in site.rglob("*") if p.is_file()}

    a, b = files(tmp_path / "whole"), files(tmp_path / "held")
    assert a.keys() == b.keys()
    assert [p for p in a if a[p] != b[p]] == []
    assert b'<ul class="claims">' in b["claims/index.html"]
