"""The shared inbox's pages: the agent's lists, one conversation open with its customer, and what
the agent does with it (take, reply, hand on, close, mark read), each only on the viewer's numbers."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from djmoney.money import Money

from agents.tests.factories import PASSWORD, QueueFactory, supervisor
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import CallPermission
from messaging.conversations import conversation_claim
from messaging.models import Conversation, Message, RateCard, Template
from messaging.services import rate_card_save, windows_customer_wrote
from messaging.tests.factories import ConversationFactory
from recordings.models import Summary
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db
State = Conversation.State


@pytest.fixture
def agent(make_agent, client):
    agent = make_agent(display_name="Ines Duarte")
    client.login(username=agent.user.username, password=PASSWORD)
    return agent


def page(client, url: str, **query) -> str:
    response = client.get(url, query)
    assert response.status_code == 200
    return response.content.decode()


def notice(response) -> str:
    """The notice an action left for the page it redirects to (the latest)."""
    return [str(message) for message in response.wsgi_request._messages][-1]


def reload(conversation: Conversation) -> Conversation:
    conversation.refresh_from_db()
    return conversation


# --- Lists ----------------------------------------------------------------------------------------


def test_the_inbox_lists_the_agents_conversations_and_those_waiting(client, agent, make_conversation):
    mine = make_conversation(contact=ContactFactory(name="Noor Aziz"), state=State.ASSIGNED, agent=agent,
                             unread_count=3)  # fmt: skip
    waiting = make_conversation(contact=ContactFactory(name="Lucia Santos"))
    ConversationFactory(contact=ContactFactory(name="Elsewhere Customer"))  # another number's

    mine_page = page(client, "/inbox/")
    waiting_page = page(client, "/inbox/", tab="waiting")
    all_page = page(client, "/inbox/", tab="all")  # supervisors only: an agent gets their own

    assert (
        f'data-conversation="{mine.pk}"' in mine_page and f'data-conversation="{waiting.pk}"' not in mine_page
    )
    assert '<span class="badge" data-role="unread">3</span>' in mine_page
    assert (
        f'data-conversation="{waiting.pk}"' in waiting_page
        and f'data-conversation="{mine.pk}"' not in waiting_page
    )
    assert "Elsewhere Customer" not in waiting_page + all_page
    assert f'data-conversation="{waiting.pk}"' not in all_page and 'data-tab="all"' not in all_page


def test_a_supervisor_sees_every_open_conversation(client, make_agent, make_conversation):
    colleague = make_agent()
    held = make_conversation(state=State.ASSIGNED, agent=colleague)
    waiting = make_conversation()
    closed = make_conversation(state=State.CLOSED, closed_at=timezone.now())
    client.force_login(supervisor())

    every = page(client, "/inbox/", tab="all")

    assert f'data-conversation="{held.pk}"' in every and f'data-conversation="{waiting.pk}"' in every
    assert f'data-conversation="{closed.pk}"' not in every


def test_the_inbox_list_takes_as_many_queries_for_many_conversations(
    client, agent, make_conversation, django_assert_max_num_queries
):
    for _ in range(8):
        make_conversation(contact=ContactFactory(), state=State.ASSIGNED, agent=agent)

    with django_assert_max_num_queries(8):  # the session, the user, what they see, the list, the counts
        listed = page(client, "/inbox/list/", tab="mine")

    assert listed.count("data-conversation=") == 8


def test_the_inbox_needs_a_sign_in(client, make_conversation):
    conversation = make_conversation()

    assert client.get("/inbox/").status_code == 302
    assert client.get(f"/inbox/{conversation.pk}/").status_code == 302
    assert client.post(f"/inbox/{conversation.pk}/claim/").status_code == 302
    assert reload(conversation).state == State.WAITING


def test_the_dashboard_links_to_the_inbox(client, agent):
    assert 'href="/inbox/" data-role="inbox-link"' in page(client, "/")


# --- One conversation -----------------------------------------------------------------------------


def test_a_conversation_of_a_number_the_agent_does_not_serve_is_not_found(client, agent, make_agent):
    elsewhere = BusinessNumberFactory()
    queue = QueueFactory()
    queue.business_numbers.add(elsewhere)
    conversation = ConversationFactory(business_number=elsewhere, queue=queue)

    answers = [client.get(f"/inbox/{conversation.pk}/").status_code,
               client.get(f"/inbox/{conversation.pk}/thread/").status_code]  # fmt: skip
    for action in ("claim", "close", "read", "reply", "transfer", "notes", "typing"):
        answers.append(
            client.post(f"/inbox/{conversation.pk}/{action}/", {"to": f"queue:{queue.pk}"}).status_code
        )

    assert answers == [404] * 9
    assert (reload(conversation).state, conversation.agent_id) == (State.WAITING, None)


def test_the_open_conversation_shows_the_thread_the_prices_and_the_customer(
    client, agent, make_agent, make_conversation, inbox_number
):
    customer = ContactFactory(name="Noor Aziz", wa_id="447700900111", country="GB")
    conversation = make_conversation(contact=customer, state=State.ASSIGNED, agent=agent)
    Message.objects.create(business_number=inbox_number, contact=customer, direction="inbound",
                           message_type="text", text="Where is my order?", status="received")  # fmt: skip
    rate_card_save(rate=RateCard(category="marketing", market="GB", price=Money("0.0500", "USD"),
                                 effective_from=timezone.now().date()))  # fmt: skip
    own = CallFactory(contact=customer, business_number=inbox_number, agent=agent, status=Call.Status.ENDED)
    Summary.objects.create(call=own, paragraph="Paid by card 4111 1111 1111 1111.", outcome="resolved",
                           backend="local")  # fmt: skip
    colleagues = CallFactory(contact=customer, business_number=inbox_number, agent=make_agent(),
                             status=Call.Status.ENDED)  # fmt: skip
    Summary.objects.create(
        call=colleagues, paragraph="Asked about a refund.", outcome="resolved", backend="local"
    )

    shown = page(client, f"/inbox/{conversation.pk}/")

    assert "Where is my order?" in shown
    assert 'data-window-open="false"' in shown and "only a template can be sent" in shown
    assert "marketing 0.0500 USD" in shown and 'value="text"' not in shown
    assert 'data-allowed="false"' in shown  # no permission to call on file
    assert (
        f'href="/calls/{own.pk}/"' in shown and "Paid by card" in shown and "4111 1111 1111 1111" not in shown
    )
    assert f'href="/calls/{colleagues.pk}/"' not in shown and "Asked about a refund." not in shown
    assert f"?call=%2B447700900111&amp;from={inbox_number.pk}" in shown


def test_the_open_conversation_says_what_allows_a_call_and_warns_before_the_call_that_revokes(
    client, agent, make_conversation, inbox_number
):
    customer = ContactFactory(name="Noor Aziz", wa_id="447700900111", country="GB")
    conversation = make_conversation(contact=customer, state=State.ASSIGNED, agent=agent)
    CallPermission.objects.create(
        business_number=inbox_number, contact=customer, status="permanent", consecutive_unanswered=3,
        granted_at=timezone.now().replace(year=2026, month=3, day=2),
    )  # fmt: skip

    shown = page(client, f"/inbox/{conversation.pk}/")

    assert 'data-allowed="true"' in shown
    assert "The customer granted permanent permission on 2026-03-02" in shown
    assert 'data-code="last_unanswered_before_revocation">One more unanswered call' in shown


def test_the_thread_and_list_fragments_show_what_the_page_shows(
    client, agent, make_conversation, inbox_number
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    Message.objects.create(business_number=inbox_number, contact=conversation.contact, direction="inbound",
                           message_type="text", text="Hello there", status="received")  # fmt: skip

    thread = page(client, f"/inbox/{conversation.pk}/thread/")
    listed = page(client, "/inbox/list/", tab="mine", open=str(conversation.pk))

    assert (
        "Hello there" in thread and f'data-conversation="{conversation.pk}" data-state="assigned"' in thread
    )
    assert f'<li data-conversation="{conversation.pk}" data-state="assigned" class="open">' in listed


# --- Actions --------------------------------------------------------------------------------------


def test_an_agent_takes_a_waiting_conversation(client, agent, make_conversation):
    conversation = make_conversation()

    response = client.post(f"/inbox/{conversation.pk}/claim/")

    assert response.status_code == 302 and response["Location"] == f"/inbox/{conversation.pk}/"
    assert (reload(conversation).state, conversation.agent_id) == (State.ASSIGNED, agent.pk)
    assert notice(response) == "It is yours."
    assert '<li class="success">It is yours.</li>' in page(client, response["Location"])


def test_a_lost_claim_says_someone_else_took_it(client, agent, make_agent, make_conversation):
    conversation = make_conversation()
    colleague = make_agent()
    conversation_claim(conversation_id=conversation.pk, agent_id=colleague.pk)

    response = client.post(f"/inbox/{conversation.pk}/claim/")

    assert notice(response) == "Someone else took this conversation, or it changed meanwhile."
    assert reload(conversation).agent_id == colleague.pk


def test_a_claim_beyond_the_chat_limit_says_why(client, agent, make_conversation):
    agent.chat_limit = 0
    agent.save(update_fields=["chat_limit"])
    conversation = make_conversation()

    response = client.post(f"/inbox/{conversation.pk}/claim/")

    assert reload(conversation).state == State.WAITING
    assert "the most this agent may hold" in notice(response)


def test_a_colleague_cannot_close_someone_elses_conversation(client, agent, make_agent, make_conversation):
    colleague = make_agent()
    theirs = make_conversation(state=State.ASSIGNED, agent=colleague)
    mine = make_conversation(contact=ContactFactory(), state=State.ASSIGNED, agent=agent)

    refused = client.post(f"/inbox/{theirs.pk}/close/")
    closed = client.post(f"/inbox/{mine.pk}/close/")

    assert (
        reload(theirs).state == State.ASSIGNED
        and notice(refused) == "Not yours to close, or it changed meanwhile."
    )
    assert reload(mine).state == State.CLOSED and closed["Location"] == "/inbox/"


def test_a_supervisor_closes_an_agents_conversation(client, make_agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=make_agent())
    client.force_login(supervisor())

    client.post(f"/inbox/{conversation.pk}/close/")

    assert reload(conversation).state == State.CLOSED


def test_an_agent_hands_a_conversation_to_a_colleague_or_a_queue(
    client, agent, make_agent, make_conversation, inbox_queue
):
    colleague = make_agent()
    conversation = conversation_claim(conversation_id=make_conversation().pk, agent_id=agent.pk)

    client.post(f"/inbox/{conversation.pk}/transfer/", {"to": f"agent:{colleague.pk}"})
    to_colleague = (reload(conversation).state, conversation.agent_id)
    refused = client.post(f"/inbox/{conversation.pk}/transfer/", {"to": f"queue:{inbox_queue.pk}"})

    assert to_colleague == (State.ASSIGNED, colleague.pk)
    assert notice(refused) == "Not yours to transfer, or it changed meanwhile."
    assert reload(conversation).agent_id == colleague.pk


def test_a_transfer_to_a_queue_of_another_number_is_refused(client, agent, make_conversation):
    conversation = conversation_claim(conversation_id=make_conversation().pk, agent_id=agent.pk)
    elsewhere = QueueFactory()

    response = client.post(f"/inbox/{conversation.pk}/transfer/", {"to": f"queue:{elsewhere.pk}"})

    assert notice(response) == "That queue does not serve the conversation's number."
    assert (reload(conversation).state, conversation.agent_id) == (State.ASSIGNED, agent.pk)


def test_the_agent_marks_their_conversation_read(client, agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent, unread_count=2)

    before = page(client, f"/inbox/{conversation.pk}/")
    client.post(f"/inbox/{conversation.pk}/read/")

    assert 'data-action="read">Mark read (2)' in before
    assert reload(conversation).unread_count == 0


def test_the_agent_replies_inside_the_window_and_the_reply_is_recorded(
    client, agent, make_conversation, inbox_number
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    windows_customer_wrote(business_number_id=inbox_number.pk, contact_ids=[conversation.contact_id],
                           at=timezone.now())  # fmt: skip
    form = {"kind": "text", "text": "On its way!", "idempotency_key": "reply-1"}

    shown = page(client, f"/inbox/{conversation.pk}/")
    client.post(f"/inbox/{conversation.pk}/reply/", form)
    client.post(f"/inbox/{conversation.pk}/reply/", form)  # a double click

    message = Message.objects.get()
    assert 'value="text" data-action="send">Send text' in shown and "service free" in shown
    assert (message.text, message.direction, message.sent_by, message.contact_id) == (
        "On its way!", "outbound", agent.user, conversation.contact_id,
    )  # fmt: skip
    assert "On its way!" in page(client, f"/inbox/{conversation.pk}/thread/")


def test_outside_the_window_only_a_template_of_the_numbers_account_is_sent(
    client, agent, make_conversation, inbox_number
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    others = Template.objects.create(waba_id="another-account", name="others", language="en",
                                     category="utility", status=Template.Status.APPROVED)  # fmt: skip
    ours = Template.objects.create(waba_id=inbox_number.waba_id, name="order_update", language="en",
                                   category="utility", status=Template.Status.APPROVED)  # fmt: skip

    text = client.post(
        f"/inbox/{conversation.pk}/reply/", {"kind": "text", "text": "Hi", "idempotency_key": "a"}
    )
    foreign = client.post(f"/inbox/{conversation.pk}/reply/",
                          {"kind": "template", "template": others.pk, "idempotency_key": "b"})  # fmt: skip
    client.post(
        f"/inbox/{conversation.pk}/reply/", {"kind": "template", "template": ours.pk, "idempotency_key": "c"}
    )

    assert "only a template can be sent now" in notice(text)
    assert notice(foreign) == "Choose a template."
    assert list(Message.objects.values_list("template__name", flat=True)) == ["order_update"]


def test_only_the_agent_who_has_the_conversation_replies(
    client, agent, make_agent, make_conversation, inbox_number
):
    conversation = make_conversation(state=State.ASSIGNED, agent=make_agent())
    windows_customer_wrote(business_number_id=inbox_number.pk, contact_ids=[conversation.contact_id],
                           at=timezone.now())  # fmt: skip

    response = client.post(f"/inbox/{conversation.pk}/reply/",
                           {"kind": "text", "text": "Hi", "idempotency_key": "a"})  # fmt: skip

    assert notice(response) == "Take the conversation before replying."
    assert not Message.objects.exists()


def test_a_supervisor_reads_summaries_raw_only_with_the_permission(client, make_conversation, inbox_number):
    conversation = make_conversation()
    call = CallFactory(contact=conversation.contact, business_number=inbox_number, status=Call.Status.ENDED)
    Summary.objects.create(
        call=call, paragraph="Card 4111 1111 1111 1111.", outcome="resolved", backend="local"
    )
    user = supervisor()
    user.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    client.force_login(user)

    masked = page(client, f"/inbox/{conversation.pk}/")

    assert f'href="/calls/{call.pk}/"' in masked and "4111 1111 1111 1111" not in masked


def test_the_call_button_is_one_click_away_and_reaches_the_customers_phone(
    client, agent, make_conversation, inbox_number, settings
):
    from whatsapp.tests.conftest import sandbox_serving

    conversation = make_conversation(
        state=State.ASSIGNED, agent=agent, contact=ContactFactory(wa_id="447700900321")
    )
    with sandbox_serving(settings, inbox_number) as sandbox:
        customer = sandbox.thread.call(sandbox.add_customer, wa_id="447700900321", name="Noor Aziz")
        sandbox.thread.call(
            customer.send_text, inbox_number.phone_number_id, "Can we talk?"
        )  # the window opens

        shown = page(client, f"/inbox/{conversation.pk}/")
        response = client.post(
            f"/inbox/{conversation.pk}/reply/", {"kind": "call_button", "idempotency_key": "b1"}
        )
        received = sandbox.thread.call(lambda: list(customer.inbox))

    assert 'data-action="call-button"' in shown
    assert "call" in notice(response).lower()
    [button] = received
    assert (button.message_type, button.body["interactive"]["type"]) == ("interactive", "voice_call")
    assert Message.objects.get(direction="outbound").message_type == "interactive"


def test_an_agent_takes_over_a_conversation_from_the_assistant(client, agent, make_conversation):
    conversation = make_conversation(state=State.ASSISTANT, waiting_since=None)

    shown = page(client, f"/inbox/{conversation.pk}/")
    response = client.post(f"/inbox/{conversation.pk}/claim/")

    assert "Take over from the assistant" in shown
    assert notice(response) == "It is yours."
    assert (reload(conversation).state, reload(conversation).agent) == (State.ASSIGNED, agent)


def test_an_agents_inbox_docks_the_softphone_and_their_own_day(client, agent, make_agent, make_conversation):
    colleague = make_agent(display_name="Chen Wei")
    conversation = make_conversation(state=State.CLOSED, agent=agent, closed_at=timezone.now())
    make_conversation(contact=ContactFactory(), state=State.CLOSED, agent=colleague, closed_at=timezone.now())

    for shown in (page(client, "/inbox/"), page(client, f"/inbox/{conversation.pk}/")):
        assert 'id="softphone-dock"' in shown and 'id="ring"' in shown and "agents/dashboard.js" in shown
        assert '<strong data-role="chats-closed">1</strong> chat closed' in shown


def test_a_supervisors_inbox_has_no_softphone(client, make_conversation):
    conversation = make_conversation()
    client.force_login(supervisor())

    for shown in (page(client, "/inbox/"), page(client, f"/inbox/{conversation.pk}/")):
        assert 'id="softphone-dock"' not in shown and "agents/dashboard.js" not in shown
        assert 'id="my-day"' not in shown


def test_the_customer_panel_shows_what_the_customer_has_cost_to_those_who_see_costs(
    client, agent, make_conversation, inbox_number
):
    from messaging.models import Charge

    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    Message.objects.create(
        business_number=inbox_number, contact=conversation.contact, direction="outbound",
        message_type="template", wa_message_id="wamid.cost1", status="delivered",
    )  # fmt: skip
    Charge.objects.create(
        kind="message", reference="wamid.cost1", business_number=inbox_number, pricing_type="regular",
        billed_on=timezone.now().date(), amount=Money("0.0430", "USD"),
    )  # fmt: skip

    without = page(client, f"/inbox/{conversation.pk}/")
    agent.user.user_permissions.add(Permission.objects.get(codename="view_charge"))
    with_permission = page(client, f"/inbox/{conversation.pk}/")

    assert 'data-role="customer-cost"' not in without
    assert "Cost so far: 0.0430 USD" in with_permission
