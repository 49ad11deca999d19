import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from calls.models import Call
from whatsapp import dispatch
from whatsapp.events import (
    AccountSettingsUpdate,
    AccountUpdate,
    CallConnect,
    CallPermissionReply,
    CallRecordingAvailable,
    CallSipCreated,
    CallStatus,
    CallTerminate,
    CallTranscriptionAvailable,
    Media,
    MessageReceived,
    MessageStatus,
    MetaError,
    Pricing,
    Restriction,
    event_from_context,
)
from whatsapp.models import BusinessNumber, WebhookDelivery, WebhookEvent
from whatsapp.services import webhook_event_dispatch
from whatsapp.tasks import redispatch_stale_events
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook

pytestmark = pytest.mark.django_db


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- Verification and signatures -------------------------------------------------------------


def test_verification_handshake_echoes_challenge(client, settings):
    response = client.get(
        "/webhooks/whatsapp/",
        {
            "hub.mode": "subscribe",
            "hub.challenge": "1158201444",
            "hub.verify_token": settings.WHATSAPP_VERIFY_TOKEN,
        },
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"},
        {
            "hub.mode": "unsubscribe",
            "hub.challenge": "1158201444",
            "hub.verify_token": "sandbox-verify-token",
        },
        {"hub.mode": "subscribe", "hub.challenge": "<script>", "hub.verify_token": "sandbox-verify-token"},
        {},
    ],
)
def test_verification_handshake_refuses_anything_else(client, query):
    response = client.get("/webhooks/whatsapp/", query)

    assert response.status_code == 403


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc", "sha256=zz"])
def test_delivery_without_valid_signature_refused_and_not_stored(client, captured, signature):
    response = post_webhook(client, payloads.user_call_connect(), signature=signature)

    assert response.status_code == 403
    assert WebhookDelivery.objects.count() == 0
    assert WebhookEvent.objects.count() == 0
    assert captured == []


def test_signature_over_other_bytes_refused(client):
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    from whatsapp.tests.conftest import sign

    response = post_webhook(client, body + b" ", signature=sign(body))

    assert response.status_code == 403


# --- Every payload shape becomes its typed event -------------------------------------------------


def test_user_call_connect(client, captured):
    response = post_webhook(
        client,
        payloads.user_call_connect(
            cta_payload="support_v2", deeplink_payload="promo", timestamp="1671644824"
        ),
    )

    assert response.status_code == 200
    [event] = captured
    assert event == CallConnect(
        waba_id=payloads.WABA_ID,
        phone_number_id=payloads.PHONE_NUMBER_ID,
        display_phone_number=payloads.BUSINESS,
        occurred_at=at(1671644824),
        call_id="wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh",
        from_number=payloads.CUSTOMER,
        to_number=payloads.BUSINESS,
        direction="USER_INITIATED",
        sdp_type="offer",
        sdp=payloads.SDP_OFFER,
        contact_name="Jane",
        cta_payload="support_v2",
        deeplink_payload="promo",
    )
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.HANDLED


@pytest.mark.parametrize("legacy_connection", [False, True])
def test_business_call_connect_with_answer(client, captured, legacy_connection):
    post_webhook(client, payloads.business_call_connect(legacy_connection=legacy_connection))

    [event] = captured
    assert isinstance(event, CallConnect)
    assert (event.direction, event.sdp_type, event.sdp) == (
        "BUSINESS_INITIATED",
        "answer",
        payloads.SDP_ANSWER,
    )
    assert event.biz_opaque_callback_data == "TRx334DUDFTI4Mj"
    assert (event.from_number, event.to_number) == (payloads.BUSINESS, payloads.CUSTOMER)


@pytest.mark.parametrize("status", ["RINGING", "ACCEPTED", "REJECTED"])
def test_call_status(client, captured, status):
    post_webhook(client, payloads.call_status(status))

    assert captured == [
        CallStatus(
            waba_id=payloads.WABA_ID,
            phone_number_id=payloads.PHONE_NUMBER_ID,
            display_phone_number=payloads.BUSINESS,
            occurred_at=at(1671644830),
            call_id="wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA",
            status=status,
            recipient_id=payloads.CUSTOMER,
            biz_opaque_callback_data="random_string",
        )
    ]


def test_call_terminate_with_times(client, captured):
    post_webhook(client, payloads.call_terminate(answered=True))

    [event] = captured
    assert isinstance(event, CallTerminate)
    assert (event.status, event.started_at, event.ended_at, event.duration_s) == (
        "COMPLETED",
        at(1671644824),
        at(1671644944),
        120,
    )
    assert event.was_answered is True
    assert event.cta_payload == "support_v2"
    assert event.errors == ()


def test_call_terminate_without_times_with_errors(client, captured):
    post_webhook(client, payloads.call_terminate(answered=False, failed=True))

    [event] = captured
    assert (event.status, event.started_at, event.duration_s, event.was_answered) == (
        "FAILED",
        None,
        None,
        False,
    )
    assert event.errors == (
        MetaError(
            code=138007,
            message="Connection timeout",
            href="https://developers.facebook.com/",
            details="SDP answer not applied in time",
        ),
    )


def test_text_message(client, captured):
    post_webhook(client, payloads.text_message())

    [event] = captured
    assert isinstance(event, MessageReceived)
    assert (event.message_id, event.from_number, event.contact_name, event.message_type, event.text) == (
        "wamid.xyz",
        payloads.CUSTOMER,
        "Test Name",
        "text",
        "Body Text",
    )
    assert event.referral is None


def test_button_reply(client, captured):
    post_webhook(client, payloads.button_reply())

    [event] = captured
    assert (
        event.message_type,
        event.button_reply_id,
        event.button_reply_title,
        event.context_message_id,
    ) == (
        "interactive",
        "callback_yes",
        "Yes, call me",
        "wamid.question",
    )


def test_a_file_message_carries_what_fetching_the_file_needs(client, captured):
    post_webhook(client, payloads.every_type_message("document"))
    post_webhook(client, payloads.every_type_message("voice note", "wamid.typed2"))

    document, voice_note = captured
    assert document.media == Media(
        media_id="1029384760", mime_type="application/pdf", sha256=payloads.MEDIA_SHA256,
        caption="My invoice", filename="invoice-1042.pdf",
    )  # fmt: skip
    assert voice_note.media == Media(
        media_id="1029384757", mime_type="audio/ogg; codecs=opus", sha256=payloads.MEDIA_SHA256, is_voice=True
    )


def test_a_reaction_names_the_message_it_is_on_and_an_unsupported_message_keeps_metas_error(client, captured):
    post_webhook(client, payloads.every_type_message("reaction"))
    post_webhook(client, payloads.every_type_message("unsupported", "wamid.typed2"))

    reaction, unsupported = captured
    assert (reaction.reacts_to, reaction.emoji, reaction.media) == ("wamid.out1", "\U0001f44d", None)
    assert unsupported.errors == (
        MetaError(
            code=131051, title="Message type unknown", message="Message type unknown",
            details="Message type is currently not supported.",
        ),
    )  # fmt: skip


def test_a_call_permission_reply_that_cannot_be_read_is_still_the_customers_message(client, captured):
    post_webhook(client, payloads.permission_reply(response="maybe"))

    [event] = captured
    assert isinstance(event, MessageReceived)
    assert (event.message_type, event.text, event.notes) == (
        "interactive",
        "Answered (call permission request)",
        ("call permission reply: 'response' must be one of accept, reject",),
    )


def test_click_to_whatsapp_referral(client, captured):
    post_webhook(client, payloads.referral_message())

    [event] = captured
    assert event.referral["source_type"] == "ad"
    assert event.referral["ctwa_clid"] == "ARAkLkA8rmlFeiCktEJQ"


def test_call_permission_reply_accept_temporary(client, captured):
    post_webhook(
        client,
        payloads.permission_reply(
            is_permanent=False, expiration_timestamp=1753186982, response_source="user_action"
        ),
    )

    [event] = captured
    assert event == CallPermissionReply(
        waba_id=payloads.WABA_ID,
        phone_number_id=payloads.PHONE_NUMBER_ID,
        display_phone_number=payloads.BUSINESS,
        occurred_at=at(1752582182),
        message_id="wamid.sH0kFlaCGg0x",
        from_number=payloads.CUSTOMER,
        contact_name="Test Name",
        response="accept",
        is_permanent=False,
        expires_at=at(1753186982),
        response_source="user_action",
        context_id="wamid.request1",
    )
    assert event.is_accepted is True


def test_call_permission_reply_reject_without_optional_fields(client, captured):
    post_webhook(client, payloads.permission_reply(response="reject"))

    [event] = captured
    assert (event.response, event.is_permanent, event.expires_at, event.is_accepted) == (
        "reject",
        None,
        None,
        False,
    )


def test_call_permission_reply_automatic_from_a_call(client, captured):
    post_webhook(
        client,
        payloads.permission_reply(
            context_id="wacid.ABGG",
            is_permanent=False,
            expiration_timestamp=1753186982,
            response_source="automatic",
        ),
    )

    [event] = captured
    assert (event.response_source, event.context_id) == ("automatic", "wacid.ABGG")


def test_message_status_with_pricing(client, captured):
    post_webhook(client, payloads.message_status("delivered"))

    [event] = captured
    assert isinstance(event, MessageStatus)
    assert (event.message_id, event.status, event.recipient_id) == (
        "wamid.out1",
        "delivered",
        payloads.CUSTOMER,
    )
    assert event.pricing == Pricing(
        billable=True, pricing_model="PMP", pricing_type="regular", category="marketing"
    )


def test_message_status_failed_with_errors(client, captured):
    post_webhook(
        client, payloads.message_status("failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    )

    [event] = captured
    assert event.errors == (MetaError(code=131026, title="Message undeliverable"),)


def test_account_settings_update(client, captured):
    post_webhook(client, payloads.settings_update())

    [event] = captured
    assert isinstance(event, AccountSettingsUpdate)
    assert event.phone_number_id == payloads.PHONE_NUMBER_ID
    assert event.calling["status"] == "ENABLED"
    assert event.occurred_at == at(1671644824)


def test_account_update_violation_and_restriction(client, captured):
    post_webhook(client, payloads.account_violation())
    post_webhook(client, payloads.account_restriction())

    violation, restriction = captured
    assert isinstance(violation, AccountUpdate)
    assert (violation.event, violation.violation_type) == ("ACCOUNT_VIOLATION", "LOW_CALLING_QUALITY")
    assert restriction.restrictions == (
        Restriction(
            restriction_type="RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING", expires_at=at(1754604800)
        ),
    )


def without_handler(monkeypatch, kind: str) -> None:
    """No handler for `kind` during this test only (the apps' registrations come back after it)."""
    for registry in ("_handlers", "_many_handlers"):
        handlers = {name: handler for name, handler in getattr(dispatch, registry).items() if name != kind}
        monkeypatch.setattr(dispatch, registry, handlers)


def test_unknown_field_stored_and_visible_as_unhandled(client, monkeypatch):
    without_handler(monkeypatch, "unsupported")

    response = post_webhook(client, payloads.unknown_field())

    record = WebhookEvent.objects.get()
    assert response.status_code == 200
    assert (record.kind, record.status) == ("unsupported", WebhookEvent.Status.UNHANDLED)
    assert record.payload["field"] == "message_template_status_update"


def test_unknown_keys_are_kept_and_ignored(client, captured):
    payload = payloads.text_message()
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["brand_new_field"] = {"x": 1}

    post_webhook(client, payload)

    [event] = captured
    assert event.text == "Body Text"
    assert event.raw["item"]["brand_new_field"] == {"x": 1}


def test_event_without_handler_is_unhandled(client, monkeypatch):
    without_handler(monkeypatch, "message.received")

    post_webhook(client, payloads.text_message())

    assert WebhookEvent.objects.get().status == WebhookEvent.Status.UNHANDLED


# --- Delivery habits: duplicates, reordering, bad input -------------------------------------------


def test_duplicate_delivery_has_one_effect(client, captured):
    first = post_webhook(client, payloads.user_call_connect())
    second = post_webhook(client, payloads.user_call_connect())

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"received": 0, "duplicates": 1}
    assert len(captured) == 1
    assert WebhookDelivery.objects.count() == 2
    assert WebhookEvent.objects.count() == 1


def test_terminate_before_connect_each_once(client, captured):
    post_webhook(client, payloads.call_terminate())
    post_webhook(client, payloads.user_call_connect())
    post_webhook(client, payloads.call_terminate())
    post_webhook(client, payloads.user_call_connect())

    assert [event.kind for event in captured] == ["call.terminate", "call.connect"]


def test_same_message_status_redelivered_once_other_status_kept(client, captured):
    post_webhook(client, payloads.message_status("read"))
    post_webhook(client, payloads.message_status("delivered"))
    post_webhook(client, payloads.message_status("read"))

    assert [event.status for event in captured] == ["read", "delivered"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b"\xff\xfe",
    ],
)
def test_malformed_body_gets_400_and_changes_nothing(client, captured, body):
    response = post_webhook(client, body)

    assert response.status_code == 400
    assert "error" in response.json()
    assert WebhookEvent.objects.count() == 0
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.MALFORMED
    assert captured == []


def test_malformed_item_is_skipped_and_the_rest_stored(client, captured):
    payload = payloads.user_call_connect()
    calls = payload["entry"][0]["changes"][0]["value"]["calls"]
    calls.append({**calls[0], "id": "wacid.second", "direction": "SIDEWAYS"})
    calls.append({**calls[0], "id": None})

    response = post_webhook(client, payload)

    delivery = WebhookDelivery.objects.get()
    assert response.status_code == 200
    assert [event.call_id for event in captured] == ["wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"]
    assert [problem["where"] for problem in delivery.problems] == [
        "entry[0].changes[0].value.calls[1]",
        "entry[0].changes[0].value.calls[2]",
    ]


def test_failing_handler_marks_event_failed_and_others_still_run(client, captured):
    def explode(event):
        BusinessNumber.objects.create(
            phone_number_id="written-then-rolled-back", waba_id="x", display_phone_number="+44 20 7946 0009"
        )
        raise RuntimeError("handler bug")

    dispatch._handlers["call.connect"] = explode
    payload = payloads.user_call_connect()
    payload["entry"][0]["changes"].append(payloads.text_message()["entry"][0]["changes"][0])

    response = post_webhook(client, payload)

    connect = WebhookEvent.objects.get(kind="call.connect")
    assert response.status_code == 200
    assert (connect.status, connect.error) == (WebhookEvent.Status.FAILED, "RuntimeError: handler bug")
    assert WebhookEvent.objects.get(kind="message.received").status == WebhookEvent.Status.HANDLED
    assert not BusinessNumber.objects.filter(phone_number_id="written-then-rolled-back").exists()

    dispatch._handlers["call.connect"] = captured.append
    webhook_event_dispatch(event_record=connect)

    connect.refresh_from_db()
    assert (connect.status, connect.attempts) == (WebhookEvent.Status.HANDLED, 2)
    assert captured[-1].call_id == "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"


# --- The number's own settings and standing --------------------------------------------------------


@pytest.fixture
def number():
    return BusinessNumber.objects.create(
        phone_number_id=payloads.PHONE_NUMBER_ID,
        waba_id=payloads.WABA_ID,
        display_phone_number="+1 317-555-1399",
    )


def test_settings_update_mirrored_and_older_update_ignored(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000100", status="ENABLED"))
    post_webhook(client, payloads.settings_update(timestamp="1700000000", status="DISABLED"))

    number.refresh_from_db()
    assert number.is_calling_enabled is True
    assert number.calling_settings_updated_at == at(1700000100)


# The body replayed in issue 21: SIP turned on towards a documentation host, a masked time zone.
REPLAYED_CALLING = {
    "status": "ENABLED",
    "call_icon_visibility": "DEFAULT",
    "callback_permission_status": "ENABLED",
    "call_hours": {
        "status": "ENABLED",
        "timezone_id": "[REDACTED]",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700"}],
    },
    "srtp_key_exchange_protocol": "DTLS",
    "sip": {"status": "ENABLED", "servers": [{"hostname": "example.com", "port": 5061}]},
}
VALID_CALLING = {
    **REPLAYED_CALLING,
    "call_hours": {**REPLAYED_CALLING["call_hours"], "timezone_id": "America/Manaus"},
    "sip": {"status": "ENABLED", "servers": [{"hostname": "sip.switchboard.io", "port": 5061}]},
    "restrictions": {"restrictions_list": []},
}


def test_settings_update_with_invalid_settings_rejected_and_kept_as_a_problem(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000000", status="DISABLED"))

    response = post_webhook(
        client, payloads.settings_update(timestamp="1700000100", calling=REPLAYED_CALLING)
    )

    number.refresh_from_db()
    rejected = WebhookEvent.objects.get(occurred_at=at(1700000100))
    assert response.status_code == 200
    assert number.calling_settings == {
        "status": "DISABLED",
        "call_icon_visibility": "DEFAULT",
        "callback_permission_status": "ENABLED",
    }
    assert number.calling_settings_updated_at == at(1700000000)
    assert rejected.status == WebhookEvent.Status.REJECTED
    assert rejected.error == (
        "calling settings not applied: "
        "calling.call_hours.timezone_id: '[REDACTED]' is not an IANA time zone such as 'America/Manaus'; "
        "calling.sip.servers[0].hostname: 'example.com' is reserved for documentation and examples (RFC 2606)"
    )
    assert rejected.payload["item"]["phone_number_settings"]["calling"] == REPLAYED_CALLING


def test_settings_update_rejected_is_neither_retried_nor_dispatched_again(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000100", calling=REPLAYED_CALLING))
    WebhookEvent.objects.update(last_attempt_at=timezone.now() - timedelta(minutes=5))
    record = WebhookEvent.objects.get()

    retried = redispatch_stale_events()
    dispatched = webhook_event_dispatch(event_record=record)

    number.refresh_from_db()
    assert retried == 0
    assert (dispatched.status, dispatched.attempts) == (WebhookEvent.Status.REJECTED, 1)
    assert number.calling_settings == {}


def test_settings_update_redelivered_rejection_is_a_duplicate(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000100", calling=REPLAYED_CALLING))

    post_webhook(client, payloads.settings_update(timestamp="1700000100", calling=REPLAYED_CALLING))

    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED
    assert WebhookDelivery.objects.filter(duplicate_count=1).count() == 1


def test_settings_update_valid_full_settings_applied(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000100", calling=VALID_CALLING))

    number.refresh_from_db()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.HANDLED
    assert number.calling_settings == VALID_CALLING
    assert number.calling_settings_updated_at == at(1700000100)


def test_settings_update_rejection_does_not_hide_an_older_valid_update(client, number):
    post_webhook(client, payloads.settings_update(timestamp="1700000100", status="DISABLED"))
    post_webhook(client, payloads.settings_update(timestamp="1700000300", calling=REPLAYED_CALLING))
    post_webhook(client, payloads.settings_update(timestamp="1700000200", calling=VALID_CALLING))
    post_webhook(client, payloads.settings_update(timestamp="1700000150", status="DISABLED"))

    number.refresh_from_db()
    assert number.calling_settings == VALID_CALLING
    assert number.calling_settings_updated_at == at(1700000200)


def test_account_restriction_and_violation_recorded(client, number):
    post_webhook(client, payloads.account_violation(timestamp="1754000000"))
    post_webhook(client, payloads.account_restriction(timestamp="1754000100"))

    number.refresh_from_db()
    assert number.last_violation == "LOW_CALLING_QUALITY"
    assert number.restrictions == [
        {
            "type": "RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING",
            "expires_at": "2025-08-07T22:13:20+00:00",
        }
    ]


def test_stale_sweep_retries_a_failed_event(client, captured):
    dispatch._handlers["message.received"] = lambda event: 1 / 0
    post_webhook(client, payloads.text_message())
    WebhookEvent.objects.update(last_attempt_at=timezone.now() - timedelta(minutes=5))
    dispatch._handlers["message.received"] = captured.append

    retried = redispatch_stale_events()

    assert retried == 1
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.HANDLED
    assert [event.message_id for event in captured] == ["wamid.xyz"]


# --- Calls that are not plain voice (WHATSAPP_API.md §10.4) and replies Switchboard did not know ----


def test_a_sip_call_created_is_typed(client, captured):
    response = post_webhook(client, payloads.sip_call_created(direction="BUSINESS_INITIATED"))

    assert response.status_code == 200
    assert captured == [
        CallSipCreated(
            waba_id=payloads.WABA_ID,
            phone_number_id=payloads.PHONE_NUMBER_ID,
            display_phone_number=payloads.BUSINESS,
            occurred_at=at(1671644824),
            call_id="wacid.SIP1",
            from_number=payloads.BUSINESS,
            to_number=payloads.CUSTOMER,
            direction="BUSINESS_INITIATED",
        )
    ]


def test_metas_recording_and_transcript_of_a_call_are_typed(client, captured):
    post_webhook(client, payloads.call_recording_available())
    post_webhook(client, payloads.call_transcription_available())

    recording, transcript = captured
    assert recording == CallRecordingAvailable(
        waba_id=payloads.WABA_ID,
        phone_number_id=payloads.PHONE_NUMBER_ID,
        display_phone_number=payloads.BUSINESS,
        occurred_at=at(1728932177),
        call_id="wacid.REC1",
        from_number=payloads.CUSTOMER,
        media=Media(
            media_id="1002764438271669", mime_type="audio/ogg; codecs=opus", sha256=payloads.MEDIA_SHA256
        ),
    )
    assert (type(transcript), transcript.idempotency_key, transcript.media.mime_type) == (
        CallTranscriptionAvailable, "call:wacid.REC1:call.transcription_available", "application/json",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "kind", "note"),
    [
        (
            payloads.sip_call_created(),
            "call.sip_created",
            "A SIP call from a customer was created on Meta's side (call wacid.SIP1): stored; Switchboard "
            "signals over the Graph API and does not act on SIP-side events.",
        ),
        (
            payloads.call_recording_available(),
            "call.recording_available",
            "Meta's recording of call wacid.REC1 is ready (media 1002764438271669, audio/ogg; codecs=opus); "
            "Meta keeps it 7 days: stored; Switchboard records and transcribes its calls itself and does "
            "not fetch Meta's recording.",
        ),
        (
            payloads.call_transcription_available(),
            "call.transcription_available",
            "Meta's transcript of call wacid.REC1 is ready (media 1002764438271670, application/json); Meta "
            "keeps it 7 days: stored; Switchboard records and transcribes its calls itself and does not "
            "fetch Meta's transcript.",
        ),
    ],
)
def test_a_call_side_event_is_stored_with_its_meaning_and_acted_on_by_nobody(client, payload, kind, note):
    response = post_webhook(client, payload)

    record = WebhookEvent.objects.get()
    assert response.status_code == 200
    assert (record.kind, record.status, record.note) == (kind, WebhookEvent.Status.HANDLED, note)
    assert record.payload["item"] == payload["entry"][0]["changes"][0]["value"]["calls"][0]
    assert WebhookDelivery.objects.get().problems == []
    assert not Call.objects.exists()


def test_a_call_event_switchboard_does_not_know_is_kept_whole_and_unhandled(client):
    payload = payloads.unknown_call_event()

    response = post_webhook(client, payload)

    record = WebhookEvent.objects.get()
    assert response.status_code == 200
    assert (record.kind, record.status, record.payload["field"]) == ("unsupported", "unhandled", "calls")
    assert record.payload["item"] == payload["entry"][0]["changes"][0]["value"]["calls"][0]
    assert event_from_context(record.payload).idempotency_key == record.idempotency_key


def test_a_recording_event_without_its_media_is_a_problem_with_a_reason(client):
    payload = payloads.call_recording_available()
    del payload["entry"][0]["changes"][0]["value"]["calls"][0]["call_recording"]["audio"]

    response = post_webhook(client, payload)

    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 0
    assert WebhookDelivery.objects.get().problems == [
        {"where": "entry[0].changes[0].value.calls[0]", "reason": "'call_recording.audio' must be an object"}
    ]


def test_a_form_reply_shows_the_customers_answers(client, captured):
    post_webhook(client, payloads.form_reply())

    [event] = captured
    assert (event.message_type, event.text, event.notes, event.context_message_id) == (
        "interactive", "Form sent: comment_text: Comment Text; delivery_rating: 4", (), "wamid.flow",
    )  # fmt: skip


def test_an_unsupported_message_names_the_type_meta_could_not_show(client, captured):
    post_webhook(client, payloads.every_type_message("unsupported"))
    payload = payloads.customer_message("unsupported", {"type": "pool"}, "wamid.typed2",
                                        errors=[payloads.UNSUPPORTED_ERROR])  # fmt: skip

    post_webhook(client, payload)

    assert [event.text for event in captured] == [
        "WhatsApp could not show this message: Message type unknown (Message type is currently not "
        "supported.)",
        "WhatsApp could not show this message (of type 'pool'): Message type unknown (Message type is "
        "currently not supported.)",
    ]


def test_an_interactive_reply_of_a_type_switchboard_does_not_know_is_kept_as_meta_sent_it(client, captured):
    interactive = {"type": "carousel_reply", "carousel_reply": {"id": "card_2", "title": "Blue"}}

    post_webhook(client, payloads.customer_message("interactive", interactive, "wamid.new1"))

    [event] = captured
    assert (event.message_type, event.notes) == (
        "interactive", ("Switchboard does not know interactive replies of type 'carousel_reply'",),
    )  # fmt: skip
    assert json.loads(event.text) == {"interactive": interactive, "type": "interactive"}
