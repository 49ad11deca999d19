"""Billing: the rate card, the account's currency, and the charge ledger fed by status webhooks and calls."""

import copy
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from djmoney.money import Money

from calls.handlers import call_terminate_received
from calls.models import Call
from calls.outbound import outbound_terminate_received
from calls.routing import call_finish
from calls.tests.factories import CallFactory, ContactFactory
from messaging.models import BillingCurrency, Charge, ConversationWindow, RateCard, RateRegion
from messaging.selectors import rate_find
from messaging.services import RATE_CARDS_FIXTURE, call_charge_record, rate_card_save, rate_cards_load
from whatsapp.events import CallTerminate
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

INDIAN_CUSTOMER = "919876543210"
BRITISH_CUSTOMER = "447700900123"
BRAZILIAN_CUSTOMER = "5511987654321"
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def number():
    return BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)


@pytest.fixture
def shipped_rates():
    return rate_cards_load(document=json.loads(RATE_CARDS_FIXTURE.read_text()))


def rate(category: str, market: str, price: str, currency: str, starts: date, ends: date | None = None):
    return rate_card_save(
        rate=RateCard(
            category=category,
            market=market,
            price=Money(price, currency),
            effective_from=starts,
            effective_to=ends,
        )
    )


def status(
    state: str,
    message_id: str,
    *,
    at: datetime,
    to: str = INDIAN_CUSTOMER,
    category: str = "marketing",
    pricing_type: str = "regular",
) -> dict:
    """A status webhook for a message we sent, as Meta delivers it (WHATSAPP_API.md §6.5)."""
    # A copy: the payload shares its metadata with every other payload of the module.
    payload = copy.deepcopy(
        payloads.message_status(state, message_id, category=category, pricing_type=pricing_type)
    )
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    item["timestamp"], item["recipient_id"] = str(int(at.timestamp())), to
    return payload


def test_the_india_marketing_rate_changes_on_the_exact_day(client, number, shipped_rates):
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2025, 7, 1))

    post_webhook(client, status("delivered", "wamid.last-of-2025", at=NEW_YEAR - timedelta(seconds=1)))
    post_webhook(client, status("delivered", "wamid.first-of-2026", at=NEW_YEAR))

    charges = {charge.reference: charge for charge in Charge.objects.all()}
    assert charges["wamid.last-of-2025"].amount == Money("0.7846", "INR")
    assert charges["wamid.last-of-2025"].billed_on == date(2025, 12, 31)
    assert charges["wamid.first-of-2026"].amount == Money("0.8631", "INR")
    assert charges["wamid.first-of-2026"].billed_on == date(2026, 1, 1)
    assert {(charge.country, charge.category, charge.pricing_type) for charge in charges.values()} == {
        ("IN", "marketing", "regular")
    }


def test_a_utility_template_is_free_inside_the_service_window_and_charged_outside(client, number):
    rate("utility", "GB", "0.0220", "USD", date(2025, 7, 1))

    post_webhook(
        client,
        status("delivered", "wamid.in", at=NEW_YEAR, to=BRITISH_CUSTOMER, category="utility",
               pricing_type="free_customer_service"),
    )  # fmt: skip
    post_webhook(
        client, status("delivered", "wamid.out", at=NEW_YEAR, to=BRITISH_CUSTOMER, category="utility")
    )

    inside, outside = Charge.objects.get(reference="wamid.in"), Charge.objects.get(reference="wamid.out")
    assert (inside.amount, inside.rate, inside.pricing_type) == (
        Money(0, "USD"),
        None,
        "free_customer_service",
    )
    assert (outside.amount, outside.rate.market, outside.pricing_type) == (
        Money("0.0220", "USD"),
        "GB",
        "regular",
    )


def test_a_marketing_template_in_the_free_entry_point_window_is_free(client, number, shipped_rates):
    post_webhook(client, status("delivered", "wamid.ad", at=NEW_YEAR, pricing_type="free_entry_point"))

    charge = Charge.objects.get()
    assert (charge.amount, charge.category, charge.pricing_type) == (
        Money(0, "USD"),
        "marketing",
        "free_entry_point",
    )


def test_an_account_is_billed_in_inr_from_its_date_and_in_usd_before(client, number):
    rate("marketing", "IN", "0.0107", "USD", date(2025, 7, 1))
    rate("marketing", "IN", "0.8631", "INR", date(2026, 1, 1))
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2026, 1, 1))
    BillingCurrency.objects.create(waba_id="another account", currency="BRL", effective_from=date(2025, 1, 1))

    post_webhook(client, status("delivered", "wamid.before", at=NEW_YEAR - timedelta(hours=1)))
    post_webhook(client, status("delivered", "wamid.from", at=NEW_YEAR + timedelta(hours=1)))

    assert Charge.objects.get(reference="wamid.before").amount == Money("0.0107", "USD")
    assert Charge.objects.get(reference="wamid.from").amount == Money("0.8631", "INR")


def test_a_duplicated_or_later_status_charges_a_message_once(client, number, shipped_rates):
    delivered = status("delivered", "wamid.once", at=NEW_YEAR, to=BRITISH_CUSTOMER)

    post_webhook(client, delivered)
    post_webhook(client, delivered)  # Meta's retry: the same delivery again
    post_webhook(
        client, status("read", "wamid.once", at=NEW_YEAR + timedelta(minutes=1), to=BRITISH_CUSTOMER)
    )
    post_webhook(
        client, status("read", "wamid.read-only", at=NEW_YEAR, to=BRITISH_CUSTOMER)
    )  # no `delivered`

    assert sorted(Charge.objects.values_list("reference", "amount")) == [
        ("wamid.once", Decimal("0.0600")),
        ("wamid.read-only", Decimal("0.0600")),
    ]


def test_a_failed_or_merely_sent_message_is_never_charged(client, number, shipped_rates):
    failed = status("failed", "wamid.failed", at=NEW_YEAR)
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = [
        {"code": 131026, "title": "Message undeliverable"}
    ]

    post_webhook(client, status("sent", "wamid.failed", at=NEW_YEAR))
    post_webhook(client, failed)

    assert Charge.objects.count() == 0


def test_a_status_of_another_accounts_number_or_without_pricing_charges_nothing(
    client, number, shipped_rates
):
    foreign = status("delivered", "wamid.foreign", at=NEW_YEAR)
    foreign["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    unpriced = status("delivered", "wamid.no-pricing", at=NEW_YEAR)
    del unpriced["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"]

    post_webhook(client, foreign)
    post_webhook(client, unpriced)

    assert Charge.objects.count() == 0


def test_a_charge_no_rate_prices_is_kept_unpriced_not_free(client, number):
    post_webhook(client, status("delivered", "wamid.unpriced", at=NEW_YEAR))

    charge = Charge.objects.get()
    assert (charge.amount, charge.amount_currency, charge.rate, charge.pricing_type) == (
        None,
        "USD",
        None,
        "regular",
    )


def test_a_56_second_outbound_call_is_10_pulses_at_the_customers_country_rate(number):
    rate("call", "GB", "0.0300", "USD", date(2025, 7, 1))
    rate("call", "OTHER", "0.0900", "USD", date(2025, 7, 1))

    charge = call_charge_record(
        wa_call_id="wacid.out", business_number=number, customer_wa_id=BRITISH_CUSTOMER,
        is_business_initiated=True, talk_seconds=56, ended_at=NEW_YEAR,
    )  # fmt: skip
    one_second_more = call_charge_record(
        wa_call_id="wacid.out2", business_number=number, customer_wa_id=BRITISH_CUSTOMER,
        is_business_initiated=True, talk_seconds=61, ended_at=NEW_YEAR,
    )  # fmt: skip

    assert (charge.quantity, charge.duration_seconds, charge.amount) == (10, 56, Money("0.0300", "USD"))
    assert (one_second_more.quantity, one_second_more.amount) == (11, Money("0.0330", "USD"))
    assert charge.rate.market == "GB"


def test_an_inbound_call_costs_nothing_and_an_ended_call_is_charged_once(number):
    rate("call", "OTHER", "0.0900", "USD", date(2025, 7, 1))
    now = datetime.now(UTC)
    contact = ContactFactory(wa_id=BRITISH_CUSTOMER)
    inbound = CallFactory(  # the customer called 130 s ago, waited 40 s, then talked with the agent
        business_number=number,
        contact=contact,
        status=Call.Status.CONNECTED,
        started_at=now - timedelta(seconds=130),
        answered_at=now - timedelta(seconds=129),
        connected_at=now - timedelta(seconds=90),
    )
    outbound = CallFactory(
        business_number=number,
        contact=contact,
        direction=Call.Direction.OUTBOUND,
        status=Call.Status.CONNECTED,
        connected_at=now - timedelta(seconds=56),
    )

    for call in (inbound, outbound, outbound):
        call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)

    charges = {charge.reference: charge for charge in Charge.objects.all()}
    assert len(charges) == 2
    free = charges[inbound.wa_call_id]
    assert (free.amount, free.pricing_type, free.kind) == (Money(0, "USD"), "free_user_initiated", "call")
    # From the customer's connect, the 40 s in the queue included: not from the agent's accept.
    assert free.quantity == math.ceil(free.duration_seconds / 6) and free.duration_seconds in (131, 132)
    paid = charges[outbound.wa_call_id]
    assert (paid.amount, paid.pricing_type, paid.quantity) in [
        (Money("0.0900", "USD"), "regular", 10),  # 56 s and a part of the 57th, billed as 57 s
        (Money("0.0990", "USD"), "regular", 11),  # 58 s on a slow machine
    ]


def test_a_country_row_beats_its_regions_and_the_region_beats_the_rest():
    RateRegion.objects.create(name="Rest of Western Europe", countries=["FR", "ES"])
    rate("marketing", "OTHER", "0.0500", "USD", date(2025, 7, 1))
    rate("marketing", "Rest of Western Europe", "0.0600", "USD", date(2025, 7, 1))
    rate("marketing", "FR", "0.0700", "USD", date(2025, 7, 1))

    def price(country: str) -> Decimal | None:
        found = rate_find(category="marketing", country=country, currency="USD", on=date(2026, 1, 1))
        return found.price.amount if found else None

    assert [price("FR"), price("ES"), price("BR"), price("")] == [
        Decimal("0.0700"), Decimal("0.0600"), Decimal("0.0500"), Decimal("0.0500"),
    ]  # fmt: skip
    assert rate_find(category="marketing", country="FR", currency="EUR", on=date(2026, 1, 1)) is None
    assert rate_find(category="marketing", country="FR", currency="USD", on=date(2025, 6, 30)) is None


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (date(2025, 12, 31), None),  # the old row's last day
        (date(2025, 1, 1), date(2025, 7, 1)),  # the old row's first day
        (date(2025, 8, 1), date(2025, 8, 2)),  # inside it
        (date(2026, 6, 1), None),  # inside the open-ended row
    ],
)
def test_overlapping_dates_of_one_category_market_and_currency_are_refused(starts, ends):
    rate("marketing", "IN", "0.7846", "INR", date(2025, 7, 1), date(2025, 12, 31))
    rate("marketing", "IN", "0.8631", "INR", date(2026, 1, 1))

    with pytest.raises(ValidationError, match="Overlaps"):
        rate("marketing", "IN", "0.9", "INR", starts, ends)

    rate("marketing", "IN", "0.0107", "USD", starts, ends)  # another currency is another card
    assert RateCard.objects.count() == 3


def test_a_rate_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValidationError, match="before the first"):
        rate("utility", "IN", "0.1", "INR", date(2026, 2, 1), date(2026, 1, 31))


def test_the_shipped_rate_cards_load_once_and_a_clashing_document_changes_nothing(capsys):
    call_command("load_rate_cards")
    call_command("load_rate_cards")
    shipped = RateCard.objects.count()
    clashing = {
        "rates": [
            {
                "category": "utility",
                "market": "IN",
                "price": "0.1",
                "currency": "INR",
                "effective_from": "2026-01-01",
            },
            {
                "category": "marketing",
                "market": "IN",
                "price": "0.9",
                "currency": "INR",
                "effective_from": "2026-06-01",
            },
        ]
    }

    with pytest.raises(ValidationError, match="Overlaps"):
        rate_cards_load(document=clashing)

    assert capsys.readouterr().out.splitlines() == [
        f"Rate cards: {shipped} row(s) added, 0 already there.",
        f"Rate cards: 0 row(s) added, {shipped} already there.",
    ]
    assert RateCard.objects.count() == shipped
    assert RateCard.objects.filter(market="IN", category="marketing").count() == 2


def test_a_call_is_charged_once_from_our_clock_and_then_by_metas_duration(number):
    rate("call", "GB", "0.0300", "USD", date(2025, 7, 1))
    ours = {"wa_call_id": "wacid.x", "business_number": number, "customer_wa_id": BRITISH_CUSTOMER,
            "is_business_initiated": True, "ended_at": NEW_YEAR}  # fmt: skip

    first = call_charge_record(**ours, talk_seconds=56)
    again = call_charge_record(**ours, talk_seconds=70)  # a second end of the same call changes nothing
    metas = call_charge_record(**ours, talk_seconds=61, is_metas_duration=True)

    assert (first.quantity, again.quantity, again.amount) == (10, 10, Money("0.0300", "USD"))
    assert (metas.pk, metas.quantity, metas.duration_seconds, metas.amount) == (
        first.pk,
        11,
        61,
        Money("0.0330", "USD"),
    )
    assert Charge.objects.count() == 1


def test_meta_reporting_an_answer_before_accepted_charges_the_call_and_opens_the_window(number):
    rate("call", "GB", "0.0300", "USD", date(2025, 7, 1))
    call = CallFactory(
        business_number=number,
        contact=ContactFactory(wa_id=BRITISH_CUSTOMER),
        direction=Call.Direction.OUTBOUND,
        status=Call.Status.RINGING,
        queue=None,
    )
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    outbound_terminate_received(
        CallTerminate(
            waba_id=number.waba_id, phone_number_id=number.phone_number_id, call_id=call.wa_call_id,
            from_number=number.digits, to_number=BRITISH_CUSTOMER, direction="BUSINESS_INITIATED",
            status="COMPLETED", started_at=started, ended_at=started + timedelta(seconds=30), duration_s=30,
        )
    )  # fmt: skip

    charge = Charge.objects.get()
    assert (charge.reference, charge.quantity, charge.amount) == (call.wa_call_id, 5, Money("0.0150", "USD"))
    assert ConversationWindow.objects.get().customer_service_until == started + timedelta(hours=24)


# --- Local currencies: India in INR, Brazil in BRL ---------------------------------------------------


def test_an_inr_account_prices_a_utility_template_to_india(client, number, shipped_rates):
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2025, 1, 1))

    february = NEW_YEAR + timedelta(days=40)
    post_webhook(client, status("delivered", "wamid.utility", at=february, category="utility"))
    post_webhook(client, status("delivered", "wamid.otp", at=february, category="authentication"))
    post_webhook(
        client, status("delivered", "wamid.2025", at=NEW_YEAR - timedelta(days=1), category="utility")
    )
    post_webhook(  # no INR rate before per-message pricing (2025-07-01): unpriced, not free, not a guess
        client,
        status("delivered", "wamid.june", at=datetime(2025, 6, 30, 12, tzinfo=UTC), category="utility"),
    )

    charges = {charge.reference: charge for charge in Charge.objects.all()}
    assert charges["wamid.utility"].amount == Money("0.1150", "INR")
    assert charges["wamid.utility"].rate.source.startswith("Meta's India rate in INR, effective 2026-01-01")
    assert charges["wamid.otp"].amount == Money("0.1150", "INR")
    assert charges["wamid.2025"].amount == Money("0.1150", "INR")
    assert charges["wamid.2025"].rate.effective_from == date(2025, 7, 1)
    assert (charges["wamid.june"].amount, charges["wamid.june"].amount_currency) == (None, "INR")


def test_a_brl_account_prices_a_marketing_template_to_brazil(client, number, shipped_rates):
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="BRL", effective_from=date(2026, 7, 1))
    july = datetime(2026, 7, 15, 12, tzinfo=UTC)

    post_webhook(client, status("delivered", "wamid.br", at=july, to=BRAZILIAN_CUSTOMER))
    post_webhook(
        client, status("delivered", "wamid.br-utility", at=july, to=BRAZILIAN_CUSTOMER, category="utility")
    )

    charges = {charge.reference: charge for charge in Charge.objects.all()}
    assert (charges["wamid.br"].country, charges["wamid.br"].amount) == ("BR", Money("0.3217", "BRL"))
    assert charges["wamid.br"].rate.effective_from == date(2026, 7, 1)
    assert charges["wamid.br-utility"].amount == Money("0.0350", "BRL")


def test_every_shipped_local_currency_rate_says_where_it_comes_from_and_from_when(shipped_rates):
    local = RateCard.objects.filter(price_currency__in=["INR", "BRL"])

    assert {(rate.market, str(rate.price_currency)) for rate in local} == {("IN", "INR"), ("BR", "BRL")}
    assert all(rate.source and rate.effective_from for rate in local)
    assert not local.filter(source__startswith="sample").exists()


# --- Inbound minutes: from the customer's connect, or Meta's duration --------------------------------


def test_a_customer_who_waited_40_s_in_the_queue_and_left_counts_those_40_s(number):
    now = datetime.now(UTC)
    waited = CallFactory(  # the media process answered; no agent took it
        business_number=number, contact=ContactFactory(wa_id=BRITISH_CUSTOMER), status=Call.Status.QUEUED,
        started_at=now - timedelta(seconds=40), answered_at=now - timedelta(seconds=39),
    )  # fmt: skip
    never_answered = CallFactory(business_number=number, status=Call.Status.RINGING, started_at=now)

    call_finish(call_id=waited.pk, reason=Call.EndReason.ABANDONED)
    call_finish(call_id=never_answered.pk, reason=Call.EndReason.ABANDONED)

    charge = Charge.objects.get()
    assert (charge.reference, charge.pricing_type, charge.amount) == (
        waited.wa_call_id,
        "free_user_initiated",
        Money(0, "USD"),
    )
    assert charge.duration_seconds in (41, 42)  # 40 s and the started second


def test_metas_duration_of_a_customers_call_replaces_our_clock(number):
    now = datetime.now(UTC).replace(microsecond=0)
    call = CallFactory(
        business_number=number, contact=ContactFactory(wa_id=BRITISH_CUSTOMER), status=Call.Status.CONNECTED,
        started_at=now - timedelta(seconds=130), answered_at=now - timedelta(seconds=128),
        connected_at=now - timedelta(seconds=90),
    )  # fmt: skip
    terminate = CallTerminate(
        waba_id=number.waba_id, phone_number_id=number.phone_number_id, call_id=call.wa_call_id,
        from_number=BRITISH_CUSTOMER, to_number=number.digits, direction="USER_INITIATED", status="COMPLETED",
        started_at=now - timedelta(seconds=128), ended_at=now, duration_s=128,
    )  # fmt: skip

    call_terminate_received(terminate)
    call_terminate_received(terminate)  # a redelivery changes nothing

    charge = Charge.objects.get()
    assert (charge.reference, charge.duration_seconds, charge.quantity) == (call.wa_call_id, 128, 22)
    assert charge.pricing_type == "free_user_initiated"
    assert Call.objects.get(pk=call.pk).status == Call.Status.ENDED
