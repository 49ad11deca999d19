"""The threads in the back office: what customers and agents wrote, masked for supervisors who may
not read raw text, and never found for them by what the mask hides."""

import pytest

from agents.tests.factories import supervisor
from calls.tests.factories import ContactFactory
from messaging.models import Message
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/messaging/message/"
WROTE = "Card 4111 1111 1111 1111, mail jo@example.com"


@pytest.fixture
def message() -> Message:
    return Message.objects.create(
        business_number=BusinessNumberFactory(), contact=ContactFactory(name="Jo Lee"), direction="inbound",
        message_type="text", text=WROTE, status="received", wa_message_id="wamid.card",
        raw={"from": "447700900111", "id": "wamid.card", "type": "text", "text": {"body": WROTE}},
    )  # fmt: skip


def shown(response) -> list[int]:
    return [message.pk for message in response.context["cl"].result_list]


def test_messages_are_masked_in_the_list_and_on_their_page_unless_the_supervisor_reads_raw_text(
    client, message
):
    client.force_login(supervisor())
    masked = client.get(LIST).content.decode(), client.get(f"{LIST}{message.pk}/change/").content.decode()
    client.force_login(supervisor(sees_raw_text=True))
    raw = client.get(LIST).content.decode(), client.get(f"{LIST}{message.pk}/change/").content.decode()

    listed, page = masked
    assert '<td class="field-text">Card [card], mail [email]</td>' in listed
    assert '<div class="readonly">Card [card], mail [email]</div>' in page
    assert not any("4111" in text or "jo@example.com" in text for text in masked)  # nor in Meta's delivery
    listed, page = raw
    assert f'<td class="field-text">{WROTE}</td>' in listed
    assert f'<div class="readonly">{WROTE}</div>' in page


@pytest.mark.parametrize("search", ["4111 1111 1111 1111", "jo@example.com"])
def test_a_search_finds_messages_by_what_is_masked_only_for_who_reads_raw_text(client, message, search):
    client.force_login(supervisor())
    masked = client.get(LIST, {"q": search})
    words = client.get(LIST, {"q": "mail"})  # what no mask hides: searched for every supervisor
    client.force_login(supervisor(sees_raw_text=True))
    raw = client.get(LIST, {"q": search})

    assert (shown(masked), shown(words), shown(raw)) == ([], [message.pk], [message.pk])
