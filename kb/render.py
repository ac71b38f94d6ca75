"""Model + graph → the pages of the site, in memory, as (path, bytes).

Templates are jinja2 with autoescaping on, from the package (kb/templates/), overridden file by
file by a knowledge base's own templates/ folder. Links between pages are relative (`root` is
"../" times the page's depth), so the site works under any base path and from `kb serve`.
Claim pages are rendered on several processes when there are many: the model is built once in
the parent and inherited by the workers through fork, so only page bytes cross process lines.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from kb import jsonld, quantities, splice
from kb.charts import Bar, human, status_bars
from kb.pages import (
    ICONS,
    SiteModel,
    badge,
    claim_link,
    claim_list_html,
    entity_link,
    source_link,
)
from kb.schema import valid_url
from kb.vocab import STATUS, STATUS_SCALE, TERMS
from kb.write import Page

STANCE_LABELS = {"supports": "Supports", "partly-supports": "Partly supports",
                 "partly-refutes": "Partly refutes", "refutes": "Refutes",
                 "context": "Context"}
RELATION_WORDS = {"supports": "supports", "contradicts": "contradicts", "refines": "refines",
                  "duplicates": "duplicates", "depends-on": "depends on",
                  "context": "gives context to"}
PARALLEL_FROM = 400  # pages; below this, a process pool costs more than it saves


@dataclass(frozen=True)
class Spec:
    """A page to render: where it goes, with which template, and what else it needs."""

    path: str
    template: str
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass
class Extras:
    """What the graph side adds, when it is there: downloads and query results."""

    downloads: list[tuple[str, str, str]] = field(default_factory=list)  # path, label, media
    record_alternates: bool = False  # claims/<id>.ttl and .jsonld exist
    queries: list[Any] = field(default_factory=list)  # kb.query.NamedQuery
    # name → kb.extras.Table or error text; kb.extras.LaterResults waits for them when read
    results: Mapping[str, Any] = field(default_factory=dict)
    search: str = "pagefind"  # or "json" (the fallback index) or "none"
    search_shards: int = 1  # pagefind's bundles, pagefind/0 … (kb.searchshards)
    graph: Any = None  # kb.kbgraph.KBGraph: claims/<id>.ttl and .jsonld are dumped from it


def safe_url(value: object) -> str:
    """The URL itself when it is http(s), else "": nothing else ever becomes a link."""
    return _safe_url(str(value or ""))


@functools.lru_cache(maxsize=65536)
def _safe_url(text: str) -> str:
    return text if valid_url(text) else ""


def local_link(value: str, root: str, base: str) -> str:
    """An IRI of this knowledge base as a link to its page on this site, else ""."""
    if not value.startswith(base):
        return ""
    rest = value[len(base):].split("#", 1)[0]
    kind, _, id_ = rest.partition("/")
    if kind in ("claims", "sources", "entities", "status") and id_ and "/" not in id_:
        return f"{root}{kind}/{id_}/"
    if rest == "vocab":
        return f"{root}vocab/"
    return ""


def _root(path: str) -> str:
    return "../" * path.count("/")


def repo_links(config: Any, path: str) -> dict[str, str]:
    """Links to view, edit and see commits of a file, for GitHub, GitLab or Gitea hosts."""
    repo = safe_url(config.repository).rstrip("/")
    if not repo:
        return {}
    sep = "/-/" if "gitlab" in urlsplit(repo).netloc else "/"
    branch = config.branch or "main"
    return {"view": f"{repo}{sep}blob/{branch}/{path}", "edit": f"{repo}{sep}edit/{branch}/{path}",
            "commit": f"{repo}{sep}commit/", "new": f"{repo}{sep}new/{branch}/claims"}


class _CompiledTemplates(jinja2.BytecodeCache):
    """The templates' compiled code, kept in the user's cache (kb.memo files): compiling
    every template cost 0.4 s a build. jinja2 gives each template a bucket named by its name
    and file, and the digest of its source: an edited template is compiled again. The key adds
    what else the code depends on — jinja2's and Python's versions, the options make_env
    passes (this module's code) — and each file carries the digest of its data, so a damaged
    file is compiled again rather than run."""

    def __init__(self, folder: Path) -> None:
        from kb.cache import code_fingerprint

        self.folder = folder
        self.key = (jinja2.__version__, sys.version, code_fingerprint(("render",)))

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        from kb.memo import read_memo

        code = read_memo(self.folder / f"{bucket.key}.code", (*self.key, bucket.checksum))
        if code is not None and type(code).__name__ == "code":
            bucket.code = code

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        from kb.memo import write_memo

        write_memo(self.folder / f"{bucket.key}.code", (*self.key, bucket.checksum), bucket.code)


def make_env(root: Path | None) -> jinja2.Environment:
    """The templates of the knowledge base in `root` (None: the package's alone, compiled
    afresh; with a root, their compiled code is kept in the user's cache)."""
    from kb.cache import cache_path

    loaders: list[jinja2.BaseLoader] = []
    if root is not None and (root / "templates").is_dir():
        loaders.append(jinja2.FileSystemLoader(str(root / "templates")))
    loaders.append(jinja2.PackageLoader("kb", "templates"))
    # auto_reload off: templates do not change during a build, and checking cost a stat() of
    # the template file per page.
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, auto_reload=False,
                             cache_size=-1, undefined=jinja2.StrictUndefined,
                             bytecode_cache=None if root is None else _CompiledTemplates(
                                 cache_path(root, "templates").with_suffix("")))
    env.filters["safe_url"] = safe_url
    env.filters["human"] = human
    env.filters["local_link"] = jinja2.pass_context(
        lambda ctx, value, root: local_link(value, root, ctx["config"].base_url))
    env.globals.update(ICONS=ICONS, STATUS=STATUS, STATUS_SCALE=STATUS_SCALE,
                       STANCE_LABELS=STANCE_LABELS, RELATION_WORDS=RELATION_WORDS, TERMS=TERMS,
                       repo_links=repo_links, badge=badge, claim_link=claim_link,
                       claim_list=_claim_list, entity_link=entity_link, source_link=source_link,
                       QUANTITIES_SHOWN=quantities.SHOWN)
    return env


@jinja2.pass_context
def _claim_list(context: Any, m: SiteModel, root: str, ids: list[str],
                empty: str = "None.") -> Markup:
    """The templates' list of claims (kb.pages.claim_list_html), a long one held back for
    the page's bytes (kb.splice)."""
    return splice.hold(context, claim_list_html(m, root, ids, empty))


# -- the pages ---------------------------------------------------------------------------------
def specs(model: SiteModel, extras: Extras) -> Iterator[Spec]:
    kb = model.kb
    yield Spec("index.html", "home.html")
    yield Spec("claims/index.html", "claims.html", (("ids", model.claim_ids), ("heading", "")))
    for kind, ids in sorted(model.by_kind.items()):
        yield Spec(f"claims/kind/{kind}/index.html", "claims.html",
                   (("ids", ids), ("heading", f"Claims of kind “{kind}”")))
    for tag, ids in model.by_tag.items():
        yield Spec(f"claims/tag/{tag}/index.html", "claims.html",
                   (("ids", ids), ("heading", f"Claims tagged “{tag}”")))
    yield Spec("status/index.html", "scale.html")
    for s in STATUS_SCALE:
        yield Spec(f"status/{s.name}/index.html", "status.html",
                   (("status", s.name), ("ids", model.by_status.get(s.name, [])),
                    ("heading", s.label)))
    yield Spec("sources/index.html", "sources.html")
    for sid in sorted(kb.sources):
        yield Spec(f"sources/{sid}/index.html", "source.html", (("id", sid),))
    yield Spec("entities/index.html", "entities.html")
    for eid in sorted(kb.entities):
        yield Spec(f"entities/{eid}/index.html", "entity.html", (("id", eid),))
    yield Spec("quantities/index.html", "quantities.html")
    yield Spec("queries/index.html", "queries.html")
    for q in extras.queries:
        yield Spec(f"queries/{q.name}/index.html", "query.html", (("query", q),))
    yield Spec("data/index.html", "data.html")
    yield Spec("vocab/index.html", "vocab.html")
    yield Spec("about/index.html", "about.html")
    yield Spec("search/index.html", "search.html")
    yield Spec("404.html", "404.html")
    yield Spec("feed.xml", "feed.xml")


def claim_specs(model: SiteModel) -> list[Spec]:
    return [Spec(f"claims/{cid}/index.html", "claim.html", (("id", cid),))
            for cid in model.claim_ids]


# Set in the parent before the pool forks; the workers read it, never pickle it.
_STATE: tuple[SiteModel, Extras, Path | None] | None = None
_ENV: jinja2.Environment | None = None
_HOLDING = True  # long lists put into pages as bytes: only with the package's templates alone


def _env() -> jinja2.Environment:
    global _ENV, _HOLDING
    if _ENV is None:
        assert _STATE is not None
        root = _STATE[2]
        _ENV = make_env(root)
        # A knowledge base's own template might print a list through a filter (kb.splice).
        _HOLDING = root is None or not (root / "templates").is_dir()
    return _ENV


def render_one(spec: Spec) -> Page:
    assert _STATE is not None
    model, extras, _ = _STATE
    root = "/" + urlsplit(model.config.base_url).path.lstrip("/") if spec.path == "404.html" \
        else _root(spec.path)
    ctx: dict[str, Any] = {"m": model, "kb": model.kb, "config": model.config, "x": extras,
                           "root": root, "path": spec.path, "today": model.today}
    ctx.update(spec.extra)
    if spec.template == "claim.html":
        ctx.update(_claim_context(model, ctx["id"], root))
    elif spec.template == "home.html":
        ctx["chart"] = status_bars(
            [Bar(s.name, s.label, len(model.by_status.get(s.name, [])),
                 f"status/{s.name}/") for s in STATUS_SCALE], "Claims by evidence status",
            "status-chart")
    template = _env().get_template(spec.template)
    return Page(spec.path, splice.render(template, ctx, _HOLDING))


def _render_batch(batch: tuple[bool, list[Spec]]) -> list[Page]:
    are_claims, specs_ = batch
    return _render_claims(specs_) if are_claims else [render_one(s) for s in specs_]


def _render_claims(batch: list[Spec]) -> list[Page]:
    """Claim pages, each with its record as Turtle and JSON-LD when there is a graph."""
    assert _STATE is not None
    extras = _STATE[1]
    out = []
    for spec in batch:
        out.append(render_one(spec))
        if extras.graph is not None and extras.record_alternates:
            from kb.export import record_dump

            cid = dict(spec.extra)["id"]
            for fmt in ("ttl", "jsonld"):
                out.append(Page(f"claims/{cid}.{fmt}", record_dump(extras.graph, "claim", cid,
                                                                   fmt)))
    return out


def _claim_context(model: SiteModel, cid: str, root: str) -> dict[str, Any]:
    claim = model.kb.claims[cid]
    a = model.assessments[cid]
    path = claim.loc.path
    commits = model.history(path)
    created = commits[0].date.date().isoformat() if commits else None
    review = jsonld.claim_review(model.kb, claim, a, model.config, created)
    groups: dict[str, list[tuple[int, Any]]] = {}
    for i, ev in enumerate(claim.evidence, 1):
        groups.setdefault(ev.stance, []).append((i, ev))
    peers = model.quantity_peers(cid)
    chart = Markup("")
    if peers and claim.quantity:
        chart = Markup(model.quantity_chart(peers, claim.quantity.unit, "q-chart", root, cid))
    return {"claim": claim, "a": a, "jsonld": jsonld.embed(review), "file": path,
            "commits": commits, "steps": model.status_history(path),
            "evidence_groups": [(s, groups[s]) for s in STANCE_LABELS if s in groups],
            "quantity_chart": chart, "peers": peers}


def outputs(spec: Spec, extras: Extras) -> list[str]:
    """The files one spec makes: a claim's page also makes its record as Turtle and JSON-LD."""
    if spec.template == "claim.html" and extras.graph is not None and extras.record_alternates:
        return [spec.path, *alternates_of(dict(spec.extra)["id"])]
    return [spec.path]


def alternates_of(cid: str) -> tuple[str, str]:
    """A claim's record as Turtle and as JSON-LD, beside its page."""
    return f"claims/{cid}.ttl", f"claims/{cid}.jsonld"


def render_stream(model: SiteModel, extras: Extras, root: Path | None, todo: list[Spec],
                  jobs: int | None = None, parallel_from: int = PARALLEL_FROM
                  ) -> Iterator[Page]:
    """The pages of `todo`, as they are rendered (on `jobs` processes when there are many).

    A generator, so the caller writes each batch while the next is rendered and no more
    than a few batches are ever in memory.
    """
    global _STATE, _ENV
    _STATE, _ENV = (model, extras, root), None
    try:
        model.warm()  # work every process would otherwise repeat after the fork
        jobs = jobs or min(2, os.cpu_count() or 1)
        claims = [s for s in todo if s.template == "claim.html"]
        others = [s for s in todo if s.template != "claim.html"]
        if jobs > 1 and len(todo) >= parallel_from and "fork" in \
                multiprocessing.get_all_start_methods():
            size = max(25, min(200, len(claims) // (jobs * 8) or 1))
            batches: list[tuple[bool, list[Spec]]] = [
                (False, others[i:i + 100]) for i in range(0, len(others), 100)]
            batches += [(True, claims[i:i + size]) for i in range(0, len(claims), size)]
            gc.collect()
            gc.freeze()  # the workers' collector leaves the model's pages unshared (CoW)
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for chunk in pool.imap(_render_batch, batches):
                    yield from chunk
        else:
            for s in others:
                yield render_one(s)
            for s in claims:
                yield from _render_claims([s])
    finally:
        gc.unfreeze()
        _STATE, _ENV = None, None


def render_pages(model: SiteModel, extras: Extras, root: Path | None,
                 jobs: int | None = None, parallel_from: int = PARALLEL_FROM) -> list[Page]:
    """Every page of the site in memory, sitemap last (for tests and small sites)."""
    todo = list(specs(model, extras)) + claim_specs(model)
    pages = list(render_stream(model, extras, root, todo, jobs, parallel_from))
    pages.append(sitemap(model, [p.path for p in pages]))
    return pages


def sitemap(model: SiteModel, paths: Iterable[str]) -> Page:
    base = model.config.base_url
    urls = sorted(base + p.removesuffix("index.html") for p in paths
                  if p.endswith(".html") and p != "404.html")
    body = "".join(f"<url><loc>{_xml(u)}</loc></url>\n" for u in urls)
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{body}</urlset>\n")
    return Page("sitemap.xml", text.encode("utf-8"))


def _xml(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def static_files(root: Path | None) -> list[Page]:
    """kb/templates/static/*, with a knowledge base's templates/static/ files replacing them."""
    found: dict[str, Path] = {}
    package = Path(__file__).parent / "templates" / "static"
    folders = [package] + ([root / "templates" / "static"] if root is not None else [])
    for folder in folders:
        if folder.is_dir():
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    found[f.relative_to(folder).as_posix()] = f
    return [Page(f"static/{rel}", found[rel].read_bytes()) for rel in sorted(found)]

