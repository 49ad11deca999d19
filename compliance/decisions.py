"""The compliance engine's decision: may this business number call this customer now, and if not,
which rules refuse it, when each will clear, and what to do instead.

Rules (WHATSAPP_API.md §3, §5; where the brief and Meta differ, §3.7, the stricter applies; every
number is a setting): the number must have calling on, no calling restriction, no coexistence and a
high enough messaging limit; neither side may be in a country where business calls are blocked or in
a sanctioned region; the customer's permission must be granted and inside its deadline, with fewer
than MAX_CONSECUTIVE_UNANSWERED unanswered calls in a row; the pair's connected calls in 24 h stay
under the cap; the number has a free outbound slot and no live call with the customer; the
customer's number is not one phonenumbers knows as a landline or another kind of line that is not a
mobile (the Calling API calls WhatsApp accounts, which live on mobiles).
Countries and line types always come from the phone numbers (phonenumbers), never from what a user
typed.

An allowed decision says why (`allowed_because`: the permission it rests on) and warns of what the
call may cost the business (`warnings`: one more unanswered call revokes the permission).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.utils import timezone

from compliance.models import AuditEvent, CallPermission
from messaging.models import Contact, ConversationWindow, RateCard
from messaging.selectors import billing_currency, rate_find
from messaging.services import CUSTOMER_SERVICE_WINDOW, country_of_wa_id
from whatsapp.models import BusinessNumber

# Business-initiated conversations a day per messaging limit tier (Meta's tiers).
MESSAGING_LIMITS = {
    BusinessNumber.MessagingLimitTier.TIER_250: 250,
    BusinessNumber.MessagingLimitTier.TIER_1K: 1_000,
    BusinessNumber.MessagingLimitTier.TIER_2K: 2_000,
    BusinessNumber.MessagingLimitTier.TIER_10K: 10_000,
    BusinessNumber.MessagingLimitTier.TIER_100K: 100_000,
    BusinessNumber.MessagingLimitTier.TIER_UNLIMITED: 10**12,
}
PERMISSION_CODES = frozenset(
    {
        "no_permission",
        "permission_requested",
        "permission_rejected",
        "permission_revoked",
        "permission_expired",
    }
)
# Refusals that a permission request cannot cure, nor anything else but time or an administrator.
REQUEST_BLOCKING_CODES = frozenset(
    {
        "number_restricted",
        "coexistence",
        "messaging_limit",
        "business_country_blocked",
        "customer_country_blocked",
        "not_mobile",
    }
)
# Kinds of line business calls cannot reach (phonenumbers' types, each as the reason names it).
# Mobiles stay callable, and so does FIXED_LINE_OR_MOBILE: in countries such as the US and Canada
# the number cannot tell. So does UNKNOWN: a WhatsApp id phonenumbers cannot place (its metadata
# lags new ranges, and it knows no fictional ones) is no proof of a landline. VoIP is refused with
# the landlines: such a number is not the customer's mobile.
UNCALLABLE_LINE_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "a landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.VOIP: "an internet telephony (VoIP) number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    phonenumbers.PhoneNumberType.PAGER: "a pager",
    phonenumbers.PhoneNumberType.UAN: "a company (UAN) number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


@dataclass(frozen=True)
class Refusal:
    code: str
    reason: str
    clears_at: datetime | None = None


@dataclass(frozen=True)
class Fallback:
    kind: str  # "permission_request", "call_button", or "" for none
    reason: str


@dataclass(frozen=True)
class DecisionWarning:
    code: str
    text: str


@dataclass(frozen=True)
class CostEstimate:
    per_minute: Decimal
    currency: str
    country: str


@dataclass(frozen=True)
class RequestQuota:
    is_available: bool
    reason: str
    clears_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    refusals: tuple[Refusal, ...]
    fallback: Fallback | None
    cost: CostEstimate | None
    permission: CallPermission | None
    customer_country: str
    warnings: tuple[DecisionWarning, ...] = ()
    allowed_because: str = ""  # what an allowed call rests on; empty when refused

    @property
    def is_allowed(self) -> bool:
        return not self.refusals

    @property
    def codes(self) -> list[str]:
        return [refusal.code for refusal in self.refusals]


@dataclass(frozen=True)
class LiveCalls:
    outbound: int = 0
    with_contact: bool = False


# The calls app tells the engine about live calls (compliance does not import calls).
_live_calls_reader: Callable[[int, int], LiveCalls] | None = None


def live_calls_reader_register(reader: Callable[[int, int], LiveCalls]) -> None:
    """`reader(business_number_id, contact_id)`: the number's live outbound calls, and whether one
    of its calls with the contact is live."""
    global _live_calls_reader
    _live_calls_reader = reader


def permission_deadline(
    *, status: str, granted_at: datetime | None, meta_expires_at: datetime | None,
    last_connected_at: datetime | None,
) -> datetime | None:  # fmt: skip
    """Our expiry of a temporary permission: the earliest of Meta's expiry (or its 7-day lifetime
    when Meta gave none) and the brief's window (a call must connect within FIRST_CALL_WINDOW_H of
    the grant, then within CONNECTED_CALL_EXTENSION_D of the last connected call). A permanent
    permission has none (Meta: no expiry)."""
    if status != CallPermission.Status.TEMPORARY or granted_at is None:
        return None
    bounds = [meta_expires_at or granted_at + timedelta(days=settings.TEMPORARY_PERMISSION_D)]
    if last_connected_at and last_connected_at >= granted_at:
        bounds.append(last_connected_at + timedelta(days=settings.CONNECTED_CALL_EXTENSION_D))
    else:
        bounds.append(granted_at + timedelta(hours=settings.FIRST_CALL_WINDOW_H))
    return min(bounds)


def request_quota(*, permission: CallPermission | None, at: datetime) -> RequestQuota:
    """Whether a permission request may be sent to the pair now (Meta: 1 per 24 h and 2 per 7 days,
    free-form and template together, reset by any connected call between the pair)."""
    if permission is None:
        return RequestQuota(is_available=True, reason="No request has been sent yet.")
    if permission.requests_blocked_until and permission.requests_blocked_until > at:
        return RequestQuota(
            is_available=False,
            reason="Meta refused the last request: its request limit for this customer is reached (138009).",
            clears_at=permission.requests_blocked_until,
        )
    since = max(filter(None, [at - timedelta(days=7), permission.requests_reset_at]))
    sent = list(
        AuditEvent.objects.filter(permission=permission, kind=AuditEvent.Kind.REQUEST_SENT, at__gt=since)
        .order_by("at")
        .values_list("at", flat=True)
    )
    for period, allowed, label in (
        (timedelta(hours=24), settings.PERMISSION_REQUESTS_PER_24H, "24 hours"),
        (timedelta(days=7), settings.PERMISSION_REQUESTS_PER_7D, "7 days"),
    ):
        in_period = [moment for moment in sent if moment > at - period]
        if len(in_period) >= allowed:
            return RequestQuota(
                is_available=False,
                reason=f"{len(in_period)} permission request(s) sent in the last {label}: "
                f"the limit is {allowed}.",
                clears_at=in_period[-allowed] + period,
            )
    return RequestQuota(is_available=True, reason="The request limits allow one more.")


def call_decide(*, business_number: BusinessNumber, contact: Contact, at: datetime | None = None) -> Decision:
    """Decide whether `business_number` may call `contact` now: every failing rule with its reason
    and the time it clears (when it will), the fallback when refused, and the cost of a minute.
    `contact` may be unsaved (a customer we never spoke to): then nobody has any permission."""
    now = at or timezone.now()
    permission = (
        CallPermission.objects.filter(business_number=business_number, contact_id=contact.pk).first()
        if contact.pk
        else None
    )
    business_country = country_of_wa_id(business_number.digits)
    customer_country = country_of_wa_id(contact.wa_id)
    live = _live_calls_reader(business_number.pk, contact.pk) if _live_calls_reader else LiveCalls()
    refusals = [
        *_number_refusals(business_number, business_country, now),
        *_country_refusals(business_country, customer_country),
        *_line_refusals(contact.wa_id),
        *_permission_refusals(permission, now),
        *_usage_refusals(permission, live, now),
    ]
    fallback = None if not refusals else _fallback(refusals, permission, now)
    return Decision(
        refusals=tuple(refusals),
        fallback=fallback,
        cost=_cost(business_number, customer_country, now),
        permission=permission,
        customer_country=customer_country,
        warnings=_warnings(permission),
        allowed_because="" if refusals else _allowed_because(permission),
    )


def _line_refusals(wa_id: str) -> list[Refusal]:
    try:
        number = phonenumbers.parse(f"+{wa_id}")
    except phonenumbers.NumberParseException:
        return []
    line = UNCALLABLE_LINE_TYPES.get(phonenumbers.number_type(number))
    if line is None:
        return []
    return [
        Refusal(
            "not_mobile",
            f"+{wa_id} is {line}, not a mobile: business calls reach WhatsApp on mobiles only.",
        )
    ]


def _number_refusals(number: BusinessNumber, country: str, now: datetime) -> list[Refusal]:
    refusals = []
    if country in settings.SANCTIONED_COUNTRIES:
        refusals.append(
            Refusal("sanctioned_region", f"WhatsApp is not offered in {country}, a sanctioned region.")
        )
    if not number.is_calling_enabled:
        refusals.append(
            Refusal("calling_disabled", f"Calling is not turned on for {number.display_phone_number}.")
        )
    for restriction in number.restrictions:
        if not str(restriction.get("type", "")).startswith("RESTRICTED_BIZ_INITIATED"):
            continue
        expires_at = _parse_time(restriction.get("expires_at"))
        if expires_at is None or expires_at > now:
            refusals.append(
                Refusal(
                    "number_restricted",
                    f"Meta restricted business calls from this number ({restriction['type']}).",
                    clears_at=expires_at,
                )
            )
    if number.is_coexistence:
        refusals.append(
            Refusal(
                "coexistence",
                "The number is also used in the WhatsApp Business app (coexistence): "
                "it cannot place business calls.",
            )
        )
    limit = MESSAGING_LIMITS.get(number.messaging_limit_tier, 0)
    if limit < settings.MIN_MESSAGING_LIMIT_FOR_CALLING:
        refusals.append(
            Refusal(
                "messaging_limit",
                f"The number's messaging limit is {number.get_messaging_limit_tier_display()}; "
                f"business calls need at least {settings.MIN_MESSAGING_LIMIT_FOR_CALLING:,} a day.",
            )
        )
    return refusals


def country_refusals(*, business_number: BusinessNumber, wa_id: str) -> list[Refusal]:
    """Why the business can never call this customer, whatever they say: the red list of countries
    business calls cannot reach, and regions WhatsApp is not offered in (WHATSAPP_API.md §3.7).
    Such a customer can still call the business: offer them the call button, never a call back."""
    return _country_refusals(country_of_wa_id(business_number.digits), country_of_wa_id(wa_id))


def _country_refusals(business_country: str, customer_country: str) -> list[Refusal]:
    refusals = []
    if business_country in settings.OUTBOUND_BLOCKED_COUNTRIES:
        refusals.append(
            Refusal(
                "business_country_blocked",
                f"Business numbers of {business_country} cannot place business calls (Meta).",
            )
        )
    if customer_country in settings.OUTBOUND_BLOCKED_COUNTRIES:
        refusals.append(
            Refusal(
                "customer_country_blocked",
                f"Customers in {customer_country} cannot be called by the business (country policy).",
            )
        )
    if customer_country in settings.SANCTIONED_COUNTRIES:
        refusals.append(
            Refusal(
                "sanctioned_region", f"WhatsApp is not offered in {customer_country}, a sanctioned region."
            )
        )
    return refusals


def _permission_refusals(permission: CallPermission | None, now: datetime) -> list[Refusal]:
    status = permission.status if permission else CallPermission.Status.NONE
    Status = CallPermission.Status
    if status == Status.NONE:
        return [Refusal("no_permission", "The customer has not given permission to be called.")]
    if status == Status.REQUESTED:
        return [
            Refusal("permission_requested", "Permission was requested; the customer has not answered yet.")
        ]
    if status == Status.REJECTED:
        return [Refusal("permission_rejected", "The customer declined to be called.")]
    if status == Status.REVOKED:
        return [Refusal("permission_revoked", "The permission was revoked.")]
    if status == Status.EXPIRED or (permission.deadline_at and permission.deadline_at <= now):
        return [Refusal("permission_expired", _expiry_reason(permission))]
    return []


def _expiry_reason(permission: CallPermission) -> str:
    deadline = permission.deadline_at
    when = f" on {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
    if permission.meta_expires_at and deadline == permission.meta_expires_at:
        return f"The temporary permission expired{when} (Meta's expiry)."
    if permission.last_connected_at is None:
        return (
            f"The permission expired{when}: no call connected within {settings.FIRST_CALL_WINDOW_H} h of "
            "the grant."
        )
    return (
        f"The permission expired{when}: no call connected within {settings.CONNECTED_CALL_EXTENSION_D} days "
        "of the last connected call."
    )


def _usage_refusals(permission: CallPermission | None, live: LiveCalls, now: datetime) -> list[Refusal]:
    refusals = []
    if permission and permission.consecutive_unanswered >= settings.MAX_CONSECUTIVE_UNANSWERED:
        refusals.append(
            Refusal(
                "unanswered_strikes",
                f"{permission.consecutive_unanswered} calls in a row went unanswered "
                f"or were declined (the limit is {settings.MAX_CONSECUTIVE_UNANSWERED}).",
            )
        )
    if permission:
        connected = list(
            AuditEvent.objects.filter(
                permission=permission, kind=AuditEvent.Kind.CALL_CONNECTED, at__gt=now - timedelta(hours=24)
            )
            .order_by("at")
            .values_list("at", flat=True)
        )
        cap = settings.MAX_CONNECTED_CALLS_PER_24H
        if len(connected) >= cap:
            refusals.append(
                Refusal(
                    "connected_call_cap",
                    f"{len(connected)} calls connected with this customer in the last "
                    f"24 hours: the limit is {cap}.",
                    clears_at=connected[-cap] + timedelta(hours=24),
                )
            )
        elif permission.next_call_allowed_at and permission.next_call_allowed_at > now:
            refusals.append(
                Refusal(
                    "connected_call_cap",
                    "Meta says the daily call limit with this customer is reached (138012).",
                    clears_at=permission.next_call_allowed_at,
                )
            )
    if live.outbound >= settings.MAX_CONCURRENT_CALLS_PER_DIRECTION:
        refusals.append(
            Refusal(
                "capacity",
                f"The number already has {live.outbound} live outbound calls: the limit is "
                f"{settings.MAX_CONCURRENT_CALLS_PER_DIRECTION}.",
            )
        )
    if live.with_contact:
        refusals.append(Refusal("call_in_progress", "A call with this customer is already in progress."))
    return refusals


def _warnings(permission: CallPermission | None) -> tuple[DecisionWarning, ...]:
    limit = settings.MAX_CONSECUTIVE_UNANSWERED
    if permission is None or not permission.is_granted or permission.consecutive_unanswered != limit - 1:
        return ()
    return (
        DecisionWarning(
            "last_unanswered_before_revocation",
            "One more unanswered call revokes the customer's permission "
            f"(Meta: {limit} unanswered in a row).",
        ),
    )


def _allowed_because(permission: CallPermission | None) -> str:
    if permission is None or permission.granted_at is None:
        return ""
    granted_on = f"{permission.granted_at:%Y-%m-%d}"
    if permission.status == CallPermission.Status.PERMANENT:
        return (
            f"The customer granted permanent permission on {granted_on}; the brief treats permissions "
            "as not permanent: review it."
        )
    if permission.status == CallPermission.Status.TEMPORARY:
        until = f", until {permission.deadline_at:%Y-%m-%d %H:%M} UTC" if permission.deadline_at else ""
        return f"The customer granted temporary permission on {granted_on}{until}."
    return ""


@dataclass(frozen=True)
class Decline:
    """The customer declined the last permission request: when, and when they last wrote or called
    since (None: not since, so the decline still stands)."""

    at: datetime | None
    contact_since: datetime | None

    @property
    def stands(self) -> bool:
        return self.contact_since is None

    @property
    def standing(self) -> str:
        declined_on = f" on {self.at:%Y-%m-%d %H:%M} UTC" if self.at else ""
        return f"The customer declined{declined_on} and has not written or called since."


def decline_of(permission: CallPermission | None) -> Decline | None:
    """The pair's standing decline, if the last answer was one (two queries)."""
    if permission is None or permission.status != CallPermission.Status.REJECTED:
        return None
    rejections = permission.audit_events.filter(kind=AuditEvent.Kind.REJECTED).order_by("-at")
    declined_at = rejections.values_list("at", flat=True).first() or permission.status_changed_at
    contact_since = customer_contact_since(permission=permission, since=declined_at) if declined_at else None
    return Decline(declined_at, contact_since)


def decline_standing(*, permission: CallPermission | None) -> str:
    """Why no permission request may be sent: the customer declined the last one and has not written
    or called since; empty when that is not so."""
    decline = decline_of(permission)
    return decline.standing if decline is not None and decline.stands else ""


def customer_contact_since(*, permission: CallPermission, since: datetime) -> datetime | None:
    """When the customer last wrote or called the pair's number, if after `since`: their
    customer-service window runs 24 h from their last message or call (a decline is itself a
    message, so it does not count as contact after itself)."""
    until = (
        ConversationWindow.objects.filter(
            business_number_id=permission.business_number_id, contact_id=permission.contact_id
        )
        .values_list("customer_service_until", flat=True)
        .first()
    )
    last_contact = until - CUSTOMER_SERVICE_WINDOW if until else None
    return last_contact if last_contact and last_contact > since else None


def _fallback(refusals: list[Refusal], permission: CallPermission | None, now: datetime) -> Fallback:
    codes = {refusal.code for refusal in refusals}
    if "sanctioned_region" in codes:
        return Fallback("", "None: WhatsApp is not offered in sanctioned regions.")
    if "calling_disabled" in codes:
        return Fallback("", "None: customers cannot call this number either until calling is turned on.")
    call_button = Fallback(
        "call_button",
        'Send a "Call us" button: the customer calls in, which is allowed everywhere and free.',
    )
    if not codes & PERMISSION_CODES or codes & REQUEST_BLOCKING_CODES:
        return call_button
    since_decline = ""
    decline = decline_of(permission)
    if decline is not None and decline.stands:
        standing = decline.standing
        return Fallback(
            call_button.kind,
            f"{call_button.reason} No permission request: {standing[0].lower()}{standing[1:]}",
        )
    if decline is not None:
        since_decline = (
            f"The customer declined on {decline.at:%Y-%m-%d %H:%M} UTC but has written or called since "
            f"({decline.contact_since:%Y-%m-%d %H:%M} UTC). "
        )
    quota = request_quota(permission=permission, at=now)
    if not quota.is_available:
        clears = f" (possible again {quota.clears_at:%Y-%m-%d %H:%M} UTC)" if quota.clears_at else ""
        return Fallback(
            call_button.kind,
            f"{call_button.reason} No permission request now: {since_decline}{quota.reason}{clears}",
        )
    return Fallback(
        "permission_request", f"{since_decline}Ask the customer for permission to call. {quota.reason}"
    )


def _cost(number: BusinessNumber, country: str, now: datetime) -> CostEstimate | None:
    on = now.astimezone(UTC).date()
    currency = billing_currency(waba_id=number.waba_id, on=on)
    rate = rate_find(category=RateCard.Category.CALL, country=country, currency=currency, on=on)
    if rate is None:
        return None
    return CostEstimate(per_minute=rate.price.amount, currency=currency, country=country)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
