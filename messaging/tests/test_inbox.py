"""The inbox's tools in an open conversation: canned replies in the reply box, private notes in the
thread (live in the agent's tabs, read by the notes rule), the customer seeing their message read and
a reply being typed, the search of the list, and what the assistant learnt of the customer."""

import logging

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.utils import timezone

from agents.tests.factories import PASSWORD, supervisor
from agents.tests.test_consumers import open_socket
from assistant.models import Lead
from calls.tests.factories import ContactFactory
from messaging.conversations import conversation_claim
from messaging.inbox import conversation_note_add
from messaging.models import CannedReply, Conversation, ConversationNote, Message
from messaging.services import windows_customer_wrote
from messaging.tasks import send_read_receipt
from messaging.tests.conftest import customer_writes
from messaging.tests.factories import ConversationFactory
from whatsapp.tests.conftest import sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]
State = Conversation.State
CUSTOMER = "447700900123"
CARD = "4111 1111 1111 1111"


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
    return [str(message) for message in response.wsgi_request._messages][-1]


# --- Canned replies --------------------------------------------------------------------------------


def test_the_reply_box_offers_the_numbers_canned_replies_and_every_numbers(
    client, agent, make_conversation, inbox_number
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    windows_customer_wrote(business_number_id=inbox_number.pk, contact_ids=[conversation.contact_id],
                           at=timezone.now())  # fmt: skip
    CannedReply.objects.create(shortcut="refund", title="Refund (all)", text="Refunds take 5 days.")
    CannedReply.objects.create(business_number=inbox_number, shortcut="refund", title="Refund (ours)",
                               text="Your refund is on its way.")  # fmt: skip
    CannedReply.objects.create(shortcut="hours", title="Opening hours", text="We open at 9.")
    CannedReply.objects.create(business_number=BusinessNumberFactory(), shortcut="elsewhere",
                               title="Another number's", text="Not for this number.")  # fmt: skip

    shown = page(client, f"/inbox/{conversation.pk}/")

    assert '<option value="hours" data-text="We open at 9.">/hours · Opening hours</option>' in shown
    assert '<option value="refund" data-text="Your refund is on its way.">/refund · Refund (ours)' in shown
    assert "Refunds take 5 days." not in shown and "Not for this number." not in shown


def test_supervisors_keep_the_canned_replies_in_the_admin_and_agents_may_not(client, agent, inbox_number):
    refused = client.get("/admin/messaging/cannedreply/add/")
    client.force_login(supervisor())

    added = client.post("/admin/messaging/cannedreply/add/", {
        "business_number": inbox_number.pk, "shortcut": "refund", "title": "Refund", "text": "On its way.",
    })  # fmt: skip

    assert refused.status_code == 302 and added.status_code == 302
    assert list(CannedReply.objects.values_list("business_number", "shortcut", "text")) == [
        (inbox_number.pk, "refund", "On its way.")
    ]


# --- Private notes ---------------------------------------------------------------------------------


def test_an_agent_leaves_a_note_shown_in_the_thread_and_never_sent(client, agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)

    response = client.post(f"/inbox/{conversation.pk}/notes/", {"text": "Wants a call back after 5"})
    empty = client.post(f"/inbox/{conversation.pk}/notes/", {"text": "   "})
    thread = page(client, f"/inbox/{conversation.pk}/thread/")

    note = ConversationNote.objects.get()
    assert response["Location"] == f"/inbox/{conversation.pk}/" and notice(empty).startswith("Write the note")
    assert (note.conversation, note.author, note.text) == (
        conversation,
        agent.user,
        "Wants a call back after 5",
    )
    assert f'<li class="note" data-note="{note.pk}">' in thread and "Wants a call back after 5" in thread
    assert f"by {agent.user.get_full_name()}, not sent to the customer" in thread
    assert not Message.objects.exists()


def test_the_pages_script_adds_a_note_without_leaving_the_page(client, agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)

    added = client.post(f"/inbox/{conversation.pk}/notes/", {"text": "VIP"}, HTTP_X_REQUESTED_WITH="fetch")
    empty = client.post(f"/inbox/{conversation.pk}/notes/", {"text": ""}, HTTP_X_REQUESTED_WITH="fetch")

    assert added.status_code == 204
    assert list(ConversationNote.objects.values_list("text", flat=True)) == ["VIP"]
    assert (empty.status_code, empty.content) == (400, b"Write the note (at most 2000 characters).")


def test_colleagues_notes_follow_the_rule_of_call_notes(client, agent, make_agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    colleague = make_agent()
    conversation_note_add(conversation=conversation, author=colleague.user, author_agent_id=colleague.pk,
                          text=f"Paid with {CARD}")  # fmt: skip
    conversation_note_add(conversation=conversation, author=agent.user, author_agent_id=agent.pk,
                          text="My own note")  # fmt: skip

    without = page(client, f"/inbox/{conversation.pk}/thread/")
    agent.user.user_permissions.add(Permission.objects.get(codename="read_colleagues_notes"))
    with_permission = page(client, f"/inbox/{conversation.pk}/thread/")
    client.force_login(supervisor())
    supervisors = page(client, f"/inbox/{conversation.pk}/thread/")
    client.force_login(supervisor(sees_raw_text=True))
    raw = page(client, f"/inbox/{conversation.pk}/thread/")

    assert "My own note" in without and "Paid with" not in without
    assert "Paid with [card]" in with_permission and CARD not in with_permission
    assert "Paid with [card]" in supervisors and "My own note" in supervisors
    assert f"Paid with {CARD}" in raw


def test_a_supervisors_note_is_a_colleagues_and_an_agent_of_another_number_cannot_leave_one(
    client, agent, make_conversation
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    elsewhere = ConversationFactory()
    client.force_login(supervisor())

    client.post(f"/inbox/{conversation.pk}/notes/", {"text": "Escalate if they write again"})
    supervisors = page(client, f"/inbox/{conversation.pk}/thread/")
    client.login(username=agent.user.username, password=PASSWORD)
    refused = client.post(f"/inbox/{elsewhere.pk}/notes/", {"text": "Not mine"})

    assert refused.status_code == 404
    assert list(ConversationNote.objects.values_list("conversation", "text")) == [
        (conversation.pk, "Escalate if they write again")
    ]
    assert "Escalate if they write again" in supervisors
    assert "Escalate" not in page(client, f"/inbox/{conversation.pk}/thread/")  # not the agent's own


def test_the_thread_with_notes_takes_as_many_queries_for_many_notes(
    client, agent, make_conversation, inbox_number, django_assert_max_num_queries
):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    for number in range(6):
        Message.objects.create(business_number=inbox_number, contact=conversation.contact,
                               direction="inbound", message_type="text", text=f"Message {number}",
                               status="received")  # fmt: skip
        conversation_note_add(conversation=conversation, author=agent.user, author_agent_id=agent.pk,
                              text=f"Note {number}")  # fmt: skip

    # the session, the user, what they see (4), the conversation, its messages, its notes
    with django_assert_max_num_queries(9):
        thread = page(client, f"/inbox/{conversation.pk}/thread/")

    assert thread.count('class="note"') == 6 and thread.count('class="inbound"') == 6
    assert thread.index("Message 0") < thread.index("Note 0") < thread.index("Message 1")


@pytest.mark.django_db(transaction=True)
async def test_a_note_reaches_the_agents_other_tabs(make_agent, make_conversation):
    agent = await sync_to_async(make_agent)()
    conversation = await sync_to_async(make_conversation)(state=State.ASSIGNED, agent=agent)
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence

    note = await sync_to_async(conversation_note_add)(
        conversation=conversation, author=agent.user, author_agent_id=agent.pk, text="Call after 5"
    )
    heard = await communicator.receive_json_from(timeout=2)

    assert heard == {"type": "conversation.note", "conversation_id": conversation.pk, "note_id": note.pk}
    await communicator.disconnect()


# --- What the customer sees: read, typing ---------------------------------------------------------


@pytest.fixture
def run_tasks(monkeypatch):
    """The read-receipt tasks queued after commit run at once, here (the broker is left out); what was
    queued, in order."""
    queued = []

    def run_now(*, kwargs, countdown=None):
        queued.append(kwargs)
        return send_read_receipt.apply(kwargs=kwargs)

    monkeypatch.setattr(send_read_receipt, "apply_async", run_now)
    return queued


@pytest.fixture
def sandbox(settings, inbox_number):
    with sandbox_serving(settings, inbox_number) as sandbox:
        sandbox.customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        yield sandbox


def customer_wrote(sandbox, inbox_number, text: str = "Hello") -> str:
    """The customer writes to the number in the sandbox, and the message reaches the inbox."""
    message_id = sandbox.thread.call(
        sandbox.meta.customer_send, sandbox.customer, inbox_number.phone_number_id,
        {"type": "text", "text": {"body": text}},
    )  # fmt: skip
    customer_writes(CUSTOMER, message_id, text)
    return message_id


def receipts(sandbox) -> list[tuple[str, str, bool]]:
    return [(receipt.message_id, receipt.wa_id, receipt.is_typing) for receipt in sandbox.meta.read_receipts]


def test_the_customer_sees_their_latest_message_read_when_the_agent_reads_it(
    client, agent, sandbox, inbox_number, run_tasks, django_capture_on_commit_callbacks
):
    customer_wrote(sandbox, inbox_number, "Hello")
    latest = customer_wrote(sandbox, inbox_number, "Anyone there?")
    conversation = Conversation.objects.get()
    conversation_claim(conversation_id=conversation.pk, agent_id=agent.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/inbox/{conversation.pk}/read/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/inbox/{conversation.pk}/read/")  # nothing unread any more: nothing sent

    assert response.status_code == 302
    assert receipts(sandbox) == [(latest, CUSTOMER, False)]


def test_the_customer_sees_a_reply_being_typed_at_most_every_twenty_seconds(
    client, agent, make_agent, sandbox, inbox_number, run_tasks, django_capture_on_commit_callbacks
):
    latest = customer_wrote(sandbox, inbox_number)
    conversation = Conversation.objects.get()
    conversation_claim(conversation_id=conversation.pk, agent_id=agent.pk)
    caches["api"].delete(f"inbox:typing:{conversation.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"/inbox/{conversation.pk}/typing/")
        again = client.post(f"/inbox/{conversation.pk}/typing/")  # the next keystrokes, another tab
    client.login(username=make_agent().user.username, password=PASSWORD)
    colleague = client.post(f"/inbox/{conversation.pk}/typing/")

    assert (first.status_code, again.status_code, colleague.status_code) == (204, 204, 403)
    assert receipts(sandbox) == [(latest, CUSTOMER, True)]
    assert len(run_tasks) == 1


def test_a_read_receipt_meta_refuses_is_logged_not_shown_to_the_agent(
    client, agent, make_conversation, sandbox, inbox_number, run_tasks, caplog,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    conversation = make_conversation(state=State.ASSIGNED, agent=agent, unread_count=1)
    Message.objects.create(business_number=inbox_number, contact=conversation.contact, direction="inbound",
                           message_type="text", text="Hi", wa_message_id="wamid.unknown-to-meta",
                           status="received")  # fmt: skip

    with (
        caplog.at_level(logging.WARNING, logger="messaging.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/inbox/{conversation.pk}/read/", follow=True)

    assert response.status_code == 200 and '<ul class="notices"' not in response.content.decode()
    assert "not taken by Meta" in caplog.text
    assert receipts(sandbox) == [] and len(run_tasks) == 1


# --- Search ----------------------------------------------------------------------------------------


def test_the_inbox_finds_conversations_by_name_number_and_what_was_written(
    client, agent, make_agent, make_conversation, inbox_number
):
    noor = make_conversation(
        contact=ContactFactory(name="Noor Aziz", wa_id="447700900111"),
        state=State.ASSIGNED,
        agent=make_agent(),
    )  # a colleague's: the number's
    lucia = make_conversation(contact=ContactFactory(name="Lucia Santos", wa_id="447700900222"))
    Message.objects.create(business_number=inbox_number, contact=lucia.contact, direction="inbound",
                           message_type="text", text=f"My parcel is late, card {CARD}",
                           status="received")  # fmt: skip
    ConversationFactory(contact=ContactFactory(name="Noor Elsewhere"))  # another number's

    by_name = page(client, "/inbox/", q="noor")
    by_number = page(client, "/inbox/list/", q="+44 7700 900222")
    by_text = page(client, "/inbox/", q="parcel")
    by_card = page(client, "/inbox/", q=CARD)
    client.force_login(supervisor(sees_raw_text=True))
    raw_by_card = page(client, "/inbox/", q=CARD)

    def found(shown: str) -> set[int]:
        return {pk for pk in (noor.pk, lucia.pk) if f'data-conversation="{pk}"' in shown}

    assert (found(by_name), "Noor Elsewhere" in by_name) == ({noor.pk}, False)
    assert found(by_number) == {lucia.pk} and found(by_text) == {lucia.pk}
    assert found(by_card) == set() and "No conversation matches." in by_card  # masked: not searched
    assert found(raw_by_card) == {lucia.pk}
    assert 'name="q" value="parcel"' in by_text and 'data-query="parcel"' in by_text


def test_a_search_takes_as_many_queries_for_many_conversations(
    client, agent, make_conversation, django_assert_max_num_queries
):
    for _ in range(8):
        make_conversation(contact=ContactFactory(name="Sam Example"))

    with django_assert_max_num_queries(8):  # the session, the user, what they see, the list, the counts
        listed = page(client, "/inbox/list/", q="sam")

    assert listed.count("data-conversation=") == 8


# --- The lead -------------------------------------------------------------------------------------


def test_the_customer_panel_shows_the_lead_with_its_free_text_masked(client, agent, make_conversation):
    conversation = make_conversation(state=State.ASSIGNED, agent=agent)
    Lead.objects.create(
        conversation=conversation, fields={"team_size": "12 people", "budget": f"card {CARD}"}, score=82,
        intent="wants the team plan", sentiment=Lead.Sentiment.ANGRY,
        summary=f"Angry about a double charge on {CARD}.",
    )  # fmt: skip
    without = make_conversation(contact=ContactFactory(), state=State.ASSIGNED, agent=agent)

    shown = page(client, f"/inbox/{conversation.pk}/")

    assert '<span class="badge" data-role="lead-score" title="score of 100">82</span>' in shown
    assert "Angry · wants the team plan" in shown
    assert "<dt>Team size</dt><dd>12 people</dd>" in shown and "<dt>Budget</dt><dd>card [card]</dd>" in shown
    assert "Angry about a double charge on [card]." in shown and CARD not in shown
    assert 'data-role="lead"' not in page(client, f"/inbox/{without.pk}/")
