"""``flowengine simulator``: run a simulated platform on its own, in wall-clock (or scaled) time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from flowengine.cli._common import EXIT_USAGE, setup_logging
from flowengine.providers import PROVIDERS
from flowengine.providers.sinch.signing import basic_header
from flowengine.simulator.delivery import REDELIVERY_MODES, DeliveryPolicy
from flowengine.simulator.parties import PartyBook
from flowengine.simulator.serve import serve_simulator

# (flag, DeliveryPolicy field, type, help): how webhooks reach the engine.
_DELIVERY_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--redelivery", "redelivery", click.Choice(REDELIVERY_MODES),
     "Redeliver webhooks the app fails (non-2xx, timeout, unreachable)."),
    ("--redelivery-attempts", "attempts", int, "POSTs per webhook in all, with retry."),
    ("--redelivery-delay", "initial_delay", float, "Seconds before the first redelivery."),
    ("--redelivery-factor", "factor", float, "Each further wait is this many times longer."),
    ("--redelivery-max-delay", "max_delay", float, "Cap of one wait, seconds."),
    ("--webhook-timeout", "timeout", float, "Seconds the app has to answer a webhook."),
    ("--max-in-flight", "max_in_flight", int, "Webhook POSTs at a time across calls."),
    ("--duplicate-rate", "duplicate_rate", float, "Share of webhooks delivered twice."),
    ("--reorder-rate", "reorder_rate", float,
     "Share of webhooks held back so later ones of the same call overtake them."),
    ("--reorder-delay", "reorder_delay", float, "Seconds a held-back webhook waits."),
    ("--delivery-seed", "seed", int, "Seed of the duplicate/reorder draws."),
]


def _delivery_options(command: Callable[..., None]) -> Callable[..., None]:
    defaults = DeliveryPolicy()
    for flag, name, type_, help_ in reversed(_DELIVERY_FLAGS):
        # None when not given, so only the flags given override the policy's own defaults.
        text = f"{help_}  [default: {getattr(defaults, name)}]"
        command = click.option(flag, "delivery_" + name, type=type_, default=None, help=text)(command)
    return command


@click.command("simulator")
@click.option("-p", "--provider", type=click.Choice(PROVIDERS), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8081, show_default=True)
@click.option("--webhook-url", required=True, help="Where to POST events (the engine's webhook route).")
@click.option(
    "--parties",
    "parties_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML mapping of number -> party script (answer_after, busy, hangup_after, press, ...).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Run simulated time N times faster: ringing, speech, party delays, webhook delays all shorter.",
)
@click.option(
    "--webhook-hmac-secret",
    envvar="INFOBIP_WEBHOOK_HMAC_SECRET",
    help="Infobip: sign each event with the hex HMAC-SHA256 of its body under --webhook-hmac-header, as "
    "a subscription with HMAC security does (the engine's variable of the same name, by default).",
)
@click.option("--webhook-hmac-header", default="X-Signature", show_default=True,
              help="Infobip: the header carrying the HMAC.")
@click.option(
    "--webhook-basic",
    metavar="USER:PASSWORD",
    help="Infobip: Basic credentials on each event, as a subscription with Basic security sends them.",
)
@click.option("--application-key", envvar="SINCH_APPLICATION_KEY",
              help="Sinch: the application key requests and callbacks are signed with.")
@click.option("--application-secret", envvar="SINCH_APPLICATION_SECRET",
              help="Sinch: the application secret (base64) requests and callbacks are signed with.")
@_delivery_options
def command(
    provider: str,
    host: str,
    port: int,
    webhook_url: str,
    parties_file: Path | None,
    speed: float,
    webhook_hmac_secret: str | None,
    webhook_hmac_header: str,
    webhook_basic: str | None,
    application_key: str | None,
    application_secret: str | None,
    **delivery_flags: Any,
) -> None:
    """Serve a wire-faithful copy of the platform's API for an engine to talk to.

    Place calls and read what happened through its control API under
    /_simulator/ (POST /_simulator/calls {from, to, script}; GET requests,
    events, calls, conferences; PUT parties, faults, delivery).

    Its webhooks are authenticated as the platform's are: Sinch callbacks are
    signed with the application key and secret; Infobip events carry an HMAC
    or Basic credentials when given (the engine refuses unauthenticated ones).

    \b
    Example:
      INFOBIP_WEBHOOK_HMAC_SECRET=$(openssl rand -hex 16) \\
      flowengine simulator -p infobip --port 8081 --speed 20 \\
          --redelivery retry --duplicate-rate 0.1 \\
          --webhook-url http://127.0.0.1:8080/webhooks/infobip
    """
    setup_logging("info")
    parties = None
    if parties_file is not None:
        try:
            parties = PartyBook.from_dict(yaml.safe_load(parties_file.read_text()) or {})
        except (ValueError, yaml.YAMLError) as exc:
            click.echo(f"flowengine: {parties_file}: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    chosen = {k.removeprefix("delivery_"): v for k, v in delivery_flags.items() if v is not None}
    try:
        delivery = DeliveryPolicy.from_dict(chosen)
    except ValueError as exc:
        click.echo(f"flowengine: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    auth = _webhook_auth(provider, webhook_hmac_secret, webhook_hmac_header, webhook_basic,
                         application_key, application_secret)
    serve_simulator(provider, host, port, webhook_url, parties=parties, speed=speed, delivery=delivery,
                    **auth)


def _webhook_auth(
    provider: str, hmac_secret: str | None, hmac_header: str, basic: str | None, key: str | None,
    secret: str | None,
) -> dict[str, Any]:
    """The simulator's options for authenticating its webhooks (and, on Sinch, checking requests)."""
    if provider == "sinch":
        return {name: value for name, value in (("application_key", key), ("application_secret", secret))
                if value}
    options: dict[str, Any] = {}
    if hmac_secret:
        options["webhook_hmac"] = (hmac_header, hmac_secret)
    if basic:
        if ":" not in basic:
            click.echo("flowengine: --webhook-basic takes USER:PASSWORD", err=True)
            sys.exit(EXIT_USAGE)
        options["webhook_headers"] = {"Authorization": basic_header(*basic.split(":", 1))}
    return options
