"""`kb serve`'s site part: static files over WSGI, a mount point for /sparql, rebuilds."""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kb.serve import changes, dispatch, make_site_server, serve_command, site_app
from kb.write import Page, write_site

from conftest import MakeKB, until


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_site_app_serves_files_folders_and_404(tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_site([Page("index.html", b"<h1>home</h1>"), Page("claims/x/index.html", b"x"),
                Page("claims/x.ttl", b"<a> <b> <c> ."), Page("404.html", b"nothing here")], out)

    def sparql(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"sparql {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode()]

    server = make_site_server(dispatch(site_app(out), {"/sparql": sparql}), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert fetch(base + "/")[2] == b"<h1>home</h1>"
        assert fetch(base + "/claims/x/")[2] == b"x"
        assert fetch(base + "/claims/x")[2] == b"x"  # redirected to the folder
        status, ctype, body = fetch(base + "/claims/x.ttl")
        assert status == 200 and ctype.startswith("text/turtle")
        status, _, body = fetch(base + "/nope")
        assert status == 404 and body == b"nothing here"
        assert fetch(base + "/../../etc/passwd")[0] == 404
        assert fetch(base + "/%2e%2e/%2e%2e/etc/passwd")[0] == 404
        assert fetch(base + "/sparql")[2] == b"sparql /sparql "
        assert fetch(base + "/sparql/x")[2] == b"sparql /sparql /x"
        assert fetch(base + "/sparqlx")[0] == 404  # a prefix is a path segment, not a string
    finally:
        server.shutdown()
        server.server_close()


def test_changes_sees_an_edit(make_kb: MakeKB) -> None:
    root = make_kb()
    stop = threading.Event()
    seen: list[float] = []

    def watch() -> None:
        for _ in changes(root, interval=0.05, stop=stop):
            seen.append(time.monotonic())
            stop.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.2)
    path = root / "claims" / "trade-record-2024.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    t.join(timeout=5)
    assert seen, "the edit was not noticed"


def test_serve_command_builds_serves_and_rebuilds(make_kb: MakeKB, tmp_path: Path) -> None:
    root = make_kb()
    out = tmp_path / "site"
    lines: list[str] = []
    # Run the real command in a thread; find the port it printed; stop it by its server.
    import kb.serve as serve_mod

    servers: list[Any] = []
    real = serve_mod.make_site_server

    def capture(app: Any, host: str, port: int) -> Any:
        s = real(app, host, port)
        servers.append(s)
        return s

    serve_mod.make_site_server = capture  # type: ignore[assignment]
    try:
        t = threading.Thread(target=serve_command, args=(root, out, "127.0.0.1", 0, False,
                                                          lines.append), daemon=True)
        t.start()
        for _ in range(200):
            if servers:
                break
            time.sleep(0.05)
        assert servers, lines
        base = f"http://127.0.0.1:{servers[0].server_port}/"
        time.sleep(0.3)
        assert b"Russia" in fetch(base + "claims/trade-record-2024/")[2]
        path = root / "claims" / "trade-record-2024.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace(
            "Russia–China trade reached", "Trade between Russia and China reached"),
            encoding="utf-8")
        for _ in range(100):
            if b"Trade between Russia" in fetch(base + "claims/trade-record-2024/")[2]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"not rebuilt: {lines}")
        for _ in range(50):  # the swap comes just before the message
            if any(line.startswith("rebuilt in") for line in lines):
                break
            time.sleep(0.05)
        assert any(line.startswith("rebuilt in") for line in lines), lines
    finally:
        serve_mod.make_site_server = real  # type: ignore[assignment]
        for s in servers:
            s.shutdown()


def _serve_in_thread(root: Path, out: Path, echo: Any, monkeypatch: Any
                     ) -> tuple[threading.Thread, Any]:
    import kb.serve as serve_mod

    servers: list[Any] = []
    real = serve_mod.make_site_server

    def capture(app: Any, host: str, port: int) -> Any:
        servers.append(real(app, host, port))
        return servers[-1]

    monkeypatch.setattr(serve_mod, "make_site_server", capture)
    t = threading.Thread(target=serve_command, args=(root, out, "127.0.0.1", 0, False, echo),
                         daemon=True)
    t.start()
    assert until(lambda: servers, 60)
    return t, servers[0]


def _edit(root: Path) -> None:
    path = root / "claims" / "trade-record-2024.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Russia–China trade reached",
                                 "Trade between Russia and China reached"), encoding="utf-8")


def _watcher_gone(seconds: float = 30) -> bool:
    return until(lambda: not any(t.name == "kb-watch" for t in threading.enumerate()), seconds)


def test_serve_ends_after_a_rebuilds_commit_not_within_it(make_kb: MakeKB, tmp_path: Path,
                                                          monkeypatch: Any) -> None:
    """Its rebuilds run in a thread, where no signal can be held: on its way out `kb serve`
    waits for a commit under way (kb.build.COMMITTING), and stops a rebuild before its commit."""
    from kb.build import COMMITTING

    t, server = _serve_in_thread(make_kb(), tmp_path / "site", lambda line: None, monkeypatch)
    with COMMITTING:  # a rebuild in its commit
        server.shutdown()
        t.join(0.5)
        assert t.is_alive()  # waits for the commit
    t.join(10)
    assert not t.is_alive()


def test_a_rebuild_under_way_when_serve_ends_stops_before_its_commit(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: Any) -> None:
    """The rebuild's thread is still rendering when `kb serve` ends: it stops at its commit
    (BuildStopped), the site stays as it was, and nothing is reported as rebuilt."""
    import kb.serve as serve_mod
    from kb.build import BuildStopped

    root, out = make_kb(), tmp_path / "site"
    lines: list[str] = []
    outcomes: list[Any] = []
    rendering, ended = threading.Event(), threading.Event()
    real_build = serve_mod.build_site

    def slow_rebuild(*args: Any, **kwargs: Any) -> Any:
        rendering.set()
        ended.wait(30)  # until serve has ended
        try:
            return real_build(*args, **kwargs)
        finally:
            outcomes.append(sys.exc_info()[0])

    monkeypatch.setattr(serve_mod, "build_site", slow_rebuild)
    t, server = _serve_in_thread(root, out, lines.append, monkeypatch)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _edit(root)
    assert rendering.wait(30)  # the rebuild has begun
    server.shutdown()
    t.join(10)
    assert not t.is_alive()
    ended.set()
    until(lambda: outcomes, 60)
    assert outcomes == [BuildStopped]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not any(line.startswith("rebuilt") for line in lines)

def test_a_rebuild_done_as_serve_ends_is_not_reported_nor_loaded(
        make_kb: MakeKB, tmp_path: Path, monkeypatch: Any) -> None:
    import kb.serve as serve_mod

    assert _watcher_gone()
    lines: list[str] = []
    built, ended = threading.Event(), threading.Event()
    real_build = serve_mod.build_site

    def build_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = real_build(*args, **kwargs)
        built.set()
        ended.wait(30)  # serve ends meanwhile
        return result

    monkeypatch.setattr(serve_mod, "build_site", build_then_wait)
    root = make_kb()
    t, server = _serve_in_thread(root, tmp_path / "site", lines.append, monkeypatch)
    _edit(root)
    assert built.wait(60)
    server.shutdown()
    t.join(10)
    assert not t.is_alive()
    ended.set()
    assert _watcher_gone()
    assert not any(line.startswith("rebuilt") for line in lines), lines


def test_serve_ends_after_a_rebuild_it_is_loading(make_kb: MakeKB, tmp_path: Path,
                                                 monkeypatch: Any) -> None:
    assert _watcher_gone()
    loading, release = threading.Event(), threading.Event()

    def echo(line: str) -> None:
        if line.startswith("rebuilt"):  # reported; then loaded into the endpoint
            loading.set()
            release.wait(30)

    root = make_kb()
    t, server = _serve_in_thread(root, tmp_path / "site", echo, monkeypatch)
    _edit(root)
    assert loading.wait(60)
    server.shutdown()
    t.join(0.5)
    assert t.is_alive()  # waits for the rebuild's report and loading
    release.set()
    t.join(10)
    assert not t.is_alive()
