"""Text first, voice to close, end to end: sandbox customers write to a number whose assistant is on;
the web process, a real worker and the agent's browser do the rest."""

import contextlib
import uuid

import pytest
from django.conf import settings
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from assistant.demo import demo_assistant_create
from calls.models import Call
from messaging.models import Conversation, Message
from tests.e2e.conftest import MediaProcessThread, serving_app, sign_in, task_worker, wait_for
from whatsapp.sandbox import chats
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
TOKEN = "e2e-text-first-token"


@contextlib.contextmanager
def text_first_desk(tmp_path, *, media_settings=None):
    """Meta (the sandbox), the web process and a worker, for a number whose assistant is on, with a
    queue; and a media process when given its settings (`settings_for_media`). Yields (sandbox
    thread, sandbox, URL, number, queue)."""
    number = BusinessNumberFactory(phone_number_id="830000000000001", display_phone_number="+44 20 7946 0830")
    demo_assistant_create(phone_number_id=number.phone_number_id)
    queue = QueueFactory(name="Sales")
    queue.business_numbers.add(number)
    graph = {
        "WHATSAPP_TOKEN": TOKEN,
        "CELERY_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{uuid.uuid4().hex[:8]}",
    }
    sandbox_thread = SandboxThread(
        webhook_url=None,
        app_secret=settings.WHATSAPP_APP_SECRET,
        token=TOKEN,
        record_dir=tmp_path / "customers",
    )
    with sandbox_thread as sandbox:
        graph["WHATSAPP_GRAPH_URL"] = sandbox.graph_url
        if media_settings is not None:  # the media process runs in this process: Meta is the sandbox
            media_settings.WHATSAPP_GRAPH_URL, media_settings.WHATSAPP_TOKEN = sandbox.graph_url, TOKEN
        media = (
            MediaProcessThread(tmp_path / "spool") if media_settings is not None else contextlib.nullcontext()
        )
        with (
            serving_app(**graph) as live_server_url,
            task_worker(graph["CELERY_QUEUE"], **graph),
            media,
        ):
            sandbox.sender.url = f"{live_server_url}/webhooks/whatsapp/"
            sandbox_thread.call(
                sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                display_phone_number=number.display_phone_number,
            )  # fmt: skip
            yield sandbox_thread, sandbox, live_server_url, number, queue


def texts_received(sandbox_thread, customer) -> list[str]:
    def texts() -> list[str]:
        return [
            message.body["text"]["body"]
            if message.message_type == "text"
            else message.body["interactive"]["body"]["text"]
            for message in customer.inbox
        ]

    return sandbox_thread.call(texts)


def test_a_customer_who_asks_for_a_person_is_given_to_an_agent_whose_reply_reaches_their_phone(
    browser, tmp_path, transactional_db
):
    with text_first_desk(tmp_path) as (sandbox_thread, sandbox, live_server_url, number, queue):
        agent = AgentFactory(status=Agent.Status.AVAILABLE, display_name="Amira Haddad")
        QueueMembership.objects.create(queue=queue, agent=agent)
        page = browser.new_context().new_page()
        sign_in(page, live_server_url, agent.user.username, PASSWORD)
        page.goto(f"{live_server_url}/inbox/?tab=mine")
        expect(page.locator("#inbox")).to_have_attribute("data-live", "true")
        customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900444", name="Tomás Ruiz")

        sandbox_thread.call(customer.send_text, number.phone_number_id, "Hi, can I talk to someone please?")

        told = wait_for(lambda: texts_received(sandbox_thread, customer))
        assert "passing you to a colleague" in told[0]
        conversation = wait_for(lambda: Conversation.objects.filter(state="assigned", agent=agent).first())
        row = page.locator(f'[data-conversation="{conversation.pk}"]')
        expect(row).to_be_visible()  # pushed to the agent's tab
        row.locator("a").click()
        expect(page.locator('[data-role="thread"]')).to_contain_text("can I talk to someone please?")
        expect(page.locator('[data-role="thread"]')).to_contain_text("Assistant")
        expect(page.locator("#inbox")).to_have_attribute("data-live", "true")
        page.fill('[data-role="reply-text"]', "Hello Tomás, Amira here. How can I help?")
        page.keyboard.press("Control+Enter")

        wait_for(lambda: len(texts_received(sandbox_thread, customer)) == 2)
        assert texts_received(sandbox_thread, customer)[1] == "Hello Tomás, Amira here. How can I help?"
        reply = Message.objects.filter(direction="outbound", sent_by=agent.user).get()
        assert not reply.is_from_assistant
        wait_for(
            lambda: Message.objects.filter(pk=reply.pk, status__in=["sent", "delivered", "read"]).exists()
        )


# A customer who asks a price, then tells the assistant what they need: a hot lead, who calls.
READY_TO_BUY = chats.ChatScript(
    name="ready_to_buy",
    lines=("How much does the Pro plan cost?", "Hi, we are looking at your plans"),
    answers=(
        chats.Answer(asks=r"\bplans?\b", says="The Enterprise plan"),
        chats.Answer(asks=r"how many people", says="We are 25 people"),
        chats.Answer(asks=r"\bwhen\b", says="We want to buy it this week"),
    ),
    taps_call_button=True,
)


def test_the_assistant_qualifies_a_hot_lead_who_calls_and_the_agent_is_rung_with_the_chat(
    browser, tmp_path, transactional_db, settings_for_media
):
    with text_first_desk(tmp_path, media_settings=settings_for_media) as (
        sandbox_thread, sandbox, live_server_url, number, queue,
    ):  # fmt: skip
        agent = AgentFactory(status=Agent.Status.OFFLINE, display_name="Chen Wei")
        QueueMembership.objects.create(queue=queue, agent=agent)
        page = browser.new_context().new_page()
        sign_in(page, live_server_url, agent.user.username, PASSWORD)
        page.click("button[data-status-choice=available]")
        expect(page.locator("#presence")).to_have_attribute("data-status", "available")
        customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900555", name="Priya Nair")

        chat = sandbox_thread.run(
            customer.chat,
            number.phone_number_id,
            READY_TO_BUY,
            reply_timeout_s=15,
            call_talk_s=None,
            timeout_s=60,
        )

        assert chat.outcome == chats.CALLED
        business = [(entry.kind, entry.text) for entry in chat.replies]
        assert business[0] == (
            "text",
            "Hi, I am the business's automated assistant. The Pro plan includes call recording and reports. "
            "Price: €49 per month.",
        )
        # The price question told it the plan: it asks the rest, then offers the hot lead the button.
        assert [text for _, text in business[1:3]] == [
            "How many people are in your team?",
            "When would you like to start?",
        ]
        assert business[3][0] == "call_button"
        card = page.locator("#ring [data-role=chat]")
        expect(page.locator("#ring [data-role=caller-name]")).to_have_text("Priya Nair", timeout=15_000)
        expect(card.locator("[data-role=chat-summary]")).to_contain_text("ready to buy")
        expect(card.locator("[data-role=chat-fields]")).to_contain_text("Planpro")
        expect(card.locator("[data-role=chat-fields]")).to_contain_text("Team size25")
        expect(card.locator("[data-role=chat-fields]")).to_contain_text("this week")
        page.click("#ring [data-action=accept]")
        expect(page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        thread = page.locator("#call-chat [data-role=chat-thread]")
        expect(thread).to_contain_text("How much does the Pro plan cost?")
        expect(thread).to_contain_text("We want to buy it this week")

        call = Call.objects.get()
        assert (call.conversation.contact, call.agent) == (call.contact, agent)
        assert call.conversation.lead.call_button_sent_at is not None
        sandbox_thread.run(customer.hang_up, chat.call.call)
        wait_for(lambda: Call.objects.filter(pk=call.pk, status=Call.Status.ENDED).exists())
