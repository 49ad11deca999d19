"""Reads of messaging: contacts, billing currencies and rate cards, the inbox's conversations."""

import datetime
import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from django.db.models import Count, DateTimeField, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from djmoney.money import Money

from messaging.models import (
    BillingCurrency,
    CannedReply,
    Charge,
    Contact,
    Conversation,
    ConversationNote,
    ConversationWindow,
    MarketingPreference,
    MarketingPreferenceChange,
    Message,
    RateCard,
    RateRegion,
    Template,
)

if TYPE_CHECKING:
    from core.access import Viewer

RATE_CARDS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "rate_cards.json"
DEFAULT_BILLING_CURRENCY = "USD"  # Meta bills an account in USD unless it moved to a local currency
PULSE_SECONDS = 6  # business-initiated calls are billed in 6-second pulses, rounded up (§5.3)
PULSES_PER_MINUTE = 60 // PULSE_SECONDS
AMOUNT_PLACES = Decimal("0.0001")
FREE_PRICING_TYPES = frozenset(
    {
        Charge.PricingType.FREE_CUSTOMER_SERVICE,
        Charge.PricingType.FREE_ENTRY_POINT,
        Charge.PricingType.FREE_USER_INITIATED,
    }
)  # any other type is charged: one Meta adds later is not assumed free


def billing_currency(*, waba_id: str, on: datetime.date) -> str:
    """The currency Meta bills the account in on a date (USD before its first row)."""
    row = (
        BillingCurrency.objects.filter(waba_id=waba_id, effective_from__lte=on)
        .order_by("-effective_from")
        .values_list("currency", flat=True)
        .first()
    )
    return row or DEFAULT_BILLING_CURRENCY


def rate_find(*, category: str, country: str, currency: str, on: datetime.date) -> RateCard | None:
    """The rate card row that prices ``category`` for a customer in ``country`` on a date, in a currency:
    the country's own row, else its region's, else the row for every other country; None when none
    applies (an unpriced charge, not a free one)."""
    return rates_find(categories=[category], country=country, currency=currency, on=on)[category]


def rates_find(
    *, categories: list[str], country: str, currency: str, on: datetime.date
) -> dict[str, RateCard | None]:
    """``rate_find`` for several categories at once: two statements however many."""
    markets = _markets(country, RateRegion.objects.all())
    candidates = RateCard.objects.filter(
        Q(effective_to__isnull=True) | Q(effective_to__gte=on),
        category__in=categories,
        market__in=markets,
        price_currency=currency,
        effective_from__lte=on,
    )
    by_key = {(rate.category, rate.market): rate for rate in candidates}
    return {
        category: next((by_key[category, market] for market in markets if (category, market) in by_key), None)
        for category in categories
    }


# --- Reports: what the account spends, aggregated in the database ---------------------------------


@dataclass(frozen=True)
class SpendRow:
    """One day, category, country and currency of the ledger."""

    day: datetime.date
    category: str
    country: str
    currency: str
    charges: int  # charges counted (free ones included)
    charged: int  # of them, charged by Meta
    unpriced: int  # of them, charged by Meta but with no rate card row yet (not in `amount`)
    amount: Decimal


@dataclass(frozen=True)
class CallCostRow:
    """One day, country and currency of connected calls: what the business's calls cost, and what the
    customers' calls would have cost had the business placed them (the voice arbitrage)."""

    day: datetime.date
    country: str
    currency: str
    outbound_calls: int
    outbound_seconds: int
    outbound_amount: Decimal
    outbound_unpriced: int  # of the business's calls, those no call rate priced (not in the amount)
    inbound_calls: int
    inbound_seconds: int
    inbound_as_outbound: Decimal | None  # None: no call rate prices the country on that day


def spend_by_day(
    *, since: datetime.date, until: datetime.date, business_number_ids: Collection[int] | None = None
) -> list[SpendRow]:
    """The ledger from ``since`` to ``until`` (both included) by day, category, country and currency:
    one aggregate query whatever the number of charges. ``business_number_ids``: only those numbers'
    charges (an API key sees its own numbers'); None: the whole account."""
    rows = (
        _charges(since, until, business_number_ids)
        .values("billed_on", "category", "country", "amount_currency")
        .annotate(
            charges=Count("id"),
            charged=Count("id", filter=~Q(pricing_type__in=FREE_PRICING_TYPES)),
            unpriced=Count("id", filter=Q(amount__isnull=True)),
            total=Sum("amount", default=Decimal(0)),
        )
        .order_by("billed_on", "category", "country", "amount_currency")
    )
    return [
        SpendRow(
            day=row["billed_on"], category=row["category"], country=row["country"],
            currency=row["amount_currency"] or "", charges=row["charges"], charged=row["charged"],
            unpriced=row["unpriced"], amount=row["total"],
        )
        for row in rows
    ]  # fmt: skip


def call_costs_by_day(
    *, since: datetime.date, until: datetime.date, business_number_ids: Collection[int] | None = None
) -> list[CallCostRow]:
    """Connected calls from ``since`` to ``until`` by day, country and currency, with what the inbound
    minutes would have cost as business-initiated calls (their pulses at the call rate of their country
    and day). Three queries whatever the number of calls: the aggregate, the call rates, the regions.
    ``business_number_ids``: only those numbers' calls; None: the whole account."""
    inbound = Q(pricing_type=Charge.PricingType.FREE_USER_INITIATED)
    rows = (
        _charges(since, until, business_number_ids)
        .filter(kind=Charge.Kind.CALL)
        .values("billed_on", "country", "amount_currency")
        .annotate(
            outbound_calls=Count("id", filter=~inbound),
            outbound_seconds=Sum("duration_seconds", filter=~inbound, default=0),
            outbound_amount=Sum("amount", filter=~inbound, default=Decimal(0)),
            outbound_unpriced=Count("id", filter=~inbound & Q(amount__isnull=True)),
            inbound_calls=Count("id", filter=inbound),
            inbound_seconds=Sum("duration_seconds", filter=inbound, default=0),
            inbound_pulses=Sum("quantity", filter=inbound, default=0),
        )
        .order_by("billed_on", "country", "amount_currency")
    )
    rates = _RateBook(category=RateCard.Category.CALL)
    result = []
    for row in rows:
        rate = rates.find(country=row["country"], currency=row["amount_currency"] or "", on=row["billed_on"])
        would_cost = None
        if rate is not None:
            would_cost = (rate.price.amount * row["inbound_pulses"] / PULSES_PER_MINUTE).quantize(
                AMOUNT_PLACES
            )
        result.append(
            CallCostRow(
                day=row["billed_on"], country=row["country"], currency=row["amount_currency"] or "",
                outbound_calls=row["outbound_calls"], outbound_seconds=row["outbound_seconds"],
                outbound_amount=row["outbound_amount"], outbound_unpriced=row["outbound_unpriced"],
                inbound_calls=row["inbound_calls"],
                inbound_seconds=row["inbound_seconds"], inbound_as_outbound=would_cost,
            )
        )  # fmt: skip
    return result


def _charges(since: datetime.date, until: datetime.date, business_number_ids: Collection[int] | None):
    charges = Charge.objects.filter(billed_on__gte=since, billed_on__lte=until)
    if business_number_ids is not None:
        charges = charges.filter(business_number_id__in=business_number_ids)
    return charges


class _RateBook:
    """Every rate card row of one category, read once, looked up as ``rate_find`` does."""

    def __init__(self, *, category: str) -> None:
        self._rates: dict[tuple[str, str], list[RateCard]] = {}
        for rate in RateCard.objects.filter(category=category).order_by("-effective_from"):
            self._rates.setdefault((rate.market, str(rate.price_currency)), []).append(rate)
        self._regions = list(RateRegion.objects.all())

    def find(self, *, country: str, currency: str, on: datetime.date) -> RateCard | None:
        for market in _markets(country, self._regions):
            for rate in self._rates.get((market, currency), []):
                if rate.effective_from <= on and (rate.effective_to is None or rate.effective_to >= on):
                    return rate
        return None


def _markets(country: str, regions) -> list[str]:
    """The rate card markets that may price a country, the most specific first."""
    if not country:
        return [RateCard.OTHER_MARKET]
    return [
        country,
        *(region.name for region in regions if country in region.countries),
        RateCard.OTHER_MARKET,
    ]


# --- What is unpriced, and why --------------------------------------------------------------------

# What the report calls the charges of a category: one, and more than one.
CHARGED_AS = {
    RateCard.Category.MARKETING: ("marketing template", "marketing templates"),
    RateCard.Category.MARKETING_LITE: ("marketing lite template", "marketing lite templates"),
    RateCard.Category.UTILITY: ("utility template", "utility templates"),
    RateCard.Category.AUTHENTICATION: ("authentication template", "authentication templates"),
    RateCard.Category.AUTHENTICATION_INTERNATIONAL: (
        "authentication template at the international rate",
        "authentication templates at the international rate",
    ),
    RateCard.Category.SERVICE: ("service message", "service messages"),
    RateCard.Category.CALL: ("business-initiated call", "business-initiated calls"),
}


@dataclass(frozen=True)
class UnpricedGroup:
    """Charges Meta makes that no rate card row priced, of one category, country and currency, for one
    reason: how many, over which days, and why (``reason``, a sentence a person reads)."""

    category: str
    country: str
    currency: str
    charges: int
    first_day: datetime.date
    last_day: datetime.date
    reason: str

    @property
    def what(self) -> str:
        """What the report says of them, e.g. "12 utility templates to IN in INR"."""
        one, many = CHARGED_AS.get(self.category, ("charge with no category", "charges with no category"))
        to = f" to {self.country}" if self.country else " to a number of no known country"
        return f"{self.charges} {one if self.charges == 1 else many}{to} in {self.currency or 'no currency'}"


def unpriced_groups(rows: list[SpendRow]) -> list[UnpricedGroup]:
    """The unpriced charges of ``spend_by_day`` rows, grouped by category, country, currency and the
    reason no rate priced them: no rate card in the currency at all, none for the category and country,
    none yet on the day (before the first row's day, after the last one's), one added since the charge
    was recorded, or what Meta publishes about it (``unpriced_notes`` of the shipped rate card file:
    e.g. no call rates in BRL). Two queries when something is unpriced (the rate card rows of its
    currencies, the regions), none otherwise."""
    unpriced = [row for row in rows if row.unpriced]
    if not unpriced:
        return []
    rates: dict[tuple[str, str], list[RateCard]] = {}
    currencies = sorted({row.currency for row in unpriced})
    for rate in RateCard.objects.filter(price_currency__in=currencies):
        rates.setdefault((rate.category, str(rate.price_currency)), []).append(rate)
    regions = list(RateRegion.objects.all())
    on_file = {currency for _, currency in rates}
    groups: dict[tuple[str, str, str, str], UnpricedGroup] = {}
    for row in unpriced:
        reason = _why_unpriced(row, rates=rates, regions=regions, on_file=on_file)
        key = (row.category, row.country, row.currency, reason)
        group = groups.get(key)
        groups[key] = UnpricedGroup(
            category=row.category, country=row.country, currency=row.currency,
            charges=row.unpriced + (group.charges if group else 0),
            first_day=min(row.day, group.first_day) if group else row.day,
            last_day=max(row.day, group.last_day) if group else row.day,
            reason=reason,
        )  # fmt: skip
    return sorted(
        groups.values(), key=lambda group: (group.category, group.country, group.currency, group.first_day)
    )


def _why_unpriced(row: SpendRow, *, rates: dict, regions: list[RateRegion], on_file: set[str]) -> str:
    currency, category = row.currency, row.category
    where = row.country or "a number of no known country"
    if not category:
        return "Meta's status webhook gave no pricing category"
    note = published_gaps().get((category, currency))
    if note:
        return note
    if not currency:
        return "the account's billing currency was not known"
    if currency not in on_file:
        return f"no rate card in {currency} is on file"
    label = RateCard.Category(category).label.lower() if category in RateCard.Category.values else category
    markets = _markets(row.country, regions)
    mine = [rate for rate in rates.get((category, currency), []) if rate.market in markets]
    if not mine:
        return f"no {currency} rate for {label} to {where} is on file"
    if any(_covers(rate, row.day) for rate in mine):
        return f"the {currency} rate on file for these days was added after they were charged"
    earliest = min(rate.effective_from for rate in mine)
    if row.day < earliest:
        return f"no published {currency} rate for {label} to {where} before {earliest:%Y-%m-%d}"
    ended = max(rate.effective_to for rate in mine if rate.effective_to and rate.effective_to < row.day)
    return f"the last {currency} rate on file for {label} to {where} ended on {ended:%Y-%m-%d}"


def _covers(rate: RateCard, day: datetime.date) -> bool:
    return rate.effective_from <= day and (rate.effective_to is None or rate.effective_to >= day)


@functools.cache
def published_gaps() -> dict[tuple[str, str], str]:
    """What Meta publishes no rate for, by (category, currency), with the source: the shipped rate card
    file's ``unpriced_notes``."""
    notes = json.loads(RATE_CARDS_FIXTURE.read_text()).get("unpriced_notes", [])
    return {(note["category"], note["currency"]): note["reason"] for note in notes}


@dataclass(frozen=True)
class SpendTotal:
    currency: str
    charges: int
    charged: int
    unpriced: int
    amount: Decimal


@dataclass(frozen=True)
class CallCostTotal:
    """A period's calls in one currency; ``saving`` is what the customers' calls would have cost as
    business-initiated calls (``unpriced_inbound_seconds``: inbound time no call rate priced)."""

    currency: str
    outbound_calls: int
    outbound_seconds: int
    outbound_amount: Decimal
    outbound_unpriced: int
    inbound_calls: int
    inbound_seconds: int
    saving: Decimal
    unpriced_inbound_seconds: int


def spend_totals(rows: list[SpendRow]) -> list[SpendTotal]:
    """``spend_by_day`` rows summed per currency (amounts of different currencies never add up)."""
    totals: dict[str, SpendTotal] = {}
    for row in rows:
        total = totals.get(row.currency) or SpendTotal(row.currency, 0, 0, 0, Decimal(0))
        totals[row.currency] = SpendTotal(
            row.currency, total.charges + row.charges, total.charged + row.charged,
            total.unpriced + row.unpriced, total.amount + row.amount,
        )  # fmt: skip
    return sorted(totals.values(), key=lambda total: total.currency)


def call_cost_totals(rows: list[CallCostRow]) -> list[CallCostTotal]:
    """``call_costs_by_day`` rows summed per currency."""
    totals: dict[str, CallCostTotal] = {}
    for row in rows:
        total = totals.get(row.currency) or CallCostTotal(
            row.currency, 0, 0, Decimal(0), 0, 0, 0, Decimal(0), 0
        )
        is_priced = row.inbound_as_outbound is not None
        totals[row.currency] = CallCostTotal(
            currency=row.currency,
            outbound_calls=total.outbound_calls + row.outbound_calls,
            outbound_seconds=total.outbound_seconds + row.outbound_seconds,
            outbound_amount=total.outbound_amount + row.outbound_amount,
            outbound_unpriced=total.outbound_unpriced + row.outbound_unpriced,
            inbound_calls=total.inbound_calls + row.inbound_calls,
            inbound_seconds=total.inbound_seconds + row.inbound_seconds,
            saving=total.saving + (row.inbound_as_outbound if is_priced else 0),
            unpriced_inbound_seconds=total.unpriced_inbound_seconds
            + (0 if is_priced else row.inbound_seconds),
        )
    return sorted(totals.values(), key=lambda total: total.currency)


@dataclass(frozen=True)
class Quote:
    """What one message would cost now: Meta's pricing type, and the amount (None: no rate on file)."""

    pricing_type: str
    amount: Money | None


@dataclass(frozen=True)
class SendOptions:
    """What a number may send a contact at ``at``, and what each kind of message costs."""

    at: datetime.datetime
    customer_service_until: datetime.datetime | None
    free_entry_until: datetime.datetime | None
    currency: str
    quotes: dict[str, Quote]  # by template category, and "service" for a free-form message

    @property
    def is_service_window_open(self) -> bool:
        return self.customer_service_until is not None and self.at < self.customer_service_until

    @property
    def is_free_entry_open(self) -> bool:
        return self.free_entry_until is not None and self.at < self.free_entry_until


SENT_CATEGORIES = (RateCard.Category.MARKETING, RateCard.Category.UTILITY, RateCard.Category.AUTHENTICATION)


def send_options(*, business_number, contact, at: datetime.datetime | None = None) -> SendOptions:
    """Whether free-form messages are allowed (inside the customer-service window) and what a template of
    each category costs now, by Meta's rules (WHATSAPP_API.md §5.4): everything is free in a free entry
    point window; a utility template is free in the customer-service window; the rest is charged at the
    rate card's price for the contact's country, in the account's currency of the day."""
    at = at or timezone.now()
    window = ConversationWindow.objects.filter(business_number=business_number, contact=contact).first()
    on = at.astimezone(datetime.UTC).date()
    currency = billing_currency(waba_id=business_number.waba_id, on=on)
    options = SendOptions(
        at=at,
        customer_service_until=window.customer_service_until if window else None,
        free_entry_until=window.free_entry_until if window else None,
        currency=currency,
        quotes={},
    )
    free = Money(0, currency)
    rates = rates_find(categories=list(SENT_CATEGORIES), country=contact.country, currency=currency, on=on)
    for category in SENT_CATEGORIES:
        if options.is_free_entry_open:
            options.quotes[category] = Quote(Charge.PricingType.FREE_ENTRY_POINT, free)
        elif category == RateCard.Category.UTILITY and options.is_service_window_open:
            options.quotes[category] = Quote(Charge.PricingType.FREE_CUSTOMER_SERVICE, free)
        else:
            rate = rates[category]
            options.quotes[category] = Quote(Charge.PricingType.REGULAR, rate.price if rate else None)
    if options.is_service_window_open:  # free-form messages only inside it, free entry point or not
        pricing_type = (
            Charge.PricingType.FREE_ENTRY_POINT
            if options.is_free_entry_open
            else Charge.PricingType.FREE_CUSTOMER_SERVICE
        )
        options.quotes[RateCard.Category.SERVICE] = Quote(pricing_type, free)
    return options


THREAD_LENGTH = 50


def thread_of(*, contact_id: int, business_number_id: int, limit: int = THREAD_LENGTH) -> list[Message]:
    """The latest messages between a number and a contact, oldest first. The customer's reaction to a
    message of the thread is shown on it (``customer_reaction``: the latest by Meta's time, empty when
    taken back) rather than as a message of its own; one on a message further back stays a message."""
    latest = (
        Message.objects.filter(contact_id=contact_id, business_number_id=business_number_id)
        .select_related("contact")
        .order_by("-created_at", "-pk")[:limit]
    )
    messages = list(reversed(latest))
    by_wa_id = {message.wa_message_id: message for message in messages if message.wa_message_id}
    reactions = sorted(
        (
            message
            for message in messages
            if message.message_type == "reaction"
            and message.direction == Message.Direction.INBOUND
            and message.reacts_to in by_wa_id
        ),
        key=lambda reaction: (reaction.sent_at or reaction.created_at, reaction.pk),
    )
    for reaction in reactions:
        by_wa_id[reaction.reacts_to].customer_reaction = reaction.emoji
    placed = {reaction.pk for reaction in reactions}
    return [message for message in messages if message.pk not in placed]


def templates_sendable(*, waba_id: str) -> list[Template]:
    """The approved templates of an account: what may be sent outside the customer-service window."""
    return list(Template.objects.filter(waba_id=waba_id, status=Template.Status.APPROVED))


def contact_or_unsaved(*, wa_id: str) -> Contact:
    """The contact of a WhatsApp id, or an unsaved one for a customer we never spoke to: a read
    (may we call them?) writes nothing."""
    return Contact.objects.filter(wa_id=wa_id).first() or Contact(wa_id=wa_id)


# --- The inbox -------------------------------------------------------------------------------------

INBOX_LENGTH = 200  # conversations a list shows at most


def conversations_mine(*, viewer: "Viewer", limit: int = INBOX_LENGTH) -> list[Conversation]:
    """The viewer's own conversations (an agent's: assigned to them), latest message first, each
    with its unread count. One query."""
    if viewer.agent_id is None:
        return []
    mine = viewer.conversations().filter(state=Conversation.State.ASSIGNED, agent_id=viewer.agent_id)
    return list(_inbox_rows(mine).order_by("-last_message_at", "pk")[:limit])


def conversations_waiting(*, viewer: "Viewer", limit: int = INBOX_LENGTH) -> list[Conversation]:
    """The conversations of the viewer's numbers waiting for an agent, longest-waiting first. One
    query."""
    waiting = viewer.conversations().filter(state=Conversation.State.WAITING)
    return list(_inbox_rows(waiting).order_by("waiting_since", "pk")[:limit])


def conversations_all(
    *, viewer: "Viewer", is_open: bool = True, limit: int = INBOX_LENGTH
) -> list[Conversation]:
    """Every conversation of the viewer's numbers (the supervisors' list): the open ones, or with
    `is_open=False` the closed ones too, latest message first. One query."""
    every = viewer.conversations()
    if is_open:
        every = every.filter(state__in=Conversation.OPEN_STATES)
    return list(_inbox_rows(every).order_by("-last_message_at", "pk")[:limit])


def _inbox_rows(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return conversations.select_related("contact", "business_number", "queue", "agent__user")


@dataclass(frozen=True)
class InboxCounts:
    mine: int  # conversations assigned to the viewer
    unread: int  # the customers' messages in them the viewer has not read
    waiting: int  # conversations of the viewer's numbers waiting for an agent


def inbox_counts(*, viewer: "Viewer") -> InboxCounts:
    """What the inbox's tabs show as badges. One query."""
    mine = Q(state=Conversation.State.ASSIGNED, agent_id=viewer.agent_id)
    totals = viewer.conversations().aggregate(
        mine=Count("pk", filter=mine),
        unread=Coalesce(Sum("unread_count", filter=mine), 0),
        waiting=Count("pk", filter=Q(state=Conversation.State.WAITING)),
    )
    if viewer.agent_id is None:
        totals |= {"mine": 0, "unread": 0}
    return InboxCounts(**totals)


SEARCH_MAX_LENGTH = 100
_NEVER = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


def conversations_search(*, viewer: "Viewer", term: str, limit: int = INBOX_LENGTH) -> list[Conversation]:
    """The viewer's conversations, open or closed, whose customer's name or number holds `term`, or
    whose messages do when the viewer may search free text for it (core.access: a term a mask could
    hide finds by name and number only), latest message first. One query."""
    term = term.strip()[:SEARCH_MAX_LENGTH]
    if not term:
        return []
    matches = Q(contact__name__icontains=term)
    digits = "".join(character for character in term if character.isdigit())
    if digits:
        matches |= Q(contact__wa_id__contains=digits)
    if viewer.may_search_text(term):
        said = viewer.messages().filter(
            contact_id=OuterRef("contact_id"),
            business_number_id=OuterRef("business_number_id"),
            created_at__gte=OuterRef("opened_at"),
            created_at__lte=Coalesce(OuterRef("closed_at"), Value(_NEVER), output_field=DateTimeField()),
            text__icontains=term,
        )
        matches |= Exists(said)
    found = viewer.conversations().filter(matches)
    return list(_inbox_rows(found).order_by("-last_message_at", "pk")[:limit])


def canned_replies_for(*, business_number_id: int) -> list[CannedReply]:
    """The canned replies a number's conversations offer: the number's own, and every number's
    (a number's own reply replaces an every-number one with the same shortcut). One query."""
    replies = CannedReply.objects.filter(
        Q(business_number_id=business_number_id) | Q(business_number__isnull=True)
    ).order_by("shortcut", F("business_number_id").asc(nulls_last=True), "pk")  # a number's own first
    by_shortcut: dict[str, CannedReply] = {}
    for reply in replies:
        by_shortcut.setdefault(reply.shortcut, reply)
    return list(by_shortcut.values())


def thread_with_notes(*, conversation: Conversation, viewer: "Viewer", limit: int = THREAD_LENGTH) -> list:
    """The thread of the conversation's customer and number (`thread_of`) with the private notes left
    on its conversations among its messages, in time order. Each note carries `shown_text`, as the
    viewer reads it (core.access: a colleague's note only to whom may read colleagues' notes, masked
    unless the viewer reads raw text); notes the viewer may not read are left out. Two queries."""
    messages = thread_of(
        contact_id=conversation.contact_id, business_number_id=conversation.business_number_id, limit=limit
    )
    notes = ConversationNote.objects.filter(
        conversation__contact_id=conversation.contact_id,
        conversation__business_number_id=conversation.business_number_id,
    ).select_related("author")
    if len(messages) >= limit:  # older notes belong with the older messages, not shown either
        notes = notes.filter(created_at__gte=messages[0].created_at)
    shown = []
    for note in reversed(notes.order_by("-created_at", "-pk")[:limit]):
        note.shown_text = viewer.conversation_note_of(note, conversation=conversation)
        if note.shown_text:
            shown.append(note)
    return sorted([*messages, *shown], key=lambda item: item.created_at)


@dataclass(frozen=True)
class MarketingOfContact:
    """A customer's marketing preferences as a viewer may see them: by business number id, and every
    change of them, newest first."""

    by_number: dict[int, MarketingPreference]
    history: list[MarketingPreferenceChange]


def marketing_of_contact(*, viewer: "Viewer", contact_id: int) -> MarketingOfContact:
    """The customer's marketing preferences on the viewer's numbers (core.access), with their history.
    A number with no row has heard nothing: the customer takes marketing messages from it."""
    preferences = viewer.marketing_preferences().filter(contact_id=contact_id)
    history = MarketingPreferenceChange.objects.filter(preference__in=preferences).select_related(
        "preference__business_number"
    )
    return MarketingOfContact(
        by_number={preference.business_number_id: preference for preference in preferences},
        history=list(history.order_by("-at", "-pk")),
    )
