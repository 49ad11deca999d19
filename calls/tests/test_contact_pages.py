import pytest
from django.utils import timezone

from agents.models import QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import CallPermission
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client):
    agent = AgentFactory(display_name="Ines Duarte")
    client.login(username=agent.user.username, password=PASSWORD)
    return agent


def test_contacts_are_found_by_number_or_name(client, agent, django_assert_max_num_queries):
    ContactFactory(wa_id="447700900111", name="Noor Aziz")
    ContactFactory(wa_id="5511987654321", name="Lucia Santos")

    by_number = client.get("/contacts/", {"q": "+44 7700"}).content.decode()
    with django_assert_max_num_queries(4):
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
    CallFactory(contact=contact, agent=agent, status=Call.Status.ENDED, end_reason="completed",
                disposition="resolved", wrap_up_notes="Refund issued.")  # fmt: skip

    page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert f'data-number="{open_number.pk}" data-allowed="true"' in page
    assert f'data-number="{closed_number.pk}" data-allowed="false"' in page
    assert 'data-code="coexistence"' in page
    assert f"?call=%2B447700900111&amp;from={open_number.pk}" in page
    assert "Refund issued." in page and "Resolved" in page


def test_contact_pages_need_a_sign_in(client):
    contact = ContactFactory()

    assert client.get(f"/contacts/{contact.pk}/").status_code == 302
    assert client.get("/contacts/").status_code == 302
