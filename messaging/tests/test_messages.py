"""The thread: customers' messages, the windows they open, sending (recorded first, sent once), statuses."""

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from djmoney.money import Money

from calls.tests.factories import ContactFactory
from messaging import services
from messaging.models import Charge, ConversationWindow, Message, RateCard, Template
from messaging.selectors import send_options
from messaging.services import message_send_template, message_send_text, message_sent, rate_card_save
from messaging.tasks import send_message, send_pending
from whatsapp.client import GraphClient
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook, sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

CUSTOMER = "447700900123"


@pytest.fixture
def number():
    return BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)


@pytest.fixture
def sandbox(settings, number):
    with sandbox_serving(settings, number) as sandbox:
        sandbox.customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        yield sandbox


def customer_writes(client, *, at: datetime, message_id: str = "wamid.in1", from_ad: bool = False):
    """The customer's text reaches us as Meta delivers it (WHATSAPP_API.md §6.4)."""
    payload = copy.deepcopy(
        payloads.referral_message(message_id) if from_ad else payloads.text_message(message_id)
    )
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["from"], message["timestamp"] = CUSTOMER, str(int(at.timestamp()))
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = CUSTOMER
    return post_webhook(client, payload)


def status(state: str, message_id: str, *, at: datetime) -> dict:
    payload = copy.deepcopy(payloads.message_status(state, message_id, category="utility"))
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    item["timestamp"], item["recipient_id"] = str(int(at.timestamp())), CUSTOMER
    return payload


def test_a_customers_message_joins_the_thread_once_and_opens_the_window_for_24_hours(client, number):
    wrote_at = timezone.now().replace(microsecond=0) - timedelta(hours=2)

    customer_writes(client, at=wrote_at)
    customer_writes(client, at=wrote_at)  # Meta's redelivery
    customer_writes(client, at=wrote_at - timedelta(hours=5), message_id="wamid.older")  # late, and older

    inbound = Message.objects.get(wa_message_id="wamid.in1")
    assert (inbound.direction, inbound.status, inbound.text, inbound.contact.wa_id) == (
        "inbound", "received", "Body Text", CUSTOMER,
    )  # fmt: skip
    assert Message.objects.count() == 2
    window = ConversationWindow.objects.get()
    assert window.customer_service_until == wrote_at + timedelta(hours=24)
    assert send_options(business_number=number, contact=inbound.contact).is_service_window_open is True
    later = send_options(business_number=number, contact=inbound.contact, at=wrote_at + timedelta(hours=24))
    assert later.is_service_window_open is False


def test_a_customers_call_opens_the_window_even_when_nobody_takes_it(client, number):
    payload = copy.deepcopy(payloads.user_call_connect())
    payload["entry"][0]["changes"][0]["value"]["calls"][0]["from"] = CUSTOMER

    post_webhook(client, payload)  # no queue serves the number: the call is rejected

    window = ConversationWindow.objects.get()
    assert window.contact.wa_id == CUSTOMER
    assert (
        timezone.now() + timedelta(hours=23)
        < window.customer_service_until
        <= timezone.now() + timedelta(hours=24)
    )


def test_what_a_template_costs_follows_the_windows(client, number):
    for category, price in [("marketing", "0.0500"), ("utility", "0.0200"), ("authentication", "0.0300")]:
        rate_card_save(
            rate=RateCard(
                category=category, market="GB", price=Money(price, "USD"), effective_from=date(2026, 1, 1)
            )
        )
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    contact = None

    def quotes(at):
        options = send_options(business_number=number, contact=contact, at=at)
        return {category: (quote.pricing_type, quote.amount) for category, quote in options.quotes.items()}

    customer_writes(client, at=start, from_ad=True)
    contact = Message.objects.get().contact
    before_reply = quotes(start + timedelta(minutes=1))
    message_sent(message_id=_pending(number, contact).pk, wa_message_id="wamid.reply")  # replied at once
    free_entry = quotes(timezone.now() + timedelta(hours=71))
    after_all = quotes(timezone.now() + timedelta(hours=73))

    free, free_in_window = ("free_entry_point", Money(0, "USD")), ("free_customer_service", Money(0, "USD"))
    assert before_reply == {
        "marketing": ("regular", Money("0.0500", "USD")), "utility": free_in_window,
        "authentication": ("regular", Money("0.0300", "USD")), "service": free_in_window,
    }  # fmt: skip
    # 71 h on, the customer-service window has closed: free templates, but no free-form message.
    assert free_entry == {"marketing": free, "utility": free, "authentication": free}
    assert after_all == {
        "marketing": ("regular", Money("0.0500", "USD")), "utility": ("regular", Money("0.0200", "USD")),
        "authentication": ("regular", Money("0.0300", "USD")),
    }  # fmt: skip


def test_a_reply_a_day_after_the_ads_message_opens_no_free_entry_point(client, number):
    wrote_at = timezone.now().replace(microsecond=0) - timedelta(hours=25)
    customer_writes(client, at=wrote_at, from_ad=True)
    contact = Message.objects.get().contact

    message_sent(message_id=_pending(number, contact).pk, wa_message_id="wamid.late-reply")

    assert ConversationWindow.objects.get().free_entry_until is None
    assert send_options(business_number=number, contact=contact).is_free_entry_open is False


def test_a_text_is_recorded_first_and_sent_once_however_often_it_is_asked(client, number, sandbox):
    customer_writes(client, at=timezone.now() - timedelta(minutes=5))
    sandbox.thread.call(sandbox.meta.customer_send, sandbox.customer, number.phone_number_id,
                        {"type": "text", "text": {"body": "Hi"}})  # fmt: skip
    contact = Message.objects.get().contact

    first = message_send_text(
        business_number=number, contact=contact, text="We are on it", idempotency_key="k1"
    )
    again = message_send_text(
        business_number=number, contact=contact, text="We are on it", idempotency_key="k1"
    )
    pending = Message.objects.get(pk=first.pk).status
    sent = send_message(message_id=first.pk)
    resent = send_message(message_id=first.pk)  # a task delivered twice

    message = Message.objects.get(pk=first.pk)
    assert (again.pk, pending) == (first.pk, "pending")
    assert (message.status, message.wa_message_id, resent) == ("sent", sent, "")
    assert message.request["text"]["body"] == "We are on it"
    assert len(sandbox.meta.messages) == 1
    with pytest.raises(ValidationError) as reused:
        message_send_text(
            business_number=number, contact=contact, text="Something else", idempotency_key="k1"
        )
    assert reused.value.code == "idempotency_key"


def test_a_text_outside_the_window_is_refused_before_anything_is_recorded(number):
    contact = ContactFactory(wa_id=CUSTOMER)

    with pytest.raises(ValidationError) as refused:
        message_send_text(business_number=number, contact=contact, text="Hello?")

    assert refused.value.code == "outside_service_window"
    assert Message.objects.count() == 0


def test_a_template_goes_out_any_time_and_its_statuses_and_charge_follow(client, number, sandbox):
    contact = ContactFactory(wa_id=CUSTOMER)
    sandbox.thread.call(sandbox.meta.template_create, number.waba_id, {
        "name": "order_update", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Order {{1}}"}],
    })  # fmt: skip
    template = Template.objects.create(
        waba_id=number.waba_id, name="order_update", language="en", category="utility", status="APPROVED"
    )
    rate_card_save(
        rate=RateCard(
            category="utility", market="GB", price=Money("0.0200", "USD"), effective_from=date(2025, 7, 1)
        )
    )

    message = message_send_template(
        business_number=number, contact=contact, template=template, parameters=["#1522"]
    )
    wamid = send_message(message_id=message.pk)
    read_at = datetime.now(UTC).replace(microsecond=0)
    post_webhook(client, status("read", wamid, at=read_at))  # before `delivered`: it may come first
    post_webhook(client, status("delivered", wamid, at=read_at - timedelta(seconds=5)))

    message.refresh_from_db()
    assert message.request["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "#1522"}]}
    ]
    assert (message.status, message.read_at, message.delivered_at) == (
        "read",
        read_at,
        read_at - timedelta(seconds=5),
    )
    assert Charge.objects.get().amount == Money("0.0200", "USD")


def test_a_status_that_comes_before_the_send_is_answered_is_applied_then(client, number):
    message = _pending(number, ContactFactory(wa_id=CUSTOMER))
    delivered_at = datetime.now(UTC).replace(microsecond=0)

    post_webhook(client, status("delivered", "wamid.fast", at=delivered_at))
    message_sent(message_id=message.pk, wa_message_id="wamid.fast")

    message.refresh_from_db()
    assert (message.status, message.delivered_at) == ("delivered", delivered_at)


def test_a_template_meta_does_not_know_leaves_the_message_failed_with_the_reason(number, sandbox):
    template = Template.objects.create(
        waba_id=number.waba_id, name="gone", language="en", category="marketing", status="APPROVED"
    )
    message = message_send_template(
        business_number=number, contact=ContactFactory(wa_id=CUSTOMER), template=template
    )

    assert send_message(message_id=message.pk) == ""

    message.refresh_from_db()
    assert message.status == "failed"
    assert "132001" in message.error


def test_only_an_approved_template_of_the_numbers_account_can_be_sent(number):
    contact = ContactFactory(wa_id=CUSTOMER)
    pending = Template.objects.create(waba_id=number.waba_id, name="new", language="en", category="marketing")
    foreign = Template.objects.create(waba_id="other", name="theirs", language="en", category="marketing",
                                      status="APPROVED")  # fmt: skip

    for template in (pending, foreign):
        with pytest.raises(ValidationError, match="not an approved template"):
            message_send_template(business_number=number, contact=contact, template=template)
    assert Message.objects.count() == 0


def _pending(number, contact) -> Message:
    return Message.objects.create(
        business_number=number, contact=contact, direction="outbound", message_type="text", text="Hi",
        request={"type": "text"}, status="pending", idempotency_key=f"k-{Message.objects.count()}",
    )  # fmt: skip


def test_later_answers_do_not_extend_the_free_entry_point_but_a_new_ads_answer_does(client, number):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=50)
    customer_writes(client, at=start, from_ad=True)
    contact = Message.objects.get().contact
    window = ConversationWindow.objects.filter(contact=contact)

    services.window_business_replied(business_number_id=number.pk, contact_id=contact.pk, at=start)
    first = window.get().free_entry_until
    services.window_business_replied(
        business_number_id=number.pk, contact_id=contact.pk, at=start + timedelta(hours=2)
    )
    unchanged = window.get().free_entry_until
    customer_writes(client, at=start + timedelta(hours=48), message_id="wamid.ad2", from_ad=True)
    services.window_business_replied(
        business_number_id=number.pk, contact_id=contact.pk, at=start + timedelta(hours=49)
    )

    assert first == unchanged == start + timedelta(hours=72)
    assert window.get().free_entry_until == start + timedelta(hours=49 + 72)


def test_a_message_is_taken_by_one_worker_at_a_time_and_failed_after_five_attempts(number):
    message = _pending(number, ContactFactory(wa_id=CUSTOMER))

    first = services.message_send_claim(message_id=message.pk, lease=timedelta(minutes=1))
    second = services.message_send_claim(message_id=message.pk, lease=timedelta(minutes=1))  # another copy
    Message.objects.filter(pk=message.pk).update(send_claimed_at=timezone.now() - timedelta(minutes=2))
    after_the_lease = services.message_send_claim(message_id=message.pk, lease=timedelta(minutes=1))
    Message.objects.filter(pk=message.pk).update(
        send_attempts=5, send_claimed_at=timezone.now() - timedelta(minutes=2)
    )
    swept = send_pending()

    message.refresh_from_db()
    assert (first.pk, second, after_the_lease.pk) == (message.pk, None, message.pk)
    assert (swept, message.status, message.error) == (0, "failed", "not sent after 5 attempts")


def test_the_customers_answer_to_a_permission_request_joins_the_thread_and_opens_the_window(client, number):
    payload = copy.deepcopy(
        payloads.permission_reply("wamid.answer", is_permanent=False, response_source="user_action")
    )
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["from"], message["timestamp"] = CUSTOMER, str(int(timezone.now().timestamp()))
    automatic = copy.deepcopy(payloads.permission_reply("wamid.auto", response_source="automatic"))
    automatic["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "447700900999"

    post_webhook(client, payload)
    post_webhook(client, automatic)  # granted by calling in: no message of the customer's

    inbound = Message.objects.get()
    assert (inbound.wa_message_id, inbound.text) == (
        "wamid.answer",
        "Allowed calls (call permission request)",
    )
    assert send_options(business_number=number, contact=inbound.contact).is_service_window_open is True


def test_templates_follow_metas_list_page_by_page(number, sandbox, monkeypatch):
    def register(name: str, category: str, language: str = "en_US") -> None:
        sandbox.thread.call(sandbox.meta.template_create, number.waba_id, {
            "name": name, "category": category, "language": language,
            "components": [{"type": "BODY", "text": f"{name} {{{{1}}}}"}],
        })  # fmt: skip

    for index in range(3):
        register(f"update_{index}", "UTILITY")
    register("offer", "MARKETING", "pt_BR")
    Template.objects.create(waba_id=number.waba_id, name="update_0", language="en_US", category="marketing")
    Template.objects.create(waba_id=number.waba_id, name="typed_by_hand", language="en", category="utility",
                            status="APPROVED")  # fmt: skip
    Template.objects.create(waba_id="another account", name="theirs", language="en", category="utility",
                            status="APPROVED")  # fmt: skip
    pages = []
    original = GraphClient.templates_page
    monkeypatch.setattr(
        GraphClient, "templates_page",
        lambda self, **kwargs: pages.append(kwargs) or original(self, **{**kwargs, "limit": 2}),
    )  # fmt: skip

    with GraphClient() as graph:
        counts = services.templates_sync(waba_id=number.waba_id, graph=graph)
        again = services.templates_sync(waba_id=number.waba_id, graph=graph)

    mine = {
        (t.name, t.language): (t.category, t.status) for t in Template.objects.filter(waba_id=number.waba_id)
    }
    assert counts == (3, 1, 1) and again == (0, 0, 0)
    assert mine == {
        ("update_0", "en_US"): ("utility", "APPROVED"),  # corrected from Meta's list
        ("update_1", "en_US"): ("utility", "APPROVED"),
        ("update_2", "en_US"): ("utility", "APPROVED"),
        ("offer", "pt_BR"): ("marketing", "APPROVED"),
        ("typed_by_hand", "en"): ("utility", "DISABLED"),  # Meta does not know it
    }
    assert Template.objects.get(name="update_1").components == [{"type": "BODY", "text": "update_1 {{1}}"}]
    assert Template.objects.get(name="theirs").status == "APPROVED"
    assert [page.get("after", "") for page in pages[:2]] == ["", "2"]
