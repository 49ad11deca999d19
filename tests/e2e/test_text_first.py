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
from messaging.models import Conversation, Message
from tests.e2e.conftest import serving_app, sign_in, task_worker, wait_for
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
TOKEN = "e2e-text-first-token"


@contextlib.contextmanager
def text_first_desk(tmp_path):
    """Meta (the sandbox), the web process and a worker, for a number whose assistant is on, with a
    queue. Yields (sandbox thread, sandbox, URL, number, queue)."""
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
        with serving_app(**graph) as live_server_url, task_worker(graph["CELERY_QUEUE"], **graph):
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
