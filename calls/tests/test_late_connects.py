"""Meta retries a delivery for up to 7 days: a customer's call delivered after Meta's accept window
(WHATSAPP_API.md §10.1) is a call already over. It is kept, and nothing else happens."""

import time

import pytest
from django.utils import timezone

from agents.models import Agent
from calls.models import Call, LiveCallCount
from calls.tests.test_inbound import drain_media_channel, media_message
from whatsapp.models import WebhookEvent
from whatsapp.services import webhook_deliveries_receive
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.test_intake import body_of

pytestmark = pytest.mark.django_db
CALL_ID = "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"
# Meta's published connect examples, as a retried delivery could still bring them.
PUBLISHED = [("1234567890", "2009-02-13 23:31:30"), ("1671644824", "2022-12-21 17:47:04")]


def connect_aged(age_s: int, call_id: str = CALL_ID, **extra) -> dict:
    return payloads.user_call_connect(call_id, timestamp=str(int(time.time()) - age_s), **extra)


@pytest.mark.parametrize(("timestamp", "stamped"), PUBLISHED)
def test_a_connect_older_than_the_accept_window_is_kept_ended_and_never_rings_nor_reaches_meta(
    client, queue, make_agent, django_capture_on_commit_callbacks, timestamp, stamped
):
    agent = make_agent()
    drain_media_channel()
    before = timezone.now().replace(microsecond=0)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_webhook(client, payloads.user_call_connect(timestamp=timestamp))

    call = Call.objects.get()
    agent.refresh_from_db()
    received = call.ended_at.strftime("%Y-%m-%d %H:%M:%S")
    assert response.status_code == 200
    assert (call.wa_call_id, call.direction, call.status, call.end_reason) == (
        CALL_ID,
        "inbound",
        "ended",
        "too_late",
    )
    assert call.end_detail == f"arrived too late: connect timestamped {stamped} UTC, received {received} UTC"
    assert call.ended_at >= before
    assert (call.queue, call.offered_to, call.agent, call.media_channel, call.answered_at) == (
        None,
        None,
        None,
        "",
        None,
    )
    assert list(call.events.values_list("from_status", "to_status")) == [("", "ended")]
    assert agent.status == Agent.Status.AVAILABLE
    assert LiveCallCount.objects.filter(live__gt=0).count() == 0
    assert callbacks == []  # no ring, no timer, no media hand-off, no reject or accept on Meta
    assert media_message(0.2) is None
    event = WebhookEvent.objects.get(kind="call.connect")
    assert (event.status, event.payload["item"]["timestamp"]) == ("handled", timestamp)


@pytest.mark.parametrize(("timestamp", "stamped"), PUBLISHED)
def test_a_terminate_for_a_call_that_came_too_late_changes_nothing(
    client, queue, django_capture_on_commit_callbacks, timestamp, stamped
):
    post_webhook(client, payloads.user_call_connect(timestamp=timestamp))
    ended = Call.objects.values("status", "end_reason", "end_detail", "ended_at").get()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_webhook(client, payloads.call_terminate(answered=False, failed=True))

    assert response.status_code == 200
    assert Call.objects.values("status", "end_reason", "end_detail", "ended_at").get() == ended
    assert Call.objects.get().events.count() == 1
    assert callbacks == []
    assert LiveCallCount.objects.filter(live__gt=0).count() == 0
    assert WebhookEvent.objects.filter(kind="call.terminate", status="handled").count() == 1


@pytest.mark.parametrize(
    ("max_age_s", "age_s", "status"),
    [(60, 45, "queued"), (60, 75, "ended"), (30, 20, "queued"), (30, 45, "ended")],
)
def test_the_accept_window_is_a_setting(client, queue, settings, max_age_s, age_s, status):
    settings.CALL_CONNECT_MAX_AGE_S = max_age_s

    post_webhook(client, connect_aged(age_s))

    assert Call.objects.get().status == status


def test_late_connects_received_together_with_fresh_ones_are_kept_ended_and_hold_no_slot(
    queue, make_agent, settings, django_capture_on_commit_callbacks
):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 2
    make_agent()
    drain_media_channel()
    bodies = [
        body_of(connect_aged(0, "wacid.fresh-1", **{"from": "447700900001"})),
        body_of(payloads.user_call_connect("wacid.late-2009", timestamp=PUBLISHED[0][0])),
        body_of(connect_aged(0, "wacid.fresh-2", **{"from": "447700900002"})),
        body_of(payloads.user_call_connect("wacid.late-2022", timestamp=PUBLISHED[1][0])),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = webhook_deliveries_receive(bodies=bodies)

    calls = {call.wa_call_id: call for call in Call.objects.all()}
    assert [outcome.is_accepted for outcome in outcomes] == [True] * 4
    assert {wa_call_id: (call.status, call.end_reason) for wa_call_id, call in calls.items()} == {
        "wacid.fresh-1": ("offered", ""),
        "wacid.fresh-2": ("queued", ""),
        "wacid.late-2009": ("ended", "too_late"),
        "wacid.late-2022": ("ended", "too_late"),
    }
    assert LiveCallCount.objects.get().live == 2
    handed_off = {media_message()["call_id"], media_message()["call_id"]}
    assert handed_off == {calls["wacid.fresh-1"].pk, calls["wacid.fresh-2"].pk}
    assert media_message(0.2) is None
    assert WebhookEvent.objects.filter(kind="call.connect", status="handled").count() == 4
