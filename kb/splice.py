"""Long lists put into a page as bytes, after the template has rendered around them.

A list of claims is one long string of rows (kb.pages.claim_list_html): at 10,000 claims the
list of every claim is 6 million characters, two bytes each in memory (the badges' icons). Made
into Markup, escaped again by the template's output, joined into the page's text and encoded,
it was copied four times: 0.08 s of a statement edit, which renders that page again. A page
rendered through `render` holds such a list back: the template gets a marker in its place, and
the list is encoded once into the page's bytes. The bytes are the same either way:
- only the package's own templates are rendered so (kb.render: not when a knowledge base has
  templates of its own), and they print each list as it is, never through a filter;
- a marker holds a nonce drawn for each page, so no text can hold one;
- when the page does not hold each marker exactly once, in order (a marker lost, or printed
  twice), it is rendered again without holding anything back.
"""

from __future__ import annotations

import secrets
from typing import Any

import jinja2
from markupsafe import Markup

HELD = "_kb_held_lists"  # the render context's lists held back, and the page's nonce
HOLD_FROM = 50_000  # characters: shorter lists go into the page as they are


class _Held(list[str]):
    """The lists a page holds back, and the nonce of its markers."""

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"\x00kb-held-{secrets.token_hex(8)}-"

    def marker(self, n: int) -> str:
        return f"{self.prefix}{n}\x00"


def hold(context: Any, html: str) -> Markup:
    """`html` (escaped) for the page being rendered: itself, or a marker for a long one."""
    held = context.get(HELD) if isinstance(context, jinja2.runtime.Context) else None
    if not isinstance(held, _Held) or len(html) < HOLD_FROM:
        return Markup(html)
    held.append(html)
    return Markup(held.marker(len(held) - 1))


def render(template: jinja2.Template, ctx: dict[str, Any], holding: bool = True) -> bytes:
    """The page `template` makes of `ctx`, encoded (UTF-8); `holding`, long lists put in as
    bytes (only for templates that print every list unfiltered: the package's)."""
    if not holding:
        return template.render(ctx).encode("utf-8")
    held = _Held()
    text = template.render({**ctx, HELD: held})
    if held:
        data = _put_back(text, held)
        if data is not None:
            return data
        text = template.render({**ctx, HELD: None})
    return text.encode("utf-8")


def _put_back(text: str, held: _Held) -> bytes | None:
    """The page's bytes with each list in place of its marker; None unless the text holds
    every marker exactly once, in order."""
    if text.count(held.prefix) != len(held):
        return None
    parts: list[bytes] = []
    rest = text
    for n, html in enumerate(held):
        before, found, rest = rest.partition(held.marker(n))
        if not found:
            return None
        parts += [before.encode("utf-8"), html.encode("utf-8")]
    parts.append(rest.encode("utf-8"))
    return b"".join(parts)
