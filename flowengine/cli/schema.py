"""``flowengine schema``: print a published schema: flow files (schemas/flow.schema.json), the service
configuration (schemas/config.schema.json) or the service's HTTP routes (schemas/openapi.json)."""

from __future__ import annotations

import json

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
@click.option("--config", "config", is_flag=True, help="The service configuration's schema instead.")
@click.option("--openapi", "openapi", is_flag=True, help="The service's OpenAPI 3.1 description instead.")
def command(indent: int, output: str | None, config: bool, openapi: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of flow files (or, with --config, of flowengine.yaml; with
    --openapi, the OpenAPI 3.1 description of the service's routes, for both providers).

    \b
    Editors use it for completion and inline errors; point yaml-language-server at it with a first line
      # yaml-language-server: $schema=../schemas/flow.schema.json

    \b
    Regenerate the published copies:
      flowengine schema -o schemas/flow.schema.json
      flowengine schema --config -o schemas/config.schema.json
      flowengine schema --openapi -o schemas/openapi.json
    """
    if config and openapi:
        raise click.UsageError("--config and --openapi: choose one")
    if openapi:
        from flowengine.server.openapi import openapi_json

        text = openapi_json(indent or None)
    elif config:
        from flowengine.config import CONFIG_SCHEMA

        text = json.dumps(CONFIG_SCHEMA, indent=indent or None, ensure_ascii=False) + "\n"
    else:
        text = schema_json(indent or None)
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
