"""The project's own `kb:` terms and the evidence-status scheme, as data and as triples.

Standard vocabularies come first (DESIGN.md §4); a `kb:` term exists only where none fits, and
each has a label and a comment, in the graph itself (named graph `{base}graph/vocab`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.namespaces import (
    CLAIMSKG_RATING_IRI,
    OWL_IRI,
    RDF_IRI,
    RDFS_IRI,
    SKOS_IRI,
    XSD_IRI,
    Iris,
    nt_iri,
    nt_literal,
)


@dataclass(frozen=True)
class Term:
    name: str
    kind: str  # "class", "object" (links to a node) or "data" (a literal)
    label: str
    comment: str
    range: str = ""  # an IRI, for documentation and the SHACL shapes


XSD = XSD_IRI
SKOS_CONCEPT = SKOS_IRI + "Concept"

TERMS: tuple[Term, ...] = (
    Term("Evidence", "class", "evidence",
         "What one source says about a claim: its stance, the quote and a note."),
    Term("status", "object", "status",
         "The evidence status shown for a claim: the editors' verdict where there is one, "
         "otherwise the status derived from the evidence.", SKOS_CONCEPT),
    Term("derivedStatus", "object", "derived status",
         "The status the evidence alone gives, by the rules of the status scale.",
         SKOS_CONCEPT),
    Term("verdict", "object", "verdict",
         "The editors' own reading of the claim, which replaces the derived status.",
         SKOS_CONCEPT),
    Term("evidence", "object", "evidence",
         "An evidence item bearing on the claim.", ""),
    Term("stance", "data", "stance",
         "How the evidence bears on the claim: supports, partly-supports, partly-refutes, "
         "refutes or context.", XSD + "string"),
    Term("translation", "data", "translation",
         "An editor's translation of a quote that is not in English.", XSD + "string"),
    Term("claimKind", "data", "claim kind",
         "What sort of statement the claim is: fact, quantity, quote, opinion or prediction.",
         XSD + "string"),
    Term("sourceKind", "data", "source kind",
         "What sort of document the source is, in the knowledge base's own terms.",
         XSD + "string"),
    Term("entityKind", "data", "entity kind",
         "What sort of thing the entity is, in the knowledge base's own terms.", XSD + "string"),
    Term("quantity", "object", "quantity",
         "The number a quantity claim states, as a schema:QuantitativeValue.",
         "https://schema.org/QuantitativeValue"),
    Term("resolvesBy", "data", "resolves by",
         "The date by which a prediction can be checked.", XSD + "date"),
    Term("dueForReview", "data", "due for review",
         "True when the claim's newest review is older than the configured age.",
         XSD + "boolean"),
    Term("reviewedBy", "data", "reviewed by",
         "The handle of an editor who reviewed the claim.", XSD + "string"),
    Term("accessed", "data", "accessed",
         "The date an editor last read the source.", XSD + "date"),
    Term("independentSources", "data", "independent sources",
         "How many independent sources support the claim, fully or partly: sources of one "
         "publisher, and copies of one document, count once.", XSD + "integer"),
    Term("path", "data", "file",
         "The file, relative to the knowledge base folder, that a named graph was read from.",
         XSD + "string"),
    Term("supports", "object", "supports", "This claim, if true, supports the other claim."),
    Term("contradicts", "object", "contradicts", "This claim contradicts the other claim."),
    Term("refines", "object", "refines", "This claim states the other more precisely."),
    Term("duplicates", "object", "duplicates", "This claim says the same as the other claim."),
    Term("dependsOn", "object", "depends on", "This claim holds only if the other claim does."),
    Term("context", "object", "context", "The other claim gives context to this one."),
)

RELATION_TERMS = {"supports": "supports", "contradicts": "contradicts", "refines": "refines",
                  "duplicates": "duplicates", "depends-on": "dependsOn", "context": "context"}


@dataclass(frozen=True)
class StatusInfo:
    name: str
    label: str
    definition: str
    derived_when: str
    rating: int | None  # schema:ratingValue on the 1–5 scale; None: alternateName only
    claimskg: str  # ClaimsKG's normalised rating it closely matches


STATUS_SCALE: tuple[StatusInfo, ...] = (
    StatusInfo("supported", "Supported", "The evidence bears it out.",
               "Only supporting evidence.", 5, "claimskg_TRUE"),
    StatusInfo("partly-supported", "Partly supported",
               "True in part, or only with a qualification.",
               "Any other mix with support and no refuting evidence.", 4, "claimskg_MIXTURE"),
    StatusInfo("disputed", "Disputed", "Credible sources contradict each other.",
               "Supporting and refuting evidence both present.", 3, "claimskg_MIXTURE"),
    StatusInfo("refuted", "Refuted", "The evidence contradicts it.",
               "Refuting (or partly refuting) evidence and no support of any kind.", 1,
               "claimskg_FALSE"),
    StatusInfo("unverified", "Unverified", "No evidence yet.",
               "No evidence, or context only.", None, "claimskg_OTHER"),
    StatusInfo("not-checkable", "Not checkable",
               "An opinion, or a prediction whose date has not come.",
               "Kind opinion; a prediction before its resolves_by date.", None, "claimskg_OTHER"),
)
STATUS = {s.name: s for s in STATUS_SCALE}


def _en(text: str) -> str:
    return nt_literal(text, lang="en")


def vocab_triples(iris: Iris) -> list[str]:
    """The kb: vocabulary and the status scheme, as N-Triples lines (without the final " .")."""
    out: list[str] = []

    def add(s: str, p: str, o: str) -> None:
        out.append(f"{s} {p} {o}")

    type_ = nt_iri(RDF_IRI + "type")
    ontology = nt_iri(iris.vocab_ns.rstrip("#"))
    add(ontology, type_, nt_iri(OWL_IRI + "Ontology"))
    add(ontology, _RDFS + "label>", _en("claimkb vocabulary"))
    add(ontology, _RDFS + "comment>", _en("Terms of this knowledge base for which no standard "
                                          "vocabulary has one."))
    for t in TERMS:
        s = nt_iri(iris.vocab(t.name))
        kind = {"class": RDFS_IRI + "Class", "object": OWL_IRI + "ObjectProperty",
                "data": OWL_IRI + "DatatypeProperty"}[t.kind]
        add(s, type_, nt_iri(kind))
        if t.kind != "class":
            add(s, type_, nt_iri(RDF_IRI + "Property"))
        add(s, _RDFS + "label>", _en(t.label))
        add(s, _RDFS + "comment>", _en(t.comment))
        add(s, _RDFS + "isDefinedBy>", ontology)
        if t.range:
            add(s, _RDFS + "range>", nt_iri(t.range))
    scheme = nt_iri(iris.status_scheme)
    add(scheme, type_, _SKOS + "ConceptScheme>")
    add(scheme, _SKOS + "prefLabel>", _en("Evidence status"))
    add(scheme, _RDFS + "label>", _en("Evidence status"))
    add(scheme, _RDFS + "comment>", _en("The scale on which each claim's evidence status is "
                                        "given."))
    for info in STATUS_SCALE:
        c = nt_iri(iris.status(info.name))
        add(c, type_, _SKOS + "Concept>")
        add(c, _SKOS + "inScheme>", scheme)
        add(c, _SKOS + "topConceptOf>", scheme)
        add(scheme, _SKOS + "hasTopConcept>", c)
        add(c, _SKOS + "notation>", nt_literal(info.name))
        add(c, _SKOS + "prefLabel>", _en(info.label))
        add(c, _SKOS + "definition>", _en(info.definition))
        add(c, _SKOS + "scopeNote>", _en("Derived when: " + info.derived_when))
        add(c, _RDFS + "label>", _en(info.label))
        add(c, _RDFS + "comment>", _en(info.definition))
        add(c, _SKOS + "closeMatch>", nt_iri(CLAIMSKG_RATING_IRI + info.claimskg))
    return out


_RDFS = "<" + RDFS_IRI
_SKOS = "<" + SKOS_IRI
