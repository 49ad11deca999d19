from datetime import timedelta

import pytest
from django.utils import timezone

from agents.tests.factories import AgentFactory
from calls.models import Call
from calls.selectors import last_call_of, ring_frame
from calls.tests.factories import CallFactory, ContactFactory
from recordings.models import Summary

pytestmark = pytest.mark.django_db


def test_the_ring_shows_the_callers_last_call_that_reached_an_agent(queue):
    contact = ContactFactory(name="Lucia Santos")
    agent = AgentFactory(display_name="Chen Wei")
    now = timezone.now()
    ended = {"contact": contact, "status": Call.Status.ENDED, "end_reason": Call.EndReason.COMPLETED}
    CallFactory(**ended, agent=agent, ended_at=now - timedelta(days=9), disposition="resolved")
    last = CallFactory(
        **ended,
        agent=agent,
        ended_at=now - timedelta(days=2),
        disposition="follow_up",
        wrap_up_notes="Refund for 4521.",
    )
    Summary.objects.create(
        call=last, paragraph="Lucia wants a refund to card 4111 1111 1111 1111.", intent="billing",
        outcome="follow_up", sentiment="negative", sentiment_score=-0.4, backend="local",
    )  # fmt: skip
    CallFactory(
        **ended | {"end_reason": Call.EndReason.ABANDONED}, agent=None, ended_at=now - timedelta(hours=1)
    )
    ringing = CallFactory(contact=contact, queue=queue)

    frame = ring_frame(call=ringing, queue=queue)

    assert frame["last_call"] == {
        "ended_at": (now - timedelta(days=2)).isoformat(),
        "agent": "Chen Wei",
        "outcome": "Needs a follow-up",
        "notes": "Refund for 4521.",
        "summary": "Lucia wants a refund to card [card].",  # masked: the agent reads it
    }


def test_a_first_time_caller_has_no_last_call(queue):
    assert last_call_of(call=CallFactory(queue=queue)) is None
