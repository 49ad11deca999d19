"""The cost reports: the ledger aggregated in the database, through the API and on the costs page."""

import json
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from djmoney.money import Money

from agents.tests.factories import UserFactory
from calls.models import Call
from calls.routing import call_finish
from calls.tests.factories import CallFactory
from messaging.models import Charge, RateCard
from messaging.services import RATE_CARDS_FIXTURE, rate_card_save, rate_cards_load
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

FIRST_DAY = date(2026, 3, 1)


@pytest.fixture
def number():
    return BusinessNumberFactory()


@pytest.fixture
def supervisor(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_charge"))
    client.force_login(user)
    return user


def charge(number, reference: str, **fields) -> Charge:
    defaults = {
        "kind": Charge.Kind.MESSAGE, "country": "IN", "category": "marketing", "pricing_type": "regular",
        "billed_on": FIRST_DAY, "amount": Money("0.8631", "INR"),
    }  # fmt: skip
    return Charge(business_number=number, reference=reference, **(defaults | fields))


def call_rate(market: str, price: str, currency: str) -> RateCard:
    return rate_card_save(
        rate=RateCard(category="call", market=market, price=Money(price, currency), effective_from=FIRST_DAY)
    )


def call(
    number, reference: str, *, pulses: int, seconds: int, amount: str = "0", inbound: bool = True, **fields
):
    pricing_type = "free_user_initiated" if inbound else "regular"
    return charge(
        number, reference, kind="call", category="call", pricing_type=pricing_type, quantity=pulses,
        duration_seconds=seconds, amount=Money(amount, "INR"), **fields,
    )  # fmt: skip


def test_the_spend_report_sums_by_day_category_country_and_currency(client, supervisor, number):
    Charge.objects.bulk_create(
        [
            charge(number, "a"),
            charge(number, "b"),
            charge(
                number, "c", pricing_type="free_customer_service", category="utility", amount=Money(0, "INR")
            ),
            charge(number, "d", billed_on=FIRST_DAY + timedelta(days=1), amount=None, amount_currency="INR"),
            charge(number, "e", country="GB", amount=Money("0.0600", "USD")),
            charge(number, "f", billed_on=FIRST_DAY - timedelta(days=1)),  # before the period
        ]
    )

    response = client.get("/api/v1/reports/spend/", {"since": "2026-03-01", "until": "2026-03-31"})

    assert response.status_code == 200
    body = response.json()
    assert (body["since"], body["until"]) == ("2026-03-01", "2026-03-31")
    assert [(r["day"], r["category"], r["country"], r["currency"], r["charges"], r["charged"], r["unpriced"],
             r["amount"]) for r in body["rows"]] == [
        ("2026-03-01", "marketing", "GB", "USD", 1, 1, 0, "0.0600"),
        ("2026-03-01", "marketing", "IN", "INR", 2, 2, 0, "1.7262"),
        ("2026-03-01", "utility", "IN", "INR", 1, 0, 0, "0.0000"),
        ("2026-03-02", "marketing", "IN", "INR", 1, 1, 1, "0.0000"),  # no rate yet
    ]  # fmt: skip
    assert body["totals"] == [
        {"currency": "INR", "charges": 4, "charged": 3, "unpriced": 1, "amount": "1.7262"},
        {"currency": "USD", "charges": 1, "charged": 1, "unpriced": 0, "amount": "0.0600"},
    ]


def test_the_call_report_prices_customers_minutes_as_if_the_business_had_called(client, supervisor, number):
    rate_card_save(
        rate=RateCard(category="call", market="IN", price=Money("0.5000", "INR"), effective_from=FIRST_DAY)
    )
    Charge.objects.bulk_create(
        [
            call(number, "out", pulses=10, seconds=56, amount="0.5000", inbound=False),
            call(number, "in1", pulses=20, seconds=115),
            call(number, "in2", pulses=1, seconds=3),
            call(number, "in-br", pulses=5, seconds=30, country="BR"),  # no call rate for Brazil
            charge(number, "message", amount=Money("0.8631", "INR")),  # not a call
        ]
    )  # fmt: skip

    response = client.get("/api/v1/reports/calls/", {"since": "2026-03-01", "until": "2026-03-01"})

    body = response.json()
    fields = [
        "country",
        "outbound_calls",
        "outbound_seconds",
        "outbound_amount",
        "inbound_calls",
        "inbound_seconds",
        "inbound_as_outbound",
    ]
    assert [tuple(row[field] for field in fields) for row in body["rows"]] == [
        ("BR", 0, 0, "0.0000", 1, 30, None),
        ("IN", 1, 56, "0.5000", 2, 118, "1.0500"),  # 21 pulses at 0.50 a minute
    ]  # fmt: skip
    assert body["totals"] == [
        {"currency": "INR", "outbound_calls": 1, "outbound_seconds": 56, "outbound_amount": "0.5000",
         "outbound_unpriced": 0, "inbound_calls": 3, "inbound_seconds": 148, "saving": "1.0500",
         "unpriced_inbound_seconds": 30},
    ]  # fmt: skip


def test_reports_over_100000_charges_take_the_same_few_queries(
    client, supervisor, number, django_assert_num_queries
):
    rate_card_save(
        rate=RateCard(category="call", market="OTHER", price=Money("0.0300", "USD"), effective_from=FIRST_DAY)
    )
    pick = random.Random(6)
    charges, expected = [], {}
    for index in range(100_000):
        day = FIRST_DAY + timedelta(days=index % 30)
        category = pick.choice(["marketing", "utility", "authentication", "call"])
        amount = Decimal(pick.randint(0, 999)) / 10_000
        kind = "call" if category == "call" else "message"
        pricing_type = "free_user_initiated" if kind == "call" and index % 2 else "regular"
        charges.append(
            charge(number, f"m{index}", kind=kind, category=category, billed_on=day,
                   pricing_type=pricing_type, country=pick.choice(["IN", "GB", "BR", "US"]),
                   amount=Money(amount, "USD"), quantity=3, duration_seconds=15)
        )  # fmt: skip
        expected[category] = expected.get(category, Decimal(0)) + amount
    Charge.objects.bulk_create(charges, batch_size=5_000)
    period = {"since": "2026-03-01", "until": "2026-03-30"}

    # Signing in takes four (the session, the user, its permissions and its groups'), the report one.
    with django_assert_num_queries(5):
        spend = client.get("/api/v1/reports/spend/", period).json()
    with django_assert_num_queries(7):  # and the call rates and the rate regions
        calls = client.get("/api/v1/reports/calls/", period).json()

    totals = {}
    for row in spend["rows"]:
        totals[row["category"]] = totals.get(row["category"], Decimal(0)) + Decimal(row["amount"])
    assert totals == expected
    assert spend["totals"][0]["charges"] == 100_000
    inbound_pulses = sum(
        charge.quantity for charge in charges if charge.pricing_type == "free_user_initiated"
    )
    assert Decimal(calls["totals"][0]["saving"]) == Decimal("0.0300") * inbound_pulses / 10


def test_the_reports_need_the_permission_to_view_charges(client, number):
    anonymous = client.get("/api/v1/reports/spend/")
    client.force_login(UserFactory(is_staff=True))  # staff, but no permission on charges

    assert anonymous.status_code == 401  # and WWW-Authenticate: Bearer (an API key would do)
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'
    assert client.get("/api/v1/reports/spend/").status_code == 403
    assert client.get("/api/v1/reports/calls/").status_code == 403
    assert client.get("/reports/costs/").status_code == 403


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"since": "2026-03-02", "until": "2026-03-01"}, "comes after"),
        ({"since": "2025-01-01", "until": "2026-03-01"}, "366 days at most"),
        ({"since": "yesterday"}, "Date has wrong format"),
    ],
)
def test_a_bad_period_is_refused_with_the_reason(client, supervisor, query, problem):
    api = client.get("/api/v1/reports/spend/", query)
    page = client.get("/reports/costs/", query)

    assert api.status_code == 400
    assert problem in str(api.json())
    assert page.status_code == 400
    assert problem in page.content.decode()


def test_the_costs_page_draws_a_day_a_bar_per_category_and_the_saving(client, supervisor, number):
    rate_card_save(
        rate=RateCard(category="call", market="IN", price=Money("0.5000", "INR"), effective_from=FIRST_DAY)
    )
    Charge.objects.bulk_create(
        [
            charge(number, "a"),
            charge(number, "b", category="utility", amount=Money("0.1150", "INR")),
            charge(number, "c", billed_on=FIRST_DAY + timedelta(days=2)),
            call(number, "in", pulses=10, seconds=60),
        ]
    )  # fmt: skip

    response = client.get("/reports/costs/", {"since": "2026-03-01", "until": "2026-03-07"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<rect x=") == 3  # 1 March: marketing and utility; 3 March: marketing
    assert "<title>2026-03-01 marketing: 0.8631 INR</title>" in html
    assert "1.8412 INR" in html  # the total charged
    assert '<strong class="saving">0.5000 INR</strong>' in html
    assert "Costs</a>" in html  # in the menu, for whoever may see them


def test_what_no_rate_priced_is_listed_with_its_reason_on_the_page_and_in_the_api(client, supervisor, number):
    rate_cards_load(document=json.loads(RATE_CARDS_FIXTURE.read_text()))
    june, december = date(2025, 6, 27), date(2025, 12, 1)
    unpriced = {"amount": None, "amount_currency": "INR"}
    Charge.objects.bulk_create(
        [
            *(charge(number, f"u{day}", category="utility", billed_on=june + timedelta(days=day % 3),
                     **unpriced) for day in range(12)),
            charge(number, "priced", billed_on=december),  # the 2025 INR marketing rate priced it
            charge(number, "br-call", kind="call", category="call", quantity=5, duration_seconds=30,
                   country="BR", billed_on=december, amount=None, amount_currency="BRL"),
            charge(number, "in-call", kind="call", category="call", quantity=5, duration_seconds=30,
                   billed_on=december, **unpriced),
            charge(number, "idr", country="ID", billed_on=december, amount=None, amount_currency="IDR"),
        ]
    )  # fmt: skip
    period = {"since": "2025-06-01", "until": "2025-12-31"}

    api = client.get("/api/v1/reports/spend/", period).json()
    page = client.get("/reports/costs/", period).content.decode()

    assert api["unpriced"] == [
        {"category": "call", "country": "BR", "currency": "BRL", "charges": 1, "first_day": "2025-12-01",
         "last_day": "2025-12-01", "summary": "1 business-initiated call to BR in BRL",
         "reason": "Meta publishes no call rate card in BRL (Calling API Pricing, updated 2026-03-30: USD, "
                   "AED, ARS, AUD, CLP, COP, EUR, GBP, IDR, INR, MXN, MYR, PEN, SAR, SGD)"},
        {"category": "call", "country": "IN", "currency": "INR", "charges": 1, "first_day": "2025-12-01",
         "last_day": "2025-12-01", "summary": "1 business-initiated call to IN in INR",
         "reason": "Meta publishes a call rate card in INR (Calling API Pricing, effective 2025-08-01) whose "
                   "figures were not found reproduced anywhere reachable: not estimated"},
        {"category": "marketing", "country": "ID", "currency": "IDR", "charges": 1, "first_day": "2025-12-01",
         "last_day": "2025-12-01", "summary": "1 marketing template to ID in IDR",
         "reason": "no rate card in IDR is on file"},
        {"category": "utility", "country": "IN", "currency": "INR", "charges": 12, "first_day": "2025-06-27",
         "last_day": "2025-06-29", "summary": "12 utility templates to IN in INR",
         "reason": "no published INR rate for utility template to IN before 2025-07-01"},
    ]  # fmt: skip
    assert (
        "12 utility templates to IN in INR (2025-06-27 to 2025-06-29): no published INR rate for utility "
        "template to IN before 2025-07-01</li>"
    ) in page
    assert "1 marketing template to ID in IDR (2025-12-01): no rate card in IDR is on file</li>" in page
    assert "Meta publishes no call rate card in BRL" in page


def test_a_rate_added_after_a_charge_or_one_that_ended_is_the_reason_given(client, supervisor, number):
    rate_card_save(
        rate=RateCard(category="utility", market="OTHER", price=Money("0.0100", "USD"),
                      effective_from=date(2026, 1, 1), effective_to=date(2026, 3, 1))
    )  # fmt: skip
    unpriced = {"category": "utility", "country": "GB", "amount": None, "amount_currency": "USD"}
    Charge.objects.bulk_create(
        [charge(number, "late", billed_on=FIRST_DAY, **unpriced),
         charge(number, "ended", billed_on=FIRST_DAY + timedelta(days=1), **unpriced)]
    )  # fmt: skip

    api = client.get("/api/v1/reports/spend/", {"since": "2026-03-01", "until": "2026-03-31"}).json()

    assert [(group["last_day"], group["reason"]) for group in api["unpriced"]] == [
        ("2026-03-01", "the USD rate on file for these days was added after they were charged"),
        ("2026-03-02", "the last USD rate on file for utility template to GB ended on 2026-03-01"),
    ]


def test_inbound_minutes_count_from_the_customers_connect_not_the_agents_accept(client, supervisor, number):
    rate_card_save(
        rate=RateCard(category="call", market="OTHER", price=Money("0.0300", "USD"), effective_from=FIRST_DAY)
    )
    now = timezone.now()
    waited = CallFactory(  # waited 40 s in the queue, then talked 20 s with an agent
        business_number=number, status=Call.Status.CONNECTED, started_at=now - timedelta(seconds=60),
        answered_at=now - timedelta(seconds=59), connected_at=now - timedelta(seconds=20),
    )  # fmt: skip

    call_finish(call_id=waited.pk, reason=Call.EndReason.COMPLETED)
    calls = client.get("/api/v1/reports/calls/").json()

    assert calls["totals"][0]["inbound_calls"] == 1
    assert calls["totals"][0]["inbound_seconds"] in (61, 62)  # not 21: the 40 s in the queue count
