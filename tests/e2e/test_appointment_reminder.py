"""The bundled appointment reminder (``flows/appointment_reminder.yaml``) through the real service, on both
simulators (real HTTP on 127.0.0.1, virtual time): ``POST /api/calls`` starts it, the customer's party
script answers (a person pressing a key, a machine, nobody, busy), and the result reaches a CRM that is an
aiohttp server on 127.0.0.1 on the service's allow-list, authorised with ``${CRM_TOKEN}`` from the
service's environment, which nothing stores. A CRM answering 500 takes the flow's failure path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from flowengine.providers import PROVIDERS
from flowengine.server.serving import serving

from .outbound import CUSTOMER, outbound, said

REMINDER = Path(__file__).resolve().parents[2] / "flows" / "appointment_reminder.yaml"
TOKEN = "PLANTED-reminder-crm-token-51c2"
VARS = {"time": "9:30 on Tuesday", "appointment_id": "A-1234"}


@dataclass
class Crm:
    url: str
    status: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)

    def allow(self) -> tuple[dict[str, Any], ...]:
        return ({"host": "127.0.0.1", "ports": [int(self.url.rsplit(":", 1)[1])], "private": True},)


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    status = [200]
    received: list[dict[str, Any]] = []

    async def results(request: web.Request) -> web.Response:
        received.append({"auth": request.headers.get("Authorization"), "json": await request.json()})
        return web.json_response({"ok": status[0] == 200}, status=status[0])

    app = web.Application()
    app.router.add_post("/reminders/results", results)
    async with serving(app) as url:
        yield Crm(url, status, received)


async def remind(provider: str, crm: Crm, script: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Start the reminder through the API; the session once it and its call are over, and what was said."""
    async with outbound(provider, {CUSTOMER: script}, flows=(REMINDER,), http_allow=crm.allow()) as side:
        status, started = await side.call(
            flow="appointment_reminder", vars={**VARS, "crm_url": f"{crm.url}/reminders/results"})
        assert status == 201, started
        session = await side.until_over(started["id"])
        record = await side.record(started["id"])
        assert record is not None and TOKEN not in str(record.data)
        return session, said(side.stack)


@pytest.fixture(autouse=True)
def crm_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TOKEN", TOKEN)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("script", "result", "heard"), [
    ({"answer_after": "3s", "press": [["6s", "1"]]}, "confirmed", "9:30 on Tuesday is confirmed"),
    ({"answer_after": "3s", "press": [["6s", "2"]]}, "cancelled", "9:30 on Tuesday is cancelled"),
    ({"answer_after": "3s", "machine": True}, "voicemail", "Please call us back to confirm or cancel it"),
    ({"busy": True}, "busy", None),
    ({"answer_after": None}, "no_answer", None),
], ids=["confirms", "cancels", "machine", "busy", "no-answer"])
async def test_the_result_reaches_the_crm_with_the_token_from_the_environment(
    provider: str, crm: Crm, script: dict[str, Any], result: str, heard: str | None
) -> None:
    session, texts = await remind(provider, crm, script)
    assert (session["status"], session["state"], session["vars"]["result"]) == ("ended", "done", result)
    assert crm.received == [{"auth": f"Bearer {TOKEN}", "json": {
        "appointment": "A-1234", "result": result, "attempts": session["vars"]["attempts"]}}]
    assert heard is None or any(heard in text for text in texts), texts


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_crm_answering_500_takes_the_flow_s_failure_path(provider: str, crm: Crm) -> None:
    crm.status[0] = 500
    session, _ = await remind(provider, crm, {"answer_after": "3s", "press": [["6s", "1"]]})
    assert (session["status"], session["state"]) == ("ended", "unreported")
    assert len(crm.received) == 1 and crm.received[0]["json"]["result"] == "confirmed"
    failed = [c for step in session["trace"] for c in step["commands"] if c[:2] == ["http", "error"]]
    assert "500" in failed[0][2]
