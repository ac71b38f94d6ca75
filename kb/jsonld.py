"""A claim's ClaimReview as schema.org JSON-LD, and how to embed it in a page safely.

The properties are the ones Google documents for fact-check markup (claimReviewed,
reviewRating with alternateName, itemReviewed → Claim with appearance, firstAppearance and
author, author, url, datePublished); rating values follow DESIGN.md §4 (supported 5 … refuted 1;
unverified and not-checkable carry only their name).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from markupsafe import Markup

from kb import model as m
from kb.config import Config
from kb.schema import valid_url as _valid_url
from kb.status import Assessment

valid_url = lru_cache(maxsize=65536)(_valid_url)

RATING = {"supported": 5, "partly-supported": 4, "disputed": 3, "refuted": 1}
LABELS = {
    "supported": "Supported",
    "partly-supported": "Partly supported",
    "disputed": "Disputed",
    "refuted": "Refuted",
    "unverified": "Unverified",
    "not-checkable": "Not checkable",
}
_ENTITY_TYPES = {"person": "Person", "organization": "Organization", "country": "Country",
                 "place": "Place", "event": "Event", "product": "Product"}


def _entity(kb: m.KnowledgeBase, ref: m.Ref, iri: str) -> dict[str, Any]:
    e = kb.entities.get(ref.id)
    out: dict[str, Any] = {"@type": _ENTITY_TYPES.get(e.kind if e else "", "Thing"), "@id": iri}
    if e:
        out["name"] = e.name
    return out


def _work(kb: m.KnowledgeBase, source_id: str, iri: str) -> dict[str, Any]:
    s = kb.sources.get(source_id)
    out: dict[str, Any] = {"@type": "CreativeWork", "@id": iri}
    if s:
        out["headline"] = s.title
        if valid_url(s.url):
            out["url"] = s.url
        if s.published:
            out["datePublished"] = s.published
    return out


def claim_review(kb: m.KnowledgeBase, claim: m.Claim, a: Assessment, config: Config,
                 created: str | None = None) -> dict[str, Any]:
    """The ClaimReview of one claim. `created` (from git) dates it where no review does."""
    base = config.base_url
    page = f"{base}claims/{claim.id}"
    item: dict[str, Any] = {"@type": "Claim", "@id": f"{page}#claim", "text": claim.claim}
    works = [_work(kb, ap.source.id, f"{base}sources/{ap.source.id}#source")
             for ap in claim.appearances]
    if works:
        item["appearance"] = works
        item["firstAppearance"] = works[0]
    if claim.claimant:
        item["author"] = _entity(kb, claim.claimant, f"{base}entities/{claim.claimant.id}#entity")
    if claim.about:
        item["about"] = [_entity(kb, r, f"{base}entities/{r.id}#entity") for r in claim.about]
    if claim.period:
        item["temporalCoverage"] = claim.period
    rating: dict[str, Any] = {"@type": "Rating", "alternateName": LABELS[a.status]}
    if a.status in RATING:
        rating.update(ratingValue=RATING[a.status], bestRating=5, worstRating=1)
    rating["ratingExplanation"] = a.reason
    author: dict[str, Any] = {"@type": "Organization", "@id": f"{base}#publisher",
                              "name": config.publisher}
    if config.publisher_url and valid_url(config.publisher_url):
        author["url"] = config.publisher_url
    review: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "@id": f"{page}#review",
        "url": page,
        "claimReviewed": claim.claim,
        "itemReviewed": item,
        "reviewRating": rating,
        "author": author,
    }
    dates = sorted(r.date.isoformat() for r in claim.reviews if r.date)
    published = dates[0] if dates else created
    if published:
        review["datePublished"] = published
    if dates and dates[-1] != published:
        review["dateModified"] = dates[-1]
    return review


def embed(data: dict[str, Any]) -> Markup:
    """JSON for a <script> element: <, > and & as \\u escapes, so no text can close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return Markup(text)
