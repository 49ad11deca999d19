"""Broadcast day, end to end: a supervisor builds a campaign to 200 sandbox customers in the browser,
sees who is left out, what it costs and the capacity plan, starts it and watches it go; the crowd
reads, replies and taps the template's call button, and an agent takes the calls it brings."""

import contextlib
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from calls.models import Call
from campaigns.models import Campaign, Recipient
from messaging.models import Template
from tests.e2e.conftest import MediaProcessThread, serving_app, sign_in, task_worker
from whatsapp.sandbox.crowd import CrowdConfig, reactions_for, start_crowd
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
TOKEN = "e2e-campaign-token"
COMPONENTS = [
    {"type": "BODY", "text": "Spring offer: 20% off this week. Tap Call us to order."},
    {"type": "BUTTONS", "buttons": [{"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 1440}]},
]
CROWD = CrowdConfig(
    size=200, regions=("GB", "IN", "BR", "DE"), read_rate=0.7, read_after_s=1, reply_rate=0.03,
    reply_after_s=2, tap_rate=0.012, tap_after_s=2, stop_rate=0, call_s=25, max_concurrent_calls=4, seed=5,
)  # fmt: skip


@contextlib.contextmanager
def campaign_desk(tmp_path, media_settings):
    """Meta (the sandbox, with the crowd), the web process, a worker and the media process, for a
    number whose queue answers its calls. Yields (crowd, URL, queue)."""
    number = BusinessNumberFactory(phone_number_id="840000000000001", display_phone_number="+44 20 7946 0840")
    queue = QueueFactory(name="Offers", wrap_up_s=0)
    queue.business_numbers.add(number)
    Template.objects.create(
        waba_id=number.waba_id, name="spring_offer", language="en_US", category="marketing",
        components=COMPONENTS, status=Template.Status.APPROVED,
    )  # fmt: skip
    graph = {
        "WHATSAPP_TOKEN": TOKEN,
        "CELERY_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{uuid.uuid4().hex[:8]}",
        "WEBHOOK_HANDLE_IN_WORKER": "true",  # as in production: the campaign's statuses go to the worker
    }
    sandbox_thread = SandboxThread(
        webhook_url=None, app_secret=settings.WHATSAPP_APP_SECRET, token=TOKEN, record_dir=tmp_path / "crowd"
    )
    with sandbox_thread as sandbox:
        graph["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
        media_settings.WHATSAPP_GRAPH_URL, media_settings.WHATSAPP_TOKEN = sandbox.graph_url, TOKEN
        with (
            serving_app(**graph) as live_server_url,
            task_worker(graph["CELERY_QUEUE"], **graph),
            MediaProcessThread(tmp_path / "spool"),
        ):
            sandbox.sender.url = f"{live_server_url}/webhooks/whatsapp/"
            sandbox_thread.call(
                sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                display_phone_number=number.display_phone_number,
            )  # fmt: skip
            sandbox_thread.call(
                sandbox.meta.template_create, number.waba_id,
                {"name": "spring_offer", "language": "en_US", "category": "MARKETING",
                 "components": COMPONENTS},
            )  # fmt: skip
            crowd = sandbox_thread.call(start_crowd, sandbox, CROWD)
            yield crowd, live_server_url, queue


def test_a_supervisor_sends_a_campaign_to_200_customers_and_an_agent_takes_the_calls_it_brings(
    browser, tmp_path, transactional_db, settings_for_media
):
    with campaign_desk(tmp_path, settings_for_media) as (crowd, url, queue):
        members = [member.wa_id for member in crowd.members]
        tappers = [
            wa_id for wa_id in members if reactions_for(CROWD, wa_id=wa_id, nth=1).tap_at_s is not None
        ]
        assert len(tappers) >= 2  # the seed's crowd calls in
        listing = tmp_path / "spring.csv"
        extra = ["not a number", f"+{members[0]}", "+44 20 7946 0000"]  # invalid, listed twice, a landline
        listing.write_text("phone\n" + "\n".join([f"+{wa_id}" for wa_id in members] + extra) + "\n")
        agent = AgentFactory(status=Agent.Status.OFFLINE, display_name="Ana Lima")
        QueueMembership.objects.create(queue=queue, agent=agent)
        desk = browser.new_context().new_page()
        sign_in(desk, url, agent.user.username, PASSWORD)
        desk.click("button[data-status-choice=available]")
        expect(desk.locator("#presence")).to_have_attribute("data-status", "available")
        get_user_model().objects.create_user("sofia", password=PASSWORD, is_staff=True)
        page = browser.new_context().new_page()
        sign_in(page, url, "sofia", PASSWORD)

        page.goto(f"{url}/campaigns/new/")
        page.fill("input[name=name]", "Spring offer")
        page.set_input_files("input[name=csv_file]", str(listing))
        page.check("input[name=opted_in]")
        page.fill("input[name=opt_in_detail]", "Spring newsletter sign-up form")
        page.fill("input[name=tap_rate_percent]", "1.2")
        page.fill("input[name=call_seconds]", "25")
        page.fill("input[name=tap_delay_seconds]", "3")
        page.fill("input[name=agents_on_duty]", "1")
        page.click("form.campaign-form button[type=submit]")

        expect(page.locator("#exclusions h2")).to_have_text("Left out: 3 of 203")
        expect(page.locator("#exclusions")).to_contain_text("Not a valid phone number")
        expect(page.locator("#exclusions")).to_contain_text("Listed more than once")
        expect(page.locator("#estimate h2")).to_contain_text("What it will cost")
        expect(page.locator("#estimate")).to_contain_text("IN")
        expect(page.locator("#plan li").first).to_be_visible()
        expect(page.locator("#plan")).to_contain_text("Erlang C")
        page.fill("input[name=send_rate]", "25")
        page.click("button[name=start]")

        expect(page.locator(".notices")).to_contain_text("Campaign started.")
        expect(page.locator("[data-figure=sent]")).to_have_text("200", timeout=30_000)
        expect(page.locator("[data-figure=delivered]")).to_have_text("200", timeout=15_000)
        for _ in tappers:
            expect(desk.locator("#ring [data-action=accept]")).to_be_visible(timeout=30_000)
            desk.click("#ring [data-action=accept]")
            expect(desk.locator("#in-call [data-role=media-state]")).to_have_text(
                "audio connected", timeout=15_000
            )
            desk.click("#in-call [data-action=hangup]")
            expect(desk.locator("#presence")).not_to_have_attribute("data-status", "on_call", timeout=10_000)
        expect(page.locator("[data-figure=tapped_call]")).to_have_text(str(len(tappers)), timeout=25_000)
        expect(page.locator("[data-figure=calls_answered]")).to_have_text(str(len(tappers)), timeout=25_000)
        expect(page.locator("[data-figure=read]")).not_to_have_text("0")

        campaign = Campaign.objects.get()
        assert campaign.status == Campaign.Status.COMPLETED
        assert campaign.recipients.filter(status=Recipient.Status.EXCLUDED).count() == 3
        calls = Call.objects.filter(cta_payload=campaign.call_button_payload)
        assert sorted(calls.values_list("contact__wa_id", flat=True)) == sorted(tappers)
        assert set(calls.values_list("agent", flat=True)) == {agent.pk}
