"""``flowengine call`` as a user runs it: a real process against the engine on 127.0.0.1 (with a simulated
platform), the token from the environment, variables read as the flow declares them."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from flowengine.cli.call import TOKEN_ENV, URL_ENV

from .outbound import CUSTOMER, outbound

FLOWENGINE = [sys.executable, "-m", "flowengine", "call"]
RUN_TIMEOUT = 60.0  # seconds a command may take


async def run(*args: str, token: str | None = None, env: dict[str, str] | None = None
              ) -> tuple[int, str, str]:
    """``flowengine call ARGS`` in a process of its own; (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, URL_ENV)}
    environ.update(env or {})
    if token is not None:
        environ[TOKEN_ENV] = token
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(*FLOWENGINE, *args, env=environ, stdout=pipe, stderr=pipe)
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_call_started_from_the_shell_gets_its_variables_typed_as_declared() -> None:
    async with outbound("infobip", {CUSTOMER: {"busy": True}}) as side:
        code, out, err = await run("reminder", "--to", CUSTOMER, "--var", "name=Ada", "--var", "tries=2",
                                   "--var", "slot=0930", "--url", side.url, token=side.stack.api_token)
        session_id = out.split()[1]
        session = await side.until_over(session_id)
    assert (code, err) == (0, ""), err
    assert out.startswith(f"session {session_id} of reminder: new\n")
    assert f"{side.url}/api/sessions/{session_id}" in out
    assert session["vars"] == {"name": "Ada", "slot": "0930", "tries": 2, "why": "busy"}


async def test_waiting_for_the_session_reports_how_it_ended_as_json() -> None:
    async with outbound("sinch", {CUSTOMER: {"answer_after": "2s", "hangup_after": "4s"}}) as side:
        code, out, err = await run(
            "reminder", "--to", CUSTOMER, "--wait", "--format", "json", "--idempotency-key", "cli-1",
            "--token-env", "MY_TOKEN", env={URL_ENV: side.url, "MY_TOKEN": side.stack.api_token})
        dials = side.dials()
    answer = json.loads(out)
    assert code == 0 and err == "", err
    assert answer["flow"] == "reminder" and answer["final"]["status"] == "ended"
    assert answer["final"]["state"] == "hung_up" and len(dials) == 1


async def test_problems_are_reported_with_their_reason_and_nothing_is_dialled() -> None:
    async with outbound("infobip") as side:
        token = side.stack.api_token
        to = ("reminder", "--to", CUSTOMER, "--url", side.url)
        mistyped = await run(*to, "--var", "tries=two", token=token)
        unknown = await run(*to, "--var", "nmae=Ada", token=token)
        inbound = await run("two-party-conference", "--to", CUSTOMER, "--url", side.url, token=token)
        wrong_token = await run("reminder", "--to", CUSTOMER, "--url", side.url, token="not-the-token-at-all")
        no_token = await run("reminder", "--to", CUSTOMER, "--url", side.url)
        no_pair = await run("reminder", "--to", CUSTOMER, "--var", "name", "--url", side.url, token=token)
        dials = side.dials()
    assert mistyped[0] == 2 and "--var tries: expected an integer, got \"two\"" in mistyped[2]
    assert unknown[0] == 1 and 'refused (400): vars: unknown variable "nmae"' in unknown[2]
    assert inbound[0] == 1 and "starts on inbound calls" in inbound[2]
    assert wrong_token[0] == 1 and "refused (401): wrong bearer token" in wrong_token[2]
    assert no_token[0] == 2 and f"no API token: set {TOKEN_ENV}" in no_token[2]
    assert no_pair[0] == 2 and "--var wants NAME=VALUE" in no_pair[2]
    assert dials == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9"])
async def test_a_service_that_cannot_be_reached_is_exit_3(url: str) -> None:
    code, _, err = await run("reminder", "--to", CUSTOMER, "--url", url, token="x" * 20)
    assert code == 3 and f"cannot reach the service at {url}" in err

