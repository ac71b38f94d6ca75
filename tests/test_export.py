"""Dumps: deterministic bytes, every format round-trips through rdflib, record dumps, CSV, VoID."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pyoxigraph as ox
import pytest
from click.testing import CliRunner
from graph_data import RICH
from rdf_compare import plain
from rdflib import Dataset, Graph
from rdflib.compare import isomorphic

from kb import csvmemo, export, gzdumps
from kb.check import check
from kb.cli import main
from kb.export import (
    CSV_COLUMNS,
    DUMP_FILES,
    FORMATS,
    SITE_DUMPS,
    claims_csv,
    claims_csv_lines,
    dump,
    record_dump,
    void,
)
from kb.graph import build_graph
from kb.kbgraph import KBGraph, block_of, lines_of
from kb.namespaces import VOID

from conftest import REPO, MakeKB

RDFLIB_FORMAT = {"ttl": "turtle", "nt": "nt", "nq": "nquads", "trig": "trig",
                 "jsonld": "json-ld"}


@pytest.fixture
def root(make_kb: MakeKB) -> Path:
    return make_kb(RICH)


@pytest.fixture
def g(root: Path) -> KBGraph:
    return build_graph(check(root))


def reference(g: KBGraph) -> Graph:
    return plain(Graph().parse(data=g.ntriples().decode(), format="nt"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_through_rdflib(g: KBGraph, fmt: str) -> None:
    data = dump(g, fmt)
    if fmt in ("nq", "trig", "jsonld"):
        ds = Dataset()
        ds.parse(data=data.decode(), format=RDFLIB_FORMAT[fmt])
        graphs = {str(c.identifier) for c in ds.graphs() if len(c)}
        assert graphs == set(g.named_graphs()), fmt
        union = Graph()
        for quad in ds.quads((None, None, None, None)):
            union.add(quad[:3])
    else:
        union = Graph().parse(data=data.decode(), format=RDFLIB_FORMAT[fmt])
    assert len(union) == len(reference(g))
    assert isomorphic(plain(union), reference(g)), fmt


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_through_pyoxigraph(g: KBGraph, fmt: str) -> None:
    """Oxigraph reads every dump back as the same quads (no blank nodes: sets compare)."""
    quads = set(ox.parse(dump(g, fmt), format=FORMATS[fmt]))
    want = set(ox.parse(g.nquads(), format=ox.RdfFormat.N_QUADS))
    if fmt in ("ttl", "nt"):
        want = {ox.Quad(q.subject, q.predicate, q.object) for q in want}
    assert quads == want and len(quads) > 300


@pytest.mark.parametrize("fmt", ["ttl", "jsonld"])
def test_record_dumps_round_trip_through_pyoxigraph(g: KBGraph, fmt: str) -> None:
    own = set(ox.parse(g.graph_nquads(g.iris.graph("claim", "trade-fall-2025")),
                       format=ox.RdfFormat.N_TRIPLES))
    data = record_dump(g, "claim", "trade-fall-2025", fmt)
    assert set(ox.parse(data, format=FORMATS[fmt])) == own and len(own) > 30


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_dumps_are_byte_identical_across_builds(root: Path, fmt: str) -> None:
    first = dump(build_graph(check(root)), fmt)
    second = dump(build_graph(check(root)), fmt)
    assert first == second and len(first) > 1000


def test_export_command_writes_the_same_bytes_twice(root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for name in ("a.trig", "b.trig"):
        result = runner.invoke(main, ["--root", str(root), "export", "--format", "trig",
                                      "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    result = runner.invoke(main, ["--root", str(root), "export", "--format", "nt"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == dump(build_graph(check(root)), "nt")
    assert not result.stdout_bytes.startswith(b"\x1f\x8b")  # plain text, not gzip


def test_export_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--root", str(tmp_path / "nope"), "export"])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["ttl", "jsonld"])
def test_record_dump_is_the_records_named_graph(g: KBGraph, fmt: str) -> None:
    data = record_dump(g, "claim", "trade-record-2024", fmt)
    parsed = plain(Graph().parse(data=data.decode(), format=RDFLIB_FORMAT[fmt]))
    own = g.graph_nquads(g.iris.graph("claim", "trade-record-2024")).decode()
    assert isomorphic(parsed, plain(Graph().parse(data=own, format="nt")))
    assert (None, None, None) in parsed and len(parsed) > 30


def test_claims_csv(g: KBGraph, root: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(claims_csv(check(root), g).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == sorted(by_id)
    assert by_id["trade-fall-2025"]["status"] == "refuted"
    assert by_id["trade-fall-2025"]["refutes"] == "1"
    assert by_id["growth-needs-fall"]["independent_sources"] == "1"
    assert by_id["opinion"]["due_for_review"] == "true"


def test_claims_csv_rows_are_reused_only_under_their_graphs_key(root: Path) -> None:
    """An edit build takes the last build's CSV rows (kb.csvmemo) where the claim's graph block
    key, a digest of all a row shows, is the same; without the graph cache, none."""
    checked = check(root)
    g = build_graph(checked, cache=True)
    whole, lines = claims_csv_lines(checked, g)
    assert whole == claims_csv(checked, build_graph(checked, cache=False))
    assert set(lines) == set(checked.kb.claims)
    a, b = sorted(lines)[:2]
    known = {**lines, a: (lines[a][0], "kept,as,it,was\n"), b: ("another key", "stale\n")}
    again, kept = claims_csv_lines(checked, g, known)
    assert again.decode().replace("kept,as,it,was\n", lines[a][1]) == whole.decode()
    assert b"stale" not in again and kept[b] == lines[b]
    out, none = claims_csv_lines(checked, build_graph(checked, cache=False), known)
    assert out == whole and none == {}


def test_csv_memo_is_read_back_only_under_the_same_base_and_whole(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    lines = {"a": ("key", "a,1\n")}
    csvmemo.save_lines(root, "https://example.org/", lines, None, tmp_path)
    assert csvmemo.load_lines(root, "https://example.org/", tmp_path)[0] == lines
    assert csvmemo.load_lines(root, "https://example.net/", tmp_path) == ({}, None)
    path = csvmemo.memo_path(root, tmp_path)
    path.write_bytes(path.read_bytes()[:-3])
    assert csvmemo.load_lines(root, "https://example.org/", tmp_path) == ({}, None)


def test_void_description(g: KBGraph) -> None:
    v = Graph().parse(data=void(g).decode(), format="turtle")
    ds = next(v.subjects(VOID.triples, None))
    assert int(str(v.value(ds, VOID.triples))) == len(reference(g))
    assert len(list(v.objects(ds, VOID.dataDump))) == 4
    assert len(list(v.objects(ds, VOID.classPartition))) >= 8


# -- the site's dumps: gzip, chunked, cached (kb.gzdumps) -------------------------------------

@pytest.mark.parametrize("where", ["rich", "seed"])
def test_no_triple_is_in_two_named_graphs(g: KBGraph, where: str) -> None:
    """So the union dumps, each graph's triples in turn, hold each triple once."""
    graph = g if where == "rich" else build_graph(check(REPO))
    lines = [t for block in graph.triples.values() for t in lines_of(block)]
    assert len(lines) == len(set(lines)) == len(graph.ntriples().splitlines()) > 300


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzdumps, "SPAN", 2)  # many chunks from a small knowledge base


def members(data: bytes) -> int:
    """How many gzip members `data` holds."""
    count = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        d.decompress(data)
        data, count = d.unused_data, count + 1
    return count


def test_site_dumps_are_the_export_dumps_gzipped(g: KBGraph, small_chunks: None) -> None:
    made = gzdumps.site_dumps(g)
    assert made.chunks >= 4
    for fmt in SITE_DUMPS:
        data = made.files[DUMP_FILES[fmt]]
        assert DUMP_FILES[fmt].endswith(".gz") and members(data) >= made.chunks
        assert gzip.decompress(data) == dump(g, fmt), fmt
    assert made.files["data/void.ttl"] == void(g)


def test_site_dumps_stream_their_members_to_a_sink(g: KBGraph, small_chunks: None) -> None:
    """With a sink (kb.produce writes the dumps as they are made), the members arrive in order
    and make the same files; only void.ttl is kept in the result."""
    sent: dict[str, list[bytes]] = {}
    streamed = gzdumps.site_dumps(g, sink=lambda path, member: sent.setdefault(path, [])
                                  .append(member))
    whole = gzdumps.site_dumps(g)
    assert sorted(streamed.files) == ["data/void.ttl"]
    assert {path: b"".join(parts) for path, parts in sent.items()} | streamed.files == whole.files
    assert all(len(parts) >= whole.chunks for parts in sent.values())


@pytest.mark.parametrize("fmt", SITE_DUMPS)
def test_site_dumps_parse_to_the_store(g: KBGraph, small_chunks: None, fmt: str) -> None:
    data = gzip.decompress(gzdumps.site_dumps(g).files[DUMP_FILES[fmt]])
    quads = set(ox.parse(data, format=FORMATS[fmt]))
    want = set(ox.parse(g.nquads(), format=ox.RdfFormat.N_QUADS))
    if fmt in ("ttl", "nt"):
        want = {ox.Quad(q.subject, q.predicate, q.object) for q in want}
    assert quads == want and len(quads) > 300
    if fmt in ("ttl", "nt"):
        parsed = Graph().parse(data=data.decode(), format=RDFLIB_FORMAT[fmt])
        assert isomorphic(plain(parsed), reference(g))


def edited(g: KBGraph, cid: str, text: str) -> KBGraph:
    """`g` with one more triple in a claim's graph, as an edit of its file gives (and, with a
    graph cache, a new key for its block)."""
    name = g.iris.graph("claim", cid)
    extra = f'<{g.iris.claim(cid)}> <http://www.w3.org/2000/01/rdf-schema#comment> "{text}"'
    keys = {**g.block_keys, name: f"edited: {text}"} if name in g.block_keys else {}
    stored = (dataclasses.replace(g.stored, graphs=g.stored.graphs - {name})
              if keys and g.stored is not None else None)  # a new block: not the cache's
    return KBGraph(g.iris, g.graphs,
                   {**g.triples, name: block_of(sorted([*lines_of(g.triples[name]), extra]))},
                   g.assessments, g.network, keys, stored)


def test_the_graph_has_keys_for_the_dumps(g: KBGraph) -> None:
    """The dumps' tests below run with block keys (a graph cache), as a build has them."""
    given = gzdumps.DumpInput.of(g)
    assert given.salt and sum(key is not None for _name, key in given.graphs) \
        == len(given.graphs) - 2  # all but the vocabulary's and kb.toml's


def test_the_graph_caches_own_key_is_in_every_chunks_digest(g: KBGraph, tmp_path: Path,
                                                              small_chunks: None) -> None:
    """Blocks keep their keys when the code or kb.toml changes every block (the graph cache's
    own key changes instead): the dumps' cache must not give the old chunks back then."""
    cache = tmp_path / "cache"
    gzdumps.site_dumps(g, (), cache)
    assert g.stored is not None
    marked = dict(g.triples)  # a block changed by the new code, under the same key
    name = g.iris.graph("claim", "trade-fall-2025")
    marked[name] = block_of(sorted([*lines_of(g.triples[name]),
                                    f'<{g.iris.claim("trade-fall-2025")}> '
                                    '<http://www.w3.org/2000/01/rdf-schema#comment> "new code"']))
    other = KBGraph(g.iris, g.graphs, marked, g.assessments, g.network, dict(g.block_keys),
                    dataclasses.replace(g.stored, key=("other code",)))
    redone = gzdumps.site_dumps(other, (), cache)
    assert redone.made == redone.chunks and redone.files == gzdumps.site_dumps(other).files


def _spied(g: KBGraph, asked: list[str]) -> gzdumps.DumpInput:
    given = gzdumps.DumpInput.of(g)

    def blocks(names: Sequence[str]) -> Mapping[str, bytes]:
        asked.extend(names)
        return given.blocks(names)
    return dataclasses.replace(given, blocks=blocks)


def test_chunks_the_cache_keeps_need_no_block_read(g: KBGraph, tmp_path: Path,
                                                    small_chunks: None) -> None:
    """A chunk's digest is made of its blocks' keys: after an edit only the edited chunk's
    blocks are read (and the two graphs that have no key), however many chunks there are."""
    cache = tmp_path / "cache"
    want = gzdumps.site_dumps(g, (), cache)
    asked: list[str] = []
    again = gzdumps.stream_dumps(_spied(g, asked), (), cache)
    keyless = {g.iris.vocab_graph, g.iris.settings_graph}
    assert again.made == 0 and again.files == want.files and set(asked) == keyless
    changed = edited(g, "trade-fall-2025", "edited")
    asked.clear()
    warm = gzdumps.stream_dumps(_spied(changed, asked), (), cache)
    assert warm.made == 1 and warm.files == gzdumps.site_dumps(changed).files
    name = g.iris.graph("claim", "trade-fall-2025")
    given = gzdumps.DumpInput.of(changed)
    (chunk,) = [c for c in gzdumps.chunks(given.graphs, given.blocks) if name in c.graphs]
    assert set(asked) - keyless == set(chunk.graphs) and want.chunks > 4


def test_an_edit_makes_one_chunk_again_and_the_same_bytes(g: KBGraph, tmp_path: Path,
                                                          small_chunks: None) -> None:
    cache = tmp_path / "cache"
    claims = sorted(g.assessments)
    cold = gzdumps.site_dumps(g, claims, cache)
    assert cold.made == cold.chunks and cold.files == gzdumps.site_dumps(g, claims).files
    assert cold.records == gzdumps.site_dumps(g, claims).records
    again = gzdumps.site_dumps(g, (), cache)
    assert again.made == 0 and again.files == cold.files
    changed = edited(g, "trade-fall-2025", "edited")
    warm = gzdumps.site_dumps(changed, (), cache)
    assert warm.made == 1 and warm.files == gzdumps.site_dumps(changed).files
    assert warm.files != cold.files
    assert warm.files["data/void.ttl"] == void(changed)
    assert gzdumps.site_dumps(changed, ["trade-fall-2025"], cache).records == {
        "trade-fall-2025": {"ttl": record_dump(changed, "claim", "trade-fall-2025", "ttl"),
                            "jsonld": record_dump(changed, "claim", "trade-fall-2025",
                                                  "jsonld")}}


def test_a_damaged_cache_is_not_trusted(g: KBGraph, tmp_path: Path,
                                        small_chunks: None) -> None:
    cache = tmp_path / "cache"
    want = gzdumps.site_dumps(g, (), cache).files
    files = sorted(cache.iterdir())
    assert len(files) > 5 * 4
    for n, path in enumerate(files):  # cut, flipped, emptied
        data = path.read_bytes()
        path.write_bytes([data[:-3], data[:40] + bytes([data[40] ^ 1]) + data[41:], b""][n % 3])
    redone = gzdumps.site_dumps(g, (), cache)
    assert redone.made == redone.chunks and redone.files == want
    redone = gzdumps.site_dumps(g, (), cache)
    assert redone.made == 0 and redone.files == want


def test_a_cache_of_other_code_is_not_used(g: KBGraph, tmp_path: Path, small_chunks: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    want = gzdumps.site_dumps(g, (), cache).files
    monkeypatch.setattr(gzdumps, "_VERSION", -1)
    other = gzdumps.site_dumps(g, (), cache)
    assert other.made == other.chunks and other.files == want


def test_the_cache_keeps_only_what_the_last_build_used(g: KBGraph, tmp_path: Path,
                                                       small_chunks: None) -> None:
    cache = tmp_path / "cache"
    gzdumps.site_dumps(g, (), cache)
    before = {p.name for p in cache.iterdir()}
    gzdumps.site_dumps(edited(g, "opinion", "edited"), (), cache)
    after = {p.name for p in cache.iterdir()}
    assert len(before) == len(after) and len(before - after) == 5  # 4 dumps and VoID counts


def test_void_counts_added_up_by_chunk_are_those_of_the_union(g: KBGraph) -> None:
    stats = gzdumps.site_dumps(g).stats
    union = lines_of(g.ntriples())
    assert stats.triples == len(union)
    assert len(stats.subjects) == len({t.split(" ", 1)[0] for t in union}) > 0
    v = Graph().parse(data=void(g, stats).decode(), format="turtle")
    dumps = {str(o) for o in v.objects(None, VOID.dataDump)}
    assert dumps == {g.iris.base + DUMP_FILES[f] for f in SITE_DUMPS}
    assert all(d.endswith(".gz") for d in dumps)



def test_void_counts_kept_in_the_cache_are_those_counted_again(
        g: KBGraph, tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit build takes every other chunk's counts (the subjects' keys) from the cache: they
    must add up to what counting everything again gives."""
    cache = tmp_path / "cache"
    gzdumps.site_dumps(g, (), cache)
    found: list[bool] = []
    real = gzdumps.Store.get_stats

    def spy(self: gzdumps.Store, name: str) -> export.VoidStats | None:
        stats = real(self, name)
        found.append(stats is not None)
        return stats

    monkeypatch.setattr(gzdumps.Store, "get_stats", spy)
    after = edited(g, "opinion", "edited")
    cached = gzdumps.site_dumps(after, (), cache)
    assert found.count(False) == 1 and len(found) == cached.chunks > 2  # the edited chunk only
    counted = gzdumps.site_dumps(after)
    assert cached.stats == counted.stats and len(counted.stats.subjects) > 0
    assert cached.files["data/void.ttl"] == counted.files["data/void.ttl"]


# -- text that looks like the blocks' layout (kb.kbgraph.KBGraph.triples) ----------------------

# a line break, " ." before it and at the end, `>`, `"`, a backslash, non-ASCII (two, three and
# four bytes in UTF-8) and a tab: each is escaped or kept so that " .\n" ends lines only
TRICKY = 'Trade " . is good .\n<b>not</b> > 3 € ü 😀 \\ .\tend .'


@pytest.fixture
def tricky(make_kb: MakeKB) -> KBGraph:
    opinion = RICH["claims/opinion.yaml"].replace(
        'claim: "Trade is good."',
        'claim: "Trade \\" . is good .\\n<b>not</b> > 3 € ü 😀 \\\\ .\\tend ."'
    )
    russia = RICH["entities/russia.yaml"] + "aliases: [é, z, €, 😀, ｚ, a]\n"
    checked = check(make_kb({**RICH, "claims/opinion.yaml": opinion,
                             "entities/russia.yaml": russia}))
    assert not checked.report.errors
    return build_graph(checked)


def _texts(quads: Iterable[ox.Quad | ox.Triple], subject: str) -> set[str]:
    return {q.object.value for q in quads if q.subject == ox.NamedNode(subject)
            and q.predicate == ox.NamedNode("https://schema.org/text")}


def test_a_tricky_literal_round_trips_through_the_blocks(tricky: KBGraph,
                                                         small_chunks: None) -> None:
    g, claim = tricky, tricky.iris.claim("opinion")
    graph = g.iris.graph("claim", "opinion")
    block = g.triples[graph]
    assert block.endswith(b" .\n") and "😀".encode() in block
    # one line a triple: the literal's line break is escaped, its " ." ends no line
    assert block.count(b"\n") == len(lines_of(block)) == len(list(
        g.store.quads_for_pattern(None, None, None, ox.NamedNode(graph))))
    # the store, loaded from the blocks with the graph name put in by bytes.replace
    assert [r[0].value for r in g.query(
        f"SELECT ?t WHERE {{ <{claim}> <https://schema.org/text> ?t }}")] == [TRICKY]
    assert len(g.store) == g.size == len(lines_of(g.ntriples()))
    assert _texts(ox.parse(g.nquads(), format=ox.RdfFormat.N_QUADS), claim) == {TRICKY}
    assert g.graph_nquads(graph) == block
    for fmt in sorted(FORMATS):
        assert _texts(ox.parse(dump(g, fmt), format=FORMATS[fmt]), claim) == {TRICKY}, fmt
    site = gzdumps.site_dumps(g, ["opinion"])
    for fmt in SITE_DUMPS:
        data = gzip.decompress(site.files[DUMP_FILES[fmt]])
        assert data == dump(g, fmt)
        assert _texts(ox.parse(data, format=FORMATS[fmt]), claim) == {TRICKY}, fmt
    for ext in ("ttl", "nt", "jsonld"):
        data = record_dump(g, "claim", "opinion", ext)
        assert _texts(ox.parse(data, format=FORMATS[ext]), claim) == {TRICKY}, ext
    assert site.records["opinion"] == {ext: record_dump(g, "claim", "opinion", ext)
                                       for ext in ("ttl", "jsonld")}


def test_the_union_is_sorted_as_its_lines_are(tricky: KBGraph) -> None:
    """The union is sorted as UTF-8 bytes: the order of the lines as str, non-ASCII too."""
    lines = lines_of(tricky.ntriples())
    assert lines == sorted({t for b in tricky.triples.values() for t in lines_of(b)})
    aliases = [t for t in lines if t.startswith(f"<{tricky.iris.entity('russia')}> ")
               and "alternateName" in t]
    assert [t.rsplit(" ", 1)[1] for t in aliases] == ['"a"', '"z"', '"é"', '"€"', '"ｚ"', '"😀"']
    for block in tricky.triples.values():  # each block sorted and unique, as the builder made it
        assert lines_of(block) == sorted(set(lines_of(block)))
        assert block_of(lines_of(block)) == block


def test_forget_keeps_only_the_graphs_asked_for(g: KBGraph) -> None:
    """kb.build's `keep_graph=False`: the blocks of the claims whose records are still to be
    written stay, the others and the store go, in the dict itself (what holds it, too)."""
    blocks = g.triples
    keep = g.iris.graph("claim", "trade-fall-2025")
    kept = blocks[keep]
    assert g.store is not None and len(blocks) > 10
    g.forget([keep])
    assert g.triples is blocks and blocks == {keep: kept}
    assert "store" not in g.__dict__
    assert record_dump(g, "claim", "trade-fall-2025", "ttl") != record_dump(
        g, "claim", "trade-record-2024", "ttl")
