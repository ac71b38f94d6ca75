"""The graph cache (kb.graphcache): a build that reuses named graphs equals a fresh build, whatever
changed; a stale, corrupt or foreign cache is ignored.

The cache is poisoned after a build (a marker line added to every stored graph, its key kept),
then one input is changed: every graph whose lines the change affects must come out fresh, so a
key that misses an input shows up as a poisoned graph where a fresh one was due. Graphs the
change does not touch must come out poisoned: the cache is really used.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_data import RICH

import kb
from kb import graphcache
from kb import model as m
from kb.cache import BACKGROUND_MIN, digest
from kb.check import CheckOptions, check
from kb.graph import build_graph
from kb.graphcache import FIELDS, SHARDS, GraphCache, assessment, commits, plain
from kb.history import Commit
from kb.kbgraph import Blocks, KBGraph, lines_of
from kb.load import read_inputs
from kb.status import Assessment, assess

from conftest import MakeKB

POISON = b"<urn:poison> <urn:poison> <urn:poison> .\n"  # a line of a block
Histories = dict[str, list[Commit]]


def poison(root: Path) -> int:
    """Add POISON to every graph in the cache, and a claim "poison" to the stored network
    report, keys kept; how many graphs there were."""
    cache = GraphCache(root, check(root).config)
    path = cache.folder / "network.pickle"
    key, report = pickle.loads(path.read_bytes())
    report.independent_sources["poison"] = 99
    path.write_bytes(pickle.dumps((key, report)))
    n = 0
    _ = cache.entries  # every shard read: a cache opens those its index describes
    for index, shard in enumerate(cache.shards):
        for graph, (key, block) in shard.items():
            shard[graph] = (key, block + POISON)
            n += 1
        if shard:
            cache.dirty.add(index)
    cache._write()
    return n


def same(a: KBGraph, b: KBGraph) -> None:
    assert list(a.triples) == list(b.triples)
    for g in a.triples:
        assert a.triples[g] == b.triples[g], g
    assert a.graphs == b.graphs
    assert a.assessments == b.assessments
    assert a.network == b.network
    assert a.iris == b.iris


def cached_and_fresh(root: Path, histories: Histories | None = None,
                     options: CheckOptions | None = None, files: bool = False
                     ) -> tuple[KBGraph, KBGraph]:
    """The graph from the cache, and a fresh one; with `files`, the cache keyed by the files'
    digests (as `kb build` can) rather than by what their records say."""
    inputs = read_inputs(root)
    checked = check(root, options, inputs)
    digests = {f.path: digest(f.data) for f in inputs.records} if files else None
    return (build_graph(checked, histories, digests=digests),
            build_graph(checked, histories, cache=False))


def strip(g: KBGraph) -> KBGraph:
    network = dataclasses.replace(g.network, independent_sources={
        c: n for c, n in g.network.independent_sources.items() if c != "poison"})
    return dataclasses.replace(g, network=network, triples={
        name: block.replace(POISON, b"") for name, block in g.triples.items()})


def poisoned(g: KBGraph) -> set[str]:
    return {name for name, block in g.triples.items() if POISON in block}


def test_a_warm_build_reuses_every_record_graph_and_equals_a_fresh_one(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    cold, fresh = cached_and_fresh(root)
    same(cold, fresh)
    assert poison(root) == len(fresh.graphs) - 2  # every file's graph; not vocab and settings
    warm, fresh = cached_and_fresh(root)
    # nothing changed, so every record graph is the stored one (poison and all)
    assert "poison" in warm.network.independent_sources
    assert poisoned(warm) == set(fresh.graphs) - {fresh.iris.vocab_graph,
                                                   fresh.iris.settings_graph}
    same(strip(warm), fresh)


# RICH and a prediction: when it comes due (a later today) its status, and so the network
# report, change with no file changed
BASE = {**RICH, "claims/forecast.yaml": """\
id: forecast
claim: Trade will grow in 2027.
kind: prediction
resolves_by: 2027-06-01
evidence:
  - source: article
    stance: supports
reviews:
  - {by: editor, date: 2026-11-01}
"""}

COMMIT = Commit("0" * 40, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                "Ann Editor", "add")

# name → (files to write over RICH, files to delete, histories, check options)
CHANGES: dict[str, tuple[dict[str, str], list[str], Histories | None, CheckOptions | None]] = {
    "claim text": ({"claims/opinion.yaml": RICH["claims/opinion.yaml"].replace(
        "Trade is good.", "Trade is bad.")}, [], None, None),
    "a verdict": ({"claims/opinion.yaml": RICH["claims/opinion.yaml"]
                   + "verdict: {status: disputed, summary: Some disagree.}\n"}, [], None, None),
    "a comment only": ({"claims/opinion.yaml": "# x\n" + RICH["claims/opinion.yaml"]},
                       [], None, None),
    # due for review flips with the date, in claims whose files did not change
    "today": ({}, [], None, CheckOptions(today=dt.date(2028, 1, 1))),
    "review age": ({"kb.toml": "review_age_days = 10\n"}, [], None, None),
    "base url": ({"kb.toml": 'base_url = "https://other.example.net/kb/"\n'}, [], None, None),
    "publisher": ({"kb.toml": 'publisher = "Other editors"\n'}, [], None, None),
    "repository": ({"kb.toml": 'repository = "https://github.com/o/r"\nbranch = "dev"\n'},
                   [], None, None),
    # independence: report-copy no longer shares report's publisher, so claims citing both
    # (in other files) count two sources
    "a source's publisher": ({"sources/report-copy.yaml": RICH["sources/report-copy.yaml"]
                              .replace("publisher: someone", "publisher: russia")},
                             [], None, None),
    "a source's url": ({"sources/article.yaml": RICH["sources/article.yaml"].replace(
        "https://example.org/article", "https://www.example.org/report/")}, [], None, None),
    # a quote's place in the snapshot, in the claims quoting it
    "a snapshot's text": ({"sources/report.txt": "Preface. " + RICH["sources/report.txt"]},
                          [], None, None),
    "a snapshot gone": ({}, ["sources/article.txt"], None, None),
    "a snapshot added": ({"sources/report-copy.txt": "Growth slowed, they say.\n"},
                         [], None, None),
    "a record gone": ({}, ["claims/opinion.yaml"], None, None),
    # the first of two records with one id wins: a new file that sorts first takes the graph
    "a duplicate id first": ({"claims/a-opinion.yaml": RICH["claims/opinion.yaml"].replace(
        "Trade is good.", "Trade is fine.")}, [], None, None),
    "git history": ({}, [], {"claims/opinion.yaml": [COMMIT],
                             "sources/report.yaml": [COMMIT, COMMIT]}, None),
    "an entity": ({"entities/russia.yaml": RICH["entities/russia.yaml"] + "wikidata: Q159\n"},
                  [], None, None),
}


@pytest.mark.parametrize("keyed_by", ["records", "files"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_after_any_change_the_cached_graph_equals_a_fresh_one(make_kb: MakeKB, change: str,
                                                                keyed_by: str) -> None:
    files, gone, histories, options = CHANGES[change]
    by_file = keyed_by == "files"
    root = make_kb(BASE)
    before, _ = cached_and_fresh(root, files=by_file)
    poison(root)
    make_kb({**BASE, **files})
    for rel in gone:
        (root / rel).unlink()
    after, fresh = cached_and_fresh(root, histories, options, by_file)
    if change == "a comment only":  # the same records: the stored graphs, unless keyed by file
        assert fresh.triples == before.triples
        assert len(poisoned(after)) == len(fresh.graphs) - 2 - by_file
    else:
        assert fresh.triples != before.triples  # the change matters to the graph
    if change == "today":
        assert fresh.network != before.network
    for g, block in after.triples.items():
        if g in (fresh.iris.vocab_graph, fresh.iris.settings_graph):
            assert block == fresh.triples[g]
            continue
        if POISON in block:  # reused: allowed only where the fresh graph is what it was
            assert fresh.triples[g] == before.triples.get(g), f"{change}: stale {g}"
    if "poison" in after.network.independent_sources:  # reused: only if nothing it reads changed
        assert fresh.network == before.network, f"{change}: stale network report"
    same(strip(after), fresh)
    # and what was saved is right: the graphs made again are stored, not the stale ones
    again, _ = cached_and_fresh(root, histories, options, by_file)
    assert poisoned(again) == poisoned(after)
    assert again.network.independent_sources == after.network.independent_sources
    same(strip(again), fresh)


def test_an_edit_rebuilds_only_its_own_graph(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    cached_and_fresh(root)
    poison(root)
    make_kb({"claims/opinion.yaml": RICH["claims/opinion.yaml"].replace("good", "great")},
            base=RICH)
    after, fresh = cached_and_fresh(root)
    rebuilt = set(fresh.graphs) - poisoned(after)
    assert rebuilt == {fresh.iris.vocab_graph, fresh.iris.settings_graph,
                       fresh.iris.graph("claim", "opinion")}


def _shards(root: Path) -> list[Path]:
    folder = GraphCache(root, check(root).config).folder
    return sorted(folder.glob("[0-9a-f][0-9a-f].pickle"))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "foreign key",
                                    "wrong shape", "another version", "format 1",
                                    "lines, not a block"])
def test_a_damaged_or_foreign_cache_is_ignored(make_kb: MakeKB, damage: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_kb(RICH)
    cached_and_fresh(root)
    poison(root)
    shards = _shards(root)
    assert shards
    cache = GraphCache(root, check(root).config)
    for path in [*shards, cache.folder / "network.pickle"]:
        data = path.read_bytes()
        if damage == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            path.write_bytes(b"\x80\x05not a pickle at all")
        elif damage == "empty":
            path.write_bytes(b"")
        elif damage == "foreign key":
            key, value = pickle.loads(data)
            path.write_bytes(pickle.dumps(((*key[:-1], "another kb.toml"), value)))
        elif damage == "wrong shape":
            key, value = pickle.loads(data)
            if path.name == "network.pickle":  # a report's fields, not a report
                assert key[0] == cache.key
                path.write_bytes(pickle.dumps((key, dataclasses.asdict(value))))
            else:  # each graph's lines without its key
                assert key == cache.key
                path.write_bytes(pickle.dumps((key, {g: v[1] for g, v in value.items()})))
        elif damage == "format 1" and path.name == "network.pickle":
            (key, net), value = pickle.loads(data)
            path.write_bytes(pickle.dumps((((1, *key[1:]), net), value)))
        elif damage in ("format 1", "lines, not a block") and path.name != "network.pickle":
            # as format 1 stored a graph: a list of its lines (poisoned, so trusting shows)
            key, value = pickle.loads(data)
            assert key[0] == graphcache._FORMAT == 2 and key == cache.key
            old = {g[1]: (k, lines_of(block)) for g, (k, block) in value.items()}
            assert any(POISON.decode()[:-3] in lines for _, lines in old.values())
            path.write_bytes(pickle.dumps(((1, *key[1:]) if damage == "format 1" else key,
                                           old)))
    if damage == "another version":
        monkeypatch.setattr(kb, "__version__", kb.__version__ + ".other")
    warm, fresh = cached_and_fresh(root)
    assert not poisoned(warm)
    if damage == "lines, not a block":  # the network report was left as it was: used
        assert warm.network.independent_sources.pop("poison") == 99
    assert "poison" not in warm.network.independent_sources
    same(warm, fresh)


def test_no_cache_writes_and_reads_nothing(make_kb: MakeKB) -> None:
    root = make_kb(RICH)
    checked = check(root, CheckOptions(use_cache=False))
    build_graph(checked, cache=False)
    assert not _shards(root)
    build_graph(checked)  # by default the cache is used: written now
    assert _shards(root)
    poison(root)
    assert not poisoned(build_graph(checked, cache=False))


def test_every_field_of_the_model_is_in_the_key() -> None:
    """A field added to a record class (or an assessment, or a commit) must be added to
    kb.graphcache's key too, or a change to it alone would reuse a stale graph."""
    for cls, names in FIELDS.items():
        meaning = tuple(f.name for f in dataclasses.fields(cls) if f.compare)
        assert names == meaning, cls.__name__


def _other(value: object) -> object:
    """A different value of the same kind."""
    if isinstance(value, m.Ref):
        return m.Ref(value.id + "x")
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    if isinstance(value, list | tuple):
        return type(value)([*value, copy.deepcopy(value[0])])
    raise AssertionError(f"no other value for {value!r}")


def _variants(record: object) -> Iterator[tuple[str, object]]:
    """The record with one field (at any depth) changed, for every field FIELDS lists."""
    for name in FIELDS[type(record)]:
        value = getattr(record, name)
        inner = value[0] if isinstance(value, list) and value else value
        if dataclasses.is_dataclass(inner) and type(inner) in FIELDS:
            for path, changed in _variants(inner):
                other = copy.deepcopy(record)
                holder = getattr(other, name)
                if isinstance(holder, list):
                    holder[0] = changed
                else:
                    setattr(other, name, changed)
                yield f"{name}.{path}", other
        other = copy.deepcopy(record)
        setattr(other, name, None if value is not None and name in OPTIONAL else _other(value))
        yield name, other


OPTIONAL = {"claimant", "quantity", "verdict", "publisher"}
DAY = dt.date(2026, 1, 1)
RECORDS: list[object] = [
    m.Claim(id="c", claim="t", kind="fact", claimant=m.Ref("p"), about=[m.Ref("e")],
            period="2024", quantity=m.Quantity(value=1.0, unit="u"),
            appearances=[m.Appearance(source=m.Ref("s"), quote="q", translation="tr")],
            evidence=[m.Evidence(source=m.Ref("s"), stance="supports", quote="q",
                                 translation="tr", note="n")],
            verdict=m.Verdict(status="refuted", summary="s"),
            reviews=[m.Review(by="b", date=DAY, note="n")],
            related=[m.Relation(claim=m.Ref("o"), relation="supports")],
            resolves_by=DAY, tags=["t"]),
    m.Source(id="s", title="t", kind="report", publisher=m.Ref("p"), authors=[m.Ref("a")],
             url="https://x.example", archived="https://y.example", published="2025",
             accessed=DAY, language="en", note="n"),
    m.Entity(id="e", name="n", kind="person", description="d", aliases=["a"], wikidata="Q1"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_the_key_sees_every_field_of_a_record(record: m.Record) -> None:
    """Changing any one field of a record, at any depth, changes what its key is made of."""
    seen = 0
    for path, changed in _variants(record):
        assert plain(changed) != plain(record), path  # type: ignore[arg-type]
        seen += 1
    assert seen >= len(FIELDS[type(record)])


def test_the_key_sees_every_field_of_an_assessment_and_a_commit() -> None:
    a = Assessment("supported", "supported", "refuted", (("supports", 1),), "r", DAY, False)
    for name in FIELDS[Assessment]:
        changed: dict[str, Any] = {name: _other(getattr(a, name))}
        assert assessment(dataclasses.replace(a, **changed)) != assessment(a), name
    # a commit by its id, which digests its date, author and message (tests/test_history.py)
    assert commits([COMMIT]) == [COMMIT.sha] and set(FIELDS[Commit]) == {
        "sha", "date", "author", "subject"}
    assert commits(None) != commits([])


def test_a_digest_depends_on_values_only() -> None:
    from kb.graphcache import digest_of

    text = "".join(["sup", "ports"])  # equal to, but not the same object as, "supports"
    assert text is not "supports"  # noqa: F632
    assert digest_of("supports", ["supports", "supports"]) == digest_of(text, [text, "supports"])
    assert digest_of(("a", "b")) != digest_of(("ab",)) != digest_of(["a", "b"])
    assert digest_of(1) != digest_of(1.0) != digest_of("1") != digest_of(True)
    # what marshal cannot write goes through repr, and still tells values apart
    assert digest_of(DAY) == digest_of(dt.date(2026, 1, 1)) != digest_of(dt.date(2026, 1, 2))
    assert digest_of(DAY) != digest_of(DAY.isoformat())


def test_shards_spread_graphs() -> None:
    from kb.cache import shard_of  # graphs are sharded as ParseCache shards files

    assert len({shard_of(f"https://x.example/graph/claim/c{i}") for i in range(2000)}) \
        > SHARDS * 0.9


def _mutate(rnd: random.Random, kb_: m.KnowledgeBase) -> None:
    """Change one thing in the knowledge base, whether kb.network.analyse reads it or not."""
    claims, entities = list(kb_.claims), [*kb_.entities, "ghost"]
    sources = [*kb_.sources, "nowhere"]  # a source that does not exist is a node all the same

    def ref(pool: list[str]) -> m.Ref:
        return m.Ref(rnd.choice(pool))

    what = rnd.choice(["claim"] * 6 + ["source"] * 3 + ["entity", "drop"])
    if what == "drop":
        table: dict[str, Any] = rnd.choice([kb_.claims, kb_.sources, kb_.entities])
        if table:
            del table[rnd.choice(list(table))]
        return
    if what == "entity":
        kb_.entities[f"new{rnd.randrange(3)}"] = m.Entity(id="new")
        return
    if what == "source":
        s = kb_.sources[rnd.choice(list(kb_.sources))]
        name = rnd.choice(["title", "publisher", "authors", "url", "note", "language"])
        value: object = {"publisher": rnd.choice([None, ref(entities)]),
                         "authors": [ref(entities) for _ in range(rnd.randint(0, 2))],
                         "url": f"https://x.example/{rnd.randrange(4)}"}.get(name, "changed")
        setattr(s, name, value)
        return
    c = kb_.claims[rnd.choice(claims)]
    if c.evidence and rnd.random() < 0.2:  # one stance, nothing else
        e = rnd.choice(c.evidence)
        e.stance = rnd.choice([s for s in ("supports", "partly-supports", "refutes", "context")
                               if s != e.stance])
        return
    name = rnd.choice(["claim", "kind", "claimant", "about", "appearances", "evidence",
                       "verdict", "reviews", "related", "resolves_by", "tags", "period"])
    value = {
        "kind": rnd.choice(["fact", "prediction", "opinion"]),
        "claimant": rnd.choice([None, ref(entities)]),
        "about": [ref(entities) for _ in range(rnd.randint(0, 2))],
        "appearances": [m.Appearance(source=ref(sources), quote="q")
                        for _ in range(rnd.randint(0, 2))],
        "evidence": [m.Evidence(source=ref(sources),
                                stance=rnd.choice(["supports", "refutes", "context"]))
                     for _ in range(rnd.randint(0, 3))],
        "verdict": rnd.choice([None, m.Verdict(status=rnd.choice(["refuted", "supported"]))]),
        "reviews": [m.Review(by="x", date=DAY)],
        "related": [m.Relation(claim=ref(claims),
                               relation=rnd.choice(["contradicts", "depends-on", "supports"]))
                    for _ in range(rnd.randint(0, 2))],
        "resolves_by": rnd.choice([None, DAY, dt.date(2030, 1, 1)]),
        "tags": ["changed"],
    }.get(name, "changed")
    setattr(c, name, value)


def test_the_network_key_covers_what_analyse_reads() -> None:
    """Random knowledge bases, each changed in one random way: where the network report's key
    stays the same, so must the report."""
    from test_network import _random_kb

    from kb.graphcache import Keys
    from kb.network import analyse

    def key_and_report(kb_: m.KnowledgeBase) -> tuple[str, object]:
        assessments = {cid: assess(c, DAY, 365) for cid, c in kb_.claims.items()}
        return Keys(kb_, assessments, {}).network(), analyse(kb_, assessments)

    rnd = random.Random(11)
    same_key = changed = 0
    for _ in range(400):
        kb_ = _random_kb(rnd, rnd.randint(2, 7))
        before = key_and_report(kb_)
        _mutate(rnd, kb_)
        after = key_and_report(kb_)
        if after[0] == before[0]:
            assert after[1] == before[1]
            same_key += 1
        changed += after[1] != before[1]
    assert same_key > 50 and changed > 100  # both cases were tried often


def test_an_appearance_of_a_missing_source_changes_the_network_key(make_kb: MakeKB) -> None:
    """A cited source that does not exist is a node of the network, so it changes every
    entity's share of it: rare in random tests, so tried here."""
    from kb.graphcache import Keys
    from kb.network import analyse

    kb_ = check(make_kb(RICH)).kb
    assessments = {cid: assess(c, DAY, 365) for cid, c in kb_.claims.items()}
    key, report = Keys(kb_, assessments, {}).network(), analyse(kb_, assessments)
    kb_.claims["opinion"].appearances.append(m.Appearance(source=m.Ref("missing"), quote="q"))
    assert analyse(kb_, assessments) != report
    assert Keys(kb_, assessments, {}).network() != key


def test_each_files_part_of_the_network_key_is_kept_under_its_digest(make_kb: MakeKB) -> None:
    """Keys.network digests what each file says of the network on its own, under the file's
    digest: the last build's parts give the same key; a part is what decides the key (a wrong
    one changes it); a review leaves the claim's part as it was, a stance does not."""
    from kb.graphcache import Keys

    root = make_kb(RICH)

    def keys() -> Keys:
        inputs = read_inputs(root)
        checked = check(root, CheckOptions(), inputs)
        assert not checked.report.errors, [str(p) for p in checked.report.errors]
        assessments = {cid: checked.context.assessment(c) for cid, c in checked.kb.claims.items()}
        return Keys(checked.kb, assessments, {}, {f.path: f.digest for f in inputs.records})

    first = keys()
    key = first.network()
    parts = first.parts
    assert len(parts) == len(first.kb.claims) + len(first.kb.sources)
    again = keys()
    assert again.network(parts) == key and again.parts == parts
    wrong = dict.fromkeys(parts, b"\0" * 16)
    assert keys().network(wrong) != key  # the parts given are the ones used

    claim = root / "claims" / "opinion.yaml"

    def part() -> bytes:  # the claim's own part, under its file's digest
        return parts[f"c{digest(claim.read_bytes())}"]

    before = part()
    claim.write_text(claim.read_text(encoding="utf-8").replace(
        "reviews:\n", "reviews:\n  - {by: someone, date: 2024-02-02}\n"), "utf-8")
    reviewed = keys()
    assert reviewed.network(parts) == key
    parts = reviewed.parts
    assert part() == before
    evidence = 'evidence:\n  - {source: article, stance: refutes, quote: "the value of trade"}\n'
    claim.write_text(claim.read_text(encoding="utf-8").replace(
        "appearances:\n", evidence + "appearances:\n"), "utf-8")
    refuted = keys()
    assert refuted.network(parts) != key
    parts = refuted.parts
    assert part() != before


def test_the_network_keys_parts_are_saved_and_read_back(tmp_path: Path) -> None:
    from kb.config import Config

    cache = GraphCache(tmp_path, Config())
    assert cache.parts == {}
    cache.keep_parts({"cabc": b"x" * 16})
    cache.save_graphs(set())
    assert GraphCache(tmp_path, Config()).parts == {"cabc": b"x" * 16}
    (cache.folder / "network-parts.pickle").write_bytes(pickle.dumps((cache.key, {"c": 1})))
    assert GraphCache(tmp_path, Config()).parts == {}  # not as saved: not trusted


def test_a_save_in_the_background_is_waited_for_before_reading(tmp_path: Path) -> None:
    from kb.config import Config

    cache = GraphCache(tmp_path, Config())
    graphs = {f"https://x.example/graph/claim/c{i}": f"<urn:s{i}> <urn:p> <urn:o> .\n".encode()
              for i in range(200)}
    for g, block in graphs.items():
        cache.put_block(g, "k", block)
    assert len(cache.dirty) >= BACKGROUND_MIN  # enough shards to be written by a forked child
    cache.save_graphs(set(graphs))
    assert graphcache._SAVERS, "the save should have been handed to a child process"
    again = GraphCache(tmp_path, Config())  # waits for the child
    assert {g: again.block(g, "k") for g in graphs} == graphs
    assert again.block(next(iter(graphs)), "other key") is None
    again.save_graphs(set(list(graphs)[:10]))  # the others are gone
    third = GraphCache(tmp_path, Config())
    assert sum(third.block(g, "k") is not None for g in graphs) == 10


def test_a_new_network_report_is_saved_when_no_graph_changed(tmp_path: Path) -> None:
    from kb.config import Config
    from kb.network import NetworkReport

    def fail() -> NetworkReport:
        raise AssertionError("the stored report should have been used")

    cache = GraphCache(tmp_path, Config())
    cache.folder.mkdir(parents=True)
    (cache.folder / "ff.pickle").write_bytes(b"a shard of format 1")  # 256 shards then
    report = NetworkReport(independent_sources={"c": 3})
    assert cache.network("k", lambda: report) is report
    assert not cache.dirty
    cache.save_graphs(set())
    assert not (cache.folder / "ff.pickle").exists()
    assert GraphCache(tmp_path, Config()).network("k", fail) == report
    assert GraphCache(tmp_path, Config()).network("other", lambda: report) is report


def test_opening_waits_for_its_own_saves_only(tmp_path: Path) -> None:
    """The parse and rule caches save in children after a cold check: the graph reads none
    of that, so opening the graph cache does not wait for them (1.3-1.8 s at 10,000 claims)."""
    import time

    from kb.cache import fork_child, wait_for_saves
    from kb.config import Config

    assert fork_child(lambda: time.sleep(3)) is not None  # another cache's slow save
    start = time.perf_counter()
    GraphCache(tmp_path, Config())
    assert time.perf_counter() - start < 1.5
    wait_for_saves()


def test_a_sibling_waits_for_a_background_save_to_end(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The dumps' process (kb.produce) waits for a cold cache's saver before reading every
    block: two children copying the build's pages at once made its peak at 100,000 claims."""
    import multiprocessing
    import time

    from kb.config import Config

    marker = tmp_path / "saved"

    def slow_write(self: GraphCache) -> None:
        time.sleep(1.0)
        marker.write_text("done")

    monkeypatch.setattr(GraphCache, "_write", slow_write)
    cache = GraphCache(tmp_path, Config())
    for i in range(BACKGROUND_MIN + 1):
        cache.put_block(f"https://x.example/graph/claim/c{i}", "k", b"")
    cache.save_graphs(set())
    assert graphcache._SAVERS and graphcache._ENDS and not marker.exists()

    def sibling() -> None:
        graphcache.wait_in_sibling()
        raise SystemExit(0 if marker.exists() else 3)

    child = multiprocessing.get_context("fork").Process(target=sibling)
    child.start()
    child.join(30)
    assert child.exitcode == 0  # it went on only once the save had ended
    graphcache._wait_for_own_saves()
    assert not graphcache._ENDS


def test_a_sibling_does_not_wait_for_ever_on_a_save(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    end, held = os.pipe()  # a saver that never ends: its write end stays open
    monkeypatch.setattr(graphcache, "_ENDS", [end])
    monkeypatch.setattr(graphcache, "SIBLING_WAIT", 0.3)
    start = time.monotonic()
    graphcache.wait_in_sibling()
    assert 0.3 <= time.monotonic() - start < 5
    os.close(end)
    os.close(held)


# -- shards read only when wanted (kb.graphshards) ---------------------------------------------
def _saved_cache(tmp_path: Path) -> tuple[GraphCache, dict[str, bytes]]:
    from kb.config import Config

    cache = GraphCache(tmp_path, Config())
    graphs = {f"https://x.example/graph/claim/c{i}": f"<urn:s{i}> <urn:p> <urn:o> .\n".encode()
              for i in range(300)}
    for g, block in graphs.items():
        cache.put_block(g, "k", block)
    cache.save_graphs(set(graphs), background=False)
    return cache, graphs


def test_a_reopened_cache_reads_a_shard_only_when_a_block_in_it_is_wanted(
        tmp_path: Path) -> None:
    from kb.cache import shard_of
    from kb.config import Config

    _, graphs = _saved_cache(tmp_path)
    again = GraphCache(tmp_path, Config())
    held = {shard_of(g) for g in graphs}
    assert set(again._open) == held and not any(again.shards)  # opened, none read
    first, second = sorted(graphs, key=shard_of)[0], sorted(graphs, key=shard_of)[-1]
    assert again.find(first, "k") == len(graphs[first])  # its length: there, not read
    assert again.find(first, "another key") is None
    keys = dict.fromkeys(graphs, "k")
    read = again.blocks_of(first, keys)
    assert read == {g: b for g, b in graphs.items() if shard_of(g) == shard_of(first)}
    assert set(again._open) == held - {shard_of(first)}
    assert again.blocks_of(first, {**keys, first: "another key"}).get(first) is None
    assert again.block(second, "k") == graphs[second]  # a read as before reads its shard


def test_a_shard_replaced_since_the_index_was_written_is_read_at_once(tmp_path: Path) -> None:
    """Another process's save replaces a shard's file: its Stat is not the index's, so the
    shard is read when the cache is opened, and what it holds now is what counts."""
    from kb.cache import shard_of, write_pickle
    from kb.config import Config

    cache, graphs = _saved_cache(tmp_path)
    g = next(iter(graphs))
    i = shard_of(g)
    write_pickle(cache.shard_path(i), cache.key, {(graphcache.KIND, g): ("k2", b"other\n")})
    again = GraphCache(tmp_path, Config())
    assert i not in again._open and again.find(g, "k2") == b"other\n"
    assert again.find(g, "k") is None
    others = [h for h in graphs if shard_of(h) != i]
    assert all(isinstance(again.find(h, "k"), int) for h in others)


def test_a_shard_file_gone_since_the_save_leaves_the_others_unread(tmp_path: Path) -> None:
    """The index is taken whole only when every shard it describes is open: one gone, its
    graphs are not found (and not read from anywhere), the others' are, by their lengths."""
    from kb.cache import shard_of
    from kb.config import Config

    cache, graphs = _saved_cache(tmp_path)
    i = shard_of(next(iter(graphs)))
    cache.shard_path(i).unlink()
    again = GraphCache(tmp_path, Config())
    assert i not in again._open
    assert not any(shard_of(g) == i for g in again._index)
    for g, block in graphs.items():
        assert again.find(g, "k") == (None if shard_of(g) == i else len(block))
    again.close()
    assert all(again.find(g, "k") is None for g in graphs)  # closed: nothing found


def test_a_shard_read_for_one_graph_answers_for_all_of_its_graphs(tmp_path: Path) -> None:
    """Once a shard is read (here by a lookup), its graphs are found in it, as blocks, and
    no longer by the index; the shards not read still answer by their lengths."""
    from kb.cache import shard_of
    from kb.config import Config

    _, graphs = _saved_cache(tmp_path)
    again = GraphCache(tmp_path, Config())
    first = next(iter(graphs))
    i = shard_of(first)
    assert again.get(graphcache.KIND, first, "k") == graphs[first]
    assert all(shard_of(g) != i for g in again._index)
    for g, block in graphs.items():
        assert again.find(g, "k") == (block if shard_of(g) == i else len(block))


def test_the_index_written_after_a_put_and_a_drop_describes_the_shards(tmp_path: Path) -> None:
    """A save after one graph changed and one went writes an index of exactly the graphs kept,
    each under its key and length, and of each shard file's Stat: the next open reads none."""
    from kb.cache import shard_of
    from kb.config import Config
    from kb.graphshards import read_index

    _, graphs = _saved_cache(tmp_path)
    again = GraphCache(tmp_path, Config())
    changed = next(iter(graphs))
    dropped = next(g for g in graphs if shard_of(g) != shard_of(changed))
    again.put_block(changed, "k2", b"<urn:s> <urn:p> <urn:changed> .\n")
    kept = set(graphs) - {dropped}
    again.save_graphs(kept, background=False)
    stats, index = read_index(again.folder, again.key)
    assert set(index) == kept
    assert index[changed] == ("k2", len(b"<urn:s> <urn:p> <urn:changed> .\n"))
    assert all(index[g] == ("k", len(graphs[g])) for g in kept - {changed})
    for i, st in stats.items():
        s = again.shard_path(i).stat()
        assert st == (s.st_ino, s.st_size, s.st_mtime_ns)
    reopened = GraphCache(tmp_path, Config())
    assert set(reopened._open) == {shard_of(g) for g in graphs} and not any(reopened.shards)
    assert reopened.find(dropped, "k") is None and reopened.find(changed, "k2") == index[changed][1]


def test_an_index_that_cannot_be_trusted_means_every_shard_is_read(tmp_path: Path) -> None:
    from kb.config import Config

    cache, graphs = _saved_cache(tmp_path)
    index = cache.folder / "index.memo"
    index.write_bytes(index.read_bytes()[:-5])
    again = GraphCache(tmp_path, Config())
    assert not again._open and {g: again.find(g, "k") for g in graphs} == graphs


def test_a_graph_read_from_unread_shards_is_the_graph(make_kb: MakeKB) -> None:
    """A build after another reads no block it is not asked for (KBGraph.triples is then a
    kb.kbgraph.Blocks); asked, it gives every block as a build that read them all, and its
    claims' blocks stand in the page keys as before (kb.extras.record_lines)."""
    from kb.export import nonempty
    from kb.extras import record_lines

    root = make_kb(RICH)
    whole = build_graph(check(root), cache=False)
    build_graph(check(root))  # fills the cache
    lazy = build_graph(check(root))
    assert isinstance(lazy.triples, Blocks)
    unread = dict(lazy.triples._sizes)
    assert len(unread) == len(whole.graphs) - 2  # every record's: not the vocabulary, kb.toml
    assert nonempty(lazy) == nonempty(whole)
    lines = record_lines(lazy)
    assert lines is not None and all(lines(cid) for cid in lazy.assessments)
    assert lazy.triples._sizes == unread  # neither read a block
    assert dict(lazy.triples.items()) == whole.triples and lazy.ntriples() == whole.ntriples()
    cid = min(lazy.assessments)
    lazy.forget([lazy.iris.graph("claim", cid)])
    assert list(lazy.triples) == [lazy.iris.graph("claim", cid)]


def test_a_shard_damaged_in_place_costs_time_not_correctness(make_kb: MakeKB) -> None:
    """Bytes of a shard the index describes changed with its Stat kept (a torn write, a bad
    sector): its blocks are made again, and the index goes, so the next build reads every
    shard and writes that one again."""
    from kb.cache import shard_of
    from kb.graphshards import INDEX

    root = make_kb(RICH)
    whole = build_graph(check(root), cache=False)
    build_graph(check(root))
    graph = next(g for g in whole.graphs if "/claim/" in g)
    cache = GraphCache(root, check(root).config)
    path = cache.shard_path(shard_of(graph))
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(-8, os.SEEK_END)
        fh.write(b"\0" * 8)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    lazy = build_graph(check(root))
    assert dict(lazy.triples.items()) == whole.triples
    assert not (cache.folder / INDEX).exists()
    again = build_graph(check(root))  # reads every shard, makes that one's graphs again
    assert not isinstance(again.triples, Blocks) and dict(again.triples.items()) == whole.triples
    assert isinstance(build_graph(check(root)).triples, Blocks)  # and the index is back
