from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from djmoney.money import Money

from agents.models import QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory, UserFactory
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import CallPermission
from messaging.models import Message, RateCard
from messaging.services import rate_card_save, windows_customer_wrote
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client):
    agent = AgentFactory(display_name="Ines Duarte")
    client.login(username=agent.user.username, password=PASSWORD)
    return agent


@pytest.fixture
def number_of_agent(agent):
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0303")
    queue = QueueFactory()
    queue.business_numbers.add(number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    return number


def test_contacts_are_found_by_number_or_name(client, number_of_agent, django_assert_max_num_queries):
    for contact in (
        ContactFactory(wa_id="447700900111", name="Noor Aziz"),
        ContactFactory(wa_id="5511987654321", name="Lucia Santos"),
    ):
        CallFactory(contact=contact, business_number=number_of_agent, status=Call.Status.ENDED)

    by_number = client.get("/contacts/", {"q": "+44 7700"}).content.decode()
    with django_assert_max_num_queries(8):  # the session, the user, what they see, the contacts
        by_name = client.get("/contacts/", {"q": "lucia"}).content.decode()

    assert "Noor Aziz" in by_number and "Lucia Santos" not in by_number
    assert "Lucia Santos" in by_name and "Noor Aziz" not in by_name


def test_contact_page_says_from_which_number_the_customer_may_be_called(client, agent):
    open_number = BusinessNumberFactory(display_phone_number="+44 20 7946 0301")
    closed_number = BusinessNumberFactory(display_phone_number="+44 20 7946 0302", is_coexistence=True)
    queue = QueueFactory()
    queue.business_numbers.add(open_number, closed_number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    contact = ContactFactory(wa_id="447700900111", name="Noor Aziz")
    for number in (open_number, closed_number):
        CallPermission.objects.create(business_number=number, contact=contact, status="permanent",
                                      granted_at=timezone.now())  # fmt: skip
    CallFactory(contact=contact, business_number=open_number, agent=agent, status=Call.Status.ENDED,
                end_reason="completed", disposition="resolved", wrap_up_notes="Refund issued.")  # fmt: skip

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f'data-number="{open_number.pk}" data-allowed="true"' in page
    assert f'data-number="{closed_number.pk}" data-allowed="false"' in page
    assert 'data-code="coexistence"' in page
    assert f"?call=%2B447700900111&amp;from={open_number.pk}" in page
    assert "Refund issued." in page and "Resolved" in page


def test_contact_page_says_what_allows_a_call_and_warns_before_the_call_that_revokes(
    client, agent, number_of_agent
):
    contact = ContactFactory(wa_id="447700900111", name="Noor Aziz")
    CallPermission.objects.create(
        business_number=number_of_agent, contact=contact, status="permanent", consecutive_unanswered=3,
        granted_at=timezone.now().replace(year=2026, month=3, day=2),
    )  # fmt: skip
    CallFactory(contact=contact, business_number=number_of_agent, status=Call.Status.ENDED)

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "The customer granted permanent permission on 2026-03-02" in page
    assert (
        '<p class="warning" data-code="last_unanswered_before_revocation">One more unanswered call revokes '
        "the customer&#x27;s permission (Meta: 4 unanswered in a row).</p>"
    ) in page


def test_contact_page_refuses_a_landline(client, agent, number_of_agent):
    contact = ContactFactory(wa_id="442079460123", name="Office line")
    CallPermission.objects.create(business_number=number_of_agent, contact=contact, status="permanent",
                                  granted_at=timezone.now())  # fmt: skip
    CallFactory(contact=contact, business_number=number_of_agent, status=Call.Status.ENDED)

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f'data-number="{number_of_agent.pk}" data-allowed="false"' in page
    assert '<li data-code="not_mobile">+442079460123 is a landline' in page


def test_contact_pages_need_a_sign_in(client):
    contact = ContactFactory()

    assert client.get(f"/contacts/{contact.pk}/").status_code == 302
    assert client.get("/contacts/").status_code == 302


def test_contact_page_shows_the_thread_what_may_be_sent_and_what_it_costs(client, agent, number_of_agent):
    contact = ContactFactory(wa_id="447700900111")
    Message.objects.create(business_number=number_of_agent, contact=contact, direction="inbound",
                           message_type="text", text="Where is my order?", status="received")  # fmt: skip
    rate_card_save(rate=RateCard(category="marketing", market="GB", price=Money("0.0500", "USD"),
                                 effective_from=date(2025, 7, 1)))  # fmt: skip

    closed = client.get(f"/contacts/{contact.pk}/").content.decode()
    windows_customer_wrote(business_number_id=number_of_agent.pk, contact_ids=[contact.pk], at=timezone.now())
    opened = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Where is my order?" in closed
    assert f'data-number="{number_of_agent.pk}" data-window-open="false"' in closed
    assert "only a template can be sent" in closed and 'value="text"' not in closed
    assert "marketing 0.0500 USD" in closed and 'utility <span class="error">no rate on file</span>' in closed
    assert f'data-number="{number_of_agent.pk}" data-window-open="true"' in opened
    assert 'value="text">Send text' in opened and "utility free" in opened


def test_an_agent_sends_a_text_once_however_often_the_form_is_posted(client, agent, number_of_agent):
    contact = ContactFactory(wa_id="447700900111")
    windows_customer_wrote(business_number_id=number_of_agent.pk, contact_ids=[contact.pk], at=timezone.now())
    form = {"number": number_of_agent.pk, "kind": "text", "text": "On its way!", "idempotency_key": "form-1"}

    first = client.post(f"/contacts/{contact.pk}/messages/", form)
    second = client.post(f"/contacts/{contact.pk}/messages/", form)  # a double click

    message = Message.objects.get()
    assert (first.status_code, second.status_code) == (302, 302)
    assert (message.text, message.status, message.sent_by, message.direction) == (
        "On its way!", "pending", agent.user, "outbound",
    )  # fmt: skip
    assert "On its way!" in client.get(f"/contacts/{contact.pk}/").content.decode()


def test_sending_is_refused_from_a_number_not_the_agents_or_outside_the_window(
    client, agent, number_of_agent
):
    contact = ContactFactory(wa_id="447700900111")
    CallFactory(contact=contact, business_number=number_of_agent, status=Call.Status.ENDED,
                ended_at=timezone.now() - timedelta(days=3))  # fmt: skip
    other = BusinessNumberFactory(display_phone_number="+44 20 7946 0304")
    windows_customer_wrote(business_number_id=other.pk, contact_ids=[contact.pk], at=timezone.now())
    url = f"/contacts/{contact.pk}/messages/"
    text = {"kind": "text", "text": "Hi"}

    foreign = client.post(url, {"number": other.pk, "idempotency_key": "a", **text}, follow=True)
    closed = client.post(url, {"number": number_of_agent.pk, "idempotency_key": "b", **text}, follow=True)

    assert "Choose one of your numbers" in foreign.content.decode()
    assert "only a template can be sent now" in closed.content.decode()
    assert Message.objects.count() == 0


NOTES = "Card 4111 1111 1111 1111, mail jo@example.com"


def ended_call(*, contact, number, agent, notes: str = "") -> Call:
    return CallFactory(
        contact=contact,
        business_number=number,
        agent=agent,
        status=Call.Status.ENDED,
        end_reason="completed",
        wrap_up_notes=notes,
    )


def test_an_agent_neither_finds_nor_opens_a_contact_of_a_number_they_do_not_serve(client, number_of_agent):
    theirs = ContactFactory(wa_id="447700900111", name="Noor Aziz")
    ended_call(contact=theirs, number=number_of_agent, agent=None)
    elsewhere = ContactFactory(wa_id="447700900112", name="Noor Haddad")
    ended_call(contact=elsewhere, number=BusinessNumberFactory(), agent=AgentFactory(), notes=NOTES)
    form = {"number": number_of_agent.pk, "kind": "text", "text": "Hi", "idempotency_key": "a"}

    listed = client.get("/contacts/").content.decode()
    found = client.get("/contacts/", {"q": "noor"}).content.decode()
    page = client.get(f"/contacts/{elsewhere.pk}/")
    sent = client.post(f"/contacts/{elsewhere.pk}/messages/", form)

    assert "Noor Aziz" in listed and "Noor Haddad" not in listed
    assert "Noor Aziz" in found and "Noor Haddad" not in found
    assert (page.status_code, sent.status_code) == (404, 404)
    assert Message.objects.count() == 0


def test_an_agent_reads_their_own_notes_masked_on_the_contact_page_and_not_a_colleagues(
    client, agent, number_of_agent
):
    contact = ContactFactory(wa_id="447700900111")
    own = ended_call(contact=contact, number=number_of_agent, agent=agent, notes=NOTES)
    colleagues = ended_call(
        contact=contact, number=number_of_agent, agent=AgentFactory(), notes="Asked for ravi@example.com"
    )
    ended_call(contact=contact, number=BusinessNumberFactory(), agent=agent, notes="On another number.")

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "<td>Card [card], mail [email]</td>" in page
    assert "4111" not in page and "Asked for" not in page and "On another number." not in page
    assert page.count("<tr><td>") == 2  # the two calls on the agent's number
    assert f'href="/calls/{own.pk}/"' in page  # their own call's page
    assert f'href="/calls/{colleagues.pk}/"' not in page  # a colleague's call is not theirs to open


@pytest.mark.parametrize(
    ("permissions", "shown"),
    [
        (["read_colleagues_notes"], "Asked for [email]"),
        (["read_colleagues_notes", "view_raw_transcript"], "Asked for ravi@example.com"),
    ],
)
def test_an_agent_who_may_read_colleagues_notes_reads_them_masked_unless_raw(
    client, agent, number_of_agent, permissions, shown
):
    agent.user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    contact = ContactFactory(wa_id="447700900111")
    ended_call(
        contact=contact, number=number_of_agent, agent=AgentFactory(), notes="Asked for ravi@example.com"
    )

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f"<td>{shown}</td>" in page


def test_the_thread_on_the_contact_page_is_masked(client, number_of_agent):
    contact = ContactFactory(wa_id="447700900111")
    Message.objects.create(
        business_number=number_of_agent, contact=contact, direction="inbound", message_type="text",
        text=NOTES, status="received",
    )  # fmt: skip

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Card [card], mail [email]" in page
    assert "4111" not in page and "jo@example.com" not in page


def test_a_supervisor_finds_and_opens_every_contact_the_notes_masked(client):
    client.force_login(UserFactory(is_staff=True))
    contact = ContactFactory(wa_id="447700900111", name="Noor Aziz")
    ended_call(contact=contact, number=BusinessNumberFactory(), agent=AgentFactory(), notes=NOTES)

    found = client.get("/contacts/", {"q": "noor"}).content.decode()
    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Noor Aziz" in found
    assert "<td>Card [card], mail [email]</td>" in page and "4111" not in page
