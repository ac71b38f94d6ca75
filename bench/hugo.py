"""The same pages as a Hugo project, so that the benchmark can time Hugo beside `kb build`.

Each claim, source and entity becomes a content file whose front matter holds what its kb page
shows (statement, status and reason, quotes, evidence by stance, related claims, entities), and
the layouts render it much as kb's templates do. Hugo then builds the same number of pages
from the same information; the ratio of the two build times is the figure the issue asks for.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kb.check import check
from kb.status import assess

CONFIG = """\
baseURL = "https://claimkb.example.org/"
title = "claimkb (Hugo)"
disableKinds = ["taxonomy", "term"]
[outputs]
home = ["HTML"]
section = ["HTML"]
"""

BASEOF = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Title }} · {{ .Site.Title }}</title><link rel="stylesheet" href="/site.css"></head>
<body><header><a href="/">{{ .Site.Title }}</a>
<nav><a href="/claims/">Claims</a> <a href="/sources/">Sources</a>
<a href="/entities/">Entities</a></nav></header>
<main>{{ block "main" . }}{{ end }}</main><footer>Published by claimkb editors.</footer>
</body></html>
"""

SINGLE = """\
{{ define "main" }}
<article>
<p class="kind">{{ .Params.kind }}{{ with .Params.period }} · {{ . }}{{ end }}</p>
<h1>{{ .Title }}</h1>
{{ with .Params.status }}<p class="badge status-{{ . }}">{{ . }}</p>{{ end }}
{{ with .Params.reason }}<p class="reason">{{ . }}</p>{{ end }}
{{ with .Params.appearances }}<h2>Where the claim is made</h2>
{{ range . }}<blockquote>{{ .quote }}</blockquote>
<p><a href="{{ .source_url }}">{{ .source }}</a></p>{{ end }}{{ end }}
{{ with .Params.evidence }}<h2>Evidence</h2><ol>
{{ range . }}<li class="stance-{{ .stance }}"><strong>{{ .stance }}</strong>
{{ with .quote }}<blockquote>{{ . }}</blockquote>{{ end }}{{ with .note }}<p>{{ . }}</p>{{ end }}
<a href="{{ .source_url }}">{{ .source }}</a> · <a href="{{ .url }}">original</a></li>{{ end }}
</ol>{{ end }}
{{ with .Params.about }}<h2>Who and what</h2><ul>
{{ range . }}<li><a href="{{ .url }}">{{ .name }}</a></li>{{ end }}</ul>{{ end }}
{{ with .Params.related }}<h2>Related claims</h2><ul>
{{ range . }}<li><span class="badge">{{ .status }}</span>
<a href="{{ .url }}">{{ .title }}</a> ({{ .relation }})</li>{{ end }}</ul>{{ end }}
{{ with .Params.claims }}<h2>Claims</h2><ul>
{{ range . }}<li><span class="badge">{{ .status }}</span>
<a href="{{ .url }}">{{ .title }}</a></li>{{ end }}</ul>{{ end }}
{{ with .Params.reviews }}<h2>Reviews</h2><ul>{{ range . }}<li>{{ . }}</li>{{ end }}</ul>{{ end }}
</article>
{{ end }}
"""

LIST = """\
{{ define "main" }}<h1>{{ .Title }}</h1><ul>
{{ range .Pages }}<li>{{ with .Params.status }}<span class="badge">{{ . }}</span> {{ end }}
<a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}
</ul>{{ end }}
"""


def _page(folder: Path, name: str, front: dict[str, object]) -> None:
    # JSON front matter: Hugo reads it natively, and json.dumps escapes everything safely
    (folder / f"{name}.md").write_text(json.dumps(front, ensure_ascii=False) + "\n",
                                       encoding="utf-8")


def make_site(kb_root: Path, out: Path) -> int:
    """Write a Hugo project for the knowledge base in `kb_root`; return its number of pages."""
    checked = check(kb_root)
    kb, today = checked.kb, checked.context.today
    age = checked.config.review_age_days
    status = {cid: assess(c, today, age) for cid, c in kb.claims.items()}
    for sub in ("layouts/_default", "content/claims", "content/sources", "content/entities",
                "static"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "hugo.toml").write_text(CONFIG)
    (out / "layouts/_default/baseof.html").write_text(BASEOF)
    (out / "layouts/_default/single.html").write_text(SINGLE)
    (out / "layouts/_default/list.html").write_text(LIST)
    (out / "static/site.css").write_text("body{font-family:sans-serif;max-width:50rem}\n")

    def source(sid: str) -> dict[str, str]:
        s = kb.sources.get(sid)
        return {"source": s.title if s else sid, "source_url": f"/sources/{sid}/",
                "url": s.url if s else ""}

    by_source: dict[str, list[dict[str, str]]] = {}
    by_entity: dict[str, list[dict[str, str]]] = {}
    for cid, c in kb.claims.items():
        row = {"title": c.claim, "status": status[cid].status, "url": f"/claims/{cid}/"}
        for item in c.citations():
            by_source.setdefault(item.source.id, []).append(row)
        for ref in [*c.about, *([c.claimant] if c.claimant else [])]:
            by_entity.setdefault(ref.id, []).append(row)
        _page(out / "content/claims", cid, {
            "title": c.claim, "kind": c.kind, "period": c.period or "",
            "status": status[cid].status, "reason": status[cid].reason,
            "appearances": [{"quote": a.quote, **source(a.source.id)} for a in c.appearances],
            "evidence": [{"stance": e.stance, "quote": e.quote or "", "note": e.note or "",
                          **source(e.source.id)} for e in c.evidence],
            "about": [{"name": kb.entities[r.id].name if r.id in kb.entities else r.id,
                       "url": f"/entities/{r.id}/"} for r in c.about],
            "related": [{"title": kb.claims[r.claim.id].claim, "relation": r.relation,
                         "status": status[r.claim.id].status, "url": f"/claims/{r.claim.id}/"}
                        for r in c.related if r.claim.id in kb.claims],
            "reviews": [f"{r.date}: {r.by}" for r in c.reviews],
        })
    for sid, s in kb.sources.items():
        _page(out / "content/sources", sid, {"title": s.title, "kind": s.kind,
                                             "claims": by_source.get(sid, [])})
    for eid, e in kb.entities.items():
        _page(out / "content/entities", eid, {"title": e.name, "kind": e.kind,
                                              "claims": by_entity.get(eid, [])})
    return len(kb.claims) + len(kb.sources) + len(kb.entities)


if __name__ == "__main__":
    print(make_site(Path(sys.argv[1]), Path(sys.argv[2])), "pages")
