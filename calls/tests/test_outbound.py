"""Business-initiated calls: the decision first, then Meta's webhooks move the call, and each
outcome counts for the customer's permission."""

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, LiveCallCount
from calls.outbound import (
    CallRefused,
    call_outbound_dialed,
    call_place_outbound,
    callback_data_for,
    end_outbound_calls_never_picked_up,
)
from compliance.models import AuditEvent, CallPermission
from compliance.tests.factories import CUSTOMER
from messaging.models import Contact
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db
Status = CallPermission.Status


@pytest.fixture
def number():
    return BusinessNumberFactory(
        phone_number_id=payloads.PHONE_NUMBER_ID, display_phone_number="+44 20 7946 0000"
    )


@pytest.fixture
def contact():
    return Contact.objects.create(wa_id=CUSTOMER, name="Ada")


@pytest.fixture
def permission(number, contact):
    now = timezone.now()
    return CallPermission.objects.create(
        business_number=number,
        contact=contact,
        status=Status.PERMANENT,
        granted_at=now,
        status_changed_at=now,
    )


def business_call(call: Call, event: str, **fields) -> dict:
    item = {
        "id": call.wa_call_id, "to": CUSTOMER, "from": payloads.BUSINESS, "event": event,
        "timestamp": str(int(timezone.now().timestamp())), "direction": "BUSINESS_INITIATED",
        "biz_opaque_callback_data": callback_data_for(call), **fields,
    }  # fmt: skip
    return payloads.envelope("calls", payloads.calls_value(calls=[item]))


def terminate(call: Call, *, answered: bool, errors: list | None = None) -> dict:
    now = int(timezone.now().timestamp())
    times = {"start_time": str(now - 30), "end_time": str(now), "duration": 30} if answered else {}
    payload = business_call(call, "terminate", status="COMPLETED" if answered else "FAILED", **times)
    if errors:
        payload["entry"][0]["changes"][0]["value"]["errors"] = errors
    return payload


def status(call: Call, value: str) -> dict:
    item = {
        "id": call.wa_call_id, "type": "call", "status": value, "recipient_id": CUSTOMER,
        "timestamp": str(int(timezone.now().timestamp())),
        "biz_opaque_callback_data": callback_data_for(call),
    }  # fmt: skip
    return payloads.envelope("calls", payloads.calls_value(statuses=[item], contacts=False))


def dialled(number, contact, wa_call_id: str) -> Call:
    call = call_place_outbound(business_number=number, contact=contact)
    call_outbound_dialed(call_id=call.pk, wa_call_id=wa_call_id)
    call.refresh_from_db()
    return call


def kinds(permission: CallPermission) -> list[str]:
    return list(permission.audit_events.order_by("pk").values_list("kind", flat=True))  # as recorded


def outbound_live(number) -> int:
    return LiveCallCount.objects.get(business_number=number, direction=Call.Direction.OUTBOUND).live


def test_refused_call_writes_nothing_and_names_the_rules(number, contact):
    with pytest.raises(CallRefused) as refused:
        call_place_outbound(business_number=number, contact=contact)

    assert refused.value.decision.codes == ["no_permission"]
    assert refused.value.decision.fallback.kind == "permission_request"
    assert (Call.objects.count(), AuditEvent.objects.count(), LiveCallCount.objects.count()) == (0, 0, 0)


def test_placed_call_is_dialing_holds_a_slot_and_asks_a_media_process(
    number, contact, permission, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        call = call_place_outbound(business_number=number, contact=contact)

    assert (call.direction, call.status, call.wa_call_id[:8]) == ("outbound", "dialing", "pending.")
    assert outbound_live(number) == 1
    assert kinds(permission) == [AuditEvent.Kind.CALL_PLACED]
    assert len(callbacks) == 2  # the media hand-off and the wallboard's nudge


def test_a_second_call_to_the_customer_is_refused_while_one_is_live(number, contact, permission):
    call_place_outbound(business_number=number, contact=contact)

    with pytest.raises(CallRefused) as refused:
        call_place_outbound(business_number=number, contact=contact)

    assert refused.value.decision.codes == ["call_in_progress"]
    assert outbound_live(number) == 1


def test_answered_call_connects_clears_strikes_and_completes(client, number, contact, permission):
    CallPermission.objects.filter(pk=permission.pk).update(consecutive_unanswered=3)
    call = dialled(number, contact, "wacid.out1")

    post_webhook(
        client, business_call(call, "connect", session={"sdp_type": "answer", "sdp": payloads.SDP_ANSWER})
    )
    post_webhook(client, status(call, "RINGING"))
    ringing = Call.objects.get().status
    post_webhook(client, status(call, "ACCEPTED"))
    connected = Call.objects.get().status
    post_webhook(client, terminate(call, answered=True))

    call.refresh_from_db()
    permission.refresh_from_db()
    assert (ringing, connected, call.status, call.end_reason) == (
        "ringing",
        "connected",
        "ended",
        "completed",
    )
    assert (permission.consecutive_unanswered, outbound_live(number)) == (0, 0)
    assert kinds(permission) == [AuditEvent.Kind.CALL_PLACED, AuditEvent.Kind.CALL_CONNECTED]


def test_declined_call_is_one_strike_whatever_the_order_of_webhooks(client, number, contact, permission):
    first = dialled(number, contact, "wacid.out2")
    post_webhook(client, status(first, "REJECTED"))
    post_webhook(client, terminate(first, answered=False))
    second = dialled(number, contact, "wacid.out3")
    post_webhook(client, terminate(second, answered=False))
    post_webhook(client, status(second, "REJECTED"))

    first.refresh_from_db()
    second.refresh_from_db()
    permission.refresh_from_db()
    assert (first.end_reason, second.end_reason) == ("rejected", "unanswered")
    assert permission.consecutive_unanswered == 2


def test_four_unanswered_calls_revoke_and_the_fifth_is_refused_with_the_fallback(
    client, number, contact, permission
):
    for attempt in range(4):
        call = dialled(number, contact, f"wacid.ignored{attempt}")
        post_webhook(client, terminate(call, answered=False))

    with pytest.raises(CallRefused) as refused:
        call_place_outbound(business_number=number, contact=contact)

    permission.refresh_from_db()
    assert (permission.status, permission.consecutive_unanswered) == ("revoked", 4)
    assert refused.value.decision.codes == ["permission_revoked", "unanswered_strikes"]
    assert refused.value.decision.fallback.kind == "permission_request"
    assert Call.objects.count() == 4


def test_webhook_before_the_media_process_recorded_metas_id_finds_the_call(
    client, number, contact, permission
):
    call = call_place_outbound(business_number=number, contact=contact)
    call.wa_call_id = "wacid.early"

    post_webhook(client, status(call, "RINGING"))

    assert Call.objects.values_list("wa_call_id", "status").get() == ("wacid.early", "ringing")


def test_metas_refusal_reconciles_the_permission(client, number, contact, permission):
    call = dialled(number, contact, "wacid.out4")
    error = {"code": 138006, "message": "No approved call permission", "error_data": {"details": "x"}}

    post_webhook(client, terminate(call, answered=False, errors=[error]))

    call.refresh_from_db()
    permission.refresh_from_db()
    assert (call.end_reason, permission.status) == ("failed", "revoked")


def test_sweep_ends_calls_that_rang_out_or_were_never_dialled(number, contact, permission, settings):
    rang_out = dialled(number, contact, "wacid.out5")
    other = Contact.objects.create(wa_id="447700900124")
    CallPermission.objects.create(business_number=number, contact=other, status=Status.PERMANENT)
    never = call_place_outbound(business_number=number, contact=other)
    Call.objects.update(started_at=timezone.now() - timedelta(seconds=settings.OUTBOUND_RING_TIMEOUT_S + 1))

    ended = end_outbound_calls_never_picked_up()

    rang_out.refresh_from_db()
    never.refresh_from_db()
    permission.refresh_from_db()
    assert ended == 2
    assert (rang_out.end_reason, never.end_reason) == ("unanswered", "failed")
    assert permission.consecutive_unanswered == 1
    assert CallPermission.objects.get(contact=other).consecutive_unanswered == 0
    assert outbound_live(number) == 0


def test_customer_media_ending_before_pick_up_leaves_the_outcome_to_meta(client, number, contact, permission):
    from calls.outbound import call_customer_media_ended

    first = dialled(number, contact, "wacid.media-first")
    call_customer_media_ended(call_id=first.pk)
    still = Call.objects.get(pk=first.pk).status
    post_webhook(client, terminate(first, answered=False))
    second = dialled(number, contact, "wacid.webhook-first")
    post_webhook(client, terminate(second, answered=False))
    call_customer_media_ended(call_id=second.pk)

    permission.refresh_from_db()
    assert still == "dialing"
    assert list(Call.objects.order_by("pk").values_list("end_reason", flat=True)) == [
        "unanswered",
        "unanswered",
    ]
    assert permission.consecutive_unanswered == 2


def test_a_terminate_with_talk_time_before_accepted_is_a_connected_call(client, number, contact, permission):
    CallPermission.objects.filter(pk=permission.pk).update(consecutive_unanswered=2)
    call = dialled(number, contact, "wacid.late-accepted")
    post_webhook(client, status(call, "RINGING"))

    post_webhook(client, terminate(call, answered=True))
    post_webhook(client, status(call, "ACCEPTED"))

    call.refresh_from_db()
    permission.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "completed")
    assert permission.consecutive_unanswered == 0
    assert kinds(permission) == [AuditEvent.Kind.CALL_PLACED, AuditEvent.Kind.CALL_CONNECTED]


def test_a_call_given_up_before_meta_named_it_is_ended_on_meta_when_it_is_named(
    client, number, contact, permission, django_capture_on_commit_callbacks
):
    from unittest import mock

    from agents.tests.factories import AgentFactory
    from calls.outbound import call_cancel_outbound

    agent = AgentFactory(status="available")
    call = call_place_outbound(business_number=number, contact=contact, agent_id=agent.pk)
    call_cancel_outbound(call_id=call.pk, agent_id=agent.pk)
    call.wa_call_id = "wacid.ghost"  # Meta placed it all the same: its webhooks name it

    with (
        mock.patch("calls.tasks.terminate_on_meta.apply_async") as terminate_on_meta,
        django_capture_on_commit_callbacks(execute=True),
    ):
        post_webhook(client, status(call, "RINGING"))

    call.refresh_from_db()
    permission.refresh_from_db()
    assert (call.status, call.end_reason, call.wa_call_id) == ("ended", "failed", "wacid.ghost")
    assert permission.consecutive_unanswered == 0
    terminate_on_meta.assert_called_once_with(kwargs={"call_id": call.pk}, countdown=None)


@pytest.mark.parametrize(
    ("agent_status", "reason"),
    [
        ("offline", "You are offline: go available or away to place calls."),
        ("ringing", "A call is ringing for you: accept or decline it before placing one."),
        ("on_call", "Finish the call you are on first."),
    ],
)
def test_an_agent_who_cannot_place_a_call_is_told_why(agent_status, reason, number, contact, permission):
    from django.core.exceptions import ValidationError

    from agents.tests.factories import AgentFactory

    agent = AgentFactory(status=agent_status)

    with pytest.raises(ValidationError) as refused:
        call_place_outbound(business_number=number, contact=contact, agent_id=agent.pk)

    assert (refused.value.code, refused.value.messages) == ("busy", [reason])
    assert Call.objects.count() == 0
