"""The CRM's API: who may read and write what (every scope and role against every endpoint), one
business never seeing nor touching another's data, keys revoked at once, filters, pages, masked text
and recording links."""

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.core.management import call_command
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory
from calls.models import Call
from compliance.models import AuditEvent, CallPermission
from integrations.api.calls import recording_link_token
from integrations.models import ApiKey
from integrations.services import api_key_revoke
from integrations.tests.conftest import bearer, supervisor_user
from messaging.models import Contact, Template
from messaging.services import windows_customer_wrote

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "contacts": "/api/v1/contacts/",
    "contact": "/api/v1/contacts/{contact}/",
    "calls": "/api/v1/calls/",
    "call": "/api/v1/calls/{call}/",
    "transcript": "/api/v1/calls/{call}/transcript/",
    "recording": "/api/v1/calls/{call}/recording/",
    "can-call": "/api/v1/compliance/can-call/?number={number}&contact={contact}",
    "agents": "/api/v1/agents/",
    "messages": "/api/v1/messages/",
}
LISTS = {"contacts", "calls", "agents", "messages"}


def url_of(endpoint: str, business) -> str:
    return ENDPOINTS[endpoint].format(
        contact=business.contact.pk, call=business.call.pk, number=business.number.pk
    )


def credentials(who: str, client, floor, make_key) -> dict:
    """Log `client` in, or give the headers, as `who` would call."""
    ours, theirs = floor
    if who == "anonymous":
        return {}
    if who == "malformed key":
        return bearer("sbk_nothing")
    if who == "revoked key":
        token = make_key(ApiKey.Scope.READ)
        api_key_revoke(key_id=ApiKey.objects.get(prefix=token.split("_")[1]).pk)
        return bearer(token)
    if who == "other business's key":  # may do anything, with its own numbers
        return bearer(make_key(ApiKey.Scope.ADMIN, business_index=1))
    if who.endswith("key"):
        return bearer(make_key(who.removesuffix(" key")))
    client.force_login(
        {"our agent": ours.agent.user, "their agent": theirs.agent.user, "supervisor": None}[who]
        or supervisor_user()
    )
    return {}


EXPECTED = {  # who: status for every endpoint (details of another business: 404, like a missing row)
    "anonymous": 401,
    "malformed key": 401,
    "revoked key": 401,
    "calls:write key": 403,
    "messages:write key": 403,
    "read key": 200,
    "admin key": 200,
    "our agent": 200,
    "supervisor": 200,
    "other business's key": "404 on details",
    "their agent": "404 on details",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("who", EXPECTED)
def test_each_scope_and_role_against_each_endpoint(client, floor, make_key, endpoint, who):
    headers = credentials(who, client, floor, make_key)

    response = client.get(url_of(endpoint, floor[0]), **headers)

    expected = EXPECTED[who]
    if expected == "404 on details":
        expected = 200 if endpoint in LISTS else 404
    assert response.status_code == expected, response.content


WRITES = {  # endpoint: (path, the scope it needs, what a caller who may make it gets)
    "place call": ("/api/v1/calls/", "calls:write", 201),
    # The customer said yes already: the rule answers, before WhatsApp would be asked.
    "permission request": ("/api/v1/permission-requests/", "calls:write", 409),
    "message": ("/api/v1/messages/", "messages:write", 201),
}
WRITE_EXPECTED = {  # who: status for every write ("allowed": the endpoint's own answer)
    "anonymous": 401,
    "malformed key": 401,
    "revoked key": 401,
    "read key": 403,
    "calls:write key": "allowed with its scope",
    "messages:write key": "allowed with its scope",
    "admin key": "allowed",
    "our agent": "allowed",
    "supervisor": "allowed",
    "other business's key": 404,  # our number is not one of its numbers
    "their agent": 404,
}


def write_body(endpoint: str, business) -> dict:
    number, to = business.number.pk, f"+{business.contact.wa_id}"
    return {
        "place call": {"business_number_id": number, "to": to, "agent_id": business.agent.pk},
        "permission request": {"business_number_id": number, "to": to},
        "message": {"business_number_id": number, "to": to, "type": "template",
                    "template": {"name": "order_update", "language": "en"}},
    }[endpoint]  # fmt: skip


def make_writable(business) -> None:
    """Every write of the matrix may go through for `business`: the customer gave permission to be
    called, the agent is free, the account has an approved template."""
    CallPermission.objects.create(
        business_number=business.number,
        contact=business.contact,
        status="permanent",
        granted_at=timezone.now(),
    )
    Agent.objects.filter(pk=business.agent.pk).update(status=Agent.Status.AVAILABLE)
    Template.objects.get_or_create(
        waba_id=business.number.waba_id, name="order_update", language="en",
        defaults={"category": "utility", "status": Template.Status.APPROVED},
    )  # fmt: skip


@pytest.mark.parametrize("endpoint", WRITES)
@pytest.mark.parametrize("who", WRITE_EXPECTED)
def test_each_scope_and_role_against_each_write(client, floor, make_key, endpoint, who):
    make_writable(floor[0])
    headers = credentials(who, client, floor, make_key)
    path, scope, allowed = WRITES[endpoint]

    response = client.post(path, write_body(endpoint, floor[0]), content_type="application/json", **headers)

    expected = WRITE_EXPECTED[who]
    if expected == "allowed with its scope":
        expected = allowed if who == f"{scope} key" else 403
    elif expected == "allowed":
        expected = allowed
    assert response.status_code == expected, response.content


BILLING = {
    "charges": "/api/v1/charges/",
    "spend report": "/api/v1/reports/spend/",
    "call cost report": "/api/v1/reports/calls/",
}
BILLING_EXPECTED = {  # who: status (users need the permission to view charges, which none of these has)
    "anonymous": 401,
    "malformed key": 401,
    "revoked key": 401,
    "read key": 403,
    "calls:write key": 403,
    "messages:write key": 403,
    "admin key": 200,
    "other business's key": 200,  # its own numbers' charges
    "our agent": 403,
    "their agent": 403,
    "supervisor": 403,
}


@pytest.mark.parametrize("endpoint", BILLING)
@pytest.mark.parametrize("who", BILLING_EXPECTED)
def test_each_scope_and_role_against_each_billing_endpoint(client, floor, make_key, endpoint, who):
    headers = credentials(who, client, floor, make_key)

    response = client.get(BILLING[endpoint], **headers)

    assert response.status_code == BILLING_EXPECTED[who], response.content


@pytest.mark.parametrize("endpoint", WRITES)
def test_a_key_revoked_after_writing_can_write_no_more(client, floor, make_key, endpoint):
    make_writable(floor[0])
    path, scope, allowed = WRITES[endpoint]
    token = make_key(scope)
    before = client.post(
        path, write_body(endpoint, floor[0]), content_type="application/json", **bearer(token)
    )

    api_key_revoke(key_id=ApiKey.objects.get().pk)
    after = client.post(
        path, write_body(endpoint, floor[0]), content_type="application/json", **bearer(token)
    )

    assert (before.status_code, after.status_code) == (allowed, 401)


@pytest.mark.parametrize("endpoint", sorted(LISTS))
def test_a_key_of_one_business_never_lists_anothers_rows(client, floor, make_key, endpoint):
    ours, theirs = floor

    listed = client.get(ENDPOINTS[endpoint], **bearer(make_key(ApiKey.Scope.READ))).json()

    rows = listed["results"] if isinstance(listed, dict) else listed
    ids = {row["id"] for row in rows}
    their_ids = {"contacts": theirs.contact.pk, "calls": theirs.call.pk, "agents": theirs.agent.pk,
                 "messages": theirs.message.pk}[endpoint]  # fmt: skip
    our_ids = {"contacts": ours.contact.pk, "calls": ours.call.pk, "agents": ours.agent.pk,
               "messages": ours.message.pk}[endpoint]  # fmt: skip
    assert ids == {our_ids}
    assert their_ids not in ids


def test_a_revoked_key_fails_at_once(client, floor, make_key):
    token = make_key(ApiKey.Scope.READ)
    before = client.get("/api/v1/calls/", **bearer(token))

    api_key_revoke(key_id=ApiKey.objects.get().pk)
    after = client.get("/api/v1/calls/", **bearer(token))

    assert (before.status_code, after.status_code) == (200, 401)


def test_a_key_is_stored_hashed_and_notes_its_last_use(client, floor, make_key):
    token = make_key(ApiKey.Scope.READ)
    key = ApiKey.objects.get()
    assert token not in (key.secret_hash, key.prefix) and key.last_used_at is None

    client.get("/api/v1/agents/", **bearer(token))

    key.refresh_from_db()
    assert key.last_used_at is not None
    assert len(key.secret_hash) == 64 and token.startswith(f"sbk_{key.prefix}_")


def test_a_key_beyond_its_rate_is_told_to_wait(client, floor, make_key):
    token = make_key(ApiKey.Scope.READ, rate=3)

    statuses = [client.get("/api/v1/agents/", **bearer(token)).status_code for _ in range(4)]
    other = client.get("/api/v1/agents/", **bearer(make_key(ApiKey.Scope.READ, rate=3)))

    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200  # each key has its own count


def test_text_is_masked_unless_the_key_has_the_admin_scope(client, floor, make_key):
    call = floor[0].call

    masked = client.get(f"/api/v1/calls/{call.pk}/transcript/", **bearer(make_key(ApiKey.Scope.READ))).json()
    raw = client.get(f"/api/v1/calls/{call.pk}/transcript/", **bearer(make_key(ApiKey.Scope.ADMIN))).json()
    summary = client.get(f"/api/v1/calls/{call.pk}/", **bearer(make_key(ApiKey.Scope.READ))).json()["summary"]

    assert masked["segments"][0]["text"] == "My card is [card], thanks"
    assert raw["segments"][0]["text"] == "My card is 4111 1111 1111 1111, thanks"
    assert summary["paragraph"] == "Paid with [card]. My card is [card], thanks"
    assert (summary["intent"], summary["outcome"], summary["sentiment"]) == (
        "billing",
        "resolved",
        "positive",
    )


def test_a_call_nobody_answered_has_no_sentiment_through_the_api(client, floor, make_key, tmp_path):
    from calls.models import Call
    from calls.tests.factories import CallFactory
    from recordings.models import Transcript
    from recordings.services import call_summarise
    from recordings.tests.test_services import store

    ours = floor[0]
    left = CallFactory(
        business_number=ours.number, contact=ours.contact, status=Call.Status.ENDED,
        end_reason=Call.EndReason.ABANDONED, talk_seconds=None,
    )  # fmt: skip
    Transcript.objects.create(
        call=left, recording=store(left, tmp_path, "left.wav"), text="", model="tiny.en", seconds_taken=0.1,
        segments=[{"start_s": 0, "end_s": 3, "speaker": "customer", "text": "Lovely music, great!"}],
    )  # fmt: skip
    call_summarise(call_id=left.pk)
    token = make_key(ApiKey.Scope.READ)

    summary = client.get(f"/api/v1/calls/{left.pk}/", **bearer(token)).json()["summary"]
    positive = client.get("/api/v1/calls/?sentiment=positive", **bearer(token)).json()

    assert (summary["intent"], summary["outcome"], summary["sentiment"], summary["sentiment_score"]) == (
        None,
        "no_conversation",
        None,
        None,
    )
    assert [call["id"] for call in positive["results"]] == [ours.call.pk]


def test_calls_are_filtered_and_paged_newest_first(client, floor, make_key):
    from calls.tests.factories import CallFactory

    ours = floor[0]
    more = [
        CallFactory(business_number=ours.number, contact=ours.contact, direction="outbound") for _ in range(3)
    ]
    token = make_key(ApiKey.Scope.READ)

    outbound = client.get("/api/v1/calls/?direction=outbound&page_size=2", **bearer(token)).json()
    rest = client.get(outbound["next"], **bearer(token)).json()
    positive = client.get("/api/v1/calls/?sentiment=positive", **bearer(token)).json()
    refused = client.get("/api/v1/calls/?since=yesterday&direction=sideways", **bearer(token))

    assert [call["id"] for call in outbound["results"] + rest["results"]] == [
        call.pk for call in reversed(more)
    ]
    assert rest["next"] is None
    assert [call["id"] for call in positive["results"]] == [ours.call.pk]
    assert refused.status_code == 400
    assert set(refused.json()) == {"since", "direction"}


def test_a_filter_given_twice_is_refused_not_read_as_its_last_value(client, floor, make_key):
    token = make_key(ApiKey.Scope.READ)

    twice = client.get(f"/api/v1/messages/?contact=false&contact={floor[0].contact.pk}", **bearer(token))
    once = client.get(f"/api/v1/messages/?contact={floor[0].contact.pk}", **bearer(token))

    assert twice.status_code == 400
    assert set(twice.json()) == {"contact"}
    assert once.status_code == 200


def test_a_recording_link_downloads_the_audio_for_five_minutes_only(client, floor, make_key, monkeypatch):
    call = floor[0].call
    link = client.get(f"/api/v1/calls/{call.pk}/recording/", **bearer(make_key(ApiKey.Scope.READ))).json()
    path = link["url"].removeprefix("http://testserver")
    now = time.time()
    monkeypatch.setattr(signing.time, "time", lambda: now - 301)
    old_link = recording_link_token(recording_id=call.recording.pk, key_id=None)
    monkeypatch.undo()

    heard = client.get(path)
    forged = client.get(path[:-3] + "xyz/")
    expired = client.get(f"/api/v1/recordings/{old_link}/")

    assert heard.status_code == 200 and heard["Content-Type"] == link["media_type"] == "audio/wav"
    assert b"".join(heard.streaming_content)[:4] == b"RIFF"  # a recording of an earlier version
    assert forged.status_code == 404
    assert expired.status_code == 404


def test_a_recording_link_a_key_asked_for_ends_with_the_key_one_a_user_asked_for_does_not(
    client, floor, make_key
):
    call = floor[0].call
    token = make_key(ApiKey.Scope.READ)
    by_key = client.get(f"/api/v1/calls/{call.pk}/recording/", **bearer(token)).json()["url"]
    client.force_login(supervisor_user())
    by_user = client.get(f"/api/v1/calls/{call.pk}/recording/").json()["url"]
    client.logout()  # the link is the credential
    heard_before = client.get(by_key.removeprefix("http://testserver"))

    api_key_revoke(key_id=ApiKey.objects.get(prefix=token.split("_")[1]).pk)
    by_key_after = client.get(by_key.removeprefix("http://testserver"))
    by_user_after = client.get(by_user.removeprefix("http://testserver"))

    assert heard_before.status_code == 200
    assert by_key_after.status_code == 404
    assert by_user_after.status_code == 200 and by_user_after["Content-Type"] == "audio/wav"


def test_can_call_says_why_not_and_offers_the_fallback(client, floor, make_key):
    ours = floor[0]

    decision = client.get(
        f"/api/v1/compliance/can-call/?number={ours.number.pk}&contact={ours.contact.pk}",
        **bearer(make_key(ApiKey.Scope.READ)),
    ).json()

    assert decision["allowed"] is False
    assert "no_permission" in {refusal["code"] for refusal in decision["refusals"]}
    assert decision["fallback"]["kind"] in {"permission_request", "call_us_button", "template"}


def can_call(client, business, token: str) -> dict:
    answer = client.get(
        f"/api/v1/compliance/can-call/?number={business.number.pk}&contact={business.contact.pk}",
        **bearer(token),
    )
    assert answer.status_code == 200
    return answer.json()


def test_can_call_after_a_decline_offers_the_call_button_until_the_customer_writes(client, floor, make_key):
    ours, token = floor[0], make_key(ApiKey.Scope.READ)
    declined_at = timezone.now() - timedelta(hours=30)
    permission = CallPermission.objects.create(
        business_number=ours.number, contact=ours.contact, status=CallPermission.Status.REJECTED,
        status_changed_at=declined_at,
    )  # fmt: skip
    AuditEvent.objects.create(permission=permission, kind=AuditEvent.Kind.REJECTED, at=declined_at)
    silent = can_call(client, ours, token)

    windows_customer_wrote(
        business_number_id=ours.number.pk, contact_ids=[ours.contact.pk], at=declined_at + timedelta(hours=1)
    )
    wrote = can_call(client, ours, token)

    assert (silent["allowed"], silent["fallback"]["kind"]) == (False, "call_button")
    assert "has not written or called since" in silent["fallback"]["reason"]
    assert wrote["fallback"]["kind"] == "permission_request"
    assert "has written or called since" in wrote["fallback"]["reason"]


def test_can_call_warns_before_the_unanswered_call_that_revokes(client, floor, make_key):
    ours, now = floor[0], timezone.now()
    CallPermission.objects.create(
        business_number=ours.number, contact=ours.contact, status=CallPermission.Status.TEMPORARY,
        granted_at=now, status_changed_at=now, consecutive_unanswered=3,
    )  # fmt: skip

    decision = can_call(client, ours, make_key(ApiKey.Scope.READ))

    assert (decision["allowed"], decision["warnings"]) == (
        True,
        [
            {
                "code": "last_unanswered_before_revocation",
                "text": "One more unanswered call revokes the customer's permission "
                "(Meta: 4 unanswered in a row).",
            }
        ],
    )


def test_can_call_says_a_permanent_permission_allows_it(client, floor, make_key):
    ours, granted_at = floor[0], datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    CallPermission.objects.create(
        business_number=ours.number, contact=ours.contact, status=CallPermission.Status.PERMANENT,
        granted_at=granted_at, status_changed_at=granted_at,
    )  # fmt: skip

    decision = can_call(client, ours, make_key(ApiKey.Scope.READ))

    assert (decision["allowed"], decision["warnings"], decision["allowed_because"]) == (
        True,
        [],
        "The customer granted permanent permission on 2026-03-02; the brief treats permissions as not "
        "permanent: review it.",
    )


def test_can_call_refuses_a_landline(client, floor, make_key):
    ours, now = floor[0], timezone.now()
    Contact.objects.filter(pk=ours.contact.pk).update(wa_id="442079460123")
    CallPermission.objects.create(
        business_number=ours.number, contact=ours.contact, status=CallPermission.Status.PERMANENT,
        granted_at=now, status_changed_at=now,
    )  # fmt: skip

    decision = can_call(client, ours, make_key(ApiKey.Scope.READ))

    assert (decision["allowed"], decision["allowed_because"]) == (False, "")
    assert decision["refusals"] == [
        {
            "code": "not_mobile",
            "reason": "+442079460123 is a landline, not a mobile: business calls reach WhatsApp on "
            "mobiles only.",
            "clears_at": None,
        }
    ]
    assert decision["fallback"]["kind"] == "call_button"


def test_the_schema_and_its_docs_page_are_served(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == 200
    assert "/api/v1/calls/{id}/transcript/" in schema.json()["paths"]
    assert schema.json()["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_the_schema_generates_without_a_warning():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


def test_a_signed_in_agent_hears_and_reads_only_the_calls_they_took(client, floor):
    ours, _ = floor
    colleague = AgentFactory(display_name="Colleague")
    QueueMembership.objects.create(queue=ours.queue, agent=colleague)
    client.force_login(colleague.user)

    call = client.get(f"/api/v1/calls/{ours.call.pk}/")
    listed = client.get("/api/v1/calls/", {"agent": ours.agent.pk})
    transcript = client.get(f"/api/v1/calls/{ours.call.pk}/transcript/")
    recording = client.get(f"/api/v1/calls/{ours.call.pk}/recording/")
    client.force_login(ours.agent.user)
    own = [client.get(f"/api/v1/calls/{ours.call.pk}/{tail}").status_code for tail in ("", "transcript/")]

    # As the call page: another agent's call is not theirs, though it is on their number.
    assert (call.status_code, transcript.status_code, recording.status_code) == (404, 404, 404)
    assert listed.json()["results"] == []
    assert own == [200, 200]


def test_a_call_names_the_conversation_it_came_from_and_the_schema_says_so(client, floor, make_key):
    from messaging.tests.factories import ConversationFactory

    ours, _ = floor
    chat = ConversationFactory(contact=ours.contact, business_number=ours.number)
    Call.objects.filter(pk=ours.call.pk).update(conversation=chat)
    token = make_key()

    call = client.get(f"/api/v1/calls/{ours.call.pk}/", **bearer(token)).json()
    listed = client.get("/api/v1/calls/", **bearer(token)).json()["results"]
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert call["conversation_id"] == chat.pk
    assert [row["conversation_id"] for row in listed] == [chat.pk]
    field = schema["components"]["schemas"]["Call"]["properties"]["conversation_id"]
    assert (field["type"], field["nullable"]) == ("integer", True)
    assert "conversation_id" in schema["components"]["schemas"]["Call"]["required"]
