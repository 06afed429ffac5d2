"""The language's vocabulary: neutral events, neutral actions and their parameters, outcomes.

One table feeds the JSON Schema (``schema.py``), the semantic rules, the runtime's binders and the
providers' capability lists, so a new action is declared once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

# What a parameter holds. The schema and the rules derive their checks from this.
ParamKind = Literal[
    "text",  # a string; may contain {{ templates }}
    "call",  # the role name of a call ("caller", or one bound with ``as:``)
    "conference",  # the role name of a conference bound with ``as:``
    "new_call",  # ``as:`` binding a new call role
    "new_conference",  # ``as:`` binding a new conference role
    "new_var",  # ``as:`` binding a result into ``vars``
    "endpoint",  # a phone number, or {phone|sip|user|webrtc: address}
    "duration",  # "500ms", "10s", "2m", "1h"
    "integer",
    "boolean",
    "enum",
    "mapping",  # free-form name -> value (``set``, ``http.body``)
    "headers",  # HTTP header name -> literal text whose ``${VAR}`` the service fills from its environment
    "expressions",  # variable name -> bare expression, evaluated after the action (``http.save``)
]


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # what the http action may send

@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()  # for kind == "enum"
    minimum: int | None = None  # for kind == "integer"


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    params: tuple[Param, ...] = ()
    # At least one of these must be present (``play`` needs ``file_id`` or ``url``).
    one_of: tuple[str, ...] = ()
    # Neutral events this action may later cause, for "did you handle it" rules.
    outcomes: tuple[str, ...] = ()
    # Pure actions are carried out by the engine itself, never sent to a provider.
    pure: bool = False
    # Teardown ends or undoes something: on a role never bound, or a call or conference already ended,
    # there is nothing to do, and that is success (never sent).
    teardown: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class EventSpec:
    name: str
    description: str
    fields: tuple[str, ...] = field(default=("call", "call_id"))


# The fixed outcome vocabulary carried in ``event.reason``.
REASONS: dict[str, str] = {
    "answered": "the call was answered",
    "busy": "the called party was busy",
    "no_answer": "the called party did not answer before the timeout",
    "rejected": "the called party (or the network) rejected the call",
    "unreachable": "the destination could not be reached or does not exist",
    "failed": "the platform failed the call or action",
    "timeout": "a capture or wait ended by its timeout",
    "hangup": "the party hung up (normal clearing)",
    "api_hangup": "the call was hung up by a command (this flow or the platform API)",
    "cancelled": "the attempt was cancelled before it was answered",
    "kicked": "the participant was removed from the conference",
    "machine": "an answering machine answered (a dial with `machine_detection`), or the platform ended "
               "the call on detecting one",
    "human": "a person answered (a dial with `machine_detection`)",
    "completed": "the media finished playing to the end",
    "stopped": "the media was stopped before the end",
    "error": "the platform reported an error",
}

_CALL = Param(
    "call", "call", "Role name of the call to act on (\"caller\" or a name bound with `as:`).", True
)
_CONF = Param(
    "conference", "conference", "Role name of the conference, as bound by `conference_create`.", True
)
_MEMBER = Param("call", "call", "Role name of the participant's call.", True)
_LANGUAGE = Param(
    "language", "text", "Language code of the speech, such as `en`, `en-gb`, `de`.", default="en"
)
_VOICE = Param(
    "voice", "enum", "Voice gender, where the platform lets you choose.", choices=("female", "male")
)
_LOOP = Param("loop", "integer", "How many times to play the media.", default=1, minimum=1)
_FILE_ID = Param("file_id", "text", "Id of an audio file uploaded to the platform.")
_URL = Param("url", "text", "URL of an audio file the platform fetches.")
_TO = Param("to", "endpoint", "Who to call: a phone number, or {phone|sip|user|webrtc: address}.", True)
_FROM = Param("from", "text", "Caller id shown to the called party.")
_TIMEOUT = Param(
    "timeout", "duration", "How long to ring before giving up (at most 60s on Infobip).", default="60s"
)
_MACHINE = Param(
    "machine_detection", "boolean", "Detect whether a person or an answering machine answers: the call's "
    "`call.answered` then comes once that is known, with `reason` `human` or `machine` (`answered` when "
    "the platform could not tell). Infobip: dial and conference_dial; Sinch: dial without `connect`.",
    default=False,
)
_MUSIC = Param(
    "music", "enum", "Music on hold.", default="music1", choices=("ring", "music1", "music2", "music3")
)


def _member_action(name: str, description: str, *extra: Param, teardown: bool = False) -> ActionSpec:
    return ActionSpec(name, description, (_CONF, _MEMBER, *extra), teardown=teardown)


ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("answer", "Answer an inbound call.", (_CALL,), outcomes=("call.answered",)),
    ActionSpec(
        "hangup",
        "Hang up a call.",
        (_CALL, Param("reason", "enum", "Why, as reported to the platform.",
                      choices=("hangup", "busy", "rejected"))),
        outcomes=("call.finished",),
        teardown=True,
    ),
    ActionSpec(
        "say",
        "Speak text to a call (text-to-speech).",
        (_CALL, Param("text", "text", "What to say (SSML allowed on Infobip).", True),
         _LANGUAGE, _VOICE, _LOOP),
        outcomes=("say.finished",),
    ),
    ActionSpec("play", "Play an audio file to a call.", (_CALL, _FILE_ID, _URL, _LOOP), ("file_id", "url"),
               outcomes=("play.finished",)),
    ActionSpec("stop_play", "Stop what is playing to a call.", (_CALL,), outcomes=("play.finished",),
               teardown=True),
    ActionSpec(
        "record",
        "Start recording a call.",
        (_CALL, Param("max_duration", "duration", "Stop by itself after this long."),
         Param("beep", "boolean", "Play a beep first.", default=False)),
        outcomes=("recording.ready",),
    ),
    ActionSpec("stop_record", "Stop recording a call.", (_CALL,), outcomes=("recording.ready",),
               teardown=True),
    ActionSpec(
        "capture_dtmf",
        "Collect keypad digits from a call.",
        (
            _CALL,
            Param("max_digits", "integer", "Stop after this many digits.", True, minimum=1),
            Param("timeout", "duration", "Give up after this long.", True),
            Param("terminator", "text", "A key that ends the input early, such as `#`."),
            Param("prompt", "text", "Text to say while waiting for input."),
            _LANGUAGE,
        ),
        outcomes=("dtmf.captured",),
    ),
    ActionSpec("send_dtmf", "Send keypad digits on a call.",
               (_CALL, Param("digits", "text", "Digits to send.", True))),
    ActionSpec(
        "dial",
        "Place an outbound call; with `connect`, bridge it to an existing call once answered.",
        (_TO, _FROM, _TIMEOUT, Param("as", "new_call", "Role name for the new call.", True),
         Param("connect", "call", "Role of an existing call to connect the new call with."), _MACHINE),
        outcomes=("call.answered", "call.failed"),
    ),
    ActionSpec(
        "conference_create",
        "Create a conference room.",
        (Param("name", "text", "Conference name."), Param("as", "new_conference", "Role name for it.", True)),
        outcomes=("conference.created",),
    ),
    ActionSpec("conference_join", "Move an existing call into a conference.", (_CONF, _MEMBER),
               outcomes=("participant.joined", "participant.join_failed")),
    ActionSpec(
        "conference_dial",
        "Dial a new party straight into a conference, with a ring timeout.",
        (_CONF, _TO, _FROM, _TIMEOUT, Param("as", "new_call", "Role name for the new call.", True), _MACHINE),
        outcomes=("participant.joined", "participant.join_failed"),
    ),
    ActionSpec("conference_say", "Speak text to everyone in a conference.",
               (_CONF, Param("text", "text", "What to say.", True), _LANGUAGE), outcomes=("say.finished",)),
    ActionSpec("conference_play", "Play an audio file to everyone in a conference.",
               (_CONF, _FILE_ID, _URL, _LOOP), ("file_id", "url"), outcomes=("play.finished",)),
    ActionSpec("conference_stop_play", "Stop what is playing to a conference.", (_CONF,), teardown=True),
    ActionSpec("conference_record", "Start recording a conference: one file of everyone in it, ready "
               "(`recording.ready`) when the recording stops or the conference ends. Infobip only: Sinch's "
               "Calling API v1 records single calls, never a conference.", (_CONF,),
               outcomes=("recording.ready",)),
    ActionSpec("conference_stop_record", "Stop recording a conference.", (_CONF,),
               outcomes=("recording.ready",), teardown=True),
    ActionSpec("conference_hangup", "End a conference and hang up every call in it.", (_CONF,),
               outcomes=("conference.finished",), teardown=True),
    ActionSpec("conference_info", "Read a conference's participants into a variable.",
               (_CONF, Param("as", "new_var", "Variable that receives the participants.", True))),
    _member_action("mute", "Mute a participant."),
    _member_action("unmute", "Unmute a participant."),
    _member_action("deafen", "Stop a participant hearing the conference."),
    _member_action("undeafen", "Let a participant hear the conference again."),
    _member_action(
        "hold",
        "Put a participant on hold: they neither hear nor are heard, and hear music until `resume`.",
        _MUSIC,
        Param("file_id", "text", "Hold music as an uploaded file, where the platform plays files (Infobip); "
              "platforms with built-in music classes (Sinch) use `music` instead."),
        Param("url", "text", "Hold music as a URL, where the platform plays files (Infobip)."),
        Param("loop", "integer", "How many times a hold-music file plays.", default=10, minimum=1),
    ),
    _member_action("resume", "Take a participant off hold.", teardown=True),
    _member_action("kick", "Remove a participant from the conference and hang up their call.", teardown=True),
    ActionSpec("set", "Set session variables (values may be templates).",
               (Param("vars", "mapping", "Variable name -> value.", True),), pure=True),
    ActionSpec(
        "log",
        "Write a line to the session's trace and the service log.",
        (Param("message", "text", "What to log.", True),
         Param("level", "enum", "Log level.", default="info", choices=("debug", "info", "warning", "error"))),
        pure=True,
    ),
    ActionSpec(
        "http",
        "Call an HTTP endpoint (hosts must be on the service's `http_allow` list). A refusal, a timeout or "
        "an answer that is not 2xx fails the action: `action.failed` with `data.status` the answer's status.",
        (
            Param("url", "text", "The URL.", True),
            Param("method", "enum", "HTTP method.", default="POST",
                  choices=HTTP_METHODS),
            Param("headers", "headers", "Request headers: name -> literal text, no templates. Write secrets "
                  "as `${VAR}`: the service puts its environment variable VAR there when it sends the "
                  "request, so the secret is never in the flow, the session or the logs "
                  "(`Authorization: \"Bearer ${CRM_TOKEN}\"`)."),
            Param("body", "mapping", "JSON body (values may be templates)."),
            Param("form", "mapping", "Form body, sent as application/x-www-form-urlencoded (values may be "
                  "templates); instead of `body`."),
            Param("timeout", "duration", "Give up after this long (at most the service's `http_timeout`)."),
            Param("as", "new_var", "Variable that receives the answer's body (decoded JSON, else text)."),
            Param("save", "expressions", "Variables set from the answer: name -> a bare expression that may "
                  "read `response` (`response.status`, `response.body`, `response.headers`) besides vars, "
                  "session, event and the roles, e.g. `tier: response.body.customer.tier`."),
        ),
    ),
)

ACTIONS: dict[str, ActionSpec] = {spec.name: spec for spec in ACTION_SPECS}
TEARDOWN_ACTIONS: frozenset[str] = frozenset(spec.name for spec in ACTION_SPECS if spec.teardown)

# Options every action item may carry next to its parameters: ``hangup: {call: agent, if: ..., on_error:
# continue}``. They are the engine's, never sent to a platform.
IF_OPTION, ON_ERROR_OPTION = "if", "on_error"
ACTION_OPTIONS: dict[str, str] = {
    IF_OPTION: "A bare expression, like `when`: the action runs only if it is true when its turn comes "
               "(earlier actions of the same list have run); false skips it, and the trace says so.",
    ON_ERROR_OPTION: "What a failure of this action does: `fail` (the default) skips the rest of the list "
                     "and raises `action.failed`; `continue` records the error in the trace and goes on "
                     "with the next action.",
}
ON_ERROR_CHOICES = ("fail", "continue")

EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec("call.received", "An inbound call arrived (it starts the session).",
              ("call", "call_id", "from", "to")),
    EventSpec("call.answered", "A call was answered (inbound after `answer`, outbound when picked up)."),
    EventSpec("call.finished", "A call ended after it was up; `reason` says who hung up.",
              ("call", "call_id", "reason")),
    EventSpec("call.failed", "A call ended without being answered (busy, no_answer, rejected, ...).",
              ("call", "call_id", "reason")),
    EventSpec("conference.created", "A conference was created.", ("conference", "conference_id")),
    EventSpec("conference.finished", "A conference ended.", ("conference", "conference_id", "reason")),
    EventSpec("participant.joining", "A call is being connected to a conference.",
              ("call", "call_id", "conference", "conference_id")),
    EventSpec("participant.joined", "A call joined a conference.",
              ("call", "call_id", "conference", "conference_id")),
    EventSpec("participant.join_failed", "A call could not join a conference (busy, no_answer, ...).",
              ("call", "call_id", "conference", "conference_id", "reason")),
    EventSpec("participant.left", "A call left a conference (hung up or kicked).",
              ("call", "call_id", "conference", "conference_id", "reason")),
    EventSpec("say.finished", "Text-to-speech finished (or was stopped).",
              ("call", "call_id", "conference", "reason")),
    EventSpec("play.finished", "Audio playback finished (or was stopped).",
              ("call", "call_id", "conference", "reason")),
    EventSpec("dtmf.captured", "Digits were collected; `reason` is timeout when none came.",
              ("call", "call_id", "digits", "reason")),
    EventSpec("recording.ready", "A recording is ready: a call's (`call`), or a conference's (`conference`, "
              "after `conference_record`).", ("call", "call_id", "conference", "conference_id", "data")),
    EventSpec("action.failed", "An action failed for good: `data.action` names it, `data.role` its call "
              "or conference role, `data.kind` the neutral error kind (not_found, rejected, unavailable, "
              "timeout, not_allowed, invalid), `data.status` the platform's HTTP status (or null), "
              "`data.error` the message.", ("call", "call_id", "reason", "data")),
)

EVENTS: dict[str, EventSpec] = {spec.name: spec for spec in EVENT_SPECS}

# Names an expression may use at top level besides the flow's roles.
EXPRESSION_GLOBALS: tuple[str, ...] = ("vars", "session", "event")
# What an ``http`` action's ``save`` expressions may read besides those (the answer, once it is in).
HTTP_RESPONSE = "response"
HTTP_RESPONSE_FIELDS: tuple[str, ...] = ("status", "body", "headers")
# ``${VAR}`` or ``${VAR:-default}``: a reference to an environment variable (the config, http headers).
ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
# Variables an http header may never carry: the service's own credentials and tokens.
HTTP_PROTECTED_ENV = ("INFOBIP_", "SINCH_", "FLOWENGINE_")
# An HTTP header name (RFC 9110 token).
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
# The inbound call is always bound to this role.
CALLER_ROLE = "caller"
# How a session starts (a flow's ``start``): on an inbound call (the default), or by dialling out when
# the API asks (``POST /api/calls``); then the dialled call is bound to the declared role (``as:``).
START_INBOUND, START_OUTBOUND = "inbound", "outbound"
OUTBOUND_ROLE = "callee"  # the dialled call's role when ``start: outbound`` names none
# What ``start: {outbound: {...}}`` takes: the dialled call's role, its caller id, ring timeout and
# whether the platform tells a person from an answering machine (the begin event's ``reason`` then says).
OUTBOUND_PARAMS: tuple[Param, ...] = (
    Param("as", "new_call", "Role name of the dialled call (default `callee`).", default=OUTBOUND_ROLE),
    Param("from", "text", "Caller id shown to the called party, unless the request gives one."),
    _TIMEOUT,
    _MACHINE,
)
# The events an outbound session begins on: the dialled call's answer, or its failure (``reason``).
OUTBOUND_BEGINS: frozenset[str] = frozenset({"call.answered", "call.failed", "call.finished"})

# Custom events, declared under the flow's ``events`` and delivered through the API
# (``POST /api/sessions/{id}/events``): dotted lower-case names outside the neutral events' namespaces,
# so a typo of a neutral event (``call.answerd``) is still an unknown event, not a custom one.
EVENT_NAMESPACES: tuple[str, ...] = tuple(sorted({spec.name.split(".")[0] for spec in EVENT_SPECS}))
CUSTOM_EVENT_PATTERN = (
    r"^(?!(?:" + "|".join(EVENT_NAMESPACES) + r")\.)[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$"
)

# Actions the engine carries out itself (``pure`` ones and ``http``): no provider ever sees them.
ENGINE_ACTIONS: frozenset[str] = frozenset({spec.name for spec in ACTION_SPECS if spec.pure} | {"http"})
# What a provider may be asked to do: everything the engine does not do itself.
PROVIDER_ACTIONS: frozenset[str] = frozenset(ACTIONS) - ENGINE_ACTIONS

# The keys ``Event.context()`` gives templates as ``event`` (runtime/events.py); ``event.x`` must be one.
EVENT_FIELDS: tuple[str, ...] = (
    "name", "call", "call_id", "conference", "conference_id", "reason", "digits", "data", "raw",
)
# What templates see as ``session`` (runtime/context.py) and as each role (``room.id``).
SESSION_FIELDS: tuple[str, ...] = ("id", "flow", "version", "state", "status", "created")
# ``state``: a call's ringing | dialing | up | ended, a conference's active | ended.
ROLE_FIELDS: tuple[str, ...] = ("id", "state")
# The trigger of a state's eventless transitions (``always``), where the trace and guards see an event name.
ALWAYS = "always"
# Eventless transitions taken in a row (without an event between) before the session is ended as failed:
# a guard chain that keeps firing is a loop nothing will stop.
ALWAYS_LIMIT = 100
# The actions that create a call on the platform: paced (``server.pacing``), machine detection on offer.
DIAL_ACTIONS: tuple[str, ...] = ("dial", "conference_dial")
# Outcomes that mean an attempt failed; a flow that dials should handle them (``unhandled-failure``).
FAILURE_EVENTS: frozenset[str] = frozenset({"call.failed", "participant.join_failed"})
# How an ``endpoint`` parameter may name its address besides a bare phone number.
ENDPOINT_KINDS: dict[str, str] = {
    "phone": "A phone number in international format, without `+` or `00`.",
    "sip": "A SIP URI, such as `sip:alice@example.com`.",
    "user": "A platform user (app/client) identity.",
    "webrtc": "A WebRTC identity registered with the platform.",
}

# Names as written in flows. Roles and variables are read in templates, so they are identifiers.
FLOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
STATE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TEMPLATE_PATTERN = r"^\s*\{\{[\s\S]*\}\}\s*$"  # a value that is exactly one {{ expression }}

_DURATION = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# The same shape as ``_DURATION`` in the ECMA-262 dialect JSON Schema patterns use (no ``(?P<name>``).
DURATION_PATTERN = r"^\d+(?:\.\d+)?(?:ms|s|m|h)$"


def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as ``500ms``, ``10s``, ``2m``; None if it is not one."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    return float(match["value"]) * _UNIT_SECONDS[match["unit"]]
