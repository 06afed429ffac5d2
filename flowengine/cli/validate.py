"""``flowengine validate``: check flows offline, with ``file:line:col`` diagnostics for people and CI."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from flowengine.cli._common import EXIT_FATAL, EXIT_OK, EXIT_PROBLEMS, use_color
from flowengine.flow.diagnostics import Diagnostic, sort_unique
from flowengine.flow.loader import load_flow
from flowengine.flow.reporters import REPORTERS
from flowengine.flow.rules import RULE_DOCS
from flowengine.providers import PROVIDERS, platform

STDIN = "<stdin>"

_EPILOG = """\b
Examples:
  flowengine validate                          every flow under flows/
  flowengine validate flows/ivr_menu.yaml      one file
  flowengine validate --provider sinch flows/  also check what Sinch can do
  cat flow.yaml | flowengine validate -        read standard input
  flowengine validate --format github flows/   annotations in GitHub Actions

\b
Output, one line per problem, sorted:
  path:line:col: error|warning: message [rule]

\b
Exit codes:
  0  no errors (warnings allowed, unless --strict)
  1  problems found
  2  usage error (bad option, missing path)
  3  internal error (run again with --debug for the traceback)

Run with --list-rules for what each rule checks.
"""


@dataclass(frozen=True, slots=True)
class Options:
    fmt: str
    strict: bool
    provider: str | None
    quiet: bool
    color: bool


@click.command("validate", epilog=_EPILOG)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(REPORTERS)),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for GitHub Actions annotations.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option(
    "--provider", type=click.Choice(PROVIDERS), help="Also report actions this provider cannot perform."
)
@click.option("-q", "--quiet", is_flag=True, help="No summary line and no notes: only the problems.")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour and source excerpts; auto = on a terminal unless NO_COLOR is set.",
)
@click.option("--list-rules", is_flag=True, help="List the rule ids and what they check, then exit.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    strict: bool,
    provider: str | None,
    quiet: bool,
    color: str,
    list_rules: bool,
    debug: bool,
) -> None:
    """Check flow files: YAML, the schema, and the semantic rules.

    PATH may be a file, a folder (every *.yaml and *.yml inside, recursively) or - for standard input.
    Without PATH, the flows/ folder is checked.
    """
    if list_rules:
        width = max(map(len, RULE_DOCS))
        click.echo("".join(f"{rule:<{width}}  {text}\n" for rule, text in RULE_DOCS.items()), nl=False)
        return
    options = Options(fmt, strict, provider, quiet, use_color(color))
    try:
        code = _validate(_files(paths), options)
    except click.ClickException:
        raise  # usage errors: click reports them and exits 2
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"flowengine validate: internal error: {type(exc).__name__}: {exc}", err=True)
        ctx.exit(EXIT_FATAL)
    ctx.exit(code)


def _files(paths: Sequence[str]) -> list[str]:
    if not paths:
        if not Path("flows").is_dir():
            raise click.UsageError("no PATH given and there is no flows/ folder here")
        paths = ("flows",)
    found: list[str] = []
    for given in paths:
        for name in _expand(given):
            if name not in found:
                found.append(name)
    return found


def _expand(given: str) -> Iterator[str]:
    if given == "-" or not Path(given).is_dir():
        yield given
        return
    matches = [p for pattern in ("*.yaml", "*.yml") for p in Path(given).rglob(pattern) if p.is_file()]
    if not matches:  # a mistyped folder must not pass a CI step by checking nothing
        raise click.UsageError(f"no flow files (*.yaml, *.yml) in the folder {given}")
    yield from (str(p) for p in sorted(matches))


def _validate(files: Sequence[str], options: Options) -> int:
    table = None if options.provider is None else platform(options.provider)  # None: no provider checks
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for name in files:
        if name == "-":
            result = load_flow(sys.stdin.read(), source=STDIN, platform=table)
        else:
            result = load_flow(Path(name), source=name, platform=table)
        diagnostics.extend(result.diagnostics)
        sources[result.source] = result.text
        sources.update(result.included)  # so excerpts show lines of included files too
    ordered = sort_unique(diagnostics)
    output = REPORTERS[options.fmt](ordered, sources, options.color and options.fmt == "text")
    click.echo(output, nl=False, color=options.color)
    errors = sum(d.severity == "error" for d in ordered)
    warnings = len(ordered) - errors
    if options.fmt == "text" and not options.quiet:
        click.echo(_summary(errors, warnings, len(files)), err=True)
    return EXIT_PROBLEMS if errors or (options.strict and warnings) else EXIT_OK


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(errors: int, warnings: int, files: int) -> str:
    if not errors and not warnings:
        return f"no problems in {_plural(files, 'file')}"
    parts = [_plural(errors, "error")] if errors else []
    parts += [_plural(warnings, "warning")] if warnings else []
    return f"{', '.join(parts)} in {_plural(files, 'file')}"
