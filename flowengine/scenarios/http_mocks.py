"""``http:`` mocks in a scenario: what the flow's ``http`` actions are answered with, offline.

```yaml
scenarios:
  confirmed:
    http:
      - {method: POST, url: "https://crm.example.com/appointments/*", status: 200, body: {ok: true}}
      - {url: "https://crm.example.com/slow", delay: 30s}          # any method; answered after 30 s
```

A request is answered by the first mock whose method (any, when left out) and URL match; ``*`` in a mock's
URL stands for any run of characters, nothing else is special. The mock answers ``status`` (200) with
``body`` (JSON, or text) after ``delay`` (virtual time); a delay past the action's timeout is a timeout.
A request no mock matches goes to the real host only when that host is on the run's ``--http-allow``
list (through the service's own client, every check included); otherwise the action fails, saying
which request was not mocked. Every request is recorded (``calls``), and a failure a mock answered says
``(mock)`` so the runner can tell it from one nobody meant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowengine.errors import ProviderError
from flowengine.flow.vocabulary import HTTP_METHODS
from flowengine.redaction import redact_json, redact_url
from flowengine.runtime.clock import Clock
from flowengine.runtime.ports import HttpAnswer, HttpClient, HttpRequest
from flowengine.simulator.parties import parse_duration

MOCKED = "(mock)"  # ends the message of a failure a mock answered: meant by the scenario
_FIELDS = ("method", "url", "status", "body", "delay")
METHODS = HTTP_METHODS


@dataclass(frozen=True)
class HttpMock:
    url: str  # exact, or with * standing for any run of characters
    method: str | None = None  # None: any
    status: int = 200
    body: Any = None
    delay: float = 0.0

    def matches(self, method: str, url: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return url_pattern(self.url).fullmatch(url) is not None

    def describe(self) -> str:
        return f"{self.method or '*'} {redact_url(self.url)}"


def url_pattern(url: str) -> re.Pattern[str]:
    """A mock's (or an expectation's) URL as a pattern: ``*`` stands for any run of characters."""
    return re.compile(".*".join(re.escape(part) for part in url.split("*")), re.DOTALL)


def parse_mocks(raw: Any) -> tuple[HttpMock, ...]:
    """The scenario's ``http:`` list; ValueError says which entry is wrong and how."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("http: a list of mocks, each {method?, url, status?, body?, delay?}")
    return tuple(_mock(item, index) for index, item in enumerate(raw))


def check_request_match(
    item: Any, where: str, what: str, fields: Sequence[str]
) -> tuple[Mapping[str, Any], str | None]:
    """An entry that matches requests (a mock, an expected request): a mapping of ``fields`` with at least
    a url, and a known method if it names one; returned with that method in capitals (None: any).
    ``what`` names the entry in the error."""
    if not isinstance(item, Mapping) or not isinstance(item.get("url"), str) or not item["url"]:
        raise ValueError(f"{where}: {what} is a mapping with at least a url")
    unknown = sorted(set(item) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(fields)}")
    method = item.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in METHODS):
        raise ValueError(f"{where}.method: one of {', '.join(METHODS)}")
    return item, method.upper() if method else None


def _mock(raw: Any, index: int) -> HttpMock:
    where = f"http[{index}]"
    item, method = check_request_match(raw, where, "a mock", _FIELDS)
    status = item.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"{where}.status: an HTTP status 100-599, got {status!r}")
    delay = parse_duration(item.get("delay", 0), f"{where}.delay")
    return HttpMock(item["url"], method, status, item.get("body"), delay)


@dataclass
class HttpCall:
    """One request an http action made during the scenario, and what became of it. ``headers`` are as
    the flow wrote them (no secret filled in); ``sent_url`` is the URL in full, for expectations only."""

    method: str
    url: str  # redacted
    source: str  # mock | real | unmocked
    at: float
    status: int | None = None
    error: str | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sent_url: str = ""

    @classmethod
    def of(cls, request: HttpRequest, source: str, at: float, **fields: Any) -> HttpCall:
        return cls(request.method, redact_url(request.url), source, at, json=request.json, form=request.form,
                   headers=dict(request.headers), sent_url=request.url, **fields)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "source": self.source, "at": self.at,
                "status": self.status, "error": self.error, "json": redact_json(self.json),
                "form": redact_json(self.form)}


@dataclass
class MockedHttp:
    """The ``HttpClient`` of a scenario run: mocks first, then the real client for allowed hosts."""

    mocks: Sequence[HttpMock]
    clock: Clock
    real: HttpClient | None = None  # the service's client: reached for hosts on the run's http_allow
    allowed: Callable[[str], bool] | None = None  # whether ``real`` may be asked for a URL (its allow-list)
    timeout: float = 10.0  # the service's http_timeout
    calls: list[HttpCall] = field(default_factory=list)

    async def request(self, request: HttpRequest) -> HttpAnswer:
        shown = redact_url(request.url)
        mock = next((m for m in self.mocks if m.matches(request.method, request.url)), None)
        if mock is not None:
            return await self._mocked(mock, request, shown)
        if self.real is not None and self.allowed is not None and self.allowed(request.url):
            call = HttpCall.of(request, "real", self.clock.now())
            self.calls.append(call)
            try:
                answer = await self.real.request(request)
            except ProviderError as exc:
                call.status, call.error = exc.status, str(exc)
                raise
            call.status = answer.status
            return answer
        message = (f"http: {request.method} {shown} matches no http mock of the scenario (add one under its "
                   "`http:`, or let the request through with --http-allow)")
        self.calls.append(HttpCall.of(request, "unmocked", self.clock.now(), error=message))
        raise ProviderError(message)

    async def _mocked(self, mock: HttpMock, request: HttpRequest, shown: str) -> HttpAnswer:
        call = HttpCall.of(request, "mock", self.clock.now(), status=mock.status)
        self.calls.append(call)
        limit = self.timeout if request.timeout is None else min(request.timeout, self.timeout)
        if mock.delay > limit:
            await self.clock.sleep(limit)
            call.status = None
            call.error = f"http: {request.method} {shown}: no answer within {limit:g} s {MOCKED}"
            raise ProviderError(call.error, retryable=True, outcome_unknown=True)
        if mock.delay > 0:
            await self.clock.sleep(mock.delay)
        if not 200 <= mock.status < 300:
            call.error = f"http: {request.method} {shown} answered {mock.status} {MOCKED}"
            raise ProviderError(call.error, status=mock.status, retryable=mock.status >= 500)
        headers = {"content-type": "text/plain" if isinstance(mock.body, str) else "application/json"}
        return HttpAnswer(mock.status, mock.body, headers)
