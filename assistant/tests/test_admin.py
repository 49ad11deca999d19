import pytest
from django.contrib.auth.models import Group

from agents.tests.factories import UserFactory
from assistant.models import KnowledgeEntry
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


def supervisor():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="supervisor"))
    return user


@pytest.mark.parametrize(
    "url",
    [
        "/admin/assistant/knowledgeentry/",
        "/admin/assistant/knowledgeentry/add/",
        "/admin/assistant/qualificationquestion/add/",
        "/admin/assistant/assistantsettings/",
    ],
)
def test_a_supervisor_opens_the_assistants_pages(client, url):
    client.force_login(supervisor())

    assert client.get(url).status_code == 200


def test_a_supervisor_does_not_open_the_leads(client):
    client.force_login(supervisor())

    assert client.get("/admin/assistant/lead/").status_code == 403


def test_a_supervisor_adds_a_knowledge_base_entry_with_its_price(client):
    number = BusinessNumberFactory()
    client.force_login(supervisor())

    response = client.post(
        "/admin/assistant/knowledgeentry/add/",
        {
            "business_number": number.pk,
            "question": "How much does the Pro plan cost?",
            "answer": "The Pro plan includes call recording.",
            "price": "€49 per month",
        },
    )

    assert response.status_code == 302
    assert list(KnowledgeEntry.objects.values_list("business_number", "question", "price")) == [
        (number.pk, "How much does the Pro plan cost?", "€49 per month")
    ]
