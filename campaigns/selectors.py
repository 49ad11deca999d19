"""Reads of campaigns: progress, exclusions, cost and ROI, computed from the source rows each time
(messages and their statuses, customers' messages, calls and charges): no counter to drift."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from calls.models import Call
from campaigns.models import Campaign, Recipient
from core.access import Viewer
from messaging.models import Charge, Message
from messaging.selectors import billing_currency

ABANDONED_REASONS = (Call.EndReason.ABANDONED, Call.EndReason.NO_AGENT)
PROGRESS_FIELDS = (
    "listed", "excluded", "pending", "sent", "delivered", "read", "failed", "replied", "tapped_call",
    "calls_answered", "calls_abandoned",
)  # fmt: skip


def campaign_calls(campaign: Campaign) -> QuerySet[Call]:
    """Calls the campaign brought: its number's calls whose `cta_payload` is its button's payload."""
    if not campaign.call_button_payload:
        return Call.objects.none()
    return Call.objects.filter(
        business_number_id=campaign.business_number_id, cta_payload=campaign.call_button_payload
    )


def recipients_with_outcome(campaign: Campaign) -> QuerySet[Recipient]:
    """The campaign's recipients, each annotated with `has_replied` (their contact wrote to the number
    after the message was sent), `has_tapped_call` (called through its button), `has_call_answered`
    and `has_call_abandoned` (such a call was connected to an agent / left waiting)."""
    calls = campaign_calls(campaign).filter(contact_id=OuterRef("contact_id"))
    replies = Message.objects.filter(
        business_number_id=campaign.business_number_id, contact_id=OuterRef("contact_id"),
        direction=Message.Direction.INBOUND, created_at__gt=OuterRef("message__sent_at"),
    )  # fmt: skip
    return Recipient.objects.filter(campaign=campaign).annotate(
        has_replied=Exists(replies),
        has_tapped_call=Exists(calls),
        has_call_answered=Exists(calls.filter(connected_at__isnull=False)),
        has_call_abandoned=Exists(calls.filter(end_reason__in=ABANDONED_REASONS)),
    )


def campaign_progress(campaign: Campaign) -> dict[str, int]:
    """How far the campaign got, in one aggregate query: recipients listed, excluded, waiting to be
    sent; messages sent, delivered (or read), read, failed (before or after Meta took them); customers
    who replied, who tapped the call button, whose call was answered, and who left before it was."""
    sent = Q(message__sent_at__isnull=False)
    return recipients_with_outcome(campaign).aggregate(
        listed=Count("pk"),
        excluded=Count("pk", filter=Q(status=Recipient.Status.EXCLUDED)),
        pending=Count("pk", filter=Q(status=Recipient.Status.PENDING)),
        sent=Count("pk", filter=sent),
        delivered=Count(
            "pk", filter=Q(message__delivered_at__isnull=False) | Q(message__read_at__isnull=False)
        ),
        read=Count("pk", filter=Q(message__read_at__isnull=False)),
        failed=Count(
            "pk", filter=Q(status=Recipient.Status.FAILED) | Q(message__status=Message.Status.FAILED)
        ),
        replied=Count("pk", filter=sent & Q(has_replied=True)),
        tapped_call=Count("pk", filter=Q(has_tapped_call=True)),
        calls_answered=Count("pk", filter=Q(has_call_answered=True)),
        calls_abandoned=Count("pk", filter=Q(has_call_abandoned=True)),
    )


def campaign_exclusions(campaign: Campaign) -> dict[str, int]:
    """How many lines were left out, by reason (every reason, zero included)."""
    counts = dict(
        Recipient.objects.filter(campaign=campaign, status=Recipient.Status.EXCLUDED)
        .values_list("exclusion")
        .annotate(count=Count("pk"))
        .values_list("exclusion", "count")
    )
    return {reason: counts.get(reason, 0) for reason in Recipient.Exclusion.values}


@dataclass(frozen=True)
class CampaignCost:
    """What the campaign cost and what it brought (WHATSAPP_API.md §5.3, §5.4): its messages Meta
    charged (in the account's billing currency; `unpriced` ones no rate card priced yet) against
    the calls customers placed through its button, whose minutes cost nothing."""

    currency: str
    messages_charged: int
    messages_free: int
    messages_unpriced: int
    messages_amount: Decimal
    calls: int
    calls_answered: int
    call_minutes: Decimal
    cost_per_answered_call: Decimal | None
    cost_per_call_minute: Decimal | None


def campaign_cost(campaign: Campaign) -> CampaignCost:
    """The campaign's cost and ROI (two aggregate queries and the currency's): Charges of its
    messages vs. the talk minutes of the calls it brought (customer-initiated: free)."""
    currency = billing_currency(waba_id=campaign.business_number.waba_id, on=timezone.now().date())
    wamids = Recipient.objects.filter(campaign=campaign, message__wa_message_id__isnull=False).values(
        "message__wa_message_id"
    )
    charges = Charge.objects.filter(kind=Charge.Kind.MESSAGE, reference__in=wamids).aggregate(
        charged=Count("pk", filter=Q(pricing_type=Charge.PricingType.REGULAR)),
        free=Count("pk", filter=~Q(pricing_type=Charge.PricingType.REGULAR)),
        unpriced=Count("pk", filter=Q(amount__isnull=True)),
        amount=Sum("amount", filter=Q(amount_currency=currency)),
    )
    calls = campaign_calls(campaign).aggregate(
        calls=Count("pk"),
        answered=Count("pk", filter=Q(connected_at__isnull=False)),
        seconds=Sum("talk_seconds"),
    )
    amount = (charges["amount"] or Decimal(0)).quantize(Decimal("0.0001"))
    minutes = (Decimal(calls["seconds"] or 0) / 60).quantize(Decimal("0.01"))
    return CampaignCost(
        currency=currency,
        messages_charged=charges["charged"],
        messages_free=charges["free"],
        messages_unpriced=charges["unpriced"],
        messages_amount=amount,
        calls=calls["calls"],
        calls_answered=calls["answered"],
        call_minutes=minutes,
        cost_per_answered_call=(amount / calls["answered"]).quantize(Decimal("0.0001"))
        if calls["answered"]
        else None,
        cost_per_call_minute=(amount / minutes).quantize(Decimal("0.0001")) if minutes else None,
    )


def campaigns_of(viewer: Viewer) -> QuerySet[Campaign]:
    """The campaigns the viewer may see and run (core.access)."""
    return viewer.campaigns().select_related("business_number", "template")


MAX_REPORTED_CAMPAIGNS = 50


def campaign_cost_rows(
    *, since, until, business_number_ids=None
) -> list[tuple[Campaign, dict[str, int], CampaignCost]]:
    """The costs page's campaigns: those started from `since` to `until` (UTC days, both included),
    newest first, at most MAX_REPORTED_CAMPAIGNS, each with its progress and its cost (three queries
    a campaign). `business_number_ids`: only those numbers' campaigns; None: the whole account."""
    campaigns = Campaign.objects.filter(started_at__date__gte=since, started_at__date__lte=until)
    if business_number_ids is not None:
        campaigns = campaigns.filter(business_number_id__in=business_number_ids)
    chosen = campaigns.select_related("business_number", "template").order_by("-started_at", "-pk")
    return [
        (campaign, campaign_progress(campaign), campaign_cost(campaign))
        for campaign in chosen[:MAX_REPORTED_CAMPAIGNS]
    ]
