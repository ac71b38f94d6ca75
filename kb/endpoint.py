"""The read-only SPARQL 1.1 endpoint (`kb serve`, at /sparql), as a WSGI application.

One request: read the protocol's parameters (GET, POST form, POST direct), refuse what the
protocol calls a bad request, check the query's algebra (kb.sparqlguard), negotiate the result
format, and hand the query to a worker process with a deadline (kb.workers). A GET without a
query answers with the service description, or a query form for browsers.

Every answer that is not a result is a short text/plain message with the protocol's status:
400 bad request, 405 method, 406 format, 413 too large, 503 time limit or busy. No traceback.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kb import sparqlformats as fmt
from kb.sparqlguard import CheckedQuery, GuardLimits, Refused, check_query
from kb.workers import Answer, Job, WorkerPool

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 405: "Method Not Allowed",
               406: "Not Acceptable", 413: "Content Too Large", 500: "Internal Server Error",
               503: "Service Unavailable"}
CORS = [("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "X-Result-Truncated")]
SD_TYPES = ("text/turtle", "text/html", "application/n-triples", "application/ld+json",
            "application/rdf+xml")


class Example(Protocol):
    """A named query shown on the form page (kb.query.NamedQuery fits)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class EndpointOptions:
    time_limit: float = 10.0          # seconds a query may run before its worker is killed
    max_rows: int = 100_000           # result rows (or triples); more are cut, with a header
    max_response_bytes: int = 32 * 1024 * 1024
    max_query_bytes: int = 32_768
    workers: int = 2                  # query processes; one slow query holds only one
    worker_memory_mb: int = 4096      # address-space cap of a worker; 0 for none
    prefixes: dict[str, str] = field(default_factory=dict)  # declared for every query
    examples: Sequence[Example] = ()
    title: str = "SPARQL endpoint"

    @property
    def limits(self) -> GuardLimits:
        return GuardLimits(max_query_bytes=self.max_query_bytes)


class Reply(Exception):
    """An answer that is not a query result: a status and a short message."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()
                 ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)


@dataclass(frozen=True)
class Request:
    method: str
    query: str | None
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    accept: str | None


def _media(header: str) -> tuple[str, dict[str, str]]:
    mime, _, rest = header.partition(";")
    params = {}
    for part in rest.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"').lower()
    return mime.strip().lower(), params


def _pairs(text: str) -> list[tuple[str, str]]:
    try:
        return urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8",
                                      errors="strict", max_num_fields=200)
    except UnicodeDecodeError:
        raise Reply(400, "parameters are not UTF-8") from None
    except ValueError:
        raise Reply(400, "too many parameters") from None


def read_request(environ: dict[str, Any], max_query_bytes: int) -> Request:
    """The protocol's parameters, or Reply(4xx) for a request the protocol calls bad."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    pairs = _pairs(environ.get("QUERY_STRING", ""))
    direct: str | None = None
    if method == "POST":
        mime, params = _media(environ.get("CONTENT_TYPE", "") or "")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Reply(400, "bad Content-Length") from None
        # A url-encoded query may take three bytes a character.
        if length > 3 * max_query_bytes + 4096:
            raise Reply(413, f"request body larger than the limit ({max_query_bytes} bytes of "
                             "query)")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        charset = params.get("charset", "utf-8")
        if mime == "application/sparql-update":
            raise Reply(400, "updates are not allowed: this endpoint is read-only")
        if mime not in ("application/x-www-form-urlencoded", "application/sparql-query"):
            raise Reply(400, "missing Content-Type: use application/x-www-form-urlencoded or "
                             "application/sparql-query" if not mime else
                             f"unsupported Content-Type {mime[:80]!r}: use "
                             "application/x-www-form-urlencoded or application/sparql-query")
        if charset.replace("-", "") != "utf8":
            raise Reply(400, f"unsupported charset {charset[:40]!r}: queries are UTF-8")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Reply(400, "the request body is not UTF-8") from None
        if mime == "application/sparql-query":
            direct = text
        else:
            pairs += _pairs(text)
    elif method not in ("GET", "HEAD"):
        raise Reply(405, f"method {method[:20]} not allowed: use GET or POST",
                    [("Allow", "GET, HEAD, POST, OPTIONS")])
    if any(k in ("update", "using-graph-uri", "using-named-graph-uri") for k, _ in pairs):
        raise Reply(400, "updates are not allowed: this endpoint is read-only")
    queries = [v for k, v in pairs if k == "query"] + ([direct] if direct is not None else [])
    if len(queries) > 1:
        raise Reply(400, "more than one query in the request")
    if method == "POST" and not queries:
        raise Reply(400, "no query in the request")
    return Request(method, queries[0] if queries else None,
                   tuple(v for k, v in pairs if k == "default-graph-uri"),
                   tuple(v for k, v in pairs if k == "named-graph-uri"),
                   environ.get("HTTP_ACCEPT"))


@dataclass(frozen=True)
class _Data:
    pool: WorkerPool
    graphs: frozenset[str]
    folder: Path
    check: Callable[[str], CheckedQuery]  # check_query, remembered per text


class Endpoint:
    """The WSGI app. `store_factory` gives the data: a kb.kbgraph.KBGraph, or a pyoxigraph store
    with one named graph per file; `reload()` takes a fresh one (after a rebuild) without
    stopping answers in flight."""

    def __init__(self, store_factory: Callable[[], Any], options: EndpointOptions) -> None:
        self.options = options
        self._factory = store_factory
        self._lock = threading.Lock()
        self._data: _Data | None = None
        self._closed = False  # by close(): a reload under way then keeps nothing
        self._prologue = "".join(f"PREFIX {p}: <{iri}>\n"
                                 for p, iri in sorted(options.prefixes.items()))
        self.reload()
        # Load rdflib's SPARQL parser now rather than on the first request (about 0.5 s).
        check_query("ASK {}", frozenset(), options.limits)

    def reload(self) -> None:
        import pyoxigraph as ox

        source = self._factory()
        folder = Path(tempfile.mkdtemp(prefix="kb-endpoint-"))
        dump = folder / "store.nq"
        if hasattr(source, "nquads"):
            # a kb.kbgraph.KBGraph: its N-Quads text is at hand, so no store is built only to be
            # dumped again (at 10,000 claims that saved about 4 s of start-up)
            graphs = frozenset(source.named_graphs())
            dump.write_bytes(source.nquads())
        else:
            graphs = frozenset(g.value for g in source.named_graphs()
                               if isinstance(g, ox.NamedNode))
            source.dump(str(dump), format=ox.RdfFormat.N_QUADS)
        pool = WorkerPool(dump, self.options.workers, self.options.worker_memory_mb)
        try:
            pool.start()
        except RuntimeError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        limits = self.options.limits

        @functools.lru_cache(maxsize=512)
        def check(text: str) -> CheckedQuery:
            # Parsing takes milliseconds of the one core the front process has; the same
            # queries (named ones, a client polling) come again and again. Refusals are
            # exceptions and so are not cached: a refused text is checked again each time.
            return check_query(text, graphs, limits)

        new = _Data(pool, graphs, folder, check)
        old: _Data | None
        with self._lock:
            if self._closed:  # closed meanwhile (kb serve ending): the new data goes too
                old = new
            else:
                old, self._data = self._data, new
        if old is not None:
            _retire(old)

    def close(self) -> None:
        with self._lock:
            old, self._data, self._closed = self._data, None, True
        if old is not None:
            _retire(old)

    @property
    def graphs(self) -> frozenset[str]:
        data = self._data  # once: close() may empty it meanwhile
        return data.graphs if data else frozenset()

    @property
    def killed(self) -> int:
        """Workers killed at the time limit so far (for tests and monitoring)."""
        data = self._data
        return data.pool.killed if data else 0

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            if method == "OPTIONS":
                return _respond(start_response, 204, [
                    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                    ("Access-Control-Allow-Headers", "Content-Type, Accept"),
                    ("Access-Control-Max-Age", "86400"), ("Allow", "GET, HEAD, POST, OPTIONS")],
                    b"", head=False)
            request = read_request(environ, self.options.max_query_bytes)
            if request.query is None:
                status, headers, body = self._describe(environ, request.accept)
            else:
                status, headers, body = self._answer(request)
        except Reply as reply:
            status, headers = reply.status, reply.headers
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
            body = (reply.message + "\n").encode("utf-8")
        except Exception:  # a bug of ours: answer like one, without a traceback
            status, headers = 500, [("Content-Type", "text/plain; charset=utf-8")]
            body = b"internal error\n"
        return _respond(start_response, status, headers, body, head=method == "HEAD")

    def _answer(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        data = self._data
        if data is None:
            raise Reply(503, "the endpoint is closed")
        assert request.query is not None
        try:
            checked = data.check(self._prologue + request.query)
        except Refused as refused:
            raise Reply(refused.status, refused.message) from None
        for iri in request.default_graphs + request.named_graphs:
            if iri not in data.graphs:
                raise Reply(400, f"<{iri[:200]}> is not one of this knowledge base's graphs")
        default: tuple[str, ...] | None = None  # None, None: the union of all graphs
        named: tuple[str, ...] | None = None
        if request.default_graphs or request.named_graphs:  # the protocol's dataset wins
            default, named = request.default_graphs, request.named_graphs
        elif checked.default_graphs or checked.named_graphs:
            default, named = checked.default_graphs, checked.named_graphs
        available = fmt.types_for(checked.form)
        media_type = fmt.negotiate(request.accept, available)
        if media_type is None:
            raise Reply(406, f"cannot answer a {checked.form} query in the formats asked for; "
                             f"available: {', '.join(available)}")
        job = Job(checked.text, checked.form, media_type, default, named,
                  self.options.max_rows, self.options.max_response_bytes)
        answer: Answer = data.pool.run(job, self.options.time_limit, self.options.time_limit)
        if answer.status != 200:
            raise Reply(answer.status, answer.body.decode("utf-8", "replace").strip())
        headers = [("Content-Type", fmt.content_type(answer.media_type)), ("Vary", "Accept")]
        if answer.truncated:
            headers.append(("X-Result-Truncated", f"{answer.rows} rows sent; the result was cut "
                                                  "at the endpoint's limit"))
        return 200, headers, answer.body

    def _describe(self, environ: dict[str, Any], accept: str | None
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
        from kb import endpointpage

        media_type = fmt.negotiate(accept, SD_TYPES)
        if media_type is None:
            raise Reply(406, f"available: {', '.join(SD_TYPES)}")
        url = _endpoint_url(environ)
        if media_type == "text/html":
            body = endpointpage.form_page(url, self.options.title, self.options.examples)
            return 200, [("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept"),
                         ("Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
                         ], body
        body = endpointpage.service_description(url, sorted(self.graphs), media_type)
        return 200, [("Content-Type", fmt.content_type(media_type)), ("Vary", "Accept")], body


def _retire(data: _Data) -> None:
    data.pool.close()
    shutil.rmtree(data.folder, ignore_errors=True)


def _endpoint_url(environ: dict[str, Any]) -> str:
    from wsgiref.util import request_uri

    try:
        url = request_uri(environ, include_query=False)
    except (KeyError, ValueError):
        url = "http://localhost/sparql"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(
            c in url for c in '<>"{}|\\^` '):
        return "http://localhost/sparql"
    return url


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]],
             body: bytes, head: bool) -> list[bytes]:
    headers = [*headers, *CORS, ("X-Content-Type-Options", "nosniff"),
               ("Content-Length", str(len(body)))]
    start_response(f"{status} {STATUS_TEXT.get(status, 'Error')}", headers)
    return [] if head else [body]


SETTINGS: dict[str, type] = {"time_limit": float, "max_rows": int, "max_response_bytes": int,
            "max_query_bytes": int, "workers": int, "worker_memory_mb": int}


def kb_options(root: Path, prefixes: dict[str, str] | None = None) -> EndpointOptions:
    """The endpoint's options for the knowledge base in `root`: its named queries as examples,
    its prefixes declared for every query, and limits from the environment:
    KB_SPARQL_TIME_LIMIT, KB_SPARQL_MAX_ROWS, KB_SPARQL_MAX_RESPONSE_BYTES,
    KB_SPARQL_MAX_QUERY_BYTES, KB_SPARQL_WORKERS, KB_SPARQL_WORKER_MEMORY_MB."""
    import os

    from kb.query import named_queries

    values: dict[str, Any] = {}
    for key, kind in SETTINGS.items():
        raw = os.environ.get(f"KB_SPARQL_{key.upper()}")
        if raw is None:
            continue
        try:
            value = kind(raw)
        except ValueError:
            continue  # a malformed setting keeps the default rather than stopping the server
        if value > 0 or (key == "worker_memory_mb" and value == 0):
            values[key] = value
    try:
        examples: Sequence[Example] = named_queries(root)
    except (OSError, ValueError):
        examples = ()
    return EndpointOptions(prefixes=dict(prefixes or {}), examples=tuple(examples), **values)


def make_endpoint(store_factory: Callable[[], Any], options: EndpointOptions | None = None
                  ) -> Endpoint:
    """The endpoint as a WSGI app; `kb serve` mounts it at /sparql."""
    return Endpoint(store_factory, options or EndpointOptions())


def make_server(app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> Any:
    """A threaded WSGI server for `app` (call .serve_forever(); .server_port has the port)."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 128

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = Server((host, port), Quiet)
    server.set_app(app)
    return server


def serve_in_background(app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start a threaded server for `app` on a daemon thread; returns the server
    (`.server_port`; stop with `.shutdown()` and `.server_close()`)."""
    server = make_server(app, host, port)
    threading.Thread(target=server.serve_forever, name="kb-endpoint", daemon=True).start()
    return server
