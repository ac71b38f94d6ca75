"""kb new: files from flags and from prompts, canonical, checked, never over another file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kb.cli import main
from kb.fmt import format_file
from kb.load import parse_file
from kb.model import Claim, Entity, Source
from kb.questions import slugify, suggest_id

from conftest import MakeKB


def _new(root: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", str(root), "new", *args], input=input)
    return result.exit_code, result.output


def _record(root: Path, rel: str, kind: str) -> object:
    record, problems = parse_file(kind, rel, (root / rel).read_bytes())
    assert not problems, problems
    return record


def test_slugs() -> None:
    assert slugify("Russia–China trade reached a record $245bn in 2024.") == (
        "russia-china-trade-reached-a-record-245bn-in-2024")
    assert slugify("Russia's GDP grew") == "russias-gdp-grew"
    assert slugify("Владимир") == "new"
    assert suggest_id("A b", ["a-b", "a-b-2"]) == "a-b-3"
    assert len(slugify("word " * 40)) <= 60


def test_claim_from_flags(make_kb: MakeKB) -> None:
    root = make_kb()
    code, out = _new(root, "claim", "--claim", "Trade fell in 2025.", "--kind", "quantity",
                     "--source", "article", "--quote", "the value of trade  hit a record",
                     "--about", "russia", "--claimant", "someone", "--period", "2025",
                     "--quantity", "-6.5 %", "--tag", "trade", "--by", "editor")
    assert code == 0, out
    assert "created claims/trade-fell-in-2025.yaml" in out
    rel = "claims/trade-fell-in-2025.yaml"
    text = (root / rel).read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schema/claim.schema.json\n")
    claim = _record(root, rel, "claim")
    assert isinstance(claim, Claim)
    assert claim.kind == "quantity" and claim.period == "2025"
    assert claim.quantity is not None and claim.quantity.value == -6.5
    assert claim.quantity.unit == "%"
    assert [a.source.id for a in claim.appearances] == ["article"]
    assert [r.id for r in claim.about] == ["russia"] and claim.claimant is not None
    assert [(r.by, str(r.date)) for r in claim.reviews] == [("editor", "2026-11-28")]
    assert format_file(root / rel, root).status == "canonical"
    check = CliRunner().invoke(main, ["--root", str(root), "check"])
    assert check.exit_code == 0, check.output


def test_refuses_to_overwrite(make_kb: MakeKB) -> None:
    root = make_kb()
    before = (root / "entities/russia.yaml").read_bytes()
    code, out = _new(root, "entity", "--id", "russia", "--name", "Russia", "--kind", "country")
    assert code == 1, out
    assert "refusing to overwrite" in out
    assert (root / "entities/russia.yaml").read_bytes() == before
    # an id suggested from the name that is taken is refused too, with flags
    code, out = _new(root, "entity", "--name", "Russia", "--kind", "country")
    assert code == 1 and "exists already" in out


def test_bad_flags_exit_2_and_write_nothing(make_kb: MakeKB) -> None:
    root = make_kb()
    before = sorted(p.name for p in (root / "entities").iterdir())
    for args in (["entity", "--name", "X", "--kind", "persn"],
                 ["entity", "--name", "X", "--kind", "person", "--url", "https://a.org/"],
                 ["entity", "--kind", "person"],
                 ["entity", "--name", "X", "--kind", "person", "--id", "Not A Slug"],
                 ["source", "--title", "T", "--kind", "report", "--url", "file:///etc/passwd"]):
        code, out = _new(root, *args, "--no-interactive")
        assert code == 2, (args, out)
        assert "Traceback" not in out
    assert sorted(p.name for p in (root / "entities").iterdir()) == before


def test_unknown_reference_is_reported_by_the_check(make_kb: MakeKB) -> None:
    root = make_kb()
    code, out = _new(root, "source", "--title", "Customs data", "--kind", "statistics",
                     "--url", "https://example.org/customs", "--publisher", "nobody")
    assert code == 1, out
    assert "created sources/customs-data.yaml" in out
    assert "R301" in out and "sources/customs-data.yaml" in out
    source = _record(root, "sources/customs-data.yaml", "source")
    assert isinstance(source, Source) and str(source.accessed) == "2026-11-28"


def test_claim_from_quote_checked_in_the_snapshot(make_kb: MakeKB) -> None:
    root = make_kb()
    code, out = _new(root, "claim", "--from-quote", "article", "the value of trade hit a record",
                     "--claim", "Trade hit a record.", "--kind", "fact", "--id", "trade-record")
    assert code == 0, out
    assert "quote found in sources/article.txt" in out
    claim = _record(root, "claims/trade-record.yaml", "claim")
    assert isinstance(claim, Claim)
    assert claim.appearances[0].quote == "the value of trade hit a record"


def test_claim_from_a_quote_not_in_the_snapshot_is_not_written(make_kb: MakeKB) -> None:
    root = make_kb()
    code, out = _new(root, "claim", "--from-quote", "article", "the value of trade hit a recrod",
                     "--claim", "Trade hit a record.", "--kind", "fact", "--id", "trade-record")
    assert code == 1, out
    assert "not in sources/article.txt" in out
    assert "the value of trade hit a record" in out  # the nearest text, to copy from
    assert not (root / "claims/trade-record.yaml").exists()
    code, out = _new(root, "claim", "--from-quote", "articel", "x", "--claim", "c",
                     "--kind", "fact")
    assert code == 1 and "did you mean article" in out


def test_entity_from_prompts(make_kb: MakeKB) -> None:
    root = make_kb()
    answers = "\n".join([
        "Xi Jinping",         # name
        "leader",             # kind: not a choice, asked again
        "person",
        "General secretary of the Chinese Communist Party.",
        "习近平, Xi",          # aliases
        "42",                 # wikidata: not a Q-number, asked again
        "",                   # skipped
        "",                   # id: accept the suggestion
    ]) + "\n"
    code, out = _new(root, "entity", "--interactive", input=answers)
    assert code == 0, out
    assert "is not one of" in out and "not a Wikidata Q-number" in out
    entity = _record(root, "entities/xi-jinping.yaml", "entity")
    assert isinstance(entity, Entity)
    assert (entity.name, entity.kind, entity.aliases) == ("Xi Jinping", "person", ["习近平", "Xi"])
    assert entity.wikidata is None


def test_claim_from_prompts_completes_references(make_kb: MakeKB) -> None:
    root = make_kb()
    answers = "\n".join([
        "Some One says trade hit a record.",   # claim
        "fact",                                # kind
        "?",                                   # list the source ids
        "art",                                 # completed to "article"
        "the value of trade hit a record",     # quote
        "nob",                                 # unknown: asked again
        "some",                                # completed to "someone"
        "rus",                                 # about: completed to "russia"
        "2024/2023",                           # not a period: asked again
        "2024",
        "",                                    # quantity
        "",                                    # resolves_by
        "trade, records",                      # tags
        "",                                    # no review
        "some-one-trade-record",               # id instead of the suggestion
    ]) + "\n"
    code, out = _new(root, "claim", "-i", input=answers)
    assert code == 0, out
    assert "article, report" in out  # the answer to "?"
    assert "no such id: 'nob'" in out and "not a period" in out
    assert "[some-one-says-trade-hit-a-record]" in out  # the suggested id
    claim = _record(root, "claims/some-one-trade-record.yaml", "claim")
    assert isinstance(claim, Claim)
    assert claim.claimant is not None and claim.claimant.id == "someone"
    assert [r.id for r in claim.about] == ["russia"]
    assert claim.appearances[0].source.id == "article"
    assert claim.tags == ["trade", "records"] and claim.period == "2024"


def test_prompted_id_that_exists_is_asked_again(make_kb: MakeKB) -> None:
    root = make_kb()
    answers = "Russia\ncountry\n\n\n\nrussia\nrussia-federation\n"
    code, out = _new(root, "entity", "-i", input=answers)
    assert code == 0, out
    assert "entities/russia.yaml exists" in out
    assert (root / "entities/russia-federation.yaml").is_file()


def test_the_worked_example_of_contributing_md(tmp_path: Path) -> None:
    """The prompts shown in CONTRIBUTING.md give the seed's claim (before its evidence)."""
    import re
    import shutil

    from conftest import REPO

    root = tmp_path / "kb"
    for sub in ("sources", "entities", "claims"):
        shutil.copytree(REPO / sub, root / sub)
    (root / "claims/trade-record-2024.yaml").unlink()
    guide = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = guide.split("The claim, in your words:", 1)[1].split("```", 1)[0]
    answers = [line.split(": ", 1)[1] if ": " in line else ""
               for line in ("The claim, in your words:" + block).strip().splitlines()]
    command = re.search(r'kb new claim --from-quote (\S+) \\\n\s+"([^"]+)"', guide)
    assert command and len(answers) == 10
    code, out = _new(root, "claim", "--from-quote", command[1], command[2], "-i",
                     input="\n".join(answers) + "\n")
    assert code == 0, out
    made = _record(root, "claims/trade-record-2024.yaml", "claim")
    seed = _record(REPO, "claims/trade-record-2024.yaml", "claim")
    assert isinstance(made, Claim) and isinstance(seed, Claim)
    for name in ("id", "claim", "kind", "period", "quantity", "tags"):
        assert getattr(made, name) == getattr(seed, name), name
    assert [r.id for r in made.about] == [r.id for r in seed.about]
    assert [(a.source.id, a.quote) for a in made.appearances] == [
        (a.source.id, a.quote) for a in seed.appearances]
