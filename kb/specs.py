"""The file format as data: one spec per record (claim, source, entity) and per object in it.

The specs are the single description of the format: the builder (kb.schema) reads them, and so
do the JSON Schema generator and the formatter, so they cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb import model as m

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 80


@dataclass(frozen=True)
class Field:
    type: str  # text, number, date, partial-date, period, url, ref, enum, lang, wikidata, object
    required: bool = False
    many: bool = False
    choices: tuple[str, ...] = ()
    obj: ObjectSpec | None = None
    doc: str = ""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    cls: type[m.Located]
    fields: dict[str, Field] = field(default_factory=dict)
    doc: str = ""


QUANTITY = ObjectSpec(
    "quantity",
    m.Quantity,
    {
        "value": Field("number", required=True, doc="The number, e.g. 245e9."),
        "unit": Field("text", required=True, doc="The unit: a currency code, %, tonnes …"),
    },
    "The figure a quantity claim states.",
)
APPEARANCE = ObjectSpec(
    "appearance",
    m.Appearance,
    {
        "source": Field("ref", required=True, doc="The source in which the claim is made."),
        "quote": Field("text", required=True, doc="The exact words of the source."),
        "translation": Field("text", doc="An English translation of the quote."),
    },
    "Where a claim is made; the first is its first appearance.",
)
EVIDENCE = ObjectSpec(
    "evidence",
    m.Evidence,
    {
        "source": Field("ref", required=True, doc="The source that bears on the claim."),
        "stance": Field("enum", required=True, choices=m.STANCES, doc="How it bears on it."),
        "quote": Field("text", doc="The exact words of the source."),
        "translation": Field("text", doc="An English translation of the quote."),
        "note": Field("text", doc="The editor's note: what the evidence shows."),
    },
    "A source that supports, refutes or gives context to the claim.",
)
VERDICT = ObjectSpec(
    "verdict",
    m.Verdict,
    {
        "status": Field("enum", required=True, choices=m.STATUSES, doc="The editors' status."),
        "summary": Field("text", doc="Why the editors read it so (required: T601)."),
    },
    "The editors' own reading, which replaces the derived status.",
)
REVIEW = ObjectSpec(
    "review",
    m.Review,
    {
        "by": Field("text", required=True, doc="Who checked the claim."),
        "date": Field("date", required=True, doc="When (YYYY-MM-DD)."),
        "note": Field("text", doc="What was checked."),
    },
    "A check of the claim by an editor.",
)
RELATION = ObjectSpec(
    "relation",
    m.Relation,
    {
        "claim": Field("ref", required=True, doc="The other claim."),
        "relation": Field("enum", required=True, choices=m.RELATIONS, doc="How they relate."),
    },
    "A link from this claim to another.",
)

CLAIM = ObjectSpec(
    "claim",
    m.Claim,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "claim": Field("text", required=True, doc="The checkable statement, in your words."),
        "kind": Field("enum", required=True, choices=m.CLAIM_KINDS, doc="What sort of claim."),
        "claimant": Field("ref", doc="The entity who asserts it."),
        "about": Field("ref", many=True, doc="The entities it concerns."),
        "period": Field("period", doc="The time it is about: YYYY, YYYY-MM, YYYY-MM-DD or A/B."),
        "quantity": Field("object", obj=QUANTITY, doc="Quantity claims only."),
        "appearances": Field("object", required=True, many=True, obj=APPEARANCE,
                             doc="Where the claim is made; the first is its first appearance."),
        "evidence": Field("object", many=True, obj=EVIDENCE, doc="What bears on the claim."),
        "verdict": Field("object", obj=VERDICT, doc="The editors' reading, with a summary."),
        "reviews": Field("object", many=True, obj=REVIEW, doc="Who checked it; newest last."),
        "related": Field("object", many=True, obj=RELATION, doc="Links to other claims."),
        "resolves_by": Field("date", doc="Predictions only: when it can be checked."),
        "tags": Field("slug", many=True, doc="Lowercase slugs for grouping."),
    },
    "One checkable assertion, where it is made, and the evidence about it.",
)
SOURCE = ObjectSpec(
    "source",
    m.Source,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "title": Field("text", required=True, doc="The title or headline."),
        "kind": Field("enum", required=True, choices=m.SOURCE_KINDS, doc="What sort of source."),
        "publisher": Field("ref", doc="The entity that published it."),
        "authors": Field("ref", many=True, doc="The entities who wrote it."),
        "url": Field("url", required=True, doc="Where it can be read (http or https)."),
        "archived": Field("url", doc="An archive copy's URL, where one exists."),
        "published": Field("partial-date", doc="When it was published: YYYY[-MM[-DD]]."),
        "accessed": Field("date", doc="When it was read (YYYY-MM-DD)."),
        "language": Field("lang", doc="Its language, as a BCP 47 tag: en, ru, de …"),
        "note": Field("text", doc="Remarks on the source: provenance, copies, doubts."),
    },
    "A document that makes or tests claims.",
)
ENTITY = ObjectSpec(
    "entity",
    m.Entity,
    {
        "id": Field("text", required=True, doc="The file name without .yaml: a lowercase slug."),
        "name": Field("text", required=True, doc="The usual name."),
        "kind": Field("enum", required=True, choices=m.ENTITY_KINDS, doc="What sort of thing."),
        "description": Field("text", doc="One sentence on who or what it is."),
        "aliases": Field("text", many=True, doc="Other names and spellings."),
        "wikidata": Field("wikidata", doc="A Wikidata Q-number, only where it was looked up."),
    },
    "A person, organisation, country, place … that claims concern.",
)

RECORDS: dict[str, ObjectSpec] = {"claim": CLAIM, "source": SOURCE, "entity": ENTITY}
