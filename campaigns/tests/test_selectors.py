"""A campaign's progress and cost, from what Meta and the customers did: statuses, replies, calls
through its button (delivered as Meta's webhooks), and the charges of its messages."""

import copy
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone
from djmoney.money import Money

from calls.models import Call
from calls.tests.factories import CallFactory
from campaigns.models import Campaign, Recipient
from campaigns.selectors import campaign_cost, campaign_progress
from campaigns.services import campaign_create
from messaging.models import RateCard
from messaging.services import message_send_template, message_sent, rate_card_save
from messaging.tests.conftest import customer_writes
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook

pytestmark = pytest.mark.django_db
CUSTOMERS = ["447700900011", "447700900012", "447700900013", "447700900014"]


def sent_campaign(number, template, opted_in) -> Campaign:
    """A campaign whose four messages Meta took (wamid.c1 … c4), with a fifth line left out."""
    opted_in(*CUSTOMERS)
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=[*CUSTOMERS, "447700900099"]
    )
    for index, recipient in enumerate(
        campaign.recipients.filter(status="pending").select_related("contact"), 1
    ):
        message = message_send_template(
            business_number=number, contact=recipient.contact, template=template, is_sent_by_worker=False,
            idempotency_key=f"campaign:{campaign.pk}:recipient:{recipient.pk}",
        )  # fmt: skip
        message_sent(message_id=message.pk, wa_message_id=f"wamid.c{index}")
        Recipient.objects.filter(pk=recipient.pk).update(
            message=message, status="sent", sent_at=timezone.now()
        )
    return campaign


def status(state: str, wamid: str, customer: str, **extra) -> dict:
    payload = copy.deepcopy(payloads.message_status(state, wamid, **extra))
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["recipient_id"] = customer
    return payload


def from_customer(payload: dict, customer: str, campaign: Campaign) -> dict:
    """A call webhook of `customer`, placed through the campaign's button."""
    payload = copy.deepcopy(payload)
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["calls"][0]["from"] = customer
    value["calls"][0]["cta_payload"] = campaign.call_button_payload
    return payload


@pytest.fixture
def activity(client, number, template, opted_in):
    """The four customers: 1 read it and wrote back, 2 read it and tapped the call button but left
    before an agent took the call, 3 had it delivered and called (answered, 2 minutes), 4's failed."""
    campaign = sent_campaign(number, template, opted_in)
    one, two, three, four = CUSTOMERS
    for wamid, customer in (("wamid.c1", one), ("wamid.c2", two), ("wamid.c3", three)):
        post_webhook(client, status("delivered", wamid, customer))
    for wamid, customer in (("wamid.c1", one), ("wamid.c2", two)):
        post_webhook(client, status("read", wamid, customer))
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    post_webhook(client, status("failed", "wamid.c4", four, errors=errors))
    customer_writes(one, "wamid.reply1", "Tell me more")
    post_webhook(client, from_customer(payloads.user_call_connect("wacid.two"), two, campaign))
    post_webhook(client, from_customer(payloads.call_terminate("wacid.two", answered=False), two, campaign))
    CallFactory(
        business_number=number, contact=Recipient.objects.get(wa_id=three).contact,
        cta_payload=campaign.call_button_payload, status=Call.Status.ENDED, connected_at=timezone.now(),
        end_reason=Call.EndReason.COMPLETED, talk_seconds=120,
    )  # fmt: skip
    CallFactory(business_number=number, contact=Recipient.objects.get(wa_id=one).contact, cta_payload="other")
    return campaign


def test_progress_counts_statuses_replies_and_the_calls_its_button_brought(
    activity, django_assert_num_queries
):
    with django_assert_num_queries(1):
        progress = campaign_progress(activity)

    assert progress == {
        "listed": 5, "excluded": 1, "pending": 0, "sent": 4, "delivered": 3, "read": 2, "failed": 1,
        "replied": 1, "tapped_call": 2, "calls_answered": 1, "calls_abandoned": 1,
    }  # fmt: skip
    assert Call.objects.get(wa_call_id="wacid.two").end_reason == "abandoned"


def test_a_reply_before_the_campaign_is_not_counted_as_its_reply(number, template, opted_in):
    customer_writes(CUSTOMERS[0], "wamid.before", "Hi")  # wrote before: opted in, not a reply

    campaign = sent_campaign(number, template, opted_in)

    assert campaign_progress(campaign)["replied"] == 0


def test_cost_is_its_charged_messages_against_the_free_minutes_of_the_calls_it_brought(
    client, number, template, opted_in
):
    rate_card_save(
        rate=RateCard(
            category="marketing", market="GB", price=Money("0.0500", "USD"), effective_from=date(2025, 1, 1)
        )
    )
    campaign = sent_campaign(number, template, opted_in)
    for index, customer in enumerate(CUSTOMERS[:3], 1):
        post_webhook(client, status("delivered", f"wamid.c{index}", customer))
    CallFactory(
        business_number=number, contact=Recipient.objects.get(wa_id=CUSTOMERS[0]).contact,
        cta_payload=campaign.call_button_payload, status=Call.Status.ENDED, connected_at=timezone.now(),
        talk_seconds=150,
    )  # fmt: skip
    CallFactory(business_number=number, contact=Recipient.objects.get(wa_id=CUSTOMERS[1]).contact,
                cta_payload=campaign.call_button_payload, end_reason=Call.EndReason.ABANDONED)  # fmt: skip

    cost = campaign_cost(campaign)

    assert (cost.currency, cost.messages_charged, cost.messages_free, cost.messages_unpriced) == (
        "USD",
        3,
        0,
        0,
    )
    assert cost.messages_amount == Decimal("0.1500")
    assert (cost.calls, cost.calls_answered, cost.call_minutes) == (2, 1, Decimal("2.50"))
    assert (cost.cost_per_answered_call, cost.cost_per_call_minute) == (Decimal("0.1500"), Decimal("0.0600"))


def test_the_costs_page_has_a_line_per_campaign_with_its_cost_and_free_minutes(
    client, number, template, opted_in
):
    from agents.tests.factories import supervisor

    campaign = sent_campaign(number, template, opted_in)
    Campaign.objects.filter(pk=campaign.pk).update(status="completed", started_at=timezone.now())
    CallFactory(
        business_number=number, contact=Recipient.objects.get(wa_id=CUSTOMERS[0]).contact,
        cta_payload=campaign.call_button_payload, status=Call.Status.ENDED, connected_at=timezone.now(),
        talk_seconds=90,
    )  # fmt: skip
    client.force_login(supervisor())

    page = client.get("/reports/costs/").content.decode()

    row = page.split(f'<tr data-campaign="{campaign.pk}">')[1].split("</tr>")[0]
    assert row == (
        "<td>Spring</td><td>Completed</td><td>4</td><td>0</td><td>0.0000 USD</td><td>1</td><td>1</td>"
        "<td>1.50</td><td>0.0000 USD</td>"
    )


def test_replies_and_calls_are_noted_on_their_recipients(activity):
    from campaigns.services import campaign_outcomes_link

    noted = campaign_outcomes_link(campaign_id=activity.pk)
    again = campaign_outcomes_link(campaign_id=activity.pk)

    outcomes = {
        recipient.wa_id: (
            recipient.replied_at is not None,
            recipient.call.wa_call_id if recipient.call else None,
        )
        for recipient in activity.recipients.filter(status="sent").select_related("call")
    }
    assert (noted, again) == (3, 0)
    assert outcomes[CUSTOMERS[0]] == (True, None)
    assert outcomes[CUSTOMERS[1]] == (False, "wacid.two")
    assert outcomes[CUSTOMERS[2]][0] is False and outcomes[CUSTOMERS[2]][1] is not None
    assert outcomes[CUSTOMERS[3]] == (False, None)


def test_the_campaigns_page_hears_when_its_progress_moves(
    number, template, opted_in, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from campaigns.services import campaign_start
    from core.realtime import flush

    opted_in(CUSTOMERS[0])
    campaign = campaign_create(
        agents_on_duty=5, name="Spring", business_number=number, template=template, lines=CUSTOMERS[:1]
    )
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(campaign.group_name, channel)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign_id=campaign.pk)
    flush()

    assert async_to_sync(layer.receive)(channel) == {"type": "campaign.progress", "campaign_id": campaign.pk}
