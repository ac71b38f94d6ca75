"""A small knowledge base for the graph, export, query, network and SHACL tests: MINIMAL plus a
refuted claim that depends on nothing, a claim that depends on it, an unverified opinion, and a
second source of the same publisher (whose evidence counts once)."""

from __future__ import annotations

from conftest import MINIMAL

RICH: dict[str, str] = {
    **MINIMAL,
    "claims/trade-fall-2025.yaml": """\
id: trade-fall-2025
claim: Trade fell by a tenth in 2025.
kind: fact
about: [russia]
period: "2025"
appearances:
  - source: article
    quote: "Last year"
evidence:
  - source: report
    stance: refutes
    quote: "amounted to $244.8 billion"
    note: The report says otherwise.
  - source: report-copy
    stance: partly-refutes
reviews:
  - {by: editor, date: 2026-10-01}
  - {by: other, date: 2026-11-20}
related:
  - {claim: trade-record-2024, relation: contradicts}
""",
    "claims/growth-needs-fall.yaml": """\
id: growth-needs-fall
claim: Growth slowed because trade fell.
kind: fact
appearances:
  - source: report-copy
    quote: "Growth slowed"
evidence:
  - source: report
    stance: supports
  - source: report-copy
    stance: supports
reviews:
  - {by: editor, date: 2026-11-01}
related:
  - {claim: trade-fall-2025, relation: depends-on}
""",
    "claims/opinion.yaml": """\
id: opinion
claim: "Trade is good."
kind: opinion
claimant: someone
appearances:
  - source: article
    quote: "the value of trade"
reviews:
  - {by: editor, date: 2024-01-01}
""",
    "sources/report-copy.yaml": """\
id: report-copy
title: The same publisher again
kind: statistics
publisher: someone
url: https://example.org/other-table
published: "2025"
""",
    "sources/report.txt": "In 2024 trade amounted to $244.8 billion, said the report.\n",
}
