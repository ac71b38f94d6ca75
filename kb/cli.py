"""The command line. Each command parses its arguments and calls one library function.

Exit codes: 0 all well; 1 the knowledge base has errors (or warnings under --strict);
2 the tool could not run (bad arguments, unreadable folder).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
@click.pass_context
def check(ctx: click.Context, fmt: str, strict: bool, today: dt.date | None,
          no_cache: bool) -> None:
    """Check every file and report each problem with its place."""
    from kb import output
    from kb.check import CheckOptions
    from kb.check import check as run_check
    from kb.load import NotAKnowledgeBase

    try:
        result = run_check(_root(ctx), CheckOptions(today=today, use_cache=not no_cache))
    except NotAKnowledgeBase as exc:
        fail(str(exc))
        return
    report = result.report
    if fmt == "json":
        click.echo(output.as_json(report))
    else:
        lines = output.as_github(report) if fmt == "github" else output.as_text(report)
        for line in lines:
            click.echo(line)
    ctx.exit(report.exit_code(strict))
