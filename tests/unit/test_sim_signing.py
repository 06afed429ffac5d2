"""Sinch request/callback signing against the reference test vector, and its verification."""

from __future__ import annotations

from flowengine.providers.sinch import signing

SECRET = "BeIukql3pTKJ8RGL5zo0DA=="
KEY = "669E367E-6BBA-48AB-AF15-266871C28135"
BODY = (
    b'{"event":"ace","callid":"822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257",'
    b'"timestamp":"2014-09-24T10:59:41Z","version":1}'
)
STAMP = "2014-09-24T10:59:41Z"
PATH = "/sinch/callback/ace"


def test_reference_vector() -> None:
    md5 = signing.content_md5(BODY)
    assert md5 == "REWF+X220L4/Gw1spXOU7g=="
    message = signing.string_to_sign("POST", md5, "application/json", STAMP, PATH)
    expected = "POST\nREWF+X220L4/Gw1spXOU7g==\napplication/json\nx-timestamp:2014-09-24T10:59:41Z\n"
    assert message == expected + "/sinch/callback/ace"
    assert signing.sign(SECRET, message) == "Tg6fMyo8mj9pYfWQ9ssbx3Tc1BNC87IEygAfLbJqZb4="


def test_empty_body_has_empty_md5() -> None:
    assert signing.content_md5(b"") == ""


def _headers(**overrides: str) -> dict[str, str]:
    headers = signing.signed_headers(
        KEY, SECRET, method="POST", path=PATH, body=BODY, content_type="application/json", timestamp=STAMP
    )
    return {**headers, **overrides}


def _verify(headers: dict[str, str], body: bytes = BODY, **kwargs: object) -> bool:
    return signing.verify(
        headers,
        application_key=KEY,
        application_secret=SECRET,
        method="POST",
        path=PATH,
        body=body,
        **kwargs,  # type: ignore[arg-type]
    )


def test_signed_headers_verify_and_carry_the_vector_signature() -> None:
    headers = _headers()
    assert headers["Authorization"] == f"Application {KEY}:Tg6fMyo8mj9pYfWQ9ssbx3Tc1BNC87IEygAfLbJqZb4="
    assert _verify(headers)
    # Header names are case-insensitive and the scheme may arrive in lower case.
    lower = {k.lower(): v for k, v in headers.items()}
    lower["authorization"] = lower["authorization"].replace("Application", "application")
    assert _verify(lower)


def test_tampering_fails() -> None:
    assert not _verify(_headers(), body=BODY + b" ")
    assert not _verify(_headers(**{"Content-Type": "application/json; charset=UTF-8"}))
    assert not _verify(_headers(**{"x-timestamp": "2014-09-24T10:59:42Z"}))
    assert not _verify({k: v for k, v in _headers().items() if k != "x-timestamp"})
    assert not _verify(
        _headers(Authorization=f"Application other-key:{_headers()['Authorization'].split(':')[1]}")
    )
    assert not _verify(_headers(Authorization="Bearer abc"))


def test_basic_is_accepted_unless_disallowed() -> None:
    basic = {"Authorization": signing.basic_header(KEY, SECRET)}
    assert _verify(basic)
    assert not _verify(basic, allow_basic=False)
    assert not _verify({"Authorization": signing.basic_header(KEY, "wrong")})
    assert signing.parse_authorization("Basic !!!") is None


def test_timestamp_skew_check_is_optional() -> None:
    sent = 1411556381.0  # 2014-09-24T10:59:41Z
    assert _verify(_headers(), max_skew=60, now=sent + 30)
    assert not _verify(_headers(), max_skew=60, now=sent + 120)
