"""What the API does with bodies and cursors it cannot use: a clear 4xx, never a 500, and a body
too large is refused before it is read whole."""

import base64
import io

import pytest

from integrations.models import ApiKey
from integrations.tests.conftest import bearer

pytestmark = pytest.mark.django_db

WRITES = ["/api/v1/calls/", "/api/v1/messages/", "/api/v1/permission-requests/", "/api/v1/widget/tokens/"]
LISTS = ["/api/v1/contacts/", "/api/v1/calls/", "/api/v1/messages/", "/api/v1/charges/"]
ALL_SCOPES = [ApiKey.Scope.READ, ApiKey.Scope.CALLS_WRITE, ApiKey.Scope.MESSAGES_WRITE, ApiKey.Scope.ADMIN]


class CountingStream(io.BytesIO):
    """A request body that remembers how much of it was read."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


@pytest.mark.parametrize("path", WRITES)
def test_api_body_beyond_the_limit_is_413_before_it_is_parsed(client, floor, make_key, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"to": "' + b"9" * 5000 + b'"}'

    response = client.post(path, body, content_type="application/json", **bearer(make_key(*ALL_SCOPES)))

    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "detail": "The request body is larger than the limit of 1000 bytes.",
    }


def test_api_body_without_a_length_is_read_no_further_than_the_limit(settings):
    from rest_framework.test import APIRequestFactory

    from core.parsers import BoundedJSONParser, RequestTooLarge

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = CountingStream(b"[" + b"1," * 1_000_000 + b"1]")
    request = APIRequestFactory().post("/api/v1/calls/")
    request.META.pop("CONTENT_LENGTH", None)

    with pytest.raises(RequestTooLarge):
        BoundedJSONParser().parse(stream, parser_context={"request": request})

    assert stream.taken == 1001


@pytest.mark.parametrize("path", WRITES)
def test_api_body_nested_too_deeply_is_400(client, floor, make_key, path):
    body = "[" * 5000 + "]" * 5000

    response = client.post(path, body, content_type="application/json", **bearer(make_key(*ALL_SCOPES)))

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the body is nested too deeply."}


def cursor_of(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of("p=' OR 1=1--"),
        cursor_of("o=1&r=0&p=2026-02-30 10:00:00"),
        cursor_of("o=x"),
        "%%%",
        "bm90IGEgY3Vyc29y",
    ],
    ids=["injection", "no-such-date", "bad-offset", "not-base64", "not-a-cursor"],
)
def test_api_cursor_not_written_by_the_api_is_400(client, floor, make_key, path, cursor):
    response = client.get(path, {"cursor": cursor}, **bearer(make_key(*ALL_SCOPES)))

    assert response.status_code == 400
    assert response.json() == {
        "cursor": ["This cursor is not valid: take it from a page's `next` or `previous` link."]
    }


def test_api_cursor_from_a_next_link_still_pages(client, floor, make_key):
    from calls.tests.factories import CallFactory

    ours = floor[0]
    more = [CallFactory(business_number=ours.number, contact=ours.contact) for _ in range(2)]
    token = make_key(ApiKey.Scope.READ)

    first = client.get("/api/v1/calls/?page_size=2", **bearer(token)).json()
    second = client.get(first["next"], **bearer(token))

    assert second.status_code == 200
    assert [call["id"] for call in first["results"] + second.json()["results"]] == [
        more[1].pk, more[0].pk, ours.call.pk,
    ]  # fmt: skip


def test_api_moment_no_clock_can_hold_is_400_not_500(client, floor, make_key):
    response = client.get(
        "/api/v1/kpis/",
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-01T00:00:00+01:01"},
        **bearer(make_key(*ALL_SCOPES)),
    )

    assert response.status_code == 400
    assert response.json() == {"until": ["Datetime value out of range."]}
