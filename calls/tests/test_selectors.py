from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from agents.models import QueueMembership
from agents.tests.factories import AgentFactory
from calls.models import Call
from calls.selectors import ring_frame, ring_frames
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

    frame = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)

    assert frame["last_call"] == {
        "ended_at": (now - timedelta(days=2)).isoformat(),
        "agent": "Chen Wei",
        "outcome": "Needs a follow-up",
        "notes": "Refund for 4521.",
        "summary": "Lucia wants a refund to card [card].",  # masked: the agent reads it
    }


def test_a_first_time_caller_has_no_last_call(queue):
    assert (
        ring_frame(call=CallFactory(queue=queue), queue=queue, agent_id=AgentFactory().pk)["last_call"]
        is None
    )


NOTES = "Card 4111 1111 1111 1111, mail jo@example.com"


def agent_of(queue, *permissions: str):
    """An agent of the queue (so of its number), holding `permissions` (codenames)."""
    agent = AgentFactory()
    QueueMembership.objects.create(queue=queue, agent=agent)
    agent.user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    return agent


def called_before(*, queue, number, agent, notes: str = NOTES) -> Call:
    """A caller ringing again, whose last call `agent` took on `number` and noted."""
    contact = ContactFactory()
    CallFactory(
        contact=contact, business_number=number, agent=agent, status=Call.Status.ENDED,
        end_reason=Call.EndReason.COMPLETED, ended_at=timezone.now(), wrap_up_notes=notes,
    )  # fmt: skip
    return CallFactory(contact=contact, business_number=number, queue=queue)


def test_the_ring_shows_an_agent_their_own_notes_masked(queue, number):
    agent = agent_of(queue)
    ringing = called_before(queue=queue, number=number, agent=agent)

    frame = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)

    assert frame["last_call"]["notes"] == "Card [card], mail [email]"


def test_the_ring_masks_the_notes_before_cutting_them_to_200_characters(queue, number):
    agent = agent_of(queue)
    ringing = called_before(queue=queue, number=number, agent=agent, notes=f"{'x' * 190} 4111 1111 1111 1111")

    frame = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)

    assert frame["last_call"]["notes"] == f"{'x' * 190} [card]"


@pytest.mark.parametrize(
    ("permissions", "notes"),
    [
        ([], ""),
        (["read_colleagues_notes"], "Card [card], mail [email]"),
        (["read_colleagues_notes", "view_raw_transcript"], NOTES),
    ],
)
def test_the_ring_shows_a_colleagues_notes_only_to_who_may_read_them(queue, number, permissions, notes):
    rung = agent_of(queue, *permissions)
    ringing = called_before(queue=queue, number=number, agent=agent_of(queue))

    frame = ring_frame(call=ringing, queue=queue, agent_id=rung.pk)

    assert frame["last_call"]["notes"] == notes
    assert frame["last_call"]["outcome"] == "Completed"


def test_rings_built_together_show_each_agent_the_notes_they_may_read(queue, number):
    first, second = agent_of(queue), agent_of(queue)
    first_caller = called_before(queue=queue, number=number, agent=first)
    second_caller = called_before(queue=queue, number=number, agent=first, notes="Asked for a refund.")

    frames = ring_frames(offers=[(first_caller, first.pk), (second_caller, second.pk)], queue=queue)

    assert [frame["last_call"]["notes"] for frame in frames] == ["Card [card], mail [email]", ""]


def test_what_a_customer_has_cost_on_a_number_sums_their_messages_and_calls_per_currency(number):
    from djmoney.money import Money

    from calls.selectors import customer_cost
    from messaging.models import Charge, Message

    customer, someone_else = ContactFactory(), ContactFactory()
    call = CallFactory(business_number=number, contact=customer)
    for contact, wamid in ((customer, "wamid.hers"), (someone_else, "wamid.his")):
        Message.objects.create(
            business_number=number, contact=contact, direction="outbound", message_type="template",
            wa_message_id=wamid, status="delivered",
        )  # fmt: skip

    def charge(kind, reference, amount, **fields):
        return Charge.objects.create(
            kind=kind, reference=reference, business_number=number, pricing_type="regular",
            billed_on=timezone.now().date(), amount=amount, **fields,
        )  # fmt: skip

    charge("message", "wamid.hers", Money("0.0430", "USD"))
    charge("message", "wamid.his", Money("0.0430", "USD"))  # another customer's
    charge("call", call.wa_call_id, Money("0.0200", "USD"))
    charge("call", "wacid.unpriced", None)

    assert customer_cost(contact_id=customer.pk, business_number_id=number.pk) == [Money("0.0630", "USD")]
    assert customer_cost(contact_id=ContactFactory().pk, business_number_id=number.pk) == []
