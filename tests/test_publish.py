"""`kb publish` retries and refusals, against a small Graph Store server on loopback that fails
on purpose (the full round trip with a real store is in test_publish_virtuoso.py)."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.publish import PublishError, PublishOptions, publish_command, publish_graphs

BASE = "https://kb.test/"


class Store(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.graphs: dict[str, bytes] = {}
        self.fail_next = 0
        self.refuse = False
        self.requests: list[str] = []


class Handler(http.server.BaseHTTPRequestHandler):
    server: Store

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _graph(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["graph"][0]

    def _gate(self) -> bool:
        self.server.requests.append(self.command)
        if self.server.fail_next > 0:
            self.server.fail_next -= 1
            self._answer(503, b"<html><body><h1>busy</h1></body></html>")
            return False
        if self.server.refuse:
            self._answer(400, b"<html><body><p>graph <b>rejected</b>: bad data</p></body></html>")
            return False
        return True

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self._gate():
            assert self.headers["Content-Type"] == "application/n-triples"
            created = self._graph() not in self.server.graphs
            self.server.graphs[self._graph()] = body
            self._answer(201 if created else 204)

    def do_DELETE(self) -> None:
        if self._gate():
            found = self.server.graphs.pop(self._graph(), None) is not None
            self._answer(204 if found else 404)


@pytest.fixture
def store() -> Iterator[Store]:
    server = Store()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _options(store: Store, tmp_path: Path) -> PublishOptions:
    return PublishOptions(graph_store=f"http://127.0.0.1:{store.server_port}/store",
                          backoff=0.01, retries=3, state_dir=tmp_path)


G1, G2 = BASE + "graph/claim/a", BASE + "graph/claim/b"
NT1 = b"<https://kb.test/a> <https://kb.test/p> \"1\" .\n"
NT2 = b"<https://kb.test/b> <https://kb.test/p> \"2\" .\n"


def test_sends_only_changes(store: Store, tmp_path: Path) -> None:
    options = _options(store, tmp_path)
    report = publish_graphs({G1: NT1, G2: NT2}, BASE, options)
    assert report.put == [G1, G2] and store.graphs == {G1: NT1, G2: NT2}
    report = publish_graphs({G1: NT1, G2: NT2}, BASE, options)
    assert (report.put, report.deleted, report.unchanged) == ([], [], 2)
    changed = NT1.replace(b'"1"', b'"one"')
    report = publish_graphs({G1: changed}, BASE, options)
    assert (report.put, report.deleted) == ([G1], [G2])
    assert store.graphs == {G1: changed}


def test_retries_then_succeeds(store: Store, tmp_path: Path) -> None:
    store.fail_next = 2
    report = publish_graphs({G1: NT1}, BASE, _options(store, tmp_path))
    assert report.put == [G1] and store.graphs == {G1: NT1}
    assert store.requests == ["PUT", "PUT", "PUT"]


def test_gives_up_after_bounded_retries(store: Store, tmp_path: Path) -> None:
    store.fail_next = 100
    with pytest.raises(PublishError) as err:
        publish_graphs({G1: NT1}, BASE, _options(store, tmp_path))
    assert len(store.requests) == 4
    assert "HTTP 503" in str(err.value) and "busy" in str(err.value)


def test_refusal_exits_1_with_the_servers_message(store: Store, make_kb, tmp_path: Path
                                                  ) -> None:  # type: ignore[no-untyped-def]
    store.refuse = True
    outcome = publish_command(make_kb(), _options(store, tmp_path))
    assert outcome.code == 1
    assert "HTTP 400" in outcome.lines[0] and "graph rejected : bad data" in outcome.lines[0]
    assert len(store.requests) == 1  # a refusal is not retried


def test_unreachable_store_exits_2(make_kb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket_closed() as port:
        options = PublishOptions(graph_store=f"http://127.0.0.1:{port}/store", backoff=0.01,
                                 retries=1, state_dir=tmp_path)
        outcome = publish_command(make_kb(), options)
    assert outcome.code == 2 and "gave up after 2 attempts" in outcome.lines[0]


class socket_closed:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        return port

    def __exit__(self, *args: object) -> None:
        pass
