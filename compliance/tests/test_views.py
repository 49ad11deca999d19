import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.services import agents_tell_permission_lost
from agents.tests.factories import AgentFactory
from compliance.models import CallPermission
from compliance.tests.factories import CUSTOMER, CallPermissionFactory, sent_requests
from messaging.models import Contact
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor(client):
    user = get_user_model().objects.create_user("sam", password="pw", is_staff=True)
    client.force_login(user)
    return user


def test_why_page_lists_every_refusal_and_offers_the_fallback(client, supervisor):
    number = BusinessNumberFactory(display_phone_number="+1 212 555 0101", is_coexistence=True)

    response = client.get("/compliance/why/", {"business_number": number.pk, "customer": "+44 7700 900123"})

    page = response.content.decode()
    assert response.status_code == 200
    for code in ("business_country_blocked", "coexistence", "no_permission"):
        assert f"<code>{code}</code>" in page
    assert "Send a &quot;Call us&quot; button" in page
    assert Contact.objects.count() == 0  # a check writes nothing


def test_why_page_says_yes_when_allowed(client, supervisor):
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0102")
    now = timezone.now()
    contact = Contact.objects.create(wa_id=CUSTOMER)
    CallPermissionFactory(business_number=number, contact=contact, status=CallPermission.Status.PERMANENT,
                          granted_at=now, status_changed_at=now)  # fmt: skip

    response = client.get("/compliance/why/", {"business_number": number.pk, "customer": CUSTOMER})

    assert 'data-allowed="true"' in response.content.decode()


def test_why_page_says_what_allows_the_call_and_warns_before_the_call_that_revokes(client, supervisor):
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0102")
    granted_at = timezone.now().replace(year=2026, month=3, day=2)
    contact = Contact.objects.create(wa_id=CUSTOMER)
    CallPermissionFactory(
        business_number=number, contact=contact, status=CallPermission.Status.PERMANENT,
        granted_at=granted_at, status_changed_at=granted_at, consecutive_unanswered=3,
    )  # fmt: skip

    page = client.get(
        "/compliance/why/", {"business_number": number.pk, "customer": CUSTOMER}
    ).content.decode()

    assert "The customer granted permanent permission on 2026-03-02; the brief treats" in page
    assert '<p class="warning" data-code="last_unanswered_before_revocation">One more unanswered call' in page


def test_why_page_rejects_a_number_that_is_not_one(client, supervisor):
    number = BusinessNumberFactory()

    response = client.get("/compliance/why/", {"business_number": number.pk, "customer": "call me maybe"})

    assert "Not an international phone number" in response.content.decode()


def test_why_page_is_for_supervisors_only(client):
    user = get_user_model().objects.create_user("ada", password="pw")
    client.force_login(user)

    response = client.get("/compliance/why/")

    assert response.status_code == 302


def test_why_page_sends_a_permission_request(client, supervisor, number, sandbox):
    response = client.post(
        "/compliance/why/",
        {"business_number": number.pk, "customer": f"+{CUSTOMER}", "action": "permission_request"},
        follow=True,
    )

    permission = CallPermission.objects.get()
    assert "Permission request sent." in response.content.decode()
    assert (permission.status, permission.owner, sent_requests(sandbox)) == ("requested", supervisor, 1)


def test_lost_permission_reaches_its_owners_dashboard(django_capture_on_commit_callbacks):
    agent = AgentFactory()
    permission = CallPermissionFactory(owner=agent.user, status=CallPermission.Status.REVOKED)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"agent.{agent.pk}", channel)

    with django_capture_on_commit_callbacks(execute=True):
        agents_tell_permission_lost([permission.pk])

    frame = async_to_sync(layer.receive)(channel)
    assert (frame["type"], frame["status"]) == ("permission.lost", "revoked")
    assert frame["message"].endswith("permission revoked.")
