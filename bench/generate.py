"""A synthetic knowledge base of N claims, valid by construction, for benchmarks.

N claims, N/5 sources and N/10 entities, shaped like the seed knowledge base: claims of 1–2 KB
with one or two appearances, one to four evidence items of mixed stances, reviews, related
claims (depends-on only towards earlier, supported claims, so never a cycle), quantity claims
with periods, a few opinions and predictions, and tags. One source in twenty has a text
snapshot holding every quote that cites it. Every entity and source is referred to and every
review is recent, so `kb check` (with KB_TODAY=2026-11-28) reports nothing at all.

Everything is made up: names are built from syllables and every URL is on example.org.
The same size and seed give the same bytes.

    python -m bench.generate 10000 /tmp/kb-10k
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from kb.status import derive_status

TODAY = dt.date(2026, 11, 28)  # the KB_TODAY the knowledge base is valid at
SNAPSHOT_EVERY = 20  # one source in this many has a text snapshot

_SYLLABLES = ("ka", "lo", "ve", "ri", "dan", "mor", "sel", "tu", "na", "bro", "vik", "ost",
              "el", "an", "tor", "mi", "za", "quen", "har", "lin", "pe", "gor", "sha", "ul")
_CYRILLIC = ("ка", "ло", "ве", "ри", "дан", "мор", "сель", "ту", "на", "бро", "вик", "ост")
_ORG_KINDS = ("Trade Office", "Steel Works", "Statistics Bureau", "Energy Company", "Institute",
              "Ministry of Industry", "Daily", "Times", "Customs Service", "Bank", "Herald")
_PLACE_KINDS = ("Region", "Valley", "Port", "Province", "Basin")
_TOPICS = {
    "trade": ("steel", "wheat", "cars", "fertiliser", "machinery"),
    "energy": ("crude oil", "natural gas", "coal", "electricity", "uranium"),
    "industry": ("copper", "timber", "cement", "aluminium", "chemicals"),
    "technology": ("semiconductors", "smartphones", "servers", "solar panels", "batteries"),
    "agriculture": ("barley", "soybeans", "pork", "sunflower oil", "rice"),
}
_METRICS = ("exports", "imports", "output", "sales", "shipments")
_RISE = ("rose by", "grew by", "jumped by", "increased by")
_FALL = ("fell by", "dropped by", "declined by", "shrank by")
_LEADS = ("Official figures show that", "According to the customs service,", "Last year,",
          "Analysts at the bureau say that", "In a statement on Monday, the ministry said")
_CLAUSES = ("a level not seen for a decade", "despite new restrictions on payments",
            "as demand in the region slowed", "after two years of steady growth",
            "largely because of higher prices", "even as freight costs doubled")
_NOTES = ("The figure covers the whole calendar year.", "Preliminary data; revised later.",
          "Rounds to the figure in the claim.", "Measured in current prices, not adjusted.",
          "Counts only registered shipments.", "The bureau's own estimate.")
_OPINIONS = ("deeply disadvantageous", "a partnership of equals", "weaker than it appears",
             "built on mutual distrust", "the envy of the region")
_SOURCE_KINDS = (("news-article", 50), ("statistics", 15), ("report", 15), ("interview", 6),
                 ("social-post", 5), ("dataset", 5), ("encyclopedia", 2), ("other", 2))
_LANGUAGES = (("en", 80), ("ru", 8), ("de", 6), ("fr", 6))
_CLAIM_KINDS = (("fact", 45), ("quantity", 30), ("quote", 10), ("opinion", 8),
                ("prediction", 7))
_STANCES = (("supports", 50), ("partly-supports", 15), ("partly-refutes", 10),
            ("refutes", 12), ("context", 13))
_RELATIONS = ("supports", "contradicts", "refines", "duplicates", "context")
_EDITORS = ("editor-ana", "editor-ben", "editor-chidi", "editor-dana", "editor-emil")


def _q(text: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes are all valid YAML escapes."""
    return json.dumps(text, ensure_ascii=False)


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


@dataclass
class Entity:
    id: str
    name: str
    kind: str


@dataclass
class Source:
    id: str
    publisher: str | None
    language: str
    snapshot: bool
    quotes: list[str] = field(default_factory=list)


class _Names:
    """Made-up names, and unique slugs for them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def word(self, syllables: tuple[str, ...] = _SYLLABLES) -> str:
        return "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(2, 3)))

    def unique(self, base: str) -> str:
        slug, n = _slug(base), 1
        while slug in self.taken:
            n += 1
            slug = f"{_slug(base)}-{n}"
        self.taken.add(slug)
        return slug


class _Generator:
    def __init__(self, root: Path, n_claims: int, seed: int) -> None:
        self.root = root
        self.n = n_claims
        self.rng = random.Random(seed)
        self.names = _Names(self.rng)
        self.entities: list[Entity] = []
        self.sources: list[Source] = []
        self.statuses: list[str] = []
        self.claim_ids: list[str] = []

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))

    # entities -----------------------------------------------------------------------------
    def entity(self, i: int) -> None:
        rng, w = self.rng, self.names.word
        kind = ("person", "organization", "country", "place")[i % 4] if i < 4 else rng.choices(
            ("person", "organization", "country", "place"), (40, 30, 15, 15))[0]
        if kind == "person":
            name = f"{w().capitalize()} {w().capitalize()}"
            about = f"A made-up {rng.choice(('economist', 'minister', 'analyst', 'executive'))}."
        elif kind == "organization":
            name = f"{w().capitalize()} {rng.choice(_ORG_KINDS)}"
            about = "A made-up organisation that publishes figures and reports."
        elif kind == "country":
            name = w().capitalize() + rng.choice(("ia", "land", "stan", "a"))
            about = "A made-up country."
        else:
            name = f"{w().capitalize()} {rng.choice(_PLACE_KINDS)}"
            about = "A made-up place."
        e = Entity(self.names.unique(name), name, kind)
        self.entities.append(e)
        aliases = [f"{name.split()[0][0]}. {name.split()[-1]}"] if kind == "person" else []
        if rng.random() < 0.2:
            aliases.append(self.names.word(_CYRILLIC).capitalize())
        self.write(f"entities/{e.id}.yaml", "".join([
            f"id: {e.id}\n", f"name: {_q(name)}\n", f"kind: {kind}\n",
            f"description: {_q(about)}\n",
            f"aliases: [{', '.join(_q(a) for a in aliases)}]\n", "wikidata: null\n",
        ]))

    def of_kind(self, kind: str) -> list[Entity]:
        return [e for e in self.entities if e.kind == kind] or self.entities

    # sources ------------------------------------------------------------------------------
    def source(self, i: int, orgs: list[Entity], people: list[Entity]) -> None:
        rng = self.rng
        publisher = orgs[i % len(orgs)]
        kind = _pick(rng, _SOURCE_KINDS)
        published = _day(rng, dt.date(2019, 1, 1), dt.date(2026, 10, 31))
        accessed = _day(rng, published, TODAY)
        topic = rng.choice(list(_TOPICS))
        title = (f"{rng.choice(_METRICS).capitalize()} of {rng.choice(_TOPICS[topic])} "
                 f"{rng.choice(_RISE + _FALL).split()[0]} {rng.choice(_CLAUSES)}")
        sid = self.names.unique(f"{publisher.id}-{published.isoformat()}")
        language = _pick(rng, _LANGUAGES)
        snapshot = i % SNAPSHOT_EVERY == 0
        self.sources.append(Source(sid, publisher.id, language, snapshot))
        url = f"https://example.org/{publisher.id}/{published:%Y/%m}/{_slug(title, 50)}"
        authors = [a.id for a in rng.sample(people, min(len(people), rng.randint(0, 2)))]
        archived = _q(f"https://archive.example.org/{url}") if rng.random() < 0.3 else "null"
        when = (published.isoformat() if rng.random() < 0.9 else f"{published:%Y-%m}")
        lines = [
            f"id: {sid}\n", f"title: {_q(title)}\n", f"kind: {kind}\n",
            f"publisher: {publisher.id}\n", f"authors: [{', '.join(authors)}]\n",
            f"url: {_q(url)}\n",
            f"archived: {archived}\n",
            f"published: {when}\n", f"accessed: {accessed.isoformat()}\n",
            f"language: {language}\n",
        ]
        if rng.random() < 0.1:
            note = "A synthetic source for benchmarks; nothing here is real."
            lines.append(f"note: {_q(note)}\n")
        self.write(f"sources/{sid}.yaml", "".join(lines))

    # claims -------------------------------------------------------------------------------
    def figure(self, falling: bool) -> tuple[str, str, str]:
        """(value, unit, words) of a made-up figure."""
        rng = self.rng
        choice = rng.randint(0, 2)
        if choice == 0:
            billions = rng.randint(1, 900)
            return str(billions * 1_000_000_000), "USD", f"${billions}bn"
        if choice == 1:
            pct = rng.randint(1, 400) / 10
            return (f"-{pct}" if falling else str(pct)), "percent change on the year before", (
                f"{pct}%")
        tonnes = rng.randint(1, 90) / 10
        return f"{tonnes}e6", "tonnes", f"{tonnes} million tonnes"

    def period(self) -> tuple[str, int]:
        rng = self.rng
        year = rng.randint(2019, 2025)
        form = rng.randint(0, 3)
        text = (str(year), f"{year}-{rng.randint(1, 12):02d}", f"{year - 1}/{year}",
                f"{year}-01/{year}-06")[form]
        return text, year

    def quote(self, source: Source, text: str) -> tuple[str, str | None]:
        """The quote as the source words it, and its translation when it is not English."""
        if source.language == "en" or self.rng.random() < 0.5:
            words = text
            translation = None
        else:
            syllables = _CYRILLIC if source.language == "ru" else _SYLLABLES
            words = " ".join(self.names.word(syllables) for _ in range(self.rng.randint(8, 16)))
            translation = text
        if source.snapshot:
            source.quotes.append(words)
        return words, translation

    def claim(self, j: int, topics: list[str]) -> None:
        rng = self.rng
        topic = topics[j % len(topics)]
        kind = _pick(rng, _CLAIM_KINDS)
        good, metric = rng.choice(_TOPICS[topic]), rng.choice(_METRICS)
        falling = rng.random() < 0.4
        verb = rng.choice(_FALL if falling else _RISE)
        countries, people = self.of_kind("country"), self.of_kind("person")
        a, b = rng.sample(countries, 2) if len(countries) > 1 else (countries[0], countries[0])
        speaker = rng.choice(people)
        value, unit, amount = self.figure(falling)
        period, year = self.period()
        resolves = None
        if kind == "prediction":
            past = rng.random() < 0.3
            resolves = (_day(rng, dt.date(2024, 1, 1), TODAY - dt.timedelta(days=1)) if past
                        else _day(rng, TODAY + dt.timedelta(days=30), dt.date(2035, 12, 31)))
        if kind == "opinion":
            text = f"{speaker.name} says the {topic} partnership with {b.name} is " \
                   f"{rng.choice(_OPINIONS)}."
        elif kind == "prediction":
            text = f"{a.name}'s {metric} of {good} will {'fall' if falling else 'rise'} by " \
                   f"{amount} by {resolves.year if resolves else year}."
        elif kind == "quote":
            text = f"{speaker.name} said that {metric} of {good} {verb} {amount} in {year}."
        else:
            text = f"{a.name}'s {metric} of {good} to {b.name} {verb} {amount} in {year}."
        cid = self.names.unique(f"{a.name} {metric} {good} {verb.split()[0]} {year}")
        about = sorted({self.entities[j % len(self.entities)].id, a.id, b.id})
        lines = [f"id: {cid}\n", f"claim: {_q(text)}\n", f"kind: {kind}\n"]
        if kind in ("opinion", "quote") or rng.random() < 0.5:
            lines.append(f"claimant: {speaker.id}\n")
        lines.append(f"about: [{', '.join(about)}]\n")
        if kind != "opinion":
            lines.append(f'period: "{period}"\n')
        if kind == "quantity":
            lines.append(f"quantity: {{value: {value}, unit: {_q(unit)}}}\n")
        lines.append("appearances:\n")
        first = self.sources[j % len(self.sources)]
        appearances = [first] + ([rng.choice(self.sources)] if rng.random() < 0.3 else [])
        for src in appearances:
            words, translation = self.quote(
                src, f"{rng.choice(_LEADS)} {metric} of {good} {verb} {amount} in {year}, "
                     f"{rng.choice(_CLAUSES)}")
            lines += [f"  - source: {src.id}\n", f"    quote: {_q(words)}\n"]
            if translation:
                lines.append(f"    translation: {_q(translation)}\n")
        n_evidence = (rng.randint(0, 1) if kind == "opinion" or (resolves and resolves > TODAY)
                      else rng.randint(1, 4))
        stances = []
        if n_evidence:
            lines.append("evidence:\n")
        for _ in range(n_evidence):
            src = rng.choice(self.sources)
            stance = ("context" if kind == "opinion" or (resolves and resolves > TODAY)
                      else _pick(rng, _STANCES))
            stances.append(stance)
            lines += [f"  - source: {src.id}\n", f"    stance: {stance}\n"]
            if rng.random() < 0.9:
                words, translation = self.quote(
                    src, f"{metric.capitalize()} of {good} {rng.choice(_RISE + _FALL)} "
                         f"{self.figure(falling)[2]} in {period}, {rng.choice(_CLAUSES)}")
                lines.append(f"    quote: {_q(words)}\n")
                if translation:
                    lines.append(f"    translation: {_q(translation)}\n")
            if rng.random() < 0.8:
                note = " ".join(rng.sample(_NOTES, 2))
                lines.append(f"    note: {_q(note)}\n")
        derived = derive_status(kind, stances, resolves, TODAY)
        # the verdict agrees with the evidence (no T603); a past prediction must have one (T602)
        if (resolves and resolves < TODAY) or (
                derived in ("supported", "partly-supported", "disputed", "refuted")
                and rng.random() < 0.2):
            lines += ["verdict:\n", f"  status: {derived}\n",
                      f"  summary: {_q(f'The editors read the evidence as {derived}.')}\n"]
        lines.append("reviews:\n")
        dates = sorted(TODAY - dt.timedelta(days=rng.randint(0, 330))
                       for _ in range(rng.randint(1, 2)))
        lines += [f"  - {{by: {rng.choice(_EDITORS)}, date: {d.isoformat()}}}\n" for d in dates]
        related = self.related(j)
        if related:
            lines.append("related:\n")
            lines += [f"  - {{claim: {c}, relation: {r}}}\n" for c, r in related]
        if resolves:
            lines.append(f"resolves_by: {resolves.isoformat()}\n")
        tags = sorted({topic, *rng.sample(("sanctions", "statistics", "forecast", "regional",
                                           "prices"), rng.randint(0, 2))})
        lines.append(f"tags: [{', '.join(tags)}]\n")
        self.claim_ids.append(cid)
        self.statuses.append(derived)
        self.write(f"claims/{topic}/{cid}.yaml", "".join(lines))

    def related(self, j: int) -> list[tuple[str, str]]:
        """Links to earlier claims only, so depends-on can never close a cycle."""
        if j == 0 or self.rng.random() >= 0.4:
            return []
        targets = sorted(set(self.rng.sample(range(j), min(j, self.rng.randint(1, 2)))))
        out = []
        for k in targets:
            sound = self.statuses[k] in ("supported", "partly-supported")  # no N702
            relation = ("depends-on" if sound and self.rng.random() < 0.3
                        else self.rng.choice(_RELATIONS))
            out.append((self.claim_ids[k], relation))
        return out

    def snapshot(self, source: Source) -> None:
        paragraphs = []
        for quote in source.quotes:
            paragraphs.append(textwrap.fill(
                f"{self.rng.choice(_NOTES)} {quote}. {self.rng.choice(_NOTES)}",
                width=78, break_on_hyphens=False, break_long_words=False))
        self.write(f"sources/{source.id}.txt", "\n\n".join(paragraphs) + "\n")

    def run(self) -> None:
        for i in range(max(1, self.n // 10)):
            self.entity(i)
        orgs, people = self.of_kind("organization"), self.of_kind("person")
        for i in range(max(1, self.n // 5)):
            self.source(i, orgs, people)
        topics = list(_TOPICS)
        for j in range(self.n):
            self.claim(j, topics)
        for source in self.sources:
            if source.snapshot and source.quotes:
                self.snapshot(source)
        self.write("kb.toml", "".join([
            f'title = "Synthetic knowledge base of {self.n} claims"\n',
            'description = "Made up by bench/generate.py for benchmarks: no name, figure or '
            'source in it is real."\n',
            'base_url = "https://example.org/kb/"\n',
            'publisher = "Benchmark editors"\n',
        ]))


def generate(root: Path, n_claims: int, seed: int = 0) -> None:
    """Write a knowledge base of `n_claims` claims into the empty or new folder `root`."""
    if n_claims < 1:
        raise ValueError("n_claims must be at least 1")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    _Generator(root, n_claims, seed).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n_claims", type=int)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        generate(args.out_dir, args.n_claims, args.seed)
    except (ValueError, OSError) as exc:
        print(f"bench.generate: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
