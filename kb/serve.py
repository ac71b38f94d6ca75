"""`kb serve`: build the site, serve it on localhost, rebuild when a file changes.

The server is WSGI, so other applications mount beside the site by path prefix: the SPARQL
endpoint (kb/endpoint.py) is mounted at /sparql by passing `mounts={"/sparql": app}` to
`serve` (or `dispatch`). Everything else is a static file of the built site, looked up by path
on every request: a rebuild swaps the site folder atomically, and the next request sees it.
"""

from __future__ import annotations

import mimetypes
import os
import signal
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from kb.build import COMMITTING, BuildOptions, BuildResult, BuildStopped, build_site
from kb.forks import raise_interrupt

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

WATCHED = ("claims", "sources", "entities", "queries", "templates")
TYPES = {".ttl": "text/turtle", ".nt": "application/n-triples", ".nq": "application/n-quads",
         ".trig": "application/trig", ".jsonld": "application/ld+json", ".csv": "text/csv",
         ".xml": "application/xml", ".json": "application/json", ".svg": "image/svg+xml",
         ".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".wasm":
         "application/wasm", ".pf_meta": "application/octet-stream"}


def _type(path: Path) -> str:
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
        "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith(
        ("json", "xml", "turtle", "trig", "n-triples", "n-quads")) else kind


def site_app(site: Path) -> WSGIApp:
    """Static files of `site`: folders answer with their index.html, misses with 404.html."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Type", "text/plain")])
            return [b"405 method not allowed\n"]
        raw = unquote(environ.get("PATH_INFO", "/") or "/")
        parts = [p for p in raw.split("/") if p]
        if any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
            return _not_found(site, start_response)
        target = site.joinpath(*parts)
        if target.is_dir():
            if not raw.endswith("/"):
                start_response("301 Moved Permanently", [("Location", raw + "/")])
                return [b""]
            target = target / "index.html"
        if not target.is_file():
            return _not_found(site, start_response)
        data = target.read_bytes()
        start_response("200 OK", [("Content-Type", _type(target)),
                                  ("Content-Length", str(len(data))),
                                  ("Cache-Control", "no-cache")])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [data]

    return app


def _not_found(site: Path, start_response: StartResponse) -> Iterable[bytes]:
    page = site / "404.html"
    data = page.read_bytes() if page.is_file() else b"404 not found\n"
    start_response("404 Not Found", [("Content-Type", "text/html; charset=utf-8"
                                      if page.is_file() else "text/plain")])
    return [data]


def dispatch(site: WSGIApp, mounts: dict[str, WSGIApp] | None = None) -> WSGIApp:
    """Requests under a mounted prefix ("/sparql") go to its app; the rest to the site.

    The mounted app sees SCRIPT_NAME set to the prefix and PATH_INFO to the rest, as WSGI
    intends, so it can build its own URLs.
    """
    table = sorted((mounts or {}).items(), key=lambda kv: -len(kv[0]))

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        for prefix, mounted in table:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                env = dict(environ)
                env["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                env["PATH_INFO"] = path[len(prefix):]
                return mounted(env, start_response)
        return site(environ, start_response)

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_site_server(app: WSGIApp, host: str = "127.0.0.1", port: int = 8000) -> WSGIServer:
    return make_server(host, port, app, server_class=_ThreadingServer,
                       handler_class=_QuietHandler)


def snapshot(root: Path) -> dict[str, float]:
    """The modification times of every watched file, and of kb.toml."""
    stamps: dict[str, float] = {}
    for name in WATCHED:
        folder = root / name
        if folder.is_dir():
            for dirpath, _dirs, files in os.walk(folder):
                for f in files:
                    p = os.path.join(dirpath, f)
                    try:
                        stamps[p] = os.stat(p).st_mtime_ns
                    except OSError:
                        continue
    toml = root / "kb.toml"
    if toml.is_file():
        stamps[str(toml)] = toml.stat().st_mtime_ns
    return stamps


def changes(root: Path, interval: float = 0.5,
            stop: threading.Event | None = None) -> Iterator[None]:
    """Yields once after each change under the watched folders (polling: no dependency, and
    it works on every file system, network shares included)."""
    before = snapshot(root)
    while stop is None or not stop.is_set():
        time.sleep(interval)
        now = snapshot(root)
        if now != before:
            time.sleep(interval / 2)  # let an editor finish saving several files
            before = snapshot(root)
            yield None


# Seconds `kb serve` waits, as it ends, for a rebuild to stop: a rendering one reaches its next
# batch well within it (a batch is at most 200 claim pages), one checking or planning the end
# of its stage at 10,000 claims; serve itself still ends promptly when a stage outlasts it
# (tests/test_site_serve.py gives it 10 s in all).
STOP_PATIENCE = 3.0


def serve_command(root: Path, out: Path, host: str, port: int, sparql: bool = True,
                  echo: Callable[[str], None] = print) -> int:
    """`kb serve`: the exit code (2 when the folder is no knowledge base or the port is taken).

    With `sparql`, the read-only endpoint (kb.endpoint) is mounted at /sparql and reloaded
    with the new graph after each successful rebuild.
    """
    from kb.build import build_command
    from kb.buildlock import WAITING

    def waiting() -> None:
        echo(WAITING)

    first = build_command(root, out, BuildOptions(waiting=waiting))
    for line in first.lines:
        echo(line)
    if first.code == 2:
        return 2
    latest: dict[str, Any] = {}
    mounts: dict[str, WSGIApp] = {}
    endpoint: Any = None
    if sparql:
        try:
            from kb.endpoint import kb_options, make_endpoint

            if first.result is not None and first.result.graph is not None:
                latest["g"] = first.result.graph
                endpoint = make_endpoint(lambda: latest["g"],
                                         kb_options(root, latest["g"].iris.prefixes()))
                mounts["/sparql"] = endpoint
        except (ImportError, RuntimeError) as exc:
            echo(f"kb: the SPARQL endpoint is not available: {exc}")

    def report(result: BuildResult | Exception) -> None:
        if isinstance(result, Exception):
            echo(f"kb: rebuild failed: {result}")
            return
        if not result.ok:
            echo("kb: not rebuilt, the knowledge base has errors:")
            from kb import output

            for line in output.as_text(result.checked.report):
                echo(line)
            return
        echo(f"rebuilt in {result.timings.get('total', 0):.1f} s")
        for warning in result.warnings:
            echo(f"kb: warning: {warning}")
        if endpoint is not None and result.graph is not None:
            latest["g"] = result.graph
            endpoint.reload()

    try:
        server = make_site_server(dispatch(site_app(out), mounts), host, port)
    except OSError as exc:
        echo(f"kb: cannot listen on {host}:{port}: {exc}")
        return 2
    echo(f"serving {out} at http://{host}:{server.server_port}/"
         + (" (SPARQL at /sparql)" if mounts else "") + "; Ctrl-C stops")
    stop = threading.Event()
    reporting = threading.Lock()  # held while a rebuild is reported and loaded (endpoint)

    def loop() -> None:
        for _ in changes(root, stop=stop):
            try:
                result = build_site(root, out, BuildOptions(stop=stop, waiting=waiting))
            except BuildStopped:
                return
            except Exception as exc:
                report(exc)
                continue
            with reporting:
                if stop.is_set():  # ending: the endpoint is closing, nothing is to be loaded
                    return
                report(result)

    watcher = threading.Thread(target=loop, daemon=True, name="kb-watch")
    watcher.start()
    if threading.current_thread() is threading.main_thread():
        # `kill` stops the server like Ctrl-C does, so the endpoint's workers are stopped too
        signal.signal(signal.SIGTERM, raise_interrupt)  # children get the default (kb.forks)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            stop.set()  # a rebuild not yet committed stops before its commit
            with COMMITTING:  # and one committing ends its commit first,
                pass
            with reporting:  # and one being loaded into the endpoint its loading
                pass
            # A rebuild stops at the end of its stage or its next rendered batch, and removes
            # its staging folder and workers; one whose stage outlasts this is not waited for.
            watcher.join(timeout=STOP_PATIENCE)
        finally:
            server.server_close()
            if endpoint is not None:
                endpoint.close()
    return 0
