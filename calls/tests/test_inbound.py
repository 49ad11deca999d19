"""Meta's call webhooks into the call lifecycle: create, reject, reorder, end."""

import asyncio
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory
from calls import routing
from calls.models import Call, CallEvent, LiveCallCount
from calls.services import InboundCall, call_claim_media, call_create_inbound, call_mark_answered
from calls.tasks import reject_on_meta
from calls.tests.factories import CallFactory
from messaging.models import Contact
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook

pytestmark = pytest.mark.django_db
CALL_ID = "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"


def media_message(timeout_s: float = 1.0):
    async def receive():
        try:
            return await asyncio.wait_for(get_channel_layer().receive("media.calls"), timeout_s)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def drain_media_channel():
    while media_message(0.05) is not None:
        pass


def test_customer_call_recorded_and_handed_to_media(client, queue, django_capture_on_commit_callbacks):
    drain_media_channel()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, payloads.user_call_connect())

    call = Call.objects.get()
    assert response.status_code == 200
    assert (call.wa_call_id, call.status, call.direction, call.queue) == (
        CALL_ID,
        "queued",
        "inbound",
        queue,
    )
    assert list(call.events.values_list("to_status", flat=True)) == ["ringing", "queued"]
    assert (call.media_channel, call.answered_at) == ("", None)  # for a media process to claim
    assert (call.contact.wa_id, call.contact.name, call.contact.country) == (payloads.CUSTOMER, "Jane", "US")
    assert LiveCallCount.objects.get().live == 1
    assert media_message() == {"type": "call.answer", "call_id": call.pk, "sdp": payloads.SDP_OFFER}


def test_a_free_agent_is_rung_by_the_webhook_itself_while_media_answers(
    client, queue, django_capture_on_commit_callbacks
):
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    drain_media_channel()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_webhook(client, payloads.user_call_connect())

    call = Call.objects.get()
    agent.refresh_from_db()
    assert (call.status, call.offered_to, agent.status) == ("offered", agent, "ringing")
    assert call.answered_at is None
    assert len(callbacks) >= 3  # the media hand-off, the ring frame, the ring timer


def test_a_media_process_claims_a_call_once_and_never_an_ended_one(queue):
    call = CallFactory(queue=queue, status=Call.Status.QUEUED, media_channel="")
    ended = CallFactory(queue=queue, status=Call.Status.ENDED, media_channel="")

    first = call_claim_media(call_id=call.pk, media_channel="media.one")
    second = call_claim_media(call_id=call.pk, media_channel="media.two")

    assert first is not None and first.media_channel == "media.one"
    assert second is None
    assert call_claim_media(call_id=ended.pk, media_channel="media.one") is None
    assert call_mark_answered(call_id=call.pk) is True
    assert call_mark_answered(call_id=call.pk) is False


def test_a_lost_hand_off_is_sent_again_with_metas_offer_until_a_media_process_takes_the_call(
    client, queue, django_capture_on_commit_callbacks
):
    post_webhook(client, payloads.user_call_connect())
    drain_media_channel()  # the hand-off never reached a media process (Redis restarted, say)
    call = Call.objects.get()
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - timedelta(seconds=6))

    with django_capture_on_commit_callbacks(execute=True):
        first = routing.sweep()
    again = media_message()
    call_claim_media(call_id=call.pk, media_channel="media.one")
    with django_capture_on_commit_callbacks(execute=True):
        second = routing.sweep()

    assert first["handed_off_again"] == 1
    assert again == {"type": "call.answer", "call_id": call.pk, "sdp": payloads.SDP_OFFER}
    assert second["handed_off_again"] == 0
    assert media_message(0.2) is None


def test_a_call_no_media_process_answers_ends_failed_and_is_rejected_on_meta(
    queue, settings, django_capture_on_commit_callbacks
):
    settings.MEDIA_ANSWER_TIMEOUT_S = 20
    LiveCallCount.objects.create(business_number=queue.business_numbers.get(), direction="inbound", live=2)
    old = timezone.now() - timedelta(seconds=21)
    stuck = CallFactory(queue=queue, business_number=queue.business_numbers.get(), started_at=old)
    answered = CallFactory(
        queue=queue, business_number=queue.business_numbers.get(), started_at=old, answered_at=old
    )

    with (
        mock.patch("calls.tasks.reject_on_meta.apply_async") as reject,
        django_capture_on_commit_callbacks(execute=True),
    ):
        counts = routing.sweep()

    stuck.refresh_from_db()
    answered.refresh_from_db()
    assert counts["never_answered"] == 1
    assert (stuck.status, stuck.end_reason, stuck.end_detail) == (
        "ended",
        "failed",
        "no media process answered",
    )
    assert answered.status == "queued"
    reject.assert_called_once_with(kwargs={"call_id": stuck.pk}, countdown=None)
    assert LiveCallCount.objects.get().live == 1


def test_duplicate_connect_creates_one_call(client, queue):
    post_webhook(client, payloads.user_call_connect())
    payload = payloads.user_call_connect()
    payload["entry"][0]["changes"][0]["value"]["calls"][0]["timestamp"] = "1671644825"  # a new delivery

    post_webhook(client, payload)

    assert Call.objects.count() == 1
    assert Contact.objects.count() == 1


def test_terminate_before_connect_leaves_one_ended_call(client, queue):
    post_webhook(client, payloads.call_terminate(answered=False, failed=True))
    post_webhook(client, payloads.user_call_connect())

    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("ended", "failed")
    assert LiveCallCount.objects.filter(live__gt=0).count() == 0


def test_call_over_capacity_rejected(client, queue, settings, django_capture_on_commit_callbacks):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 1
    post_webhook(client, payloads.user_call_connect("wacid.first"))

    with django_capture_on_commit_callbacks() as callbacks:
        post_webhook(client, payloads.user_call_connect("wacid.second"))

    second = Call.objects.get(wa_call_id="wacid.second")
    assert (second.status, second.end_reason, second.end_detail) == ("ended", "rejected", "capacity")
    assert LiveCallCount.objects.get().live == 1
    assert len(callbacks) == 1  # the reject_on_meta task, sent after commit


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_never_turns_a_recorded_call_into_a_webhook_error(client, number, caplog):
    from kombu.exceptions import OperationalError

    with mock.patch("calls.tasks.reject_on_meta.apply_async", side_effect=OperationalError("refused")):
        response = post_webhook(client, payloads.user_call_connect())  # no queue: rejected, on Meta by a task

    call = Call.objects.get()
    assert response.status_code == 200
    assert (call.status, call.end_reason) == ("ended", "rejected")
    assert "calls.reject_on_meta" in caplog.text and "not queued" in caplog.text


def test_call_with_no_queue_rejected(client, number):
    post_webhook(client, payloads.user_call_connect())

    call = Call.objects.get()
    assert (call.status, call.end_reason, call.end_detail) == (
        "ended",
        "rejected",
        "no queue serves this number",
    )


def test_call_outside_opening_hours_rejected_and_told_when_we_open(
    client, queue, django_capture_on_commit_callbacks
):
    queue.holidays = [timezone.now().date().isoformat()]
    queue.save()

    with django_capture_on_commit_callbacks() as callbacks:
        post_webhook(client, payloads.user_call_connect())

    assert Call.objects.get().end_detail == "closed"
    assert len(callbacks) == 2  # the reject on Meta and the closed message, as tasks after commit


def test_customer_hangs_up_before_we_answer_is_abandoned_and_frees_the_slot(client, queue):
    post_webhook(client, payloads.user_call_connect())

    post_webhook(client, payloads.call_terminate(answered=False))

    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("ended", "abandoned")
    assert LiveCallCount.objects.get().live == 0
    assert list(CallEvent.objects.values_list("from_status", "to_status")) == [
        ("", "ringing"),
        ("ringing", "queued"),
        ("queued", "ended"),
    ]


def test_terminate_twice_ends_once(client, queue):
    post_webhook(client, payloads.user_call_connect())
    post_webhook(client, payloads.call_terminate(answered=False))
    payload = payloads.call_terminate(answered=False)
    payload["entry"][0]["changes"][0]["value"]["calls"][0]["status"] = "FAILED"  # Meta changing its mind

    post_webhook(client, payload)

    assert CallEvent.objects.filter(to_status="ended").count() == 1
    assert LiveCallCount.objects.get().live == 0


def test_rejected_call_is_rejected_on_meta(queue, number, settings):
    from whatsapp.sandbox.server import SandboxThread

    thread = SandboxThread(webhook_url=None, app_secret="s", token="t")
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
        thread.call(
            sandbox.add_number,
            phone_number_id=number.phone_number_id,
            waba_id=number.waba_id,
            display_phone_number=number.display_phone_number,
        )
        customer = thread.call(sandbox.add_customer, wa_id="447700900555", name="Ada")
        placed = thread.run(customer.place_call, number.phone_number_id)
        settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 0
        call = call_create_inbound(
            inbound=InboundCall(
                wa_call_id=placed.call.call_id,
                phone_number_id=number.phone_number_id,
                from_number=customer.wa_id,
                contact_name="Ada",
                sdp_offer=placed.call.offer_sdp,
            ),
            queue_id=queue.pk,
            is_open=True,
        )

        reject_on_meta(call_id=call.pk)

        assert (call.status, call.end_detail) == ("ended", "capacity")
        assert sandbox.meta.calls[placed.call.call_id].state == "ENDED"
