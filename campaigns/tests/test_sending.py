"""Sending a campaign through the sandbox's Meta: paced, once per recipient whatever the senders,
taken over after a sender dies, stopped by a pause, slowed (never failed) by Meta's throughput."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from campaigns.services import (
    campaign_create,
    campaign_pause,
    campaign_send,
    campaign_send_batch,
    campaign_sender_take,
    campaign_start,
    recipients_claim,
)
from campaigns.tasks import resume_senders
from campaigns.tests.conftest import sandbox_template
from messaging.models import Message
from messaging.services import message_send_template, message_sent
from whatsapp.client import GraphClient
from whatsapp.sandbox.meta import Rules
from whatsapp.tests.conftest import sandbox_serving

CUSTOMERS = [f"4477009{index:05d}" for index in range(1, 13)]


def sent_by_sandbox(sandbox) -> list[dict]:
    """Every message the sandbox's Meta took, as sent."""
    return sandbox.thread.call(lambda: [message.body for message in sandbox.meta.messages.values()])


@pytest.fixture
def serving(settings, number, template):
    def serve(*, rules: Rules | None = None, customers=CUSTOMERS):
        context = sandbox_serving(settings, number, rules=rules or Rules())
        sandbox = context.__enter__()
        sandbox_template(sandbox, template)
        for wa_id in customers:
            sandbox.thread.call(sandbox.add_customer, wa_id=wa_id, name=f"Customer {wa_id[-2:]}")
        opened.append(context)
        return sandbox

    opened = []
    yield serve
    for context in opened:
        context.__exit__(None, None, None)


def sending(number, template, opted_in, *, rate: str, customers=CUSTOMERS) -> Campaign:
    opted_in(*customers)
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=customers, parameters=["you"],
        send_rate_per_second=Decimal(rate),
    )  # fmt: skip
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, started_at=timezone.now())
    return campaign


@pytest.mark.django_db
def test_each_recipient_gets_the_template_once_with_the_call_button_at_the_campaigns_pace(
    number, template, opted_in, serving
):
    sandbox = serving()
    campaign = sending(number, template, opted_in, rate="20")
    started = time.monotonic()

    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=20)

    took = time.monotonic() - started
    bodies = sent_by_sandbox(sandbox)
    campaign.refresh_from_db()
    assert after is None
    assert campaign.status == "completed"
    assert sorted(body["to"] for body in bodies) == CUSTOMERS
    assert bodies[0]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "you"}]},
        {"type": "button", "sub_type": "voice_call", "index": 0,
         "parameters": [{"type": "payload", "payload": f"campaign-{campaign.pk}"}]},
    ]  # fmt: skip
    assert took >= (len(CUSTOMERS) - 1) / 20  # one every 1/20 s
    assert set(campaign.recipients.values_list("status", flat=True)) == {"sent"}
    assert Message.objects.filter(campaign_recipient__campaign=campaign, status="sent").count() == len(
        CUSTOMERS
    )


@pytest.mark.django_db
def test_a_pause_stops_the_sender_before_its_next_message(number, template, opted_in, serving):
    sandbox = serving()
    campaign = sending(number, template, opted_in, rate="1")
    with GraphClient() as graph:
        campaign_send_batch(campaign_id=campaign.pk, graph=graph)  # one, at 1 a second

    campaign_pause(campaign_id=campaign.pk)
    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=5)

    assert after is None
    assert len(sent_by_sandbox(sandbox)) == 1
    assert campaign.recipients.filter(status="pending").count() == len(CUSTOMERS) - 1


@pytest.mark.django_db(transaction=True)
def test_a_pause_stops_a_sender_at_work(number, template, opted_in, serving):
    sandbox = serving()
    campaign = sending(number, template, opted_in, rate="10")

    def send():
        with GraphClient() as graph:
            campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=10)
        connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.35)
    campaign_pause(campaign_id=campaign.pk)
    paused_with = len(sent_by_sandbox(sandbox))
    sender.join(timeout=10)

    assert 1 <= paused_with < len(CUSTOMERS)
    assert len(sent_by_sandbox(sandbox)) <= paused_with + 1  # the one on its way when the pause came
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert (
        Recipient.objects.filter(campaign=campaign, status="pending", claimed_until__isnull=False).count()
        == 0
    )


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_never_send_one_recipient_twice(number, template, opted_in, serving):
    sandbox = serving()
    campaign = sending(number, template, opted_in, rate="80")
    gate = threading.Barrier(2)

    def sender():
        gate.wait()
        with GraphClient() as graph:
            while Recipient.objects.filter(campaign=campaign, status="pending").exists():
                campaign_send_batch(campaign_id=campaign.pk, graph=graph, seconds=0.05)
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(body["to"] for body in sent_by_sandbox(sandbox)) == CUSTOMERS
    assert Message.objects.filter(direction="outbound").count() == len(CUSTOMERS)
    assert set(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_a_sender_that_died_is_taken_over_once_its_claims_lapse_and_nothing_is_sent_twice(
    number, template, opted_in, serving
):
    sandbox = serving()
    campaign = sending(number, template, opted_in, rate="80")
    # The dead sender: it held the campaign, claimed three recipients and sent the first one's
    # message, then died before saying so on the recipient.
    assert campaign_sender_take(campaign_id=campaign.pk, token="dead")
    claimed = recipients_claim(campaign_id=campaign.pk, limit=3)
    first = Recipient.objects.select_related("contact").get(pk=claimed[0])
    message = message_send_template(
        business_number=number, contact=first.contact, template=template,
        idempotency_key=f"campaign:{campaign.pk}:recipient:{first.pk}", is_sent_by_worker=False,
    )  # fmt: skip
    Recipient.objects.filter(pk=first.pk).update(message=message)
    with GraphClient() as graph:
        message_sent(message_id=message.pk, wa_message_id=graph.message_send(
            phone_number_id=number.phone_number_id, body=message.request))  # fmt: skip
    alive_sweep = resume_senders()
    with GraphClient() as graph:
        too_soon = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=5)

    Campaign.objects.filter(pk=campaign.pk).update(sender_until=timezone.now() - timedelta(seconds=1))
    Recipient.objects.filter(pk__in=claimed).update(claimed_until=timezone.now() - timedelta(seconds=1))
    dead_sweep = resume_senders.apply().get()  # eagerly here: queues the task, which the test runs
    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=20)

    assert (alive_sweep, too_soon) == (0, None)  # the dead sender still held it
    assert dead_sweep == 1
    assert after is None
    assert sorted(body["to"] for body in sent_by_sandbox(sandbox)) == CUSTOMERS
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
    assert Recipient.objects.get(pk=first.pk).message_id == message.pk


@pytest.mark.django_db
def test_metas_throughput_error_slows_the_campaign_down_and_it_still_completes(
    number, template, opted_in, serving, settings
):
    settings.CAMPAIGN_THROTTLE_BACKOFF_S = 0.3
    sandbox = serving(rules=Rules(messages_per_second=4))
    campaign = sending(number, template, opted_in, rate="40")

    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=30)

    campaign.refresh_from_db()
    assert after is None
    assert campaign.status == "completed"
    assert "130429" in campaign.last_error
    assert sorted(body["to"] for body in sent_by_sandbox(sandbox)) == CUSTOMERS
    assert set(campaign.recipients.values_list("status", flat=True)) == {"sent"}
    assert Message.objects.filter(status="failed").count() == 0


@pytest.mark.django_db
def test_a_customer_meta_refuses_fails_alone_with_metas_error(number, template, opted_in, serving):
    serving(customers=CUSTOMERS[:2])  # the third is not on WhatsApp
    campaign = sending(number, template, opted_in, rate="80", customers=CUSTOMERS[:3])

    with GraphClient() as graph:
        campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=10)

    campaign.refresh_from_db()
    failed = campaign.recipients.get(wa_id=CUSTOMERS[2])
    assert campaign.status == "completed"
    assert (failed.status, failed.error) == (
        "failed",
        "[131026] Message undeliverable (Message undeliverable)",
    )
    assert campaign.recipients.filter(status="sent").count() == 2


@pytest.mark.django_db
def test_starting_a_campaign_with_nobody_to_send_to_completes_it(
    number, template, serving, django_capture_on_commit_callbacks
):
    serving()
    campaign = campaign_create(
        name="Nobody", business_number=number, template=template, lines=["447700900001"]
    )

    with django_capture_on_commit_callbacks(execute=False):
        campaign_start(campaign_id=campaign.pk)
    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign.pk, graph=graph, budget_seconds=5)

    assert after is None
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"


@pytest.mark.django_db
def test_the_task_sends_a_started_campaign_to_the_end_and_a_second_one_finds_nothing_to_do(
    number, template, opted_in, serving, django_capture_on_commit_callbacks
):
    from campaigns.tasks import send_campaign

    sandbox = serving()
    opted_in(*CUSTOMERS[:3])
    campaign = campaign_create(
        agents_on_duty=5, name="Spring", business_number=number, template=template, lines=CUSTOMERS[:3]
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        campaign_start(campaign_id=campaign.pk)

    first = send_campaign.apply(kwargs={"campaign_id": campaign.pk}).get()
    second = send_campaign.apply(kwargs={"campaign_id": campaign.pk}).get()

    assert len(queued) == 2  # its sender, and the news to its page
    assert (first, second) == ("done", "not sending")
    assert sorted(body["to"] for body in sent_by_sandbox(sandbox)) == CUSTOMERS[:3]
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"


@pytest.mark.django_db
def test_messagings_sweep_leaves_a_campaigns_waiting_message_to_its_sender(number, template, opted_in):
    from messaging.tasks import send_pending

    campaign = sending(number, template, opted_in, rate="1", customers=CUSTOMERS[:1])
    recipient = campaign.recipients.select_related("contact").get()
    message = message_send_template(
        business_number=number, contact=recipient.contact, template=template, is_sent_by_worker=False,
        idempotency_key=f"campaign:{campaign.pk}:recipient:{recipient.pk}",
    )  # fmt: skip
    Recipient.objects.filter(pk=recipient.pk).update(message=message)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert send_pending() == 0
