"""Long lists put into a page as bytes, after the template has rendered around them.

A list of claims is one long string of rows (kb.pages.claim_list_html): at 10,000 claims the
list of every claim is 6 million characters, two bytes each in memory (the badges' icons). Made
into Markup, escaped again by the template's output, joined into the page's text and encoded,
it was copied four times: 0.08 s of a statement edit, which renders that page again. A page
rendered through `render` holds such a list back: the template gets a marker in its place, and
the list is encoded once into the page's bytes. A marker not found exactly once, in order (a
template that filtered the list, or a text that holds one), and the page is rendered again as
it would be without this: the bytes are the same either way.
"""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

HELD = "_kb_held_lists"  # the render context's list of the lists held back
HOLD_FROM = 50_000  # characters: shorter lists go into the page as they are


def _marker(n: int) -> str:
    return f"\x00kb-held-list-{n}\x00"


def hold(context: Any, html: str) -> Markup:
    """`html` (escaped) for the page being rendered: itself, or a marker for a long one."""
    held = context.get(HELD) if isinstance(context, jinja2.runtime.Context) else None
    if held is None or len(html) < HOLD_FROM:
        return Markup(html)
    held.append(html)
    return Markup(_marker(len(held) - 1))


def render(template: jinja2.Template, ctx: dict[str, Any]) -> bytes:
    """The page `template` makes of `ctx`, encoded (UTF-8), long lists put in as bytes."""
    held: list[str] = []
    text = template.render({**ctx, HELD: held})
    if held:
        data = _put_back(text, held)
        if data is not None:
            return data
        text = template.render({**ctx, HELD: None})
    return text.encode("utf-8")


def _put_back(text: str, held: list[str]) -> bytes | None:
    parts: list[bytes] = []
    rest = text
    for n, html in enumerate(held):
        before, found, rest = rest.partition(_marker(n))
        if not found or _marker(n) in rest:
            return None
        parts += [before.encode("utf-8"), html.encode("utf-8")]
    if "\x00kb-held-list-" in rest:
        return None
    parts.append(rest.encode("utf-8"))
    return b"".join(parts)
