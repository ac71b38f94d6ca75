"""The command line. Each command parses its arguments and calls one library function.

Exit codes: 0 all well; 1 the knowledge base has errors (or warnings under --strict);
2 the tool could not run (bad arguments, unreadable folder).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from kb import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class _Date(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM-DD"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


# Set by run(), whose process ends right after main(): what a command made is kept here, to be
# dropped with the process, not freed object by object on the way out of main().
_KEEP: list[object] | None = None


def run() -> None:
    """The `kb` program: main(), then an exit that does not free the heap object by object.

    After a build at 10,000 claims the interpreter's own exit spends ~0.3 s freeing a million
    objects the kernel takes back at once anyway (mypy exits the same way). Exit hooks still run
    (cache saves in the background are waited for); with other threads alive, or when main() is
    called as a library (tests, CliRunner), the exit is Python's usual one.
    """
    import atexit
    import os
    import threading
    from contextlib import suppress

    global _KEEP
    _KEEP = []
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    status = code if isinstance(code, int) else 0 if code is None else 1
    if threading.active_count() > 1:
        raise SystemExit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe (`kb check | head`)
            stream.flush()
    os._exit(status)


def _root(ctx: click.Context) -> Path:
    root: Path = ctx.obj["root"]
    return root


def fail(message: str) -> None:
    click.echo(f"kb: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kb")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The knowledge base folder.")
@click.pass_context
def main(ctx: click.Context, root: Path) -> None:
    """claimkb: claims, their sources, and their evidence status."""
    ctx.obj = {"root": root}


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "github", "json"]), default="text",
              show_default=True, help="github: workflow annotations; json: for programs.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--today", type=_Date(), default=None, help="Check as of this date.")
@click.option("--no-cache", is_flag=True, help="Parse every file afresh.")
@click.option("--shacl", is_flag=True, help="Also validate the graph against the SHACL shapes.")
@click.pass_context
def check(ctx: click.Context, fmt: str, strict: bool, today: dt.date | None,
          no_cache: bool, shacl: bool) -> None:
    """Check every file and report each problem with its place."""
    from kb import output
    from kb.check import CheckOptions, check_command
    from kb.load import NotAKnowledgeBase

    try:
        report = check_command(_root(ctx), CheckOptions(today=today, use_cache=not no_cache),
                               shacl=shacl)
    except NotAKnowledgeBase as exc:
        fail(str(exc))
        return
    if fmt == "json":
        click.echo(output.as_json(report))
    else:
        lines = output.as_github(report) if fmt == "github" else output.as_text(report)
        for line in lines:
            click.echo(line)
    ctx.exit(report.exit_code(strict))


@main.command("schema")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the JSON Schemas [default: ROOT/schema].")
@click.option("--check", "check_only", is_flag=True, help="Only list stale schemas (exit 1).")
@click.pass_context
def schema_cmd(ctx: click.Context, out: Path | None, check_only: bool) -> None:
    """Write the JSON Schemas (draft-07) of claims, sources and entities."""
    from kb.jsonschema import SCHEMA_DIR, run

    ctx.exit(run(out or _root(ctx) / SCHEMA_DIR, check_only))


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(["ttl", "nt", "nq", "trig", "jsonld"]),
              default="ttl", show_default=True, help="The RDF format of the dump.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: standard output].")
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, out: Path | None) -> None:
    """Dump the whole graph (deterministic: the same files give the same bytes)."""
    from kb.export import export
    from kb.load import NotAKnowledgeBase

    try:
        data = export(_root(ctx), fmt)
    except NotAKnowledgeBase as exc:
        fail(str(exc))
        return
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        try:
            out.write_bytes(data)
        except OSError as exc:
            fail(f"cannot write {out}: {exc}")


@main.command("query")
@click.argument("query", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "tsv", "json", "ttl"]),
              default="table", show_default=True, help="ttl: for CONSTRUCT and DESCRIBE.")
@click.option("--list", "list_only", is_flag=True, help="List the named queries.")
@click.pass_context
def query_cmd(ctx: click.Context, query: str | None, fmt: str, list_only: bool) -> None:
    """Run SPARQL: inline text, a .rq file, or the name of a query in queries/."""
    from kb.query import query_command

    outcome = query_command(_root(ctx), query, fmt, list_only)
    if outcome.out:
        click.echo(outcome.out.rstrip("\n"))
    if outcome.err:
        click.echo(outcome.err, err=True)
    ctx.exit(outcome.code)


@main.command("analyze")
@click.pass_context
def analyze_cmd(ctx: click.Context) -> None:
    """Print the weak spots of the claim network: cycles, single sources, orphans, clusters."""
    from kb.load import NotAKnowledgeBase
    from kb.network import analyze

    try:
        lines, code = analyze(_root(ctx))
    except NotAKnowledgeBase as exc:
        fail(str(exc))
        return
    for line in lines:
        click.echo(line)
    ctx.exit(code)


@main.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--check", "check_only", is_flag=True,
              help="Only list files that are not in canonical form (exit 1).")
@click.pass_context
def fmt_cmd(ctx: click.Context, paths: tuple[Path, ...], check_only: bool) -> None:
    """Put record files into canonical form, keeping every comment and value."""
    from kb.fmt import run

    ctx.exit(run(_root(ctx), paths, check_only))


@main.command("diff")
@click.argument("base")
@click.argument("head", required=False)
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="markdown: for a pull request; json: for programs.")
@click.pass_context
def diff_cmd(ctx: click.Context, base: str, head: str | None, fmt: str) -> None:
    """What changed between git ref BASE and HEAD (default: the working tree)."""
    from kb.diff import run

    ctx.exit(run(_root(ctx), base, head, fmt))


def _complete_ids(kind: str) -> Any:
    """Shell completion of an option with the ids of one kind (`kb new --about rus<TAB>`)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from kb.questions import existing_ids

        root = ctx.find_root().params.get("root") or Path(".")
        return [i for i in existing_ids(Path(root))[kind] if i.startswith(incomplete)]

    return complete


@main.command("new")
@click.argument("what", type=click.Choice(["claim", "source", "entity"]))
@click.option("--id", "id_", help="The id (file name); suggested from the text if left out.")
@click.option("--claim", help="claim: the checkable statement, in your words.")
@click.option("--kind", "kind_", help="The kind (claim: fact, quantity …; source: "
              "news-article …; entity: person …).")
@click.option("--source", shell_complete=_complete_ids("source"),
              help="claim: the source where it is made.")
@click.option("--quote", help="claim: the exact words of that source.")
@click.option("--from-quote", nargs=2, metavar="SOURCE QUOTE", default=None,
              shell_complete=_complete_ids("source"),
              help="claim: start from a quote, checked against the source's text.")
@click.option("--claimant", shell_complete=_complete_ids("entity"), help="claim: who makes it.")
@click.option("--about", multiple=True, shell_complete=_complete_ids("entity"),
              help="claim: an entity it is about (repeatable).")
@click.option("--period", help="claim: YYYY, YYYY-MM, YYYY-MM-DD or A/B.")
@click.option("--quantity", help='claim: figure and unit, e.g. "245e9 USD".')
@click.option("--resolves-by", help="claim (prediction): YYYY-MM-DD.")
@click.option("--tag", "tags", multiple=True, help="claim: a tag (repeatable).")
@click.option("--by", help="claim: your handle; records a review dated today.")
@click.option("--title", help="source: title or headline.")
@click.option("--url", help="source: its http(s) URL.")
@click.option("--publisher", shell_complete=_complete_ids("entity"), help="source: publisher.")
@click.option("--author", "authors", multiple=True, shell_complete=_complete_ids("entity"),
              help="source: an author (repeatable).")
@click.option("--published", help="source: YYYY, YYYY-MM or YYYY-MM-DD.")
@click.option("--accessed", help="source: YYYY-MM-DD [default: today].")
@click.option("--language", help="source: BCP 47 tag, e.g. en.")
@click.option("--name", help="entity: its usual name.")
@click.option("--description", help="entity: one sentence on it.")
@click.option("--alias", "aliases", multiple=True, help="entity: another name (repeatable).")
@click.option("--wikidata", help="entity: a Q-number you looked up.")
@click.option("-i/-I", "--interactive/--no-interactive", default=None,
              help="Ask for what the flags leave out [default: when in a terminal].")
@click.pass_context
def new_cmd(ctx: click.Context, /, what: str, id_: str | None, kind_: str | None,
            interactive: bool | None, **given: Any) -> None:
    """Create a claim, source or entity file, and check it."""
    from kb.new import run

    if interactive is None:
        interactive = sys.stdin.isatty()
    ctx.exit(run(_root(ctx), what, {**given, "id": id_, "kind": kind_}, interactive))


def _say_waiting() -> None:
    from kb.buildlock import WAITING

    click.echo(WAITING, err=True)


@main.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The site folder [default: site/ in the knowledge base].")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Render processes [default: up to 2].")
@click.option("--timings", is_flag=True, help="Print each stage's time in seconds.")
@click.option("--full", is_flag=True, help="Render every page, keeping nothing of the last build.")
@click.pass_context
def build_cmd(ctx: click.Context, out: Path | None, jobs: int | None, timings: bool,
              full: bool) -> None:
    """Build the static site (atomically: a failed build leaves the old site)."""
    from kb.build import BuildOptions, build_command

    outcome = build_command(_root(ctx), out or _root(ctx) / "site",
                            BuildOptions(jobs=jobs, incremental=not full, keep_graph=False,
                                         waiting=_say_waiting),
                            timings)
    if _KEEP is not None:
        _KEEP.append(outcome)
    for line in outcome.lines:
        click.echo(line, err=outcome.code == 2)
    ctx.exit(outcome.code)


@main.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The site folder [default: site/ in the knowledge base].")
@click.option("--no-sparql", is_flag=True, help="Serve the site only, without /sparql.")
@click.pass_context
def serve_cmd(ctx: click.Context, port: int, host: str, out: Path | None,
              no_sparql: bool) -> None:
    """Build and serve the site locally; rebuild when a file changes."""
    from kb.serve import serve_command

    ctx.exit(serve_command(_root(ctx), out or _root(ctx) / "site", host, port,
                           sparql=not no_sparql, echo=click.echo))


@main.command("publish")
@click.option("--endpoint", default=None, metavar="URL",
              help="The store's SPARQL endpoint, asked which graphs it holds.")
@click.option("--graph-store", default=None, metavar="URL",
              help="The store's Graph Store Protocol URL [default: --endpoint].")
@click.option("--user", default=None, help="User name for the store.")
@click.option("--password", default=None, envvar="KB_PUBLISH_PASSWORD",
              help="Password for the store [env: KB_PUBLISH_PASSWORD].")
@click.pass_context
def publish_cmd(ctx: click.Context, endpoint: str | None, graph_store: str | None,
                user: str | None, password: str | None) -> None:
    """Load every file's named graph into a triple store; later runs send only changes."""
    from kb.publish import PublishOptions, publish_command

    if not (endpoint or graph_store):
        fail("give the store's --endpoint URL (and --graph-store URL where it differs)")
    outcome = publish_command(_root(ctx), PublishOptions(
        graph_store=graph_store or endpoint or "", endpoint=endpoint, user=user,
        password=password))
    for line in outcome.lines:
        click.echo(line, err=outcome.code != 0)
    ctx.exit(outcome.code)
