"""The one namespace module: every vocabulary the graph uses, and the IRIs of a knowledge base.

Each vocabulary is here twice: as an rdflib `Namespace` (the model users, pySHACL and tests see)
and as a string prefix for pyoxigraph terms (what the graph is built from, DESIGN.md §7).

schema.org is written `https://schema.org/`: schema.org itself recommends https and publishes its
vocabulary under it; ClaimReview consumers accept both. The choice is documented in docs/graph.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import pyoxigraph as ox

from kb.model import KIND_DIRS

if TYPE_CHECKING:
    from rdflib import Namespace

SCHEMA_IRI = "https://schema.org/"
OA_IRI = "http://www.w3.org/ns/oa#"
PROV_IRI = "http://www.w3.org/ns/prov#"
CITO_IRI = "http://purl.org/spar/cito/"
SKOS_IRI = "http://www.w3.org/2004/02/skos/core#"
DCTERMS_IRI = "http://purl.org/dc/terms/"
OWL_IRI = "http://www.w3.org/2002/07/owl#"
RDF_IRI = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS_IRI = "http://www.w3.org/2000/01/rdf-schema#"
XSD_IRI = "http://www.w3.org/2001/XMLSchema#"
VOID_IRI = "http://rdfs.org/ns/void#"
SD_IRI = "http://www.w3.org/ns/sparql-service-description#"
FOAF_IRI = "http://xmlns.com/foaf/0.1/"
WIKIDATA_IRI = "http://www.wikidata.org/entity/"
CLAIMSKG_RATING_IRI = "http://data.gesis.org/claimskg/rating/normalized/"

_RDFLIB_NAMES = {
    "SCHEMA": SCHEMA_IRI,
    "OA": OA_IRI,
    "PROV": PROV_IRI,
    "CITO": CITO_IRI,
    "SKOS": SKOS_IRI,
    "DCTERMS": DCTERMS_IRI,
    "OWL": OWL_IRI,
    "RDF": RDF_IRI,
    "RDFS": RDFS_IRI,
    "XSD": XSD_IRI,
    "VOID": VOID_IRI,
    "SD": SD_IRI,
    "FOAF": FOAF_IRI,
}


def __getattr__(name: str) -> Namespace:
    """SCHEMA, OA, PROV, … as rdflib Namespaces, made on first use: importing rdflib costs
    0.15 s, which commands that never touch rdflib (kb check, kb build) should not pay."""
    if name in _RDFLIB_NAMES:
        from rdflib import Namespace

        ns = Namespace(_RDFLIB_NAMES[name])
        globals()[name] = ns
        return ns
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Prefixes written into dumps and offered to queries, in a fixed order (dumps are deterministic).
STANDARD_PREFIXES: dict[str, str] = {
    "schema": SCHEMA_IRI,
    "oa": OA_IRI,
    "prov": PROV_IRI,
    "cito": CITO_IRI,
    "skos": SKOS_IRI,
    "dcterms": DCTERMS_IRI,
    "owl": OWL_IRI,
    "rdf": RDF_IRI,
    "rdfs": RDFS_IRI,
    "xsd": XSD_IRI,
    "void": VOID_IRI,
    "sd": SD_IRI,
    "foaf": FOAF_IRI,
    "wd": WIKIDATA_IRI,
}


@lru_cache(maxsize=4096)
def node(iri: str) -> ox.NamedNode:
    """A pyoxigraph IRI, made once: the same few hundred predicates are used a million times."""
    return ox.NamedNode(iri)


def dcterms(term: str) -> ox.NamedNode:
    return node(DCTERMS_IRI + term)


def void(term: str) -> ox.NamedNode:
    return node(VOID_IRI + term)


RDF_TYPE = node(RDF_IRI + "type")


@dataclass(frozen=True)
class Iris:
    """The IRIs of one knowledge base, all under its `base_url` (DESIGN.md §4).

    A record's page is `{base}{kinds}/{id}` (served from `{kinds}/{id}/index.html`); the thing
    the page is about is that IRI with a fragment: `#claim`, `#source`, `#entity`. A claim's
    review, rating, evidence and appearances are fragments of the claim's page too.
    """

    base: str

    @classmethod
    def of(cls, config: object) -> Iris:
        """From a kb.config.Config (anything with a `base_url`)."""
        base = str(getattr(config, "base_url", "https://claimkb.example.org/"))
        return cls(base if base.endswith("/") else base + "/")

    def page(self, kind: str, id_: str) -> str:
        return f"{self.base}{KIND_DIRS[kind]}/{id_}"

    def thing(self, kind: str, id_: str) -> str:
        return f"{self.page(kind, id_)}#{kind}"

    def claim(self, id_: str) -> str:
        return f"{self.base}claims/{id_}#claim"

    def review(self, id_: str) -> str:
        return f"{self.base}claims/{id_}#review"

    def rating(self, id_: str) -> str:
        return f"{self.base}claims/{id_}#rating"

    def evidence(self, id_: str, n: int) -> str:
        """The n-th evidence item (counting from 1, in file order)."""
        return f"{self.base}claims/{id_}#evidence-{n}"

    def appearance(self, id_: str, n: int) -> str:
        return f"{self.base}claims/{id_}#appearance-{n}"

    def quantity(self, id_: str) -> str:
        return f"{self.base}claims/{id_}#quantity"

    def selector(self, item_iri: str, which: str) -> str:
        """A quote's selector: `which` is "quote" or "position" (…#evidence-1-quote)."""
        return f"{item_iri}-{which}"

    def source(self, id_: str) -> str:
        return f"{self.base}sources/{id_}#source"

    def entity(self, id_: str) -> str:
        return f"{self.base}entities/{id_}#entity"

    def graph(self, kind: str, id_: str) -> str:
        """The named graph holding what one file says."""
        return f"{self.base}graph/{kind}/{id_}"

    @property
    def vocab_graph(self) -> str:
        return f"{self.base}graph/vocab"

    @property
    def settings_graph(self) -> str:
        """The named graph of kb.toml: the publisher and the dataset itself."""
        return f"{self.base}graph/settings"

    @property
    def vocab_ns(self) -> str:
        return f"{self.base}vocab#"

    def vocab(self, term: str) -> str:
        return f"{self.base}vocab#{term}"

    @property
    def status_scheme(self) -> str:
        return f"{self.base}status/"

    def status(self, name: str) -> str:
        """A status of the scale, a skos:Concept with a page of its own."""
        return f"{self.base}status/{name}"

    @property
    def publisher(self) -> str:
        return f"{self.base}#publisher"

    @property
    def dataset(self) -> str:
        return f"{self.base}#dataset"

    def prefixes(self) -> dict[str, str]:
        """Prefixes for dumps and queries: the standard ones plus kb: and status:."""
        return {
            **STANDARD_PREFIXES,
            "kb": self.vocab_ns,
            "status": self.status_scheme,
        }

    def kb_namespace(self) -> Namespace:
        from rdflib import Namespace

        return Namespace(self.vocab_ns)


# -- terms as N-Triples text ---------------------------------------------------------------
# The graph is built as N-Quads lines and bulk-loaded: making 700,000 pyoxigraph Quad objects
# in Python takes five times as long as formatting their text (docs/graph.md has the figures).

_ECHAR = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\b": "\\b", "\f": "\\f",
                        **{chr(c): f"\\u{c:04X}" for c in (*range(0, 8), 0x0B,
                                                           *range(0x0E, 0x20), 0x7F)}})
# characters an IRI may not hold (RFC 3987 / N-Triples IRIREF), percent-encoded
_IRI_BAD = str.maketrans({c: f"%{ord(c):02X}" for c in ' <>"{}|^`\\'}
                         | {chr(c): f"%{c:02X}" for c in range(0, 0x21)})


_NEEDS_ECHAR = re.compile(r'[\\"\x00-\x1f\x7f]')
_NEEDS_IRI_FIX = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def nt_iri(iri: str) -> str:
    # most IRIs and texts need no escaping; searching first is 5x faster than translating
    return f"<{iri.translate(_IRI_BAD) if _NEEDS_IRI_FIX.search(iri) else iri}>"


def nt_literal(text: str, datatype: str | None = None, lang: str | None = None) -> str:
    """A literal in canonical N-Triples form; xsd:string is written plain."""
    body = f'"{text.translate(_ECHAR) if _NEEDS_ECHAR.search(text) else text}"'
    if lang:
        return f"{body}@{lang.lower()}"
    if datatype and datatype != XSD_IRI + "string":
        return f"{body}^^<{datatype}>"
    return body
