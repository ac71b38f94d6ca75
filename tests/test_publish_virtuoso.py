"""`kb publish` against a real Virtuoso (Debian's virtuoso-opensource), started here on loopback
with a throwaway database: publish, change a claim, publish, delete a claim, publish — and
after each run the store's contents, read back by SPARQL, equal the files' graphs.

Virtuoso's Graph Store endpoint with authentication is /sparql-graph-crud-auth (Digest); a
user may write through it once granted the SPARQL_UPDATE role (Virtuoso's documentation,
"Virtuoso SPARQL 1.1 Graph Store HTTP Protocol Support").
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import Graph

from kb.cli import main

VIRTUOSO = shutil.which("virtuoso-t")
ISQL = shutil.which("isql-vt") or shutil.which("isql")
needs_virtuoso = pytest.mark.skipif(
    (VIRTUOSO is None or ISQL is None) and not os.environ.get("CI"),
    reason="virtuoso-t is not installed (apt-get install virtuoso-opensource)")

BASE = "https://claimkb.example.org/"
USER, PASSWORD = "kbpublisher", "kb-test-secret"
EXTRA_CLAIM = """\
id: trade-fall-2025
claim: Trade between Russia and China fell in 2025.
kind: fact
about: [russia]
appearances:
  - source: article
    quote: "the value of trade hit a record $245bn"
reviews:
  - {by: editor, date: 2026-11-01}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase
[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
Striping = 0
[Parameters]
ServerPort = 127.0.0.1:{sql}
DisableUnixSocket = 1
CheckpointInterval = 60
CaseMode = 2
DirsAllowed = ., {d}
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {d}
ServerThreads = 10
MaxClientConnections = 10
Charset = UTF-8
[SPARQL]
ResultSetMaxRows = 100000
MaxQueryExecutionTime = 60
"""


@dataclass
class Virtuoso:
    sparql: str
    graph_store: str
    sql_port: int

    def graphs(self) -> dict[str, Graph]:
        """Every graph under BASE, read back from the store by SPARQL."""
        query = ("SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } "
                 f"FILTER(STRSTARTS(STR(?g), {json.dumps(BASE)})) }}")
        url = self.sparql + "?" + urllib.parse.urlencode({"query": query})
        request = urllib.request.Request(url, headers={"Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            rows = json.loads(resp.read())["results"]["bindings"]
        out: dict[str, Graph] = {}
        for row in rows:
            nt = " ".join(_nt(row[k]) for k in ("s", "p", "o")) + " .\n"
            out.setdefault(row["g"]["value"], Graph()).parse(data=nt, format="nt")
        return out


def _nt(term: dict[str, str]) -> str:
    value = term["value"]
    if term["type"] == "uri":
        return f"<{value}>"
    if term["type"] == "bnode":
        return f"_:{value}"
    text = json.dumps(value, ensure_ascii=False)
    if "xml:lang" in term:
        return f"{text}@{term['xml:lang']}"
    if "datatype" in term:
        return f"{text}^^<{term['datatype']}>"
    return text


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    if VIRTUOSO is None or ISQL is None:
        pytest.fail("virtuoso-t is required under CI")
    folder = tmp_path_factory.mktemp("virtuoso")
    sql, http = _free_port(), _free_port()
    (folder / "virtuoso.ini").write_text(INI.format(d=folder, sql=sql, http=http))
    proc = subprocess.Popen([VIRTUOSO, "+foreground", "+configfile", "virtuoso.ini"],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/sparql?query=ASK%7B%7D",
                                            timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (folder / "virtuoso.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"Virtuoso did not start:\n{log}")
                time.sleep(0.5)
        subprocess.run([ISQL, f"127.0.0.1:{sql}", "dba", "dba",
                        f"exec=DB.DBA.USER_CREATE('{USER}', '{PASSWORD}'); "
                        f'GRANT SPARQL_UPDATE TO "{USER}";'],
                       check=True, capture_output=True, timeout=60)
        yield Virtuoso(f"http://127.0.0.1:{http}/sparql",
                       f"http://127.0.0.1:{http}/sparql-graph-crud-auth", sql)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _publish(root: Path, v: Virtuoso, password: str = PASSWORD) -> tuple[int, str]:
    result = CliRunner().invoke(main, [
        "--root", str(root), "publish", "--endpoint", v.sparql, "--graph-store", v.graph_store,
        "--user", USER, "--password", password])
    return result.exit_code, result.output


def _local_graphs(root: Path) -> dict[str, Graph]:
    from kb.graph import load_graph

    _, graph = load_graph(root)
    out = {}
    for iri in graph.named_graphs():
        data = graph.graph_nquads(iri)
        if data.strip():
            out[iri] = Graph().parse(data=data.decode(), format="nt")
    return out


def _assert_store_equals_files(root: Path, v: Virtuoso) -> None:
    local, stored = _local_graphs(root), v.graphs()
    assert sorted(stored) == sorted(local)
    for iri, graph in local.items():
        assert set(stored[iri]) == set(graph), iri


@needs_virtuoso
def test_publish_change_delete(virtuoso: Virtuoso, make_kb) -> None:  # type: ignore[no-untyped-def]
    root = make_kb({"claims/trade-fall-2025.yaml": EXTRA_CLAIM})
    claim_graph = BASE + "graph/claim/trade-record-2024"
    other_graph = BASE + "graph/claim/trade-fall-2025"

    code, output = _publish(root, virtuoso)
    assert code == 0, output
    assert f"put {claim_graph}" in output and "0 deleted" in output
    _assert_store_equals_files(root, virtuoso)

    code, output = _publish(root, virtuoso)  # nothing changed: nothing sent
    assert code == 0, output
    assert "0 graph(s) sent, 0 deleted" in output

    path = root / "claims" / "trade-record-2024.yaml"
    path.write_text(path.read_text().replace("reached a record $245bn in 2024",
                                             "reached a record of $245bn in 2024"))
    code, output = _publish(root, virtuoso)
    assert code == 0, output
    assert output.count("put ") == 1 and f"put {claim_graph}" in output
    _assert_store_equals_files(root, virtuoso)
    texts = {str(o) for _, _, o in virtuoso.graphs()[claim_graph]}
    assert "Russia–China trade reached a record of $245bn in 2024." in texts

    (root / "claims" / "trade-fall-2025.yaml").unlink()
    code, output = _publish(root, virtuoso)
    assert code == 0, output
    assert f"deleted {other_graph}" in output
    _assert_store_equals_files(root, virtuoso)
    assert other_graph not in virtuoso.graphs()


@needs_virtuoso
def test_publish_after_the_store_lost_a_graph(virtuoso: Virtuoso, make_kb) -> None:  # type: ignore[no-untyped-def]
    """The state file says 'sent', the store says otherwise: the store wins."""
    root = make_kb(name="kb-lost")
    assert _publish(root, virtuoso)[0] == 0
    graph = BASE + "graph/entity/russia"
    request = urllib.request.Request(
        virtuoso.graph_store + "?" + urllib.parse.urlencode({"graph": graph}), method="DELETE")
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, virtuoso.graph_store, USER, PASSWORD)
    urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords)).open(request)
    assert graph not in virtuoso.graphs()
    code, output = _publish(root, virtuoso)
    assert code == 0, output
    assert f"put {graph}" in output
    _assert_store_equals_files(root, virtuoso)


@needs_virtuoso
def test_publish_refused(virtuoso: Virtuoso, make_kb) -> None:  # type: ignore[no-untyped-def]
    root = make_kb(name="kb-refused")
    code, output = _publish(root, virtuoso, password="wrong")
    assert code == 1, output
    assert "HTTP 401" in output and "Traceback" not in output
