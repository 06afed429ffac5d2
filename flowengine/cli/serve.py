"""``flowengine serve``: run the webhook service."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flowengine.cli._common import EXIT_USAGE, setup_logging
from flowengine.config import load_config
from flowengine.errors import ConfigError
from flowengine.logformat import FORMATS
from flowengine.redaction import redact
from flowengine.server.app import CONFIG, SERVICE, create_app
from flowengine.server.reload import reload_on_hangup
from flowengine.server.serving import run_until_stopped


@click.command("serve")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("flowengine.yaml"),
    show_default=True,
    help="Service configuration file.",
)
@click.option("--host", help="Override listen.host.")
@click.option("--port", type=int, help="Override listen.port.")
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    help="Override log_format: text (for people) or json (one object per line, with the session, call, "
    "flow, state, event and action each line is about).",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds to let in-flight webhooks finish on SIGTERM/SIGINT.",
)
def command(
    config_path: Path, host: str | None, port: int | None, log_format: str | None, shutdown_timeout: float
) -> None:
    """Serve the platform's webhooks and drive real calls.

    The config names the provider (infobip or sinch), which flow answers which
    number, the session store, the listen address and its limits (server:,
    webhook:); credentials come from environment variables (INFOBIP_API_KEY,
    SINCH_APPLICATION_SECRET, ...) or ${VAR} references. See
    flowengine.example.yaml and schemas/config.schema.json.
    The webhooks must be authenticated (INFOBIP_WEBHOOK_HMAC_SECRET or
    INFOBIP_WEBHOOK_USER/_PASSWORD; Sinch signs with the application secret),
    or serve does not start; the API wants a bearer token (api_tokens).

    \b
    Routes:
      POST /webhooks/<provider>[/<kind>]   the platform's events/callbacks
      GET  /healthz /readyz                liveness, readiness (open)
      GET  /metrics                        Prometheus (token, or metrics_public)
      GET  /api/sessions[/{id}] /api/flows sessions (state, vars, trace), flow graphs (token)
      POST /api/flows/reload               read the flow files again (token; or SIGHUP)
      POST /api/calls                      start an outbound flow's call (token)
      POST /api/sessions/{id}/events       deliver a custom event to a session (token)
      DELETE /api/sessions/{id}            end a session, hanging up its calls (token)
      GET  /                               the dashboard (token)

    Exit codes: 0 stopped cleanly, 2 bad configuration (unauthenticated webhooks included) or a
    listen address that cannot be used (taken by another process, say).
    """
    try:
        config = load_config(config_path)
        fmt = log_format or config.log_format
        setup_logging(config.log_level, numbers=config.log_numbers, log_format=fmt)
        app = create_app(config)
        reload_on_hangup(app, SERVICE, CONFIG)
    except ConfigError as exc:
        click.echo(redact(f"flowengine: {exc}"), err=True)
        sys.exit(EXIT_USAGE)
    try:
        run_until_stopped(
            app,
            host=host or config.host,
            port=port if port is not None else config.port,
            limits=config.server,
            shutdown_timeout=shutdown_timeout,
            announce=lambda message: click.echo(message, err=True),
        )
    except ConfigError as exc:  # the listen address cannot be used
        click.echo(f"flowengine: {exc}", err=True)
        sys.exit(EXIT_USAGE)
