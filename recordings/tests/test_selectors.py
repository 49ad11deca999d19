"""Reads about recordings: what a call's page shows, in the order it shows it."""

import datetime

import pytest
from django.utils import timezone

from agents.tests.factories import AgentFactory
from calls.models import Call, CallEvent
from calls.tests.factories import CallFactory
from compliance.models import ConsentRecord
from recordings.selectors import call_timeline

pytestmark = pytest.mark.django_db


def test_a_calls_timeline_is_in_time_order_then_id_whatever_order_it_was_written_in():
    started = timezone.now() - datetime.timedelta(minutes=5)
    at = {second: started + datetime.timedelta(seconds=second) for second in (0, 2, 3, 40, 90)}
    agent = AgentFactory()
    call = CallFactory(agent=agent, status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED)

    def event(second: int, from_status: str, to_status: str) -> CallEvent:
        return CallEvent.objects.create(
            call=call, from_status=from_status, to_status=to_status, at=at[second], agent=agent
        )

    ended = event(90, "connected", "ended")  # written first, as a late writer would
    connected = event(40, "offered", "connected")
    ringing = event(0, "", "ringing")
    queued = event(2, "ringing", "queued")
    offered = event(2, "queued", "offered")  # the same instant as queued: written after it
    notice = ConsentRecord.objects.create(
        call=call, contact=call.contact, business_number=call.business_number, language="en",
        text="This call is recorded.", kind=ConsentRecord.Kind.RECORDING_NOTICE, started_at=at[3],
    )  # fmt: skip
    CallEvent.objects.create(  # another call's
        call=CallFactory(), from_status="", to_status="ringing", at=at[2]
    )

    timeline = call_timeline(call=call)

    assert [entry.event or entry.consent for entry in timeline] == [
        ringing, queued, offered, notice, connected, ended
    ]  # fmt: skip
    assert [entry.at for entry in timeline] == [at[0], at[2], at[2], at[3], at[40], at[90]]
