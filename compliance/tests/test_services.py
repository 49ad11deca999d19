import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.decisions import call_decide
from compliance.models import AuditEvent, CallPermission
from compliance.services import (
    fallback_send,
    permission_reconcile_meta_error,
    permission_record_call_outcome,
    permission_request_send,
)
from compliance.tests.factories import CUSTOMER, CallPermissionFactory, sent_requests
from messaging.models import Contact, Message, Template
from whatsapp.client import GraphClient
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db
Status = CallPermission.Status
Kind = AuditEvent.Kind


def reply(message_id: str, *, at: int, **fields) -> dict:
    payload = payloads.permission_reply(message_id, **fields)
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0].update({"timestamp": str(at), "from": CUSTOMER})
    value["contacts"][0]["wa_id"] = CUSTOMER
    return payload


def audit_kinds(permission: CallPermission) -> list[str]:
    return list(permission.audit_events.order_by("at", "pk").values_list("kind", flat=True))


def test_accepted_reply_grants_temporary_permission_with_the_stricter_deadline(client, number):
    now = int(time.time())

    post_webhook(client, reply("wamid.r1", at=now, is_permanent=False, expiration_timestamp=now + 7 * 86400))

    permission = CallPermission.objects.get()
    granted_at = datetime.fromtimestamp(now, UTC)
    assert (permission.status, permission.source, permission.contact.wa_id) == (
        Status.TEMPORARY, CallPermission.Source.REQUEST_REPLY, CUSTOMER,
    )  # fmt: skip
    assert permission.meta_expires_at == granted_at + timedelta(days=7)
    assert permission.deadline_at == granted_at + timedelta(hours=72)
    assert audit_kinds(permission) == [Kind.GRANTED]


def test_redelivered_and_reordered_replies_change_nothing(client, number):
    now = int(time.time())
    post_webhook(client, reply("wamid.r2", at=now, is_permanent=True))
    post_webhook(client, reply("wamid.r2", at=now, is_permanent=True))

    post_webhook(client, reply("wamid.r1", at=now - 60, response="reject"))

    permission = CallPermission.objects.get()
    assert (permission.status, permission.deadline_at) == (Status.PERMANENT, None)
    assert audit_kinds(permission) == [Kind.GRANTED]


def test_automatic_reply_from_a_call_is_a_callback_grant(client, number):
    now = int(time.time())

    post_webhook(
        client,
        reply("wamid.auto", at=now, context_id="wacid.in1", is_permanent=False,
              expiration_timestamp=now + 7 * 86400, response_source="automatic"),
    )  # fmt: skip

    assert CallPermission.objects.get().source == CallPermission.Source.CALLBACK


def test_rejected_reply_refuses_calls(client, number):
    post_webhook(client, reply("wamid.no", at=int(time.time()), response="reject"))

    permission = CallPermission.objects.get()
    decision = call_decide(business_number=number, contact=permission.contact)
    assert (permission.status, decision.codes) == (Status.REJECTED, ["permission_rejected"])


def granted_permission(number, **fields) -> CallPermission:
    now = timezone.now()
    return CallPermissionFactory(
        business_number=number, status=Status.TEMPORARY, granted_at=now, status_changed_at=now,
        meta_expires_at=now + timedelta(days=7), deadline_at=now + timedelta(hours=72), **fields,
    )  # fmt: skip


def test_fourth_unanswered_call_in_a_row_revokes_and_tells_the_owner(
    number, told, django_capture_on_commit_callbacks
):
    permission = granted_permission(number)
    pair = {"business_number_id": number.pk, "contact_id": permission.contact_id}

    for _ in range(3):
        permission_record_call_outcome(**pair, is_connected=False, at=timezone.now())
    third = CallPermission.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        permission_record_call_outcome(**pair, is_connected=False, at=timezone.now())

    fourth = CallPermission.objects.get()
    assert (third.status, third.consecutive_unanswered) == (Status.TEMPORARY, 3)
    assert (fourth.status, fourth.consecutive_unanswered) == (Status.REVOKED, 4)
    assert audit_kinds(fourth) == [Kind.STRIKE] * 4 + [Kind.REVOKED]
    assert told == [[permission.pk]]
    assert call_decide(business_number=number, contact=permission.contact).codes == [
        "permission_revoked",
        "unanswered_strikes",
    ]


def test_connected_call_clears_strikes_resets_requests_and_moves_the_deadline(number):
    permission = granted_permission(number, consecutive_unanswered=3)
    connected_at = permission.granted_at + timedelta(hours=10)

    permission_record_call_outcome(
        business_number_id=number.pk, contact_id=permission.contact_id, is_connected=True, at=connected_at
    )

    permission.refresh_from_db()
    assert (permission.consecutive_unanswered, permission.requests_reset_at) == (0, connected_at)
    assert permission.deadline_at == permission.meta_expires_at  # 7 days after the call is later
    assert audit_kinds(permission) == [Kind.CALL_CONNECTED]


def test_meta_errors_reconcile_our_state(number):
    permission = granted_permission(number)
    pair = {"business_number_id": number.pk, "contact_id": permission.contact_id}
    allowed_at = int(time.time()) + 3600

    permission_reconcile_meta_error(**pair, code=138012, error_data={"next_call_allowed_at": allowed_at})
    capped = call_decide(business_number=number, contact=permission.contact)
    permission_reconcile_meta_error(**pair, code=138006, message="No approved call permission")

    permission.refresh_from_db()
    assert [(r.code, r.clears_at) for r in capped.refusals] == [
        ("connected_call_cap", datetime.fromtimestamp(allowed_at, UTC))
    ]
    assert permission.status == Status.REVOKED
    assert audit_kinds(permission) == [Kind.META_ERROR, Kind.META_ERROR]


def test_permission_request_is_sent_once_then_the_quota_refuses_before_meta(number, sandbox):
    contact = Contact.objects.create(wa_id=CUSTOMER)

    sent = permission_request_send(business_number=number, contact=contact, body_text="About your order")
    with pytest.raises(ValidationError) as refused:
        permission_request_send(business_number=number, contact=contact)

    permission = CallPermission.objects.get()
    assert (sent.kind, permission.status, refused.value.code) == (
        Kind.REQUEST_SENT,
        Status.REQUESTED,
        "request_quota",
    )
    assert sent.data["message_id"].startswith("wamid.")
    assert sent_requests(sandbox) == 1


def test_metas_request_limit_is_recorded_and_blocks_requests(number, sandbox, settings):
    settings.PERMISSION_REQUESTS_PER_24H = settings.PERMISSION_REQUESTS_PER_7D = 5  # looser than Meta's
    contact = Contact.objects.create(wa_id=CUSTOMER)
    permission_request_send(business_number=number, contact=contact)

    with pytest.raises(ValidationError) as refused:
        permission_request_send(business_number=number, contact=contact)

    permission = CallPermission.objects.get()
    assert refused.value.code == "request_quota"
    assert permission.requests_blocked_until > timezone.now() + timedelta(hours=23)
    assert audit_kinds(permission) == [Kind.REQUEST_SENT, Kind.META_ERROR]
    assert sent_requests(sandbox) == 1


def test_a_fallback_whatsapp_cannot_deliver_says_what_that_means_and_logs_metas_words(
    number, sandbox, caplog
):
    contact = Contact.objects.create(wa_id="447700900999")  # on no WhatsApp the sandbox knows

    with pytest.raises(ValidationError) as refused:
        fallback_send(kind="permission_request", business_number=number, contact=contact)

    assert (refused.value.code, refused.value.messages) == ("graph_error", [
        "This number cannot receive WhatsApp messages: it may not be on WhatsApp, or the customer's WhatsApp "
        "app may be too old to show this message."
    ])  # fmt: skip
    assert "[131026] Message undeliverable" in caplog.text  # for the log
    assert (CallPermission.objects.count(), AuditEvent.objects.count()) == (0, 0)


def test_a_fallback_to_a_customer_never_seen_makes_their_contact_to_send(number, sandbox):
    unsaved = Contact(wa_id=CUSTOMER)

    sent = fallback_send(kind="call_button", business_number=number, contact=unsaved)

    assert (sent, Contact.objects.get().wa_id) == ('"Call us" button sent.', CUSTOMER)


def test_permission_request_refused_where_business_calls_are_impossible(settings):
    number = BusinessNumberFactory(display_phone_number="+1 212 555 0101")
    contact = Contact.objects.create(wa_id="447700900123")

    with pytest.raises(ValidationError) as refused:
        permission_request_send(
            business_number=number, contact=contact, graph=GraphClient(base_url="http://0.0.0.0:9")
        )

    assert refused.value.code == "business_country_blocked"
    assert CallPermission.objects.count() == 0


def test_outside_the_window_the_request_goes_as_the_configured_template(number, settings):
    thread = SandboxThread(webhook_url=None, app_secret="s", token="t", rules=Rules())
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        thread.call(sandbox.meta.template_create, number.waba_id, {
            "name": "call_permission", "language": "en", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "May we call you?"}, {"type": "call_permission_request"}],
        })  # fmt: skip
        contact = Contact.objects.create(wa_id=CUSTOMER)
        with pytest.raises(ValidationError) as refused:
            permission_request_send(business_number=number, contact=contact)
        settings.CALL_PERMISSION_TEMPLATE = "call_permission"

        permission_request_send(business_number=number, contact=contact)

        [message] = sandbox.meta.messages.values()
        assert (refused.value.code, message.message_type, sent_requests(sandbox)) == (
            "window_closed",
            "template",
            1,
        )
        # Both tries of the second request are in the thread, each recorded before it was sent.
        thread_rows = list(
            Message.objects.order_by("pk").values_list("message_type", "status", "wa_message_id")
        )
        assert thread_rows[0][:2] == ("interactive", "failed")
        assert thread_rows[1] == ("template", "sent", message.message_id)
        assert "131047" in Message.objects.order_by("pk").first().error


def test_outside_the_window_a_marketing_call_button_template_is_not_sent_to_who_stopped_marketing(
    number, settings
):
    from messaging.preferences import marketing_preference_apply

    thread = SandboxThread(webhook_url=None, app_secret="s", token="t", rules=Rules())
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        settings.CALL_BUTTON_TEMPLATE = "call_us"
        Template.objects.create(
            waba_id=number.waba_id, name="call_us", language="en", category="marketing", status="APPROVED"
        )
        contact = Contact.objects.create(wa_id=CUSTOMER)
        marketing_preference_apply(
            business_number_id=number.pk, contact_id=contact.pk, is_stopped=True, at=timezone.now(),
            source="user_preferences",
        )  # fmt: skip

        with pytest.raises(ValidationError) as refused:
            fallback_send(kind="call_button", business_number=number, contact=contact)

        assert refused.value.code == "marketing_stopped"
        assert "stopped marketing messages from this number" in refused.value.messages[0]
        assert [message.message_type for message in sandbox.meta.messages.values()] == []
        assert list(Message.objects.values_list("message_type", "status")) == [("interactive", "failed")]


def test_an_answered_customer_call_resets_the_request_limits(number):
    from calls.services import call_mark_answered
    from calls.tests.factories import CallFactory

    permission = CallPermissionFactory(business_number=number, status=Status.REJECTED)
    call = CallFactory(business_number=number, contact=permission.contact)

    call_mark_answered(call_id=call.pk)

    permission.refresh_from_db()
    call.refresh_from_db()
    assert permission.requests_reset_at == call.answered_at
    assert audit_kinds(permission) == [Kind.REQUESTS_RESET]


def test_a_reply_in_the_same_second_as_our_request_is_applied(client, number):
    contact = Contact.objects.create(wa_id=CUSTOMER)
    now = timezone.now()
    CallPermissionFactory(
        business_number=number, contact=contact, status=Status.REQUESTED, status_changed_at=now
    )

    post_webhook(client, reply("wamid.same-second", at=int(now.timestamp()), is_permanent=True))

    assert CallPermission.objects.get().status == Status.PERMANENT


def test_a_declined_customer_is_offered_the_call_button_until_they_write_again(client, number):
    declined_at = int(time.time()) - 120
    post_webhook(client, reply("wamid.no", at=declined_at, response="reject"))
    contact = Contact.objects.get(wa_id=CUSTOMER)
    after_the_decline = call_decide(business_number=number, contact=contact)

    post_webhook(
        client, payloads.text_message("wamid.later", timestamp=str(declined_at + 60), **{"from": CUSTOMER})
    )
    after_a_message = call_decide(business_number=number, contact=contact)

    assert (after_the_decline.fallback.kind, after_a_message.fallback.kind) == (
        "call_button",
        "permission_request",
    )
    assert "has written or called since" in after_a_message.fallback.reason
