"""Customers who stop marketing messages (WHATSAPP_API.md §10.2): their choice as WhatsApp tells it,
whatever order the news arrives in, and no marketing template sent to them from that number."""

import time
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from agents.tests.factories import supervisor
from calls.tests.factories import ContactFactory
from integrations.models import ApiKey
from integrations.services import api_key_create
from integrations.tests.conftest import bearer
from messaging.models import Charge, MarketingPreference, MarketingPreferenceChange, Message, Template
from messaging.services import message_send_template
from messaging.tasks import send_message
from whatsapp.client import GraphClient
from whatsapp.errors import MarketingMessagesStopped
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook, sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

CUSTOMER = payloads.CUSTOMER
T1, T2, T3 = 1765000000, 1765000600, 1765001200  # Meta's times of three changes, in order


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@pytest.fixture
def number():
    return BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)


@pytest.fixture
def contact():
    return ContactFactory(wa_id=CUSTOMER, name="Jane", country="US")


@pytest.fixture
def templates(number):
    def template(name: str, category: str) -> Template:
        return Template.objects.create(
            waba_id=number.waba_id, name=name, language="en", category=category, status="APPROVED"
        )

    return {"marketing": template("spring_sale", "marketing"), "utility": template("order_update", "utility")}


def preference(number, contact) -> tuple[str, datetime] | None:
    row = MarketingPreference.objects.filter(business_number=number, contact=contact).first()
    return None if row is None else (row.status, row.since)


def changes() -> list[tuple[str, str, datetime, str]]:
    return list(
        MarketingPreferenceChange.objects.order_by("at", "pk").values_list(
            "from_status", "to_status", "at", "source"
        )
    )


def test_a_customer_who_stopped_marketing_is_sent_no_marketing_template_but_still_utility(
    client, number, contact, templates
):
    response = post_webhook(client, payloads.user_preference("stop", T1))

    with pytest.raises(ValidationError) as refused:
        message_send_template(business_number=number, contact=contact, template=templates["marketing"])
    utility = message_send_template(business_number=number, contact=contact, template=templates["utility"])

    assert response.status_code == 200
    assert refused.value.code == "marketing_stopped"
    assert refused.value.messages == [
        "The customer stopped marketing messages from this number on 2025-12-06 05:46 UTC: marketing "
        "templates are not sent to them (utility and authentication templates still are)."
    ]
    assert list(Message.objects.values_list("pk", "text")) == [(utility.pk, "order_update")]
    assert preference(number, contact) == ("stopped", at(T1))
    assert changes() == [("", "stopped", at(T1), "user_preferences")]


def test_the_stop_is_for_the_number_it_came_from(client, number, contact, templates):
    other = BusinessNumberFactory(waba_id=number.waba_id)

    post_webhook(client, payloads.user_preference("stop", T1))
    message = message_send_template(business_number=other, contact=contact, template=templates["marketing"])

    assert message.status == "pending"


def test_resume_lifts_the_stop(client, number, contact, templates):
    post_webhook(client, payloads.user_preference("stop", T1))

    post_webhook(client, payloads.user_preference("resume", T2))
    message = message_send_template(business_number=number, contact=contact, template=templates["marketing"])

    assert message.status == "pending"
    assert preference(number, contact) == ("allowed", at(T2))
    assert changes() == [
        ("", "stopped", at(T1), "user_preferences"),
        ("stopped", "allowed", at(T2), "user_preferences"),
    ]


def test_an_older_resume_arriving_after_a_newer_stop_changes_nothing(client, number, contact, templates):
    post_webhook(client, payloads.user_preference("stop", T2))

    response = post_webhook(client, payloads.user_preference("resume", T1))

    assert response.status_code == 200
    assert preference(number, contact) == ("stopped", at(T2))
    assert changes() == [("", "stopped", at(T2), "user_preferences")]
    with pytest.raises(ValidationError):
        message_send_template(business_number=number, contact=contact, template=templates["marketing"])


def test_news_of_what_is_already_so_changes_nothing_and_a_duplicate_is_not_handled_again(
    client, number, contact
):
    first = post_webhook(client, payloads.user_preference("stop", T1))

    duplicate = post_webhook(client, payloads.user_preference("stop", T1))
    post_webhook(client, payloads.user_preference("stop", T3))  # the same news again, later
    post_webhook(client, payloads.user_preference("resume", T2))  # older than the latest stop

    assert (first.json(), duplicate.json()) == (
        {"received": 1, "duplicates": 0},
        {"received": 0, "duplicates": 1},
    )
    assert preference(number, contact) == ("stopped", at(T1))  # stopped since the first time
    assert changes() == [("", "stopped", at(T1), "user_preferences")]


def test_a_system_message_of_a_stop_joins_the_thread_and_stops_marketing(client, number, contact, templates):
    post_webhook(client, payloads.preference_system_message("stop", T1))

    message = Message.objects.get(wa_message_id="wamid.system1")
    assert (message.message_type, message.text) == ("system", "User requested to stop marketing messages")
    assert preference(number, contact) == ("stopped", at(T1))
    assert changes() == [("", "stopped", at(T1), "system_message")]
    with pytest.raises(ValidationError):
        message_send_template(business_number=number, contact=contact, template=templates["marketing"])


def test_the_api_refuses_a_marketing_template_with_409_and_sends_a_utility_one(
    client, number, contact, templates
):
    _, token = api_key_create(
        name="CRM", scopes=[ApiKey.Scope.MESSAGES_WRITE], created_by_id=None, business_number_ids=[number.pk],
        rate_limit_per_minute=1000,
    )  # fmt: skip
    post_webhook(client, payloads.user_preference("stop", T1))

    def send(name: str):
        body = {"business_number_id": number.pk, "to": f"+{CUSTOMER}", "type": "template",
                "template": {"name": name, "language": "en"}}  # fmt: skip
        return client.post("/api/v1/messages/", body, content_type="application/json", **bearer(token))

    refused, sent = send("spring_sale"), send("order_update")

    assert refused.status_code == 409
    assert refused.json()["code"] == "marketing_stopped"
    assert "stopped marketing messages from this number on 2025-12-06" in refused.json()["detail"]
    assert sent.status_code == 201
    assert list(Message.objects.values_list("text", flat=True)) == ["order_update"]


def test_a_131050_from_meta_records_the_stop_and_charges_nothing(
    settings, client, number, contact, templates
):
    with sandbox_serving(settings, number) as sandbox:
        customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Jane")
        sandbox.thread.call(sandbox.meta.template_create, number.waba_id, {
            "name": "spring_sale", "category": "MARKETING", "components": [{"type": "BODY", "text": "Sale"}],
        })  # fmt: skip
        sandbox.thread.call(customer.stop_marketing, number.phone_number_id)  # its webhook not here yet
        message = message_send_template(
            business_number=number, contact=contact, template=templates["marketing"]
        )
        before = time.time()

        assert send_message(message_id=message.pk) == ""

        sandbox.thread.run(sandbox.sender.drain)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "131050" in message.error
    row = MarketingPreference.objects.get()
    assert (row.status, row.source) == ("stopped", "meta_refusal")
    assert row.since.timestamp() >= before - 1
    assert Charge.objects.count() == 0
    with pytest.raises(ValidationError):  # and the next one is not even tried
        message_send_template(business_number=number, contact=contact, template=templates["marketing"])


def test_a_failed_status_with_131050_records_the_stop(client, number, contact, templates):
    message = message_send_template(business_number=number, contact=contact, template=templates["marketing"])
    Message.objects.filter(pk=message.pk).update(wa_message_id="wamid.sale1", status="sent")
    failed = payloads.message_status("failed", "wamid.sale1", category="marketing")
    item = failed["entry"][0]["changes"][0]["value"]["statuses"][0]
    item["timestamp"], item["recipient_id"] = str(T2), CUSTOMER
    item["errors"] = [{"code": 131050, "title": "Unable to deliver the message"}]
    item.pop("pricing", None)

    post_webhook(client, failed)

    assert preference(number, contact) == ("stopped", at(T2))
    assert changes() == [("", "stopped", at(T2), "meta_refusal")]
    assert Charge.objects.count() == 0


def test_the_sandbox_customer_stops_and_resumes_through_signed_webhooks(settings, client, number, contact):
    with sandbox_serving(settings, number) as sandbox:
        customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Jane")
        sandbox.thread.call(sandbox.meta.template_create, number.waba_id, {
            "name": "spring_sale", "category": "MARKETING", "components": [{"type": "BODY", "text": "Sale"}],
        })  # fmt: skip
        sandbox.thread.call(customer.stop_marketing, number.phone_number_id)
        sandbox.thread.run(sandbox.sender.drain)
        [stop] = sandbox.sender.sent
        stopped = post_webhook(client, stop.body)
        status_after_stop = preference(number, contact)[0]
        body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                "template": {"name": "spring_sale", "language": {"code": "en"}}}  # fmt: skip
        with GraphClient(base_url=sandbox.graph_url, token="t", max_retries=0) as graph:
            with pytest.raises(MarketingMessagesStopped) as refused:
                graph.message_send(phone_number_id=number.phone_number_id, body=body)
            sandbox.thread.call(customer.resume_marketing, number.phone_number_id, as_system_message=True)
            sandbox.thread.run(sandbox.sender.drain)
            graph.message_send(phone_number_id=number.phone_number_id, body=body)  # taken again
        resume = sandbox.sender.sent[1]
        resumed = post_webhook(client, resume.body)

    assert (stop.field_name, resume.field_name) == ("user_preferences", "messages")
    assert (stopped.status_code, resumed.status_code) == (200, 200)
    assert status_after_stop == "stopped"
    assert refused.value.http_status == 400
    assert preference(number, contact)[0] == "allowed"
    assert [row[:2] for row in changes()] == [("", "stopped"), ("stopped", "allowed")]


def test_the_contact_page_and_the_api_show_the_stop_and_its_history(client, number, contact):
    post_webhook(client, payloads.user_preference("stop", T1))
    post_webhook(client, payloads.user_preference("resume", T2))
    post_webhook(client, payloads.user_preference("stop", T3))
    client.force_login(supervisor())
    _, token = api_key_create(
        name="CRM", scopes=[ApiKey.Scope.READ], created_by_id=None, business_number_ids=[number.pk],
        rate_limit_per_minute=1000,
    )  # fmt: skip

    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    detail = client.get(f"/api/v1/contacts/{contact.pk}/", **bearer(token)).json()

    assert "Marketing messages: <strong>stopped since 2025-12-06 06:06 UTC</strong>" in page
    assert page.count('<li data-to="') == 3
    assert (
        "stopped → allowed (The user_preferences webhook: User requested to resume marketing messages)"
        in page
    )
    [state] = detail["numbers"]
    assert (state["marketing"], state["marketing_stopped_since"]) == ("stopped", "2025-12-06T06:06:40Z")
    assert [(change["from_status"], change["to_status"]) for change in state["marketing_changes"]] == [
        ("allowed", "stopped"), ("stopped", "allowed"), ("", "stopped"),
    ]  # fmt: skip


def test_the_contact_page_says_why_a_marketing_template_was_not_sent(client, number, contact, templates):
    post_webhook(client, payloads.user_preference("stop", T1))
    client.force_login(supervisor())
    form = {"number": number.pk, "kind": "template", "template": templates["marketing"].pk,
            "idempotency_key": "k1"}  # fmt: skip

    page = client.post(f"/contacts/{contact.pk}/messages/", form, follow=True).content.decode()

    assert "The customer stopped marketing messages from this number on 2025-12-06 05:46 UTC" in page
    assert Message.objects.count() == 0


def test_the_inbox_says_why_a_marketing_template_was_not_sent(
    client, number, contact, templates, make_conversation
):
    conversation = make_conversation(contact=contact)
    post_webhook(client, payloads.user_preference("stop", T1))
    client.force_login(supervisor())
    form = {"kind": "template", "template": templates["marketing"].pk, "idempotency_key": "k2"}

    page = client.post(f"/inbox/{conversation.pk}/reply/", form, follow=True).content.decode()

    assert "The customer stopped marketing messages from this number on 2025-12-06 05:46 UTC" in page
    assert Message.objects.count() == 0
