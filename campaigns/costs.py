"""What a campaign will cost before it is sent: its messages by the customers' countries, priced by the
rate card of the template's category, the account's billing currency and the day (as
``messaging.services`` prices the charges Meta makes once they are delivered)."""

import datetime
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import Count
from django.utils import timezone
from djmoney.money import Money

from campaigns.models import Campaign, Recipient
from messaging.models import RateCard
from messaging.selectors import (
    AMOUNT_PLACES,
    SpendRow,
    UnpricedGroup,
    billing_currency,
    rate_find,
    unpriced_groups,
)
from messaging.services import country_of_wa_id

# What the estimate leaves out, and why (WHATSAPP_API.md §5.3, §5.4).
NOTES = (
    "Calls the campaign brings are the customers' own (user-initiated) and free; a campaign places no "
    "calls, so no call minutes are part of it.",
    "Every message is counted as delivered and charged: Meta charges none that fails to deliver.",
)
UTILITY_NOTE = (
    "A utility template is free to a customer whose customer-service window is open when it is delivered: "
    "the estimate charges them all."
)


@dataclass(frozen=True)
class CountryCost:
    """The messages to one country: the rate card's price of one, and what they cost (None: unpriced,
    ``reason`` says why)."""

    country: str  # ISO 3166 code, empty for a number of no known country
    messages: int
    price: Money | None
    amount: Money | None
    reason: str = ""


@dataclass(frozen=True)
class CostEstimate:
    """What sending the campaign's messages costs in the account's currency on a day: ``amount`` prices
    the ``priced`` messages; the rest are ``unpriced`` (grouped with the reason, as the costs report
    gives it) and not in the amount."""

    currency: str
    on: datetime.date
    category: str
    messages: int
    priced: int
    amount: Money
    countries: list[CountryCost]
    unpriced: list[UnpricedGroup]
    notes: list[str] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return self.priced == self.messages


def campaign_cost_estimate(campaign: Campaign, *, on: datetime.date | None = None) -> CostEstimate:
    """The cost of the campaign's messages: its recipients not excluded and not failed, by country (the
    recipient's, else that of the WhatsApp id's number), times the rate card row that prices the
    template's category for the country on ``on`` (default: today, UTC) in the currency Meta bills the
    account in that day. Countries no rate prices are listed with the reason. Reads only."""
    on = on or timezone.now().astimezone(datetime.UTC).date()
    currency = billing_currency(waba_id=campaign.business_number.waba_id, on=on)
    category = campaign.template.category
    by_country = _messages_by_country(campaign)
    countries, rows = [], []
    for country, messages in sorted(by_country.items()):
        rate = rate_find(category=category, country=country, currency=currency, on=on)
        if rate is None:
            rows.append(
                SpendRow(
                    day=on, category=category, country=country, currency=currency,
                    charges=messages, charged=messages, unpriced=messages, amount=Decimal(0),
                )
            )  # fmt: skip
            countries.append(CountryCost(country=country, messages=messages, price=None, amount=None))
            continue
        amount = (rate.price.amount * messages).quantize(AMOUNT_PLACES)
        countries.append(
            CountryCost(country=country, messages=messages, price=rate.price, amount=Money(amount, currency))
        )
    unpriced = unpriced_groups(rows)
    reasons = {group.country: group.reason for group in unpriced}
    countries = [
        replace(country, reason=reasons[country.country]) if country.amount is None else country
        for country in countries
    ]
    priced = [country for country in countries if country.amount is not None]
    notes = list(NOTES)
    if category == RateCard.Category.UTILITY:
        notes.append(UTILITY_NOTE)
    return CostEstimate(
        currency=currency,
        on=on,
        category=category,
        messages=sum(by_country.values()),
        priced=sum(country.messages for country in priced),
        amount=Money(sum((country.amount.amount for country in priced), Decimal(0)), currency),
        countries=countries,
        unpriced=unpriced,
        notes=notes,
    )


def _messages_by_country(campaign: Campaign) -> Counter:
    to_send = campaign.recipients.exclude(
        status__in=[Recipient.Status.EXCLUDED, Recipient.Status.FAILED]
    ).filter(exclusion="")
    counts: Counter = Counter()
    for row in to_send.exclude(country="").values("country").annotate(count=Count("pk")).order_by():
        counts[row["country"]] += row["count"]
    for wa_id in to_send.filter(country="").values_list("wa_id", flat=True):
        counts[country_of_wa_id(wa_id) if wa_id else ""] += 1
    return counts
