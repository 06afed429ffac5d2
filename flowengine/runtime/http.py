"""The ``http`` action on the engine's side: its parameters -> an ``HttpRequest``, the answer -> variables.

Headers are taken as the flow wrote them, never rendered: a value is literal text whose ``${VAR}`` the
service's client fills from its environment when it sends, so what the engine keeps (the session, its
outbox, the trace) holds the reference, never the secret. ``as:`` binds the answer's body; each
``save`` entry is a bare expression evaluated once the answer is in, with ``response`` (status, body,
headers) readable beside the usual names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError

from flowengine.errors import ExpressionError
from flowengine.flow.expressions import compile_expression
from flowengine.flow.vocabulary import HTTP_RESPONSE
from flowengine.runtime.binding import seconds
from flowengine.runtime.ports import HttpAnswer, HttpRequest
from flowengine.runtime.session import Session

DEFAULT_METHOD = "POST"


def http_request(params: Mapping[str, Any], written: Mapping[str, Any]) -> HttpRequest:
    """The request for rendered ``params``; ``written`` are the parameters as the flow wrote them (the
    headers come from there)."""
    url = params.get("url")
    if not isinstance(url, str):
        raise ExpressionError(f"http: url must be text, not {type(url).__name__}")
    form = params.get("form")
    if form is not None and params.get("body") is not None:
        raise ExpressionError("http: give a JSON `body` or a `form`, not both")
    if form is not None and not isinstance(form, Mapping):
        raise ExpressionError("http: form must be a mapping of field -> value")
    return HttpRequest(
        method=str(params.get("method") or DEFAULT_METHOD).upper(),
        url=url,
        headers=_headers(written.get("headers")),
        json=params.get("body"),
        form=None if form is None else {str(k): _field(v) for k, v in form.items()},
        timeout=seconds(params.get("timeout")),
    )


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ExpressionError("http: headers must map names to text")
    return {str(name): value for name, value in raw.items()}


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def response_view(answer: HttpAnswer) -> dict[str, Any]:
    """What ``save`` expressions read as ``response``."""
    return {"status": answer.status, "body": answer.body, "headers": dict(answer.headers)}


def bind_answer(
    written: Mapping[str, Any], answer: HttpAnswer, context: Mapping[str, Any], session: Session
) -> str | None:
    """Apply ``as:`` and ``save`` (``written``: the parameters as the flow wrote them) to the session;
    the trace's detail (the status)."""
    name = written.get("as")
    if isinstance(name, str) and name:
        body = answer.body
        session.vars[name] = dict(body) if isinstance(body, Mapping) else body
    save = written.get("save")
    if isinstance(save, Mapping) and save:
        scope = {**context, HTTP_RESPONSE: response_view(answer)}
        # All are evaluated before any is stored: one that fails leaves the variables as they were.
        values = {str(var): _evaluate(str(var), source, scope) for var, source in save.items()}
        session.vars.update(values)
    return str(answer.status)


def _evaluate(var: str, source: Any, scope: Mapping[str, Any]) -> Any:
    if not isinstance(source, str):
        raise ExpressionError(f"http: save.{var} must be an expression (text), not {source!r}")
    try:
        compiled = compile_expression(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"http: save.{var}: invalid expression: {exc.message}") from None
    try:
        return compiled.render(scope)
    except ExpressionError as exc:
        raise type(exc)(f"http: save.{var}: {exc}") from exc
