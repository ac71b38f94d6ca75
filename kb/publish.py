"""`kb publish`: make a triple store hold exactly the knowledge base's named graphs, through the
SPARQL 1.1 Graph Store HTTP Protocol (PUT a graph, DELETE a graph).

Only what changed is sent. What the store was last sent is remembered in a state file (graph
IRI → digest of its N-Triples) in the user's cache folder, one per graph store URL; and, where a
SPARQL endpoint is given, the store itself is asked which of the knowledge base's graphs it
holds, so a store that was wiped, or a state file that was lost, still ends equal to the files.
A graph of the store counts as the knowledge base's when its IRI starts with `base_url`.

Failed requests (no connection, 5xx, 429) are retried with backoff, a bounded number of times;
a refusal (any other 4xx, or a 5xx that persists) stops the run with the server's own message.
The state is saved after every request that succeeded, so a run that stopped part-way resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RETRY_STATUSES = {429, 500, 502, 503, 504}


class PublishError(Exception):
    """The store refused a request, or could not be reached; the message says which."""

    def __init__(self, message: str, refused: bool = True) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class PublishOptions:
    graph_store: str                 # the Graph Store Protocol URL (PUT/DELETE ?graph=)
    endpoint: str | None = None      # a SPARQL query endpoint of the same store, to ask it
    user: str | None = None
    password: str | None = None
    retries: int = 4                 # attempts after the first
    backoff: float = 0.5             # seconds, doubled each retry
    timeout: float = 120.0
    state_dir: Path | None = None    # default: the user's cache folder


@dataclass
class PublishReport:
    put: list[str] = field(default_factory=list)       # graphs sent (new or changed)
    deleted: list[str] = field(default_factory=list)   # graphs of files that are gone
    unchanged: int = 0
    asked_store: bool = False
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"put {iri}" for iri in self.put] + [f"deleted {iri}" for iri in self.deleted]
        out += self.notes
        out.append(f"{len(self.put)} graph(s) sent, {len(self.deleted)} deleted, "
                   f"{self.unchanged} unchanged")
        return out


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


# --- state -----------------------------------------------------------------------------------

def state_path(options: PublishOptions) -> Path:
    from kb.cache import default_dir

    folder = options.state_dir or default_dir()
    key = hashlib.blake2b(options.graph_store.encode(), digest_size=10).hexdigest()
    return folder / f"publish-{key}.json"


def load_state(path: Path, graph_store: str) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if data.get("graph_store") != graph_store or not isinstance(graphs, dict):
        return {}
    return {str(k): str(v) for k, v in graphs.items()}


def save_state(path: Path, graph_store: str, graphs: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"graph_store": graph_store, "graphs": dict(sorted(graphs.items()))},
                      indent=1)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --- HTTP ------------------------------------------------------------------------------------

def _opener(options: PublishOptions) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = []
    if options.user is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        for url in filter(None, (options.graph_store, options.endpoint)):
            passwords.add_password(None, url, options.user, options.password or "")
        # Virtuoso's *-auth endpoints ask for Digest; Fuseki and others for Basic.
        handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                     urllib.request.HTTPBasicAuthHandler(passwords)]
    return urllib.request.build_opener(*handlers)


def _server_message(body: bytes) -> str:
    """The server's own words, without its HTML."""
    text = body.decode("utf-8", "replace")
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:500]


def _request(opener: urllib.request.OpenerDirector, options: PublishOptions, method: str,
             url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             ok_missing: bool = False, sleep: Callable[[float], None] = time.sleep) -> bytes:
    """Send one request, retrying what may succeed later; PublishError when it cannot."""
    last, refused = "", False
    for attempt in range(options.retries + 1):
        if attempt:
            sleep(options.backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with opener.open(request, timeout=options.timeout) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            message = _server_message(exc.read())
            if exc.code == 404 and ok_missing:
                return b""
            last = f"{method} {url}: HTTP {exc.code} {exc.reason}" + (
                f": {message}" if message else "")
            if exc.code not in RETRY_STATUSES:
                raise PublishError(last) from None
            refused = True
        except (urllib.error.URLError, OSError) as exc:
            last, refused = f"{method} {url}: {getattr(exc, 'reason', exc)}", False
    # A server that kept failing has refused; one that could not be reached has not.
    raise PublishError(f"{last} (gave up after {options.retries + 1} attempts)", refused)


def _graph_url(graph_store: str, iri: str) -> str:
    sep = "&" if urllib.parse.urlsplit(graph_store).query else "?"
    return graph_store + sep + urllib.parse.urlencode({"graph": iri})


def stored_graphs(opener: urllib.request.OpenerDirector, options: PublishOptions,
                  base_url: str) -> set[str]:
    """The graphs under `base_url` that the store holds, asked by SPARQL."""
    assert options.endpoint is not None
    literal = json.dumps(base_url)  # a valid SPARQL string literal
    query = ("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
             f"FILTER(STRSTARTS(STR(?g), {literal})) }}")
    url = options.endpoint + ("&" if "?" in options.endpoint else "?") + urllib.parse.urlencode(
        {"query": query})
    data = _request(opener, options, "GET", url,
                    headers={"Accept": "application/sparql-results+json"})
    try:
        rows = json.loads(data)["results"]["bindings"]
        return {row["g"]["value"] for row in rows}
    except (ValueError, KeyError, TypeError):
        raise PublishError(f"{options.endpoint} did not answer with SPARQL JSON results"
                           ) from None


# --- publishing ------------------------------------------------------------------------------

def publish_graphs(graphs: dict[str, bytes], base_url: str, options: PublishOptions,
                   sleep: Callable[[float], None] = time.sleep) -> PublishReport:
    """Make the store hold exactly `graphs` (IRI → N-Triples) among those under `base_url`."""
    opener = _opener(options)
    path = state_path(options)
    state = load_state(path, options.graph_store)
    report = PublishReport()
    present: set[str] | None = None
    if options.endpoint:
        try:
            present = stored_graphs(opener, options, base_url)
        except PublishError as exc:  # e.g. a Graph Store URL that answers no queries
            report.notes.append(f"note: could not ask the store which graphs it holds, so "
                                f"only the state file was used ({exc})")
    if present is not None:
        report.asked_store = True
        # What the store lacks must be sent whatever the state file says.
        state = {iri: d for iri, d in state.items() if iri in present or iri not in graphs}
    for iri in sorted(graphs):
        data = graphs[iri]
        want = digest(data)
        if state.get(iri) == want:
            report.unchanged += 1
            continue
        if not data.strip():  # an empty graph: nothing to store, so make sure none is there
            _request(opener, options, "DELETE", _graph_url(options.graph_store, iri),
                     ok_missing=True, sleep=sleep)
        else:
            _request(opener, options, "PUT", _graph_url(options.graph_store, iri), data,
                     {"Content-Type": "application/n-triples"}, sleep=sleep)
        report.put.append(iri)
        state[iri] = want
        save_state(path, options.graph_store, state)
    gone = (set(state) | (present or set())) - set(graphs)
    for iri in sorted(gone):
        if not iri.startswith(base_url):
            continue
        _request(opener, options, "DELETE", _graph_url(options.graph_store, iri),
                 ok_missing=True, sleep=sleep)
        report.deleted.append(iri)
        state.pop(iri, None)
        save_state(path, options.graph_store, state)
    return report


def publish(root: Path, options: PublishOptions) -> PublishReport:
    """Check the knowledge base in `root`, build its graph and publish every file's graph.

    Raises PublishError (refused=False) when the knowledge base has errors.
    """
    from kb.graph import load_graph

    checked, graph = load_graph(root)
    errors = checked.report.errors
    if errors:
        raise PublishError(f"the knowledge base has {len(errors)} error(s); run `kb check` "
                           "and fix them before publishing", refused=True)
    graphs = {iri: graph.graph_nquads(iri) for iri in graph.named_graphs()}
    return publish_graphs(graphs, checked.config.base_url, options)


@dataclass(frozen=True)
class Outcome:
    code: int
    lines: list[str]


def publish_command(root: Path, options: PublishOptions) -> Outcome:
    """`kb publish`: 0 done, 1 the store refused (or the knowledge base has errors), 2 the
    store could not be reached or the folder is no knowledge base."""
    from kb.load import NotAKnowledgeBase

    try:
        report = publish(root, options)
    except NotAKnowledgeBase as exc:
        return Outcome(2, [f"kb: {exc}"])
    except PublishError as exc:
        return Outcome(1 if exc.refused else 2, [f"kb: {exc}"])
    return Outcome(0, report.lines())
