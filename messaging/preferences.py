"""Customers' marketing preferences: whether a customer takes marketing templates from a business
number (WHATSAPP_API.md §10.2), kept from what WhatsApp tells us, with the trail of every change.

News comes from the `user_preferences` webhook, from a system message saying the same, or from Meta
refusing a marketing template with 131050 (the customer stopped before our webhook arrived). Meta
does not keep its deliveries in order and delivers some twice: the news with the latest time wins
(Meta's time of the change; our clock for a refusal, which is when we learnt it), and news of what
is already so changes nothing.
"""

import datetime
import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from messaging.models import MarketingPreference, MarketingPreferenceChange
from whatsapp.events import UserPreferenceChange
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

Status = MarketingPreference.Status
Source = MarketingPreference.Source
MARKETING_STOPPED = 131050  # Meta's error: the customer stopped marketing messages (§10.2)


def marketing_stopped_since(*, business_number_id: int, contact_id: int) -> datetime.datetime | None:
    """When the customer stopped marketing messages from the number; None when they take them."""
    return (
        MarketingPreference.objects.filter(
            business_number_id=business_number_id, contact_id=contact_id, status=Status.STOPPED
        )
        .values_list("since", flat=True)
        .first()
    )


def marketing_stopped_reason(since: datetime.datetime) -> str:
    """The refusal people read when a marketing template is not sent to a customer who stopped them."""
    when = since.astimezone(datetime.UTC)
    return (
        f"The customer stopped marketing messages from this number on {when:%Y-%m-%d %H:%M} UTC: "
        "marketing templates are not sent to them (utility and authentication templates still are)."
    )


def marketing_refuse_if_stopped(*, business_number_id: int, contact_id: int) -> None:
    """Before a marketing template is sent: refused (ValidationError ``marketing_stopped``, saying
    since when) if the customer stopped marketing messages from the number."""
    since = marketing_stopped_since(business_number_id=business_number_id, contact_id=contact_id)
    if since is not None:
        raise ValidationError(marketing_stopped_reason(since), code="marketing_stopped")


@transaction.atomic
def marketing_preference_apply(
    *,
    business_number_id: int,
    contact_id: int,
    is_stopped: bool,
    at: datetime.datetime,
    source: str,
    detail: str = "",
    reference: str = "",
) -> MarketingPreference:
    """Apply news that the customer stopped (`is_stopped`) or takes marketing messages from the number,
    as of `at`. News older than the latest applied changes nothing; news of what is already so only
    moves the latest time on. A change is written with its MarketingPreferenceChange; the pair's row
    is locked meanwhile, so concurrent news queue."""
    status = Status.STOPPED if is_stopped else Status.ALLOWED
    pair = MarketingPreference.objects.filter(business_number_id=business_number_id, contact_id=contact_id)
    preference = pair.select_for_update().first()
    if preference is None:
        try:
            with transaction.atomic():
                preference = MarketingPreference.objects.create(
                    business_number_id=business_number_id, contact_id=contact_id, status=status,
                    since=at, news_at=at, source=source,
                )  # fmt: skip
        except IntegrityError:  # first news of the pair at once elsewhere: apply to that row
            preference = pair.select_for_update().get()
        else:
            _change(preference, from_status="", at=at, detail=detail, reference=reference)
            return preference
    if at < preference.news_at:
        return preference  # older than what we know: delivered late
    if preference.status == status:
        if at > preference.news_at:
            pair.update(news_at=at)
            preference.news_at = at
        return preference
    previous = preference.status
    preference.status, preference.since, preference.news_at, preference.source = status, at, at, source
    preference.save(update_fields=["status", "since", "news_at", "source", "updated_at"])
    _change(preference, from_status=previous, at=at, detail=detail, reference=reference)
    return preference


def _change(
    preference: MarketingPreference, *, from_status: str, at: datetime.datetime, detail: str, reference: str
) -> MarketingPreferenceChange:
    return MarketingPreferenceChange.objects.create(
        preference=preference, at=at, from_status=from_status, to_status=preference.status,
        source=preference.source, detail=detail[:255], reference=reference[:160],
    )  # fmt: skip


def marketing_preference_received(event: UserPreferenceChange) -> MarketingPreference | None:
    """The `user.preference` webhook handler: the customer stopped or resumed the number's marketing
    messages (one item of the `user_preferences` field)."""
    from messaging.services import contact_get_or_create

    number = BusinessNumber.objects.filter(phone_number_id=event.phone_number_id).first()
    if number is None:
        logger.warning("marketing preference %s for unknown number %s", event.idempotency_key,
                       event.phone_number_id)  # fmt: skip
        return None
    contact = contact_get_or_create(wa_id=event.wa_id, name=event.contact_name)
    return marketing_preference_apply(
        business_number_id=number.pk, contact_id=contact.pk, is_stopped=event.is_stop,
        at=event.occurred_at, source=Source.WEBHOOK, detail=event.detail, reference=event.idempotency_key,
    )  # fmt: skip


def marketing_refused_by_meta(
    *, business_number_id: int, contact_id: int, at: datetime.datetime, detail: str, reference: str
) -> MarketingPreference:
    """Meta refused a marketing template with 131050: the customer stopped marketing messages (our
    webhook of it has not come yet, or never will): recorded as of `at`, when we learnt it."""
    return marketing_preference_apply(
        business_number_id=business_number_id, contact_id=contact_id, is_stopped=True, at=at,
        source=Source.META_REFUSAL, detail=detail, reference=reference,
    )  # fmt: skip
