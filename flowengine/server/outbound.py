"""Calls the service starts: ``POST /api/calls`` (and ``flowengine call``) -> an outbound flow's session.

``parse_call`` checks the request before anything is dialled (the flow is loaded and outbound, ``to`` is
a number or an endpoint, ``vars`` are the flow's declared variables with their declared types) and says
what is wrong. ``start_outbound`` starts it: the session's first step plans the flow's dial, which the
executor writes ahead and sends under the session's correlation key like any dial (``runtime.outbound``),
so a start interrupted mid-way is resumed and reconciled, never dialled twice.

Idempotency: a request with an ``idempotency_key`` gets a session id derived from the key, so a retry —
to this instance or another sharing the store — reaches the same session: under the session's lock its
start, whose event id is fixed, is a duplicate, and the dial is not sent again (a start that died after
writing ahead is finished instead, reconciled with the platform). A retry with the same key but another
request (flow, to, from, vars) is refused (422), the session's origin keeping the first request's
fingerprint. Once started, the key is also marked in the store (``claim``, for ``IDEMPOTENCY_TTL``), so a
retry that comes after its session is no longer kept is refused (409) rather than dialled again.

``start_outbound`` is the one place a start happens: pacing can queue in front of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowengine.errors import RequestError
from flowengine.flow.diagnostics import quote
from flowengine.flow.model import Flow
from flowengine.flow.variables import problems as var_problems
from flowengine.flow.vocabulary import ENDPOINT_KINDS
from flowengine.runtime.outbound import repeated, start_event
from flowengine.runtime.session import Session
from flowengine.server.api import unknown_fields

if TYPE_CHECKING:
    from flowengine.server.service import Service

IDEMPOTENCY_TTL = 86_400.0  # seconds a started key is remembered store-wide beyond its session
MAX_KEY = 255  # characters of an idempotency key
MAX_ADDRESS = 256  # characters of a SIP, user or WebRTC address, or a caller id
FIELDS = ("flow", "to", "from", "vars", "idempotency_key")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]*$")
_SEPARATORS = re.compile(r"[\s().+-]")
_DIGITS = (3, 15)  # an E.164 number has at most 15 digits


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A checked ``POST /api/calls``: ``to`` is a phone number (digits) or ``{kind: address}``."""

    flow: str
    to: str | dict[str, str]
    from_: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What makes two requests the same call, whatever their key."""
        doc = {"flow": self.flow, "to": self.to, "from": self.from_, "vars": dict(self.vars)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def session_id(self) -> str:
        """Derived from the idempotency key (every instance finds the same session), else fresh."""
        if self.idempotency_key is None:
            return f"o-{uuid.uuid4().hex[:24]}"
        return "o-" + hashlib.sha256(f"outbound:{self.idempotency_key}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Started:
    session: Session
    replayed: bool  # the same request came before: nothing was dialled this time


def parse_call(doc: Any, flows: Mapping[str, Flow]) -> CallRequest:
    """``doc`` (a request's JSON body) as a ``CallRequest``; ``RequestError`` (400) listing every problem."""
    if not isinstance(doc, dict):
        raise RequestError("the body must be a JSON object: {flow, to, from?, vars?, idempotency_key?}")
    found = unknown_fields(doc, FIELDS)
    flow = _flow(doc.get("flow"), flows, found)
    to = _to(doc.get("to"), found)
    from_ = _text(doc.get("from"), "from", MAX_ADDRESS, found)
    key = _text(doc.get("idempotency_key"), "idempotency_key", MAX_KEY, found)
    given = doc.get("vars", {})
    if not isinstance(given, dict):
        found.append("vars must be an object of the flow's variables")
    elif flow is not None:
        found.extend(var_problems(flow.vars, given))
    if found or flow is None or to is None:
        raise RequestError("; ".join(found))
    return CallRequest(flow.name, to, from_, dict(given), key)


async def start_outbound(service: Service, call: CallRequest) -> Started:
    """Start ``call``'s session, or find the one the same idempotency key started."""
    session_id = call.session_id()
    mark = f"call:{session_id}"
    keyed = call.idempotency_key is not None
    if keyed and await service.store.claimed(mark) and await service.store.get(session_id) is None:
        raise RequestError("this idempotency_key started a call whose session is no longer kept; a new "
                           "call needs a new key", 409)
    fingerprint = call.fingerprint()
    event = start_event(session_id, call.to, call.from_, call.vars, fingerprint)
    session = await service.drive(session_id, event, flow=call.flow)
    origin = session.origin or {}
    if origin.get("request") != fingerprint:
        raise RequestError("this idempotency_key was used for another call (its flow, to, from or vars "
                           f"differ): see session {session.id}; a new call needs a new key", 422)
    if keyed:
        await service.store.claim(mark, IDEMPOTENCY_TTL)
    return Started(session, repeated(session))


def _flow(name: Any, flows: Mapping[str, Flow], found: list[str]) -> Flow | None:
    outbound = sorted(n for n, f in flows.items() if f.outbound is not None)
    choices = f"outbound flows here: {', '.join(outbound) or 'none'}"
    if not isinstance(name, str) or not name:
        found.append(f"flow is required: the name of an outbound flow ({choices})")
        return None
    flow = flows.get(name)
    if flow is None:
        found.append(f"no flow {quote(name)} here ({choices})")
        return None
    if flow.outbound is None:
        found.append(f"flow {quote(name)} starts on inbound calls, not by dialling ({choices})")
        return None
    return flow


def _to(value: Any, found: list[str]) -> str | dict[str, str] | None:
    """A phone number (separators dropped), or ``{phone|sip|user|webrtc: address}``."""
    if isinstance(value, str):
        return _phone(value, "to", found)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, address),) = value.items()
        if kind in ENDPOINT_KINDS and isinstance(address, str) and 0 < len(address) <= MAX_ADDRESS:
            if kind != "phone":
                return {kind: address}
            number = _phone(address, "to.phone", found)
            return None if number is None else {"phone": number}
    kinds = "|".join(ENDPOINT_KINDS)
    found.append(f"to is required: a phone number in international format, or {{{kinds}: address}}")
    return None


def _phone(text: str, name: str, found: list[str]) -> str | None:
    digits = _SEPARATORS.sub("", text)
    if _PHONE.match(text) and _DIGITS[0] <= len(digits) <= _DIGITS[1]:
        return digits
    found.append(f"{name} must be a phone number in international format ({_DIGITS[0]} to {_DIGITS[1]} "
                 f"digits, such as 447700900001), not {quote(text[:40])}")
    return None


def _text(value: Any, name: str, limit: int, found: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    found.append(f"{name} must be a string of 1 to {limit} printable characters")
    return None
