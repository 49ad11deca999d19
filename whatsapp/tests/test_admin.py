import pytest
from django.contrib.auth.models import Permission

from agents.tests.factories import UserFactory
from whatsapp import dispatch
from whatsapp.models import BusinessNumber, WebhookDelivery, WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook

pytestmark = pytest.mark.django_db


def test_admin_lists_deliveries_and_events(admin_client):
    post_webhook(admin_client, payloads.user_call_connect())
    delivery = WebhookDelivery.objects.get()

    delivery_list = admin_client.get("/admin/whatsapp/webhookdelivery/")
    delivery_page = admin_client.get(f"/admin/whatsapp/webhookdelivery/{delivery.pk}/change/")
    event_list = admin_client.get("/admin/whatsapp/webhookevent/?kind=call.connect")

    assert delivery_list.status_code == delivery_page.status_code == event_list.status_code == 200
    assert "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh" in delivery_page.content.decode()
    assert "call:wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh:connect" in event_list.content.decode()


def test_admin_event_list_query_count_does_not_grow(admin_client, django_assert_max_num_queries):
    for index in range(20):
        post_webhook(admin_client, payloads.text_message(message_id=f"wamid.{index}"))

    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/whatsapp/webhookevent/")

    assert response.status_code == 200


def test_admin_dispatch_again_handles_a_failed_event(admin_client, captured):
    dispatch._handlers["call.connect"] = lambda event: 1 / 0
    post_webhook(admin_client, payloads.user_call_connect())
    record = WebhookEvent.objects.get()
    dispatch._handlers["call.connect"] = captured.append

    response = admin_client.post(
        "/admin/whatsapp/webhookevent/",
        {"action": "dispatch_again", "_selected_action": [record.pk]},
        follow=True,
    )

    record.refresh_from_db()
    assert response.status_code == 200
    assert record.status == WebhookEvent.Status.HANDLED
    assert [event.call_id for event in captured] == ["wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh"]


def test_admin_shows_a_rejected_settings_update_with_its_reasons(admin_client):
    calling = {"status": "ENABLED", "sip": {"status": "ENABLED", "servers": [{"hostname": "example.com"}]}}
    post_webhook(admin_client, payloads.settings_update(calling=calling))
    record = WebhookEvent.objects.get()

    listed = admin_client.get("/admin/whatsapp/webhookevent/?status=rejected")
    page = admin_client.get(f"/admin/whatsapp/webhookevent/{record.pk}/change/")

    assert "Rejected: invalid content, not applied" in listed.content.decode()
    assert (
        "calling.sip.servers[0].hostname: &#x27;example.com&#x27; is reserved for documentation"
        in page.content.decode()
    )


def test_business_number_admin_derives_country(admin_client):
    response = admin_client.post(
        "/admin/whatsapp/businessnumber/add/",
        {
            "label": "Support",
            "display_phone_number": "+49 30 901820",
            "phone_number_id": "900001",
            "waba_id": "900002",
            "messaging_limit_tier": "TIER_2K",
            "verification_status": "not_verified",
        },
    )

    assert response.status_code == 302
    assert BusinessNumber.objects.get(phone_number_id="900001").country == "DE"


def test_business_number_admin_refuses_a_non_number(admin_client):
    response = admin_client.post(
        "/admin/whatsapp/businessnumber/add/",
        {
            "display_phone_number": "call me maybe",
            "phone_number_id": "900003",
            "waba_id": "900004",
            "messaging_limit_tier": "TIER_2K",
            "verification_status": "not_verified",
        },
    )

    assert response.status_code == 200
    assert "is not an international phone number" in response.content.decode()


WROTE = "Card 4111 1111 1111 1111, mail jo@example.com"


def test_what_customers_wrote_in_a_webhook_is_masked_for_staff_who_may_not_read_raw_text(
    client, admin_client
):
    post_webhook(admin_client, payloads.text_message(body=WROTE))
    delivery, event = WebhookDelivery.objects.get(), WebhookEvent.objects.get()
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_webhookdelivery", "view_webhookevent"])
    )
    client.force_login(staff)

    masked = [
        client.get(f"/admin/whatsapp/webhookdelivery/{delivery.pk}/change/").content.decode(),
        client.get(f"/admin/whatsapp/webhookevent/{event.pk}/change/").content.decode(),
    ]
    raw = admin_client.get(f"/admin/whatsapp/webhookevent/{event.pk}/change/").content.decode()

    assert all("&quot;body&quot;: &quot;Card [card], mail [email]&quot;" in page for page in masked)
    assert not any("4111" in page or "jo@example.com" in page for page in masked)
    assert f"&quot;body&quot;: &quot;{WROTE}&quot;" in raw


def test_admin_shows_what_a_call_side_event_means_and_filters_unknown_kinds_by_field(admin_client):
    post_webhook(admin_client, payloads.sip_call_created())
    post_webhook(admin_client, payloads.unknown_call_event())
    post_webhook(admin_client, payloads.unknown_field())
    sip_event = WebhookEvent.objects.get(kind="call.sip_created")

    sip_list = admin_client.get("/admin/whatsapp/webhookevent/?kind=call.sip_created").content.decode()
    sip_page = admin_client.get(f"/admin/whatsapp/webhookevent/{sip_event.pk}/change/").content.decode()
    unknown_calls = admin_client.get(
        "/admin/whatsapp/webhookevent/?kind=unsupported&field=calls"
    ).content.decode()
    templates = admin_client.get(
        "/admin/whatsapp/webhookevent/?field=message_template_status_update"
    ).content.decode()

    meaning = "does not act on SIP-side events"
    assert meaning in sip_list and meaning in sip_page
    assert "Meta&#x27;s field" in unknown_calls
    assert "unsupported:calls:" in unknown_calls
    assert unknown_calls.count('class="field-idempotency_key"') == 1
    assert templates.count('class="field-idempotency_key"') == 1
    assert "unsupported:message_template_status_update:" in templates
