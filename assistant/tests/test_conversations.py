"""The assistant in the shared inbox: it takes a number's new conversations when it is on, answers
the customer through Meta (the sandbox's customer receives it), keeps the lead, offers hot leads the
call button and hands the rest to the agents; red-list customers get the button, never a call back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from assistant import samples
from assistant.models import AssistantSettings, KnowledgeEntry, Lead, QualificationQuestion
from assistant.services import assistant_hand_over_overdue
from assistant.tasks import answer
from messaging.conversations import conversation_claim
from messaging.models import Conversation, Message
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook, sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

CUSTOMER = "447700900123"  # United Kingdom: the business may call
RED_LIST_CUSTOMER = "12025550143"  # United States: on the red list (settings.OUTBOUND_BLOCKED_COUNTRIES)


@pytest.fixture
def number():
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    AssistantSettings.objects.create(
        business_number=number, is_enabled=True, hot_threshold=samples.HOT_THRESHOLD
    )
    for entry in samples.ENTRIES:
        KnowledgeEntry.objects.create(
            business_number=number, question=entry.question, answer=entry.answer, price=entry.price
        )
    for position, question in enumerate(samples.QUESTIONS):
        QualificationQuestion.objects.create(
            business_number=number,
            lead_field=question.lead_field,
            question=question.question,
            position=position,
        )
    return number


@pytest.fixture
def queue(number):
    queue = QueueFactory(name="Sales")
    queue.business_numbers.add(number)
    return queue


@pytest.fixture
def sandbox(settings, number):
    with sandbox_serving(settings, number) as sandbox:
        sandbox.customers_by_number = {}
        sandbox.delivered = 0
        yield sandbox


class Phone:
    """A sandbox customer chatting with the business: what they write reaches the product as Meta
    delivers it; `write` returns what the business sent back (as the customer's phone got it)."""

    def __init__(self, client, sandbox, number, wa_id: str) -> None:
        self.client, self.sandbox, self.number = client, sandbox, number
        self.customer = sandbox.thread.call(sandbox.add_customer, wa_id=wa_id, name="Ada")

    def deliver(self) -> list[Message]:
        sandbox = self.sandbox
        sandbox.thread.run(sandbox.sender.drain)
        for delivery in sandbox.sender.sent[sandbox.delivered :]:
            assert post_webhook(self.client, delivery.body).status_code == 200
        sandbox.delivered = len(sandbox.sender.sent)
        return list(
            Message.objects.filter(direction="inbound", contact__wa_id=self.customer.wa_id).order_by("pk")
        )

    def send(self, text: str) -> Message:
        self.sandbox.thread.call(self.customer.send_text, self.number.phone_number_id, text)
        return self.deliver()[-1]

    def received(self) -> list:
        return self.sandbox.thread.call(lambda: list(self.customer.inbox))

    def write(self, text: str) -> list:
        """Send, let the assistant answer (its task, as a worker runs it), and return what arrived."""
        before = len(self.received())
        message = self.send(text)
        conversation = Conversation.objects.get(contact=message.contact, state__in=Conversation.OPEN_STATES)
        answer(conversation_id=conversation.pk, message_id=message.pk)
        return self.received()[before:]


@pytest.fixture
def phone(client, sandbox, number, queue):
    return Phone(client, sandbox, number, CUSTOMER)


def text_of(sent) -> str:
    body = sent.body
    return body["text"]["body"] if sent.message_type == "text" else body["interactive"]["body"]["text"]


def the_conversation() -> Conversation:
    return Conversation.objects.select_related("lead").get()


def test_with_the_assistant_on_a_new_conversation_is_the_assistants_and_no_agent_is_offered_it(phone, queue):
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)

    phone.send("hello")

    conversation = the_conversation()
    assert (conversation.state, conversation.agent, conversation.waiting_since) == ("assistant", None, None)


def test_the_assistant_answers_a_question_from_the_knowledge_base_with_its_price_and_says_what_it_is(phone):
    [reply] = phone.write("How much does the Pro plan cost?")

    assert reply.message_type == "text"
    assert text_of(reply) == (
        "Hi, I am the business's automated assistant. The Pro plan includes call recording and reports. "
        "Price: €49 per month."
    )
    sent = Message.objects.get(direction="outbound")
    assert (sent.is_from_assistant, sent.status, sent.wa_message_id) == (True, "sent", reply.message_id)
    conversation = the_conversation()
    assert conversation.state == "assistant"
    assert conversation.lead.replies == 1


def test_the_assistant_qualifies_the_lead_then_offers_a_hot_lead_the_call_button(phone):
    [question] = phone.write("Hi, we are looking at your plans")
    assert text_of(question).endswith("Which plan are you interested in: Starter, Pro or Enterprise?")

    [question] = phone.write("The Enterprise plan")
    assert text_of(question) == "How many people are in your team?"

    [button] = phone.write("We want to buy for 25 people this week")

    assert button.message_type == "interactive"
    interactive = button.body["interactive"]
    assert (interactive["type"], interactive["action"]["parameters"]["display_text"]) == (
        "voice_call",
        "Call us",
    )
    lead = the_conversation().lead
    assert lead.fields == {"plan": "enterprise", "team_size": "25", "timeline": "this week"}
    assert lead.score > samples.HOT_THRESHOLD
    assert lead.call_button_sent_at is not None
    assert "ready to buy" in lead.summary and "team size: 25" in lead.summary and "(hot)" in lead.summary
    assert the_conversation().state == "assistant"  # the customer calls in: no agent takes the chat


def test_a_customer_who_asks_for_a_person_is_told_so_and_waits_for_an_agent_who_is_given_the_chat(
    phone, queue, django_capture_on_commit_callbacks
):
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    message = phone.send("can I talk to someone please?")
    conversation = the_conversation()

    with django_capture_on_commit_callbacks(execute=True):
        answer(conversation_id=conversation.pk, message_id=message.pk)

    [reply] = phone.received()
    assert "passing you to a colleague" in text_of(reply)
    conversation = the_conversation()
    assert (conversation.state, conversation.agent) == ("assigned", agent)
    assert conversation.lead.handed_over_because == "asked for a person"
    assert "asked to talk to a person" in conversation.lead.summary


def test_an_angry_customer_goes_to_an_agent_and_the_lead_says_so(phone):
    phone.write("This is unacceptable, I want a refund")

    conversation = the_conversation()
    assert conversation.state == "waiting"
    assert conversation.lead.sentiment == Lead.Sentiment.ANGRY


def test_a_question_the_knowledge_base_cannot_answer_goes_to_an_agent(phone):
    [reply] = phone.write("Do you sell garden furniture?")

    assert "a colleague will answer you" in text_of(reply)
    assert the_conversation().state == "waiting"


def test_a_red_list_customer_who_asks_for_a_person_gets_the_call_button_never_a_call_back(
    client, sandbox, number, queue
):
    phone = Phone(client, sandbox, number, RED_LIST_CUSTOMER)

    [reply] = phone.write("Can someone call me?")

    assert reply.message_type == "interactive"
    assert "call you back" not in text_of(reply).lower()
    assert the_conversation().state == "assistant"


def test_a_hot_lead_who_writes_again_after_the_button_goes_to_a_person_without_a_second_button(phone):
    phone.write("We want to buy the Pro plan for 12 people this week")

    [reply] = phone.write("We want to buy the Pro plan for 12 people this week, still there?")

    assert reply.message_type == "text"
    assert the_conversation().state == "waiting"


def test_a_voice_note_goes_to_a_person(phone):
    phone.write("hello")
    phone.sandbox.thread.call(phone.customer.send_voice_note, phone.number.phone_number_id)
    note = phone.deliver()[-1]

    answer(conversation_id=the_conversation().pk, message_id=note.pk)

    assert the_conversation().state == "waiting"
    assert "can only read text" in text_of(phone.received()[-1])


def test_a_burst_of_messages_gets_one_answer_to_them_all(phone):
    first = phone.send("Hi")
    second = phone.send("How much does the Starter plan cost?")
    conversation = the_conversation()

    answer(conversation_id=conversation.pk, message_id=first.pk)  # a newer message is waiting: not now
    answer(conversation_id=conversation.pk, message_id=second.pk)
    answer(conversation_id=conversation.pk, message_id=second.pk)  # the task again: answered already

    [reply] = phone.received()
    assert "€19 per month" in text_of(reply)


def test_an_agent_who_steps_in_takes_the_conversation_and_the_assistant_says_nothing_more(phone, queue):
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    message = phone.send("How much does the Pro plan cost?")

    assert conversation_claim(conversation_id=the_conversation().pk, agent_id=agent.pk) is not None
    answer(conversation_id=the_conversation().pk, message_id=message.pk)

    assert phone.received() == []
    assert the_conversation().agent == agent


def test_outside_the_queues_hours_an_assistant_of_business_hours_leaves_the_conversation_to_the_agents(
    phone, number, queue
):
    AssistantSettings.objects.filter(business_number=number).update(
        hours=AssistantSettings.Hours.BUSINESS_HOURS
    )
    queue.holidays = [timezone.now().astimezone(timezone.get_current_timezone()).date().isoformat()]
    queue.timezone = str(timezone.get_current_timezone())
    queue.save()

    phone.send("hello")

    assert the_conversation().state == "waiting"


def test_within_the_queues_hours_an_assistant_of_business_hours_answers(phone, number):
    AssistantSettings.objects.filter(business_number=number).update(
        hours=AssistantSettings.Hours.BUSINESS_HOURS
    )

    phone.send("hello")  # the queue has no weekly hours: always open

    assert the_conversation().state == "assistant"


def test_with_the_assistant_off_conversations_wait_for_agents(phone, number):
    AssistantSettings.objects.filter(business_number=number).update(is_enabled=False)

    phone.send("hello")

    assert the_conversation().state == "waiting"


def test_a_customer_whose_answer_never_came_is_handed_to_the_agents_by_the_sweep(phone):
    phone.send("hello")  # the answer's task is lost: never run
    conversation = the_conversation()

    assert assistant_hand_over_overdue() == 0  # not a minute yet
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Message.objects.update(created_at=two_minutes_ago)
    Conversation.objects.update(last_message_at=two_minutes_ago, opened_at=two_minutes_ago)
    assert assistant_hand_over_overdue() == 1

    conversation.refresh_from_db()
    assert conversation.state == "waiting"


@pytest.mark.parametrize("name", list(payloads.EVERY_TYPE))
def test_whatever_type_a_customer_sends_the_assistant_answers_or_hands_over_never_fails(
    client, number, queue, sandbox, name
):
    from messaging.tests.test_inbound import _item_mutations

    sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
    item = payloads.every_type_message(name)["entry"][0]["changes"][0]["value"]["messages"][0]
    for index, mutated in enumerate([item, *_item_mutations(item)]):
        mutated["id"], mutated["from"] = f"wamid.{name}.{index}", CUSTOMER
        response = post_webhook(client, payloads.envelope("messages", payloads.messages_value([mutated])))
        assert response.status_code == 200
        message = Message.objects.filter(wa_message_id=mutated["id"]).first()
        conversation = Conversation.objects.filter(
            contact=message.contact, state__in=Conversation.OPEN_STATES
        ).first()
        if conversation is not None:
            answer(conversation_id=conversation.pk, message_id=message.pk)  # never raises
        if conversation is not None and conversation.state == "waiting":
            Conversation.objects.filter(pk=conversation.pk).update(state="closed")  # the next one starts anew


def test_the_customers_answer_to_a_call_permission_request_gets_no_answer_from_the_assistant(client, phone):
    phone.write("hello")
    payload = payloads.every_type_message("call permission reply", message_id="wamid.permission1")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = CUSTOMER
    post_webhook(client, payload)
    reply = Message.objects.get(wa_message_id="wamid.permission1")

    answer(conversation_id=the_conversation().pk, message_id=reply.pk)

    assert len(phone.received()) == 1  # the greeting's answer only
    assert the_conversation().state == "assistant"
