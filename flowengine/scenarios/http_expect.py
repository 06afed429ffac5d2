"""What a scenario expects of its flow's ``http`` requests: ``expect: {http: [...]}``.

```yaml
expect:
  http:
    - {method: POST, url: "https://crm.example.com/*", json: {result: confirmed}}
```

The list is every request the flow made, in order (``[]``: none at all). An entry matches its request
when the method (any, when left out) and the URL (``*`` stands for any run of characters) match, and its
``json``, ``form`` and ``headers`` are each a subset of the request's: every key named has that value,
mappings compared the same way at any depth, anything else (lists included) compared whole. Header names
are compared in any case, their values as the flow wrote them (``Bearer ${CRM_TOKEN}``: a secret from the
environment is never filled in here). A failure names the request (its number, method and URL) and what
differed in it, by path (``json.result: was "cancelled", expected "confirmed"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowengine.redaction import redact_url
from flowengine.scenarios.http_mocks import HttpCall, check_request_match, url_pattern

_FIELDS = ("method", "url", "json", "form", "headers")
_BODIES = ("json", "form", "headers")


@dataclass(frozen=True)
class HttpExpectation:
    url: str
    method: str | None = None  # None: any
    parts: Mapping[str, Any] = field(default_factory=dict)  # json / form / headers: the subsets named

    def describe(self) -> str:
        return f"{self.method or '*'} {redact_url(self.url)}"


def parse_expected_http(raw: Any) -> tuple[HttpExpectation, ...] | None:
    """``expect.http`` (None when left out); ValueError says which entry is wrong and how."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError("expect.http: a list of the requests expected, in order, each {method?, url, "
                         "json?, form?, headers?}")
    return tuple(_entry(item, index) for index, item in enumerate(raw))


def _entry(raw: Any, index: int) -> HttpExpectation:
    where = f"expect.http[{index}]"
    item, method = check_request_match(raw, where, "an expected request", _FIELDS)
    for name in ("form", "headers"):
        if name in item and not isinstance(item[name], Mapping):
            raise ValueError(f"{where}.{name}: a mapping of the {name} fields expected")
    parts = {name: item[name] for name in _BODIES if name in item}
    return HttpExpectation(item["url"], method, parts)


def check_http(expected: Sequence[HttpExpectation], calls: Sequence[HttpCall]) -> list[str]:
    """What differs between the requests expected and those made: one line per request that differs,
    and one for requests missing or more than expected."""
    problems = []
    for number, (want, call) in enumerate(zip(expected, calls, strict=False), start=1):
        differences = list(_differences(want, call))
        if differences:
            problems.append(f"http request {number} of {len(calls)} ({call.method} {call.url}) is not "
                            f"expect.http[{number - 1}] ({want.describe()}): {'; '.join(differences)}")
    if len(calls) < len(expected):
        missing = ", ".join(want.describe() for want in expected[len(calls):])
        problems.append(f"the flow made {_requests(len(calls))}, expect.http lists {len(expected)}: "
                        f"never made: {missing}")
    elif len(calls) > len(expected):
        extra = ", ".join(f"{call.method} {call.url}" for call in calls[len(expected):])
        problems.append(f"the flow made {_requests(len(calls))}, expect.http lists {len(expected)}: "
                        f"not expected: {extra}")
    return problems


def _differences(want: HttpExpectation, call: HttpCall) -> Iterator[str]:
    if want.method is not None and want.method != call.method.upper():
        yield f"method was {call.method}, expected {want.method}"
    if url_pattern(want.url).fullmatch(call.sent_url) is None:
        yield f"url was {call.url}, expected {redact_url(want.url)}"
    for name, subset in want.parts.items():
        actual: Any = getattr(call, name)
        if name == "headers":
            actual = {key.lower(): value for key, value in (actual or {}).items()}
            subset = {str(key).lower(): value for key, value in subset.items()}
        if actual is None:
            yield f"{name}: the request had none, expected {_show(subset)}"
        else:
            yield from _subset(subset, actual, name)


def _subset(want: Any, actual: Any, path: str) -> Iterator[str]:
    if isinstance(want, Mapping):
        if not isinstance(actual, Mapping):
            yield f"{path}: was {_show(actual)}, expected an object with {', '.join(map(str, want))}"
            return
        for key, value in want.items():
            if key in actual:
                yield from _subset(value, actual[key], f"{path}.{key}")
            else:
                yield f"{path}.{key}: missing (it has {', '.join(map(str, actual)) or 'nothing'})"
    elif not _same(want, actual):
        yield f"{path}: was {_show(actual)}, expected {_show(want)}"


def _same(want: Any, actual: Any) -> bool:
    """Equal as JSON values are: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(want, bool) or isinstance(actual, bool):
        return type(want) is type(actual) and want == actual
    if isinstance(want, list) and isinstance(actual, list):
        return len(want) == len(actual) and all(_same(w, a) for w, a in zip(want, actual, strict=True))
    return bool(want == actual)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _requests(count: int) -> str:
    return f"{count} http request{'' if count == 1 else 's'}"
