"""The static site: pages checked by selectors, links, JSON-LD, determinism, atomicity."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import socket
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from lxml import html as lhtml

from kb.build import BuildOptions, BuildResult, build_site
from kb.check import CheckOptions
from kb.cli import main
from kb.write import Page, SiteWriter, WriteError, file_stat, write_site

from conftest import MINIMAL, REPO, MakeKB, until

TODAY = dt.date(2026, 11, 28)
HOSTILE_SCRIPT = "</script><script>alert(1)</script>"
HOSTILE_IMG = '"><img src=x onerror=alert(1)>'
HOSTILE_JS = "javascript:alert(1)"

# MINIMAL plus: a second quantity claim whose quote overlaps the first's in the article, a
# verdict that overrides the evidence, related claims, a repository for "edit" links, and the
# hostile strings in a claim text, a source title, an entity name, quotes, notes and the text.
RICH: dict[str, str] = {
    **MINIMAL,
    "kb.toml": 'title = "Test KB"\nrepository = "https://github.com/example/kb"\n',
    "sources/article.txt": (
        "Trade boomed. Last year, the value of trade  hit a record $245bn (£182bn). "
        "It fell later.\nSomeone wrote " + HOSTILE_SCRIPT + " in a comment.\n"),
    "claims/trade-record-2024.yaml": MINIMAL["claims/trade-record-2024.yaml"] + """\
related:
  - {claim: trade-fall-2025, relation: context}
""",
    "claims/trade-fall-2025.yaml": """\
id: trade-fall-2025
claim: Trade fell to $220bn in 2025.
kind: quantity
about: [russia]
period: "2025"
quantity: {value: 220e9, unit: USD}
appearances:
  - source: article
    quote: "a record $245bn (£182bn). It fell later."
evidence:
  - source: report
    stance: refutes
    quote: "no fall at all"
    note: A made-up note.
verdict:
  status: partly-supported
  summary: The editors think it fell, but by less.
reviews:
  - {by: editor, date: 2024-01-01}
tags: [trade]
""",
    "claims/hostile.yaml": f"""\
id: hostile
claim: '{HOSTILE_SCRIPT}'
kind: fact
claimant: evil
appearances:
  - source: article
    quote: '{HOSTILE_SCRIPT}'
evidence:
  - source: evil-source
    stance: supports
    quote: '{HOSTILE_IMG.replace("'", "''")}'
    note: '{HOSTILE_SCRIPT}'
reviews:
  - {{by: '{HOSTILE_IMG.replace("'", "''")}', date: 2026-11-20}}
""",
    "sources/evil-source.yaml": f"""\
id: evil-source
title: '{HOSTILE_IMG.replace("'", "''")}'
kind: other
publisher: evil
url: https://example.org/evil?a=1&b=2
""",
    "queries/claims-by-status.rq": """\
# title: Claims by status
# description: How many claims have each status.
PREFIX schema: <https://schema.org/>
SELECT ?claim ?text WHERE { ?claim a schema:Claim ; schema:text ?text } ORDER BY ?claim
""",
    "queries/broken.rq": "# title: Broken\nSELECT WHERE {\n",
    "entities/evil.yaml": f"""\
id: evil
name: '{HOSTILE_JS}'
kind: other
description: '{HOSTILE_IMG.replace("'", "''")}'
""",
}


def build(root: Path, out: Path, search: str = "json") -> BuildResult:
    options = BuildOptions(check=CheckOptions(today=TODAY, use_cache=False), search=search)
    return build_site(root, out, options)


def write_kb(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for sub in ("claims", "sources", "entities"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_kb(tmp_path_factory.mktemp("rich") / "kb", RICH)
    out = root / "site"
    result = build(root, out)
    assert result.ok, list(result.checked.report)
    return out


def page(site: Path, rel: str) -> lhtml.HtmlElement:
    return lhtml.fromstring((site / rel).read_bytes())


def text_of(el: lhtml.HtmlElement) -> str:
    return " ".join(el.text_content().split())


# -- pages by meaning ----------------------------------------------------------------------------
def test_home_counts_and_chart(site: Path) -> None:
    doc = page(site, "index.html")
    counts = {td.get("data-status-count"): int(td.text_content())
              for td in doc.cssselect("td[data-status-count]")}
    assert counts["supported"] == 2  # trade-record-2024 and hostile
    assert counts["partly-supported"] == 1  # the verdict, not the refuting evidence
    assert sum(counts.values()) == 3
    svg = doc.cssselect("svg.chart")[0]
    assert svg.get("role") == "img" and svg.cssselect("title")
    assert doc.cssselect("main h1") and doc.cssselect("header nav a[href='claims/']")


def test_claim_page_badge_reason_quote_and_links(site: Path) -> None:
    doc = page(site, "claims/trade-record-2024/index.html")
    badge = doc.cssselect(".status-box .badge")[0]
    assert "status-supported" in badge.get("class")
    assert text_of(badge) == "✔ Supported"  # an icon and the word: never colour alone
    assert text_of(doc.cssselect(".reason")[0]) == "1 source supports."
    # the quote in context, with its link into the annotated source
    mark = doc.cssselect("figure.quote mark")[0]
    assert text_of(mark) == "the value of trade hit a record $245bn"
    assert "Trade boomed." in text_of(doc.cssselect("figure.quote")[0])
    link = doc.cssselect("figure.quote figcaption a[href*='#q-']")[0].get("href")
    assert link == "../../sources/article/#q-trade-record-2024-a1"
    src = page(site, "sources/article/index.html")
    assert src.cssselect("#q-trade-record-2024-a1")
    # evidence grouped by stance, with the source's link
    group = doc.cssselect("section.stance-supports")[0]
    assert text_of(group.cssselect("h3")[0]).startswith("Supports")
    assert group.cssselect("a[href='https://example.org/report']")
    # edit links from kb.toml, alternates, related claim with its status
    edit = "https://github.com/example/kb/edit/main/claims/trade-record-2024.yaml"
    assert doc.cssselect(f"a[href='{edit}']")
    alt = {link.get("type"): link.get("href") for link in doc.cssselect("link[rel=alternate]")}
    assert alt["text/turtle"] == "../trade-record-2024.ttl"
    assert alt["application/ld+json"] == "../trade-record-2024.jsonld"
    related = doc.cssselect("ul.related li")[0]
    assert related.cssselect(".badge.status-partly-supported")
    assert "Backed by 1 independent source." in text_of(doc.cssselect(".status-box")[0])


def test_override_shows_verdict_and_evidence(site: Path) -> None:
    doc = page(site, "claims/trade-fall-2025/index.html")
    assert "status-partly-supported" in doc.cssselect(".status-box .badge")[0].get("class")
    assert text_of(doc.cssselect(".reason")[0]) == "The editors think it fell, but by less."
    override = doc.cssselect(".override")[0]
    assert override.cssselect(".badge.status-refuted")  # what the evidence alone gives
    assert "Due for review" in text_of(doc.cssselect(".status-box")[0])
    # two USD claims share a tag: the small chart of values over periods
    assert len(doc.cssselect("svg.chart g.stroke-partly-supported, svg.chart g.stroke-supported")
               ) == 2


def test_annotated_text_overlaps(site: Path) -> None:
    doc = page(site, "sources/article/index.html")
    snapshot = doc.cssselect(".snapshot")[0]
    # the text is all there, in order, once
    assert text_of(snapshot).startswith("Trade boomed. Last year, the value of trade hit")
    marks = snapshot.cssselect("a.qmark mark")
    claims = {a.get("data-claim") for a in snapshot.cssselect("a.qmark")}
    assert claims == {"trade-record-2024", "trade-fall-2025", "hostile"}
    overlap = [m for m in marks if "overlap" in m.get("class")]
    assert [text_of(m) for m in overlap] == ["a record $245bn"]
    assert snapshot.cssselect("a.qicon .visually-hidden")  # the status in words, for everyone
    made = {a.get("href") for a in doc.cssselect("section[aria-labelledby=makes-h] a")}
    assert "../../claims/trade-fall-2025/" in made


def test_entity_and_listing_pages(site: Path) -> None:
    doc = page(site, "entities/russia/index.html")
    about = doc.cssselect("section[aria-labelledby=about-h] li.claim-row")
    assert {li.get("data-status") for li in about} == {"supported", "partly-supported"}
    someone = page(site, "entities/someone/index.html")
    assert someone.cssselect("section[aria-labelledby=made-h] a[href$='trade-record-2024/']")
    assert someone.cssselect("section[aria-labelledby=pub-h] a[href='../../sources/report/']")
    listing = page(site, "status/supported/index.html")
    rows = listing.cssselect("li.claim-row")
    assert {r.get("data-status") for r in rows} == {"supported"} and len(rows) == 2
    everything = page(site, "claims/index.html")
    assert len(everything.cssselect("li.claim-row")) == 3
    assert everything.cssselect("form#filter select[name=status]")
    entities = [(o.get("value"), o.text) for o in
                everything.cssselect("form#filter select[name=entities] option")]
    assert entities[0] == ("", "any") and entities[1:] == sorted(entities[1:])
    assert ("russia", "Russia") in entities and "someone" in dict(entities)
    sources = dict((o.get("value"), o.text) for o in
                   everything.cssselect("form#filter select[name=sources] option"))
    assert "report" in sources and "evil-source" in sources
    tag = page(site, "claims/tag/trade/index.html")
    assert len(tag.cssselect("li.claim-row")) == 2


def test_the_filter_choices_are_those_the_template_loop_made(tmp_path: Path) -> None:
    """SiteModel.entity_options and source_options replaced a loop of templates/filters.html:
    the same options, in the same order, escaped alike (names and titles with markup in them)."""
    import jinja2

    files = dict(RICH)
    files["entities/evil.yaml"] = files["entities/evil.yaml"].replace(
        f"name: '{HOSTILE_JS}'", "name: '<b>Evil</b> & \"Co\" <script>'")
    root = write_kb(tmp_path / "kb", files)
    result = build(root, tmp_path / "site")
    assert result.ok, list(result.checked.report)
    model = result.held[0]
    loop = jinja2.Environment(autoescape=True).from_string(
        "{% for e in kb.entities|sort %}{% if e in m.made_by or e in m.about %}"
        '<option value="{{ e }}">{{ kb.entities[e].name }}</option>{% endif %}{% endfor %}|'
        "{% for s in kb.sources|sort %}{% if s in m.appears_in or s in m.evidence_from %}"
        '<option value="{{ s }}">{{ kb.sources[s].title|truncate(60) }}</option>{% endif %}'
        "{% endfor %}").render(m=model, kb=model.kb)
    assert f"{model.entity_options()}|{model.source_options()}" == loop
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; &#34;Co&#34;" in loop


@pytest.mark.parametrize("text", ["", "short", "x" * 65, "x" * 66, "word " * 13, "word " * 14,
                                  "a" * 57 + " bb cc dd ee", "é" * 70, " leading" * 10])
def test_titles_are_cut_as_jinjas_truncate_cuts_them(text: str) -> None:
    import jinja2

    from kb.pages import truncate

    assert truncate(text) == jinja2.Environment().from_string("{{ t|truncate(60) }}").render(t=text)


def test_query_pages(site: Path) -> None:
    index = page(site, "queries/index.html")
    assert {a.get("href") for a in index.cssselect("main li a")} == {
        "../queries/broken/", "../queries/claims-by-status/"}
    doc = page(site, "queries/claims-by-status/index.html")
    assert "SELECT ?claim" in text_of(doc.cssselect("pre.code")[0])
    rows = doc.cssselect("table tbody tr")
    assert len(rows) == 3
    assert rows[0].cssselect("a[href='../../claims/hostile/']")  # an IRI of ours: a page link
    assert text_of(rows[0].cssselect("td")[1]) == HOSTILE_SCRIPT
    assert page(site, "queries/broken/index.html").cssselect("p.error")


def test_feed_sitemap_and_downloads(site: Path) -> None:
    from lxml import etree

    feed = etree.fromstring((site / "feed.xml").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    updated = [e.text for e in feed.findall("a:entry/a:updated", ns)]
    assert updated == sorted(updated, reverse=True) and len(updated) == 3
    assert feed.findtext("a:updated", namespaces=ns) == "2026-11-20T00:00:00Z"
    smap = etree.fromstring((site / "sitemap.xml").read_bytes())
    locs = [e.text for e in smap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert "https://claimkb.example.org/claims/hostile/" in locs
    assert locs == sorted(locs)
    data = page(site, "data/index.html")
    hrefs = {a.get("href") for a in data.cssselect("a[download]")}
    assert {"../data/kb.ttl.gz", "../data/kb.nt.gz", "../data/kb.trig.gz", "../data/kb.jsonld.gz",
            "../data/claims.csv", "../data/void.ttl"} == hrefs
    rows = {text_of(r.cssselect("td")[0]): text_of(r.cssselect("td")[1])
            for r in data.cssselect("tbody tr")}
    assert "gzip" in rows["kb.ttl.gz"] and "gzip" not in rows["claims.csv"]
    trig = gzip.decompress((site / "data" / "kb.trig.gz").read_bytes())
    assert b"graph/claim/hostile" in trig and not (site / "data" / "kb.trig").exists()


def test_the_newest_reviews_are_those_a_whole_sort_gives(generated: Path) -> None:
    """The feed and the home page take the newest reviews without sorting them all: the same
    entries, in the same order, as sorting every review."""
    from kb.check import check
    from kb.graph import build_graph
    from kb.pages import build_model

    checked = check(generated, CheckOptions(today=dt.date(2026, 11, 28)))
    g = build_graph(checked)
    model = build_model(checked.kb, checked.config, checked.context.today, {},
                        g.network.independent_sources, g.assessments)
    every = sorted(((r.date, cid, i, r) for cid in model.claim_ids
                    for i, r in enumerate(checked.kb.claims[cid].reviews, 1) if r.date),
                   key=lambda t: (-t[0].toordinal(), t[1], t[2]))
    assert len(every) > 50
    for n in (1, 8, 50, len(every) + 5):
        assert model.review_entries(n) == every[:n]
    dated = sorted(((a.last_review, cid) for cid, a in model.assessments.items()
                    if a.last_review), key=lambda t: (-t[0].toordinal(), t[1]))
    assert model.recently_reviewed(8) == [cid for _, cid in dated[:8]]
    assert model.review_entries(0) == [] and model.recently_reviewed(0) == []
    # Without the newest review's claim's assessment, the feed still finds that review.
    del model.assessments[every[0][1]]
    assert model.review_entries(8) == every[:8]


# -- safety --------------------------------------------------------------------------------------
def test_hostile_strings_are_text(site: Path) -> None:
    for rel in ("claims/hostile/index.html", "sources/evil-source/index.html",
                "entities/evil/index.html", "sources/article/index.html", "claims/index.html"):
        raw = (site / rel).read_text(encoding="utf-8")
        doc = lhtml.fromstring(raw)
        scripts = doc.cssselect("script")
        assert all(s.get("src") or s.get("type") == "application/ld+json" for s in scripts), rel
        assert not doc.cssselect("img"), rel
        assert not [a for a in doc.cssselect("a[href]")
                    if a.get("href").lower().startswith("javascript")], rel
        assert "alert(1)" not in "".join(s.text or "" for s in scripts if not s.get("type"))
    doc = page(site, "claims/hostile/index.html")
    assert text_of(doc.cssselect("h1")[0]) == HOSTILE_SCRIPT
    assert HOSTILE_IMG in text_of(doc.cssselect("section.stance-supports")[0])
    assert text_of(page(site, "entities/evil/index.html").cssselect("h1")[0]) == HOSTILE_JS


def test_hostile_quantities_are_text_in_charts_and_their_keys(tmp_path: Path) -> None:
    """The quantity chart (SVG titles and description) and its key are made in Python
    (kb.charts, SiteModel.legend), not by the template's autoescaping: a hostile claim text
    and unit stay text there too."""
    def figure(cid: str, value: str, period: str) -> str:
        unit = HOSTILE_IMG.replace("'", "''")
        return (f"id: {cid}\nclaim: '{HOSTILE_SCRIPT} {cid}'\nkind: quantity\nabout: [russia]\n"
                f"period: \"{period}\"\nquantity: {{value: {value}, unit: '{unit}'}}\n"
                "appearances:\n  - {source: article, quote: a record}\n"
                "reviews:\n  - {by: editor, date: 2026-11-01}\n")

    root = write_kb(tmp_path / "kb", {**MINIMAL,
                                      "claims/figure-a.yaml": figure("figure-a", "1e9", "2023"),
                                      "claims/figure-b.yaml": figure("figure-b", "2e9", "2024")})
    assert build(root, tmp_path / "site").ok
    for cid, other in (("figure-a", "figure-b"), ("figure-b", "figure-a")):
        doc = page(tmp_path / "site", f"claims/{cid}/index.html")
        assert not doc.cssselect("img") and not doc.cssselect("script:not([src]):not([type])")
        chart = doc.cssselect("svg.chart")[0]
        titles = [text_of(el) for el in chart.iter("{*}title", "title")]
        value = "1bn" if other == "figure-a" else "2bn"
        assert f"{HOSTILE_SCRIPT} {other}: {value} {HOSTILE_IMG}" in titles
        assert HOSTILE_IMG in text_of(chart.cssselect("desc")[0])
        key = doc.cssselect("ul.legend li")
        assert [text_of(li.cssselect("a")[0]) for li in key] == [
            f"{HOSTILE_SCRIPT} figure-a", f"{HOSTILE_SCRIPT} figure-b"]
        assert all(text_of(li).endswith(HOSTILE_IMG) for li in key)


# -- JSON-LD -------------------------------------------------------------------------------------
def claim_reviews(site: Path) -> Iterator[tuple[str, dict[str, object]]]:
    for f in sorted((site / "claims").glob("*/index.html")):
        raw = f.read_text(encoding="utf-8")
        blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', raw, re.S)
        assert len(blocks) == 1, f
        assert "<" not in blocks[0] and ">" not in blocks[0]  # escaped: nothing can close it
        yield f.parent.name, json.loads(blocks[0])


def test_jsonld_of_every_claim(site: Path) -> None:
    seen = dict(claim_reviews(site))
    assert set(seen) == {"trade-record-2024", "trade-fall-2025", "hostile"}
    for cid, r in seen.items():
        assert r["@context"] == "https://schema.org" and r["@type"] == "ClaimReview"
        assert r["url"] == f"https://claimkb.example.org/claims/{cid}"
        assert isinstance(r["claimReviewed"], str) and r["claimReviewed"]
        assert isinstance(r["datePublished"], str)
        rating = r["reviewRating"]
        assert isinstance(rating, dict) and rating["@type"] == "Rating"
        assert rating["alternateName"] and rating["ratingExplanation"]
        item = r["itemReviewed"]
        assert isinstance(item, dict) and item["@type"] == "Claim"
        assert item["appearance"] and item["firstAppearance"] == item["appearance"][0]
        author = r["author"]
        assert isinstance(author, dict) and author["name"]
    assert seen["hostile"]["claimReviewed"] == HOSTILE_SCRIPT
    assert seen["trade-record-2024"]["reviewRating"]["ratingValue"] == 5  # type: ignore[index]
    assert seen["trade-fall-2025"]["reviewRating"]["ratingValue"] == 4  # type: ignore[index]
    assert seen["trade-record-2024"]["itemReviewed"]["author"]["name"] == "Some One"  # type: ignore[index]


# -- links ---------------------------------------------------------------------------------------
def broken_links(site: Path, base_path: str = "/") -> list[str]:
    """Every internal href/src of every page that resolves to no file."""
    broken = []
    for f in sorted(site.rglob("*.html")):
        if "pagefind" in f.parts:
            continue
        doc = lhtml.fromstring(f.read_bytes())
        for el in doc.iter():
            for attr in ("href", "src"):
                ref = el.get(attr)
                if not ref or not isinstance(el.tag, str):
                    continue
                parts = urlsplit(ref)
                if parts.scheme or parts.netloc:
                    assert parts.scheme in ("http", "https"), (f, ref)
                    continue
                if not parts.path:
                    continue  # "#fragment" on the same page
                if parts.path.startswith("/"):
                    target = site / unquote(parts.path[len(base_path):])
                else:
                    target = (f.parent / unquote(parts.path)).resolve()
                if parts.path.endswith("/"):
                    target = target / "index.html"
                if not target.is_file():
                    broken.append(f"{f.relative_to(site)}: {ref}")
                elif parts.fragment and target.suffix == ".html":
                    ids = lhtml.fromstring(target.read_bytes()).xpath("//@id")
                    if parts.fragment not in ids:
                        broken.append(f"{f.relative_to(site)}: {ref} (no such anchor)")
    return broken


def test_every_internal_link_resolves(site: Path) -> None:
    assert broken_links(site) == []
    assert (site / "search" / "index.json").is_file()


# -- the build as a whole ------------------------------------------------------------------------
def test_two_builds_are_byte_identical(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb(RICH)
    a, b = tmp_path / "a", tmp_path / "b"
    assert build(root, a, search="auto").ok and build(root, b, search="auto").ok
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 30
    assert [p for p in files_a if (a / p).read_bytes() != (b / p).read_bytes()] == []


def test_failed_build_leaves_the_old_site(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb(RICH)
    out = tmp_path / "site"
    assert build(root, out).ok
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # an error in the knowledge base: nothing is written
    (root / "claims" / "broken.yaml").write_text("id: broken\nclaim: [\n", encoding="utf-8")
    result = build(root, out)
    assert not result.ok and result.checked.report.errors
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a failure while writing (a broken template): nothing is swapped in, no litter
    (root / "claims" / "broken.yaml").unlink()
    (root / "templates").mkdir()
    (root / "templates" / "entity.html").write_text("{{ nonsense.x.y }}", encoding="utf-8")
    with pytest.raises(Exception, match="nonsense"):
        build(root, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # the staging folder is set aside at once; a detached process deletes it
    until(lambda: len(list(tmp_path.iterdir())) <= 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb", "site"]


def test_write_refuses_a_path_twice_and_escapes(tmp_path: Path) -> None:
    out = tmp_path / "site"
    with pytest.raises(WriteError, match="twice"):
        write_site([Page("a/index.html", b"1"), Page("a/index.html", b"2")], out)
    for bad in ("../x.html", "/etc/x", "a/../../x"):
        with pytest.raises(WriteError):
            write_site([Page(bad, b"")], out)
    assert not out.exists()
    assert write_site([Page("a/b.html", b"ok")], out).files == 1
    assert (out / "a" / "b.html").read_bytes() == b"ok"


def test_appended_files_are_written_as_made_and_refused_twice(tmp_path: Path) -> None:
    """A dump is written a member at a time (kb.write.SiteWriter.append): the file holds every
    part in order, its Stat is recorded when it is closed, and no other write may take its path."""
    writer = SiteWriter(tmp_path)
    writer.append("data/kb.nt.gz", b"one,")
    writer.append("data/other.gz", b"x")
    writer.append("data/kb.nt.gz", b"two")
    with pytest.raises(WriteError, match="twice"):
        writer.write(Page("data/kb.nt.gz", b"again"))
    assert writer.close_appended() == ["data/kb.nt.gz", "data/other.gz"]
    path = tmp_path / "data" / "kb.nt.gz"
    assert path.read_bytes() == b"one,two" and writer.bytes == 8
    assert writer.stats["data/kb.nt.gz"] == file_stat(path.stat())
    with pytest.raises(WriteError, match="twice"):
        writer.append("data/kb.nt.gz", b"three")  # closed: a new file, which it refuses
    assert writer.close_appended() == [] and path.read_bytes() == b"one,two"


def test_templates_override_by_name(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb({"templates/about.html": "{% extends 'base.html' %}{% block main %}"
                    "<h1>Our own about</h1>{{ '<b>' }}{% endblock %}",
                    "templates/static/extra.css": "body{}"})
    out = tmp_path / "site"
    assert build(root, out).ok
    about = (out / "about" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Our own about</h1>&lt;b&gt;" in about  # autoescaped in overrides too
    assert (out / "static" / "extra.css").is_file() and (out / "static" / "style.css").is_file()


def test_cli_build(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["--root", str(root), "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "claims" / "trade-record-2024" / "index.html").is_file()
    (root / "claims" / "x.yaml").write_text("id: x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--root", str(root), "build", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "unchanged" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["--root", str(tmp_path / "nowhere"), "build"])
    assert result.exit_code == 2, result.output


def test_seed_knowledge_base_builds(tmp_path: Path) -> None:
    """The repository's own knowledge base: every link of its site resolves."""
    if not any((REPO / "claims").glob("*.yaml")):
        pytest.skip("no seed claims yet")
    out = tmp_path / "site"
    result = build(REPO, out)
    assert result.ok, list(result.checked.report)
    assert broken_links(out) == []
    assert len(list((out / "claims").glob("*/index.html"))) == len(result.checked.kb.claims)


def test_a_build_leaves_no_object_frozen(make_kb: MakeKB, tmp_path: Path) -> None:
    """What a build freezes (kb.cache.paused_gc here; on larger sites freeze_for_fork too) is
    unfrozen when it ends: in `kb serve`, which builds again and again, cycles among frozen
    objects would never be freed."""
    import gc

    root = make_kb(RICH)
    result = build_site(root, tmp_path / "site", BuildOptions(check=CheckOptions(today=TODAY)))
    assert result.ok
    assert gc.get_freeze_count() == 0


def test_parallel_render_gives_the_same_pages(make_kb: MakeKB) -> None:
    """Two processes (fork) and one give byte-identical pages, record dumps included."""
    from kb.check import check
    from kb.graph import build_graph
    from kb.network import independent_sources, source_groups
    from kb.pages import build_model
    from kb.render import Extras, render_pages

    root = make_kb(RICH)
    checked = check(root, CheckOptions(today=TODAY, use_cache=False))
    g = build_graph(checked, {})
    kb = checked.kb
    model = build_model(kb, checked.config, TODAY, {}, independent_sources(kb, source_groups(kb)))
    extras = Extras(graph=g, record_alternates=True)
    one = render_pages(model, extras, root, jobs=1)
    two = render_pages(model, extras, root, jobs=2, parallel_from=1)
    assert [p.path for p in one] == [p.path for p in two]
    assert [p.data for p in one] == [p.data for p in two]
    assert "claims/hostile.ttl" in {p.path for p in two}


# -- accessibility -------------------------------------------------------------------------------
def test_headings_in_order_and_landmarks(site: Path) -> None:
    for f in sorted(site.rglob("*.html")):
        if "pagefind" in f.parts:
            continue
        doc = lhtml.fromstring(f.read_bytes())
        levels = [int(h.tag[1]) for h in doc.iter("h1", "h2", "h3", "h4", "h5", "h6")]
        assert levels[:1] == [1] and levels.count(1) == 1, f
        assert all(b <= a + 1 for a, b in pairwise(levels)), (f, levels)
        assert doc.cssselect("header nav") and len(doc.cssselect("main")) == 1, f
        for svg in doc.cssselect("svg"):
            assert svg.get("role") == "img" and svg.get("aria-labelledby"), f


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_colours_meet_wcag_aa_in_both_themes() -> None:
    css = (REPO / "kb" / "templates" / "static" / "style.css").read_text(encoding="utf-8")
    light, _, rest = css.partition("@media (prefers-color-scheme: dark)")
    dark = rest.split("\n}\n", 1)[0]
    for theme in (light, dark):
        colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", theme))
        pairs = [("fg", "bg"), ("muted", "bg"), ("link", "bg"), ("fg", "panel"),
                 ("muted", "panel"), ("link", "panel")]
        pairs += [(f"{s}-fg", f"{s}-bg") for s in ("supported", "partly-supported", "disputed",
                                                    "refuted", "unverified", "not-checkable")]
        for fg, bg in pairs:
            assert _contrast(colours[fg], colours[bg]) >= 4.5, (fg, bg)


def test_a_query_page_shows_its_first_rows_and_counts_them_all(tmp_path: Path) -> None:
    from kb.extras import SHOWN
    from kb.query import run

    root = write_kb(tmp_path / "kb", RICH)
    text = ("# title: Every triple, twice\n"
            "SELECT ?s ?p ?o ?n { ?s ?p ?o VALUES ?n { 1 2 } } ORDER BY ?s ?p ?o ?n\n")
    (root / "queries").mkdir(exist_ok=True)
    (root / "queries" / "every-triple.rq").write_text(text, encoding="utf-8")
    result = build(root, root / "site")
    assert result.ok, list(result.checked.report)
    total = len(run(result.graph, text).rows)
    assert total > SHOWN
    doc = page(root / "site", "queries/every-triple/index.html")
    assert text_of(doc.cssselect("p.meta")[0]) == f"{total} rows; the first {SHOWN} shown."
    rows = doc.cssselect("table.list tbody tr")
    assert len(rows) == SHOWN
    assert [text_of(td) for td in rows[0].cssselect("td")][1] != ""


@pytest.mark.parametrize("keep_store", [True, False])
def test_the_queries_store_is_dropped_once_they_have_run_unless_kept(
        tmp_path: Path, keep_store: bool) -> None:
    from kb.check import check
    from kb.extras import Table, graph_extras

    root = write_kb(tmp_path / "kb", RICH)
    (root / "queries").mkdir(exist_ok=True)
    (root / "queries" / "claims.rq").write_text(
        "SELECT ?c { ?c a schema:Claim } ORDER BY ?c\n", encoding="utf-8")
    checked = check(root, CheckOptions(today=TODAY, use_cache=False))
    g, extras = graph_extras(checked, {}, root, {}, keep_store=keep_store)
    table = extras.results["claims"]
    assert isinstance(table, Table) and table.count == len(checked.kb.claims) > 0
    assert ("store" in g.__dict__) is keep_store


def test_a_named_query_that_would_call_out_is_not_run(tmp_path: Path) -> None:
    """Oxigraph calls out for SERVICE: a build, a function of the files, must not (to a server
    that accepts and never answers, it waited for ever). The query's page says why. The port
    named refuses connections: a query that ran would show that error instead, at once."""
    from kb.extras import NOT_RUN

    root = write_kb(tmp_path / "kb", RICH)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "queries").mkdir(exist_ok=True)
    (root / "queries" / "remote.rq").write_text(
        f"SELECT * {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}\n",
        encoding="utf-8")
    for keep_graph in (True, False):  # run here, and in a child (kb.extras.LaterResults)
        out = tmp_path / f"site-{keep_graph}"
        result = build_site(root, out, BuildOptions(
            check=CheckOptions(today=TODAY, use_cache=False), search="json",
            keep_graph=keep_graph))
        assert result.ok
        error = page(out, "queries/remote/index.html").cssselect("p.error")
        assert error and text_of(error[0]).endswith(NOT_RUN)
