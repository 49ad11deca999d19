"""What a campaign will cost: its messages by country at the rate card of the template's category, in the
account's currency of the day, with the countries no rate prices and why."""

import json
from datetime import date
from decimal import Decimal

import pytest
from djmoney.money import Money

from campaigns.costs import NOTES, UTILITY_NOTE, CountryCost, campaign_cost_estimate
from campaigns.models import Campaign, Recipient
from messaging.models import BillingCurrency, RateCard, Template
from messaging.services import RATE_CARDS_FIXTURE, rate_cards_load
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped_rates():
    return rate_cards_load(document=json.loads(RATE_CARDS_FIXTURE.read_text()))


@pytest.fixture
def number():
    return BusinessNumberFactory()


def campaign_of(number, category: str = RateCard.Category.MARKETING) -> Campaign:
    template = Template.objects.create(
        waba_id=number.waba_id, name=f"{category}_news", language="en", category=category,
        status=Template.Status.APPROVED,
    )  # fmt: skip
    campaign = Campaign.objects.create(name="Festive sale", business_number=number, template=template)
    people = [
        # Indian customers: three listed with their country, two whose country comes from the number.
        ("919876500001", "IN", {}),
        ("919876500002", "IN", {}),
        ("919876500003", "IN", {"status": Recipient.Status.DELIVERED}),
        ("919876500004", "", {}),
        ("919876500005", "", {}),
        ("5511987650001", "BR", {}),
        ("5511987650002", "BR", {}),
        ("447700900001", "GB", {}),
        # Neither is sent nor charged: one excluded, one Meta refused.
        (
            "919876500006",
            "IN",
            {"status": Recipient.Status.EXCLUDED, "exclusion": Recipient.Exclusion.NO_OPT_IN},
        ),
        ("919876500007", "IN", {"status": Recipient.Status.FAILED}),
    ]
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, listed_as=f"+{wa_id}", wa_id=wa_id, country=country, **fields)
        for wa_id, country, fields in people
    )
    return campaign


def test_an_inr_account_pays_the_india_rate_and_the_rest_is_unpriced_with_the_reason(number, shipped_rates):
    """5 Indian customers x ₹0.8631 (India's marketing rate from 2026-01-01) = ₹4.3155; Meta publishes
    no INR marketing rate for Brazil or Britain in the shipped rate card."""
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2025, 7, 1))
    campaign = campaign_of(number)

    estimate = campaign_cost_estimate(campaign, on=date(2026, 3, 1))

    assert (estimate.currency, estimate.category, estimate.messages, estimate.priced) == (
        "INR",
        "marketing",
        8,
        5,
    )
    assert estimate.amount == Money("4.3155", "INR")
    assert estimate.is_complete is False
    assert estimate.countries == [
        CountryCost("BR", 2, None, None, "no INR rate for marketing template to BR is on file"),
        CountryCost("GB", 1, None, None, "no INR rate for marketing template to GB is on file"),
        CountryCost("IN", 5, Money("0.8631", "INR"), Money("4.3155", "INR")),
    ]
    assert [(group.what, group.reason) for group in estimate.unpriced] == [
        ("2 marketing templates to BR in INR", "no INR rate for marketing template to BR is on file"),
        ("1 marketing template to GB in INR", "no INR rate for marketing template to GB is on file"),
    ]
    assert estimate.notes == list(NOTES)


def test_the_estimate_prices_the_day_it_is_made_for(number, shipped_rates):
    """India's INR marketing rate was ₹0.7846 until 2025-12-31: 5 x 0.7846 = ₹3.9230."""
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2025, 7, 1))
    campaign = campaign_of(number)

    estimate = campaign_cost_estimate(campaign, on=date(2025, 12, 31))

    assert estimate.amount == Money("3.9230", "INR")


def test_a_usd_account_pays_the_rate_for_every_other_country(number, shipped_rates):
    """No billing currency on file: USD, where the shipped card prices marketing at $0.06 for every
    country without a row of its own: 8 x 0.06 = $0.48."""
    campaign = campaign_of(number)

    estimate = campaign_cost_estimate(campaign, on=date(2026, 3, 1))

    assert (estimate.currency, estimate.amount, estimate.is_complete) == ("USD", Money("0.48", "USD"), True)
    assert [(country.country, country.messages, country.amount) for country in estimate.countries] == [
        ("BR", 2, Money("0.12", "USD")),
        ("GB", 1, Money("0.06", "USD")),
        ("IN", 5, Money("0.30", "USD")),
    ]
    assert estimate.unpriced == []


def test_a_utility_campaign_before_the_first_inr_utility_rate_is_unpriced_and_says_so(number, shipped_rates):
    """The INR utility rate for India starts on 2025-07-01; on 2025-06-30 nothing prices it."""
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="INR", effective_from=date(2025, 1, 1))
    campaign = campaign_of(number, category=RateCard.Category.UTILITY)

    estimate = campaign_cost_estimate(campaign, on=date(2025, 6, 30))

    assert (estimate.priced, estimate.amount) == (0, Money(Decimal(0), "INR"))
    assert {country.country: country.reason for country in estimate.countries} == {
        "BR": "no INR rate for utility template to BR is on file",
        "GB": "no INR rate for utility template to GB is on file",
        "IN": "no published INR rate for utility template to IN before 2025-07-01",
    }
    assert estimate.notes == [*NOTES, UTILITY_NOTE]


def test_an_account_in_a_currency_with_no_rate_card_says_so(number, shipped_rates):
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="EUR", effective_from=date(2025, 7, 1))
    campaign = campaign_of(number)

    estimate = campaign_cost_estimate(campaign, on=date(2026, 3, 1))

    assert estimate.priced == 0
    assert {group.reason for group in estimate.unpriced} == {"no rate card in EUR is on file"}
