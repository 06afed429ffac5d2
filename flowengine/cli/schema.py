"""``flowengine schema``: print the flow language's JSON Schema (the published schemas/flow.schema.json)."""

from __future__ import annotations

import click

from flowengine.flow.schema import schema_json


@click.command("schema")
@click.option(
    "--indent",
    type=click.IntRange(0, 8),
    default=2,
    show_default=True,
    help="Spaces per indentation level (0: one line).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file instead of standard output.",
)
def command(indent: int, output: str | None) -> None:
    """Print the JSON Schema (draft 2020-12) of flow files.

    \b
    Editors use it for completion and inline errors; point yaml-language-server at it with a first line
      # yaml-language-server: $schema=../schemas/flow.schema.json

    \b
    Regenerate the published copy:
      flowengine schema -o schemas/flow.schema.json
    """
    text = schema_json(indent or None)
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
