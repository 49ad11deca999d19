"""Number onboarding: what stands between a business number and calling, read live from Meta.

`number_onboarding_check` reads the number (`GET /<PHONE_NUMBER_ID>?fields=…`), its calling settings
(`GET /<PHONE_NUMBER_ID>/settings`, WHATSAPP_API.md §4.2), the apps subscribed to its account
(`GET /<WABA_ID>/subscribed_apps`) and the app's webhook fields (`GET /<APP_ID>/subscriptions`),
turns them into a checklist against the prerequisites of WHATSAPP_API.md §5.1, and refreshes what
the product keeps of the number. `calling_settings_set` sends the calling settings an administrator
chose (§4.1) and records the attempt with Meta's answer.

Its own module rather than services.py: one page's reads and its one change, kept together.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from whatsapp.client import GraphClient, PhoneNumberStatus
from whatsapp.errors import GraphAPIError
from whatsapp.models import BusinessNumber, CallingSettingsChange

# Meta's messaging limit tiers, lowest first; calling needs 2,000 business-initiated conversations a
# day or more (WHATSAPP_API.md §5.1: Meta's Nov 2025 and Jun 2026 text).
TIERS = ("TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")
CALLING_TIER = "TIER_2K"
APPROVED_NAME_STATUSES = frozenset({"APPROVED", "AVAILABLE_WITHOUT_REVIEW"})
WABA_OBJECT = "whatsapp_business_account"
DAY_NAMES = {
    "MONDAY": "Mon",
    "TUESDAY": "Tue",
    "WEDNESDAY": "Wed",
    "THURSDAY": "Thu",
    "FRIDAY": "Fri",
    "SATURDAY": "Sat",
    "SUNDAY": "Sun",
}


@dataclass(frozen=True)
class Check:
    """One item of the checklist: what Meta says, whether it stands in the way, what to do."""

    key: str
    title: str
    found: str
    is_ok: bool | None  # None: worth knowing, not in the way
    advice: str = ""

    @property
    def state(self) -> str:
        return {True: "ok", False: "problem", None: "note"}[self.is_ok]


@dataclass
class Onboarding:
    """The checklist of a number, or why it could not be read."""

    checks: list[Check] = field(default_factory=list)
    calling: dict = field(default_factory=dict)  # the number's calling settings, as Meta has them
    error: str = ""

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.is_ok is False]


def _hhmm(value: str) -> str:
    return f"{value[:2]}:{value[2:]}" if len(value) == 4 else value


def _call_hours_text(hours: dict) -> str:
    slots = ", ".join(
        f"{DAY_NAMES.get(slot.get('day_of_week'), slot.get('day_of_week'))} "
        f"{_hhmm(str(slot.get('open_time', '')))}-{_hhmm(str(slot.get('close_time', '')))}"
        for slot in hours.get("weekly_operating_hours") or []
        if isinstance(slot, dict)
    )
    holidays = len(hours.get("holiday_schedule") or [])
    return f"{slots or 'no weekly hours'} ({hours.get('timezone_id', 'no time zone')}); {holidays} holiday(s)"


def _name_check(number: PhoneNumberStatus) -> Check:
    found = f"{number.verified_name or 'no name'} ({number.name_status or 'no status'})"
    if number.name_status in APPROVED_NAME_STATUSES:
        return Check("display_name", "Display name", found, True)
    if number.name_status == "PENDING_REVIEW":
        advice = "Meta is reviewing the display name; calls wait for its approval."
    else:
        advice = "Submit a display name that follows Meta's display name rules in WhatsApp Manager."
    return Check("display_name", "Display name", found, False, advice)


def _official_check(number: PhoneNumberStatus) -> Check:
    if number.is_official_business_account:
        return Check("official", "Official Business Account (blue tick)", "Yes", True)
    return Check(
        "official",
        "Official Business Account (blue tick)",
        "No",
        None,
        "Not needed for calling. Apply in WhatsApp Manager to show customers the blue tick.",
    )


def _quality_check(number: PhoneNumberStatus) -> Check:
    rating = number.quality_rating or "UNKNOWN"
    if rating == "GREEN":
        return Check("quality", "Quality rating", rating, True)
    if rating == "UNKNOWN":
        return Check(
            "quality", "Quality rating", rating, None, "Meta rates a number once it has sent messages."
        )
    return Check(
        "quality",
        "Quality rating",
        rating,
        False,
        "Customers are blocking or reporting this number's messages: send fewer, more wanted ones. A low "
        "rating keeps the messaging limit, which calling needs, from rising.",
    )


def _tier_check(number: PhoneNumberStatus) -> Check:
    tier = number.messaging_limit_tier or "unknown"
    title = "Messaging limit (calling needs 2,000 a day)"
    if tier in TIERS and TIERS.index(tier) >= TIERS.index(CALLING_TIER):
        return Check("messaging_limit", title, tier, True)
    return Check(
        "messaging_limit",
        title,
        tier,
        False,
        "Calling needs a messaging limit of at least 2,000 business-initiated conversations a day. Meta "
        "raises the limit as the number keeps a good quality rating while messaging more customers.",
    )


def _platform_check(number: PhoneNumberStatus) -> Check:
    found = number.platform_type or "unknown"
    if found == "CLOUD_API":
        return Check("platform", "Cloud API", found, True)
    return Check(
        "platform", "Cloud API", found, False, "Calling works on the Cloud API only: move the number to it."
    )


def _coexistence_check(number: PhoneNumberStatus) -> Check:
    title = "Used only on the Cloud API (a clean number)"
    if not number.is_on_biz_app:
        return Check("coexistence", title, "Not in the WhatsApp Business app", True)
    return Check(
        "coexistence",
        title,
        "Also used in the WhatsApp Business app (coexistence)",
        False,
        "Customers can call in, but the business cannot call customers from a number it also uses in the "
        "WhatsApp Business app. Use a number registered on the Cloud API only for business-initiated calls.",
    )


def _webhook_check(
    calling: dict, *, is_app_subscribed: bool | None, app_fields: set[str] | None, app_error: str = ""
) -> Check:
    title = "Webhooks: the app receives the calls field"
    sip = calling.get("sip") if isinstance(calling.get("sip"), dict) else {}
    if sip.get("status") == "ENABLED":
        return Check("calls_webhook", title, "SIP is on: calls go to the SIP server", True)
    if is_app_subscribed is False:
        return Check(
            "calls_webhook",
            title,
            "The app is not subscribed to this WhatsApp Business Account",
            False,
            "Subscribe the app to the account (POST /<WABA_ID>/subscribed_apps): without it no webhook "
            "arrives.",
        )
    if is_app_subscribed is None or app_fields is None:
        return Check("calls_webhook", title, "Not checked", None, app_error)
    if "calls" not in app_fields:
        return Check(
            "calls_webhook",
            title,
            f"Subscribed to: {', '.join(sorted(app_fields)) or 'nothing'}",
            False,
            "Subscribe the app to the calls field (app dashboard: WhatsApp, Configuration, Webhook fields); "
            "Meta will not enable calling without it.",
        )
    return Check("calls_webhook", title, "Subscribed to calls", True)


def _calling_checks(calling: dict) -> list[Check]:
    status = calling.get("status", "DISABLED")
    checks = [
        Check("calling_status", "Calling", status, True)
        if status == "ENABLED"
        else Check("calling_status", "Calling", status, False, "Enable calling in the settings below.")
    ]
    hours = calling.get("call_hours")
    if not isinstance(hours, dict):
        checks.append(
            Check(
                "call_hours",
                "Call hours",
                "Not set",
                False,
                "Set the hours the floor answers: outside them customers are offered a chat or a callback "
                "instead of ringing an empty floor.",
            )
        )
    elif hours.get("status") == "ENABLED":
        checks.append(Check("call_hours", "Call hours", _call_hours_text(hours), True))
    else:
        checks.append(
            Check(
                "call_hours",
                "Call hours",
                "Off: customers may call at any hour",
                None,
                "Turn call hours on if the floor is not staffed around the clock.",
            )
        )
    callback = calling.get("callback_permission_status", "DISABLED")
    checks.append(
        Check("callback_permission", "Callback permission", callback, True)
        if callback == "ENABLED"
        else Check(
            "callback_permission",
            "Callback permission",
            callback,
            None,
            "Enable it to ask customers after a call whether the business may call them back.",
        )
    )
    visibility = calling.get("call_icon_visibility", "DEFAULT")
    checks.append(
        Check("call_icon", "Call icon", visibility, True)
        if visibility == "DEFAULT"
        else Check(
            "call_icon",
            "Call icon",
            visibility,
            None,
            "The call icon is hidden: customers reach the floor through call buttons and links only.",
        )
    )
    restrictions = (calling.get("restrictions") or {}).get("restrictions_list") or []
    if restrictions:
        found = "; ".join(
            f"{item.get('type', 'restriction')}"
            + (
                f" until {datetime.fromtimestamp(item['expiration'], tz=UTC):%Y-%m-%d %H:%M} UTC"
                if isinstance(item.get("expiration"), int)
                else ""
            )
            for item in restrictions
            if isinstance(item, dict)
        )
        checks.append(
            Check(
                "restrictions",
                "Restrictions",
                found,
                False,
                "Meta has restricted calling on this number; it lifts at the time shown.",
            )
        )
    else:
        checks.append(Check("restrictions", "Restrictions", "None", True))
    return checks


def number_onboarding_check(
    *, business_number: BusinessNumber, graph: GraphClient | None = None
) -> Onboarding:
    """Read the number's standing from Meta and build its checklist; keep the messaging limit tier,
    coexistence, Official Business Account and calling settings read on the number. When Meta cannot
    be read, the checklist is empty, `error` says why, and nothing is changed."""
    app_id = settings.WHATSAPP_APP_ID
    try:
        with graph or GraphClient() as client:
            number = client.phone_number_get(phone_number_id=business_number.phone_number_id)
            calling = client.settings_get(phone_number_id=business_number.phone_number_id)["calling"]
            is_app_subscribed = app_fields = None
            app_error = "" if app_id else "Set WHATSAPP_APP_ID (the Meta app's id) to check its webhooks."
            if app_id:
                is_app_subscribed = app_id in client.subscribed_apps_get(waba_id=business_number.waba_id)
                try:  # with the app's own token: a wrong app id or secret spoils this check only
                    subscriptions = client.app_subscriptions_get(
                        app_id=app_id, app_secret=settings.WHATSAPP_APP_SECRET
                    )
                    app_fields = subscriptions.get(WABA_OBJECT, set())
                except GraphAPIError as error:
                    app_error = f"Meta refused to list the app's webhook fields: {error}"
    except (GraphAPIError, ValueError) as error:
        return Onboarding(error=f"Meta could not be read: {error}")
    checks = [
        _name_check(number),
        _official_check(number),
        _quality_check(number),
        _tier_check(number),
        _platform_check(number),
        _coexistence_check(number),
        _webhook_check(
            calling, is_app_subscribed=is_app_subscribed, app_fields=app_fields, app_error=app_error
        ),
        *_calling_checks(calling),
    ]
    _number_refresh(business_number, number=number, calling=calling)
    return Onboarding(checks=checks, calling=calling)


def _number_refresh(business_number: BusinessNumber, *, number: PhoneNumberStatus, calling: dict) -> None:
    changes: dict = {
        "is_coexistence": number.is_on_biz_app,
        "calling_settings": {key: value for key, value in calling.items() if key != "restrictions"},
        "calling_settings_updated_at": timezone.now(),
    }
    if number.messaging_limit_tier in BusinessNumber.MessagingLimitTier.values:
        changes["messaging_limit_tier"] = number.messaging_limit_tier
    status = BusinessNumber.VerificationStatus
    if number.is_official_business_account:
        changes["verification_status"] = status.VERIFIED
    elif business_number.verification_status == status.VERIFIED:
        changes["verification_status"] = status.NOT_VERIFIED  # a pending application stays pending
    BusinessNumber.objects.filter(pk=business_number.pk).update(**changes)
    for name, value in changes.items():
        setattr(business_number, name, value)


def calling_settings_set(
    *,
    business_number: BusinessNumber,
    calling: dict,
    changed_by_id: int | None,
    graph: GraphClient | None = None,
) -> CallingSettingsChange:
    """Send `calling` to Meta (POST /<PHONE_NUMBER_ID>/settings) and record the attempt with Meta's
    answer, accepted or not. The stored settings follow from Meta's `account_settings_update` webhook
    and the next read of the onboarding page."""
    try:
        with graph or GraphClient() as client:
            client.settings_update(phone_number_id=business_number.phone_number_id, calling=calling)
        is_accepted, answer = True, {"success": True}
    except GraphAPIError as error:
        is_accepted = False
        answer = {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "http_status": error.http_status,
            "meaning": error.meaning,
        }
    with transaction.atomic():
        return CallingSettingsChange.objects.create(
            business_number=business_number,
            changed_by_id=changed_by_id,
            sent=calling,
            is_accepted=is_accepted,
            answer=answer,
        )
