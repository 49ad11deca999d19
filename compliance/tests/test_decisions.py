"""The decision service, rule by rule and in combination, at the boundaries (table-driven).

Each case arranges one situation on a real database at a fixed moment and states the refusal
codes and the fallback it must produce.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from calls.models import Call, LiveCallCount
from calls.tests.factories import CallFactory, ContactFactory
from compliance.decisions import CostEstimate, DecisionWarning, call_decide, permission_deadline
from compliance.models import AuditEvent, CallPermission
from messaging.models import BillingCurrency, ConversationWindow, RateCard
from whatsapp.models import BusinessNumber
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GB_BUSINESS, GB_CUSTOMER = "+44 20 7946 0101", "447700900101"
# A business number and a customer number of each country on the list, and of sanctioned ones.
BUSINESS_NUMBERS = {
    "US": "+1 212 555 0101", "CA": "+1 416 555 0101", "TR": "+90 212 555 0101", "EG": "+20 2 2345 6789",
    "VN": "+84 24 3825 6789", "NG": "+234 1 280 6789",
}  # fmt: skip
CUSTOMERS = {
    "US": "12125550123", "CA": "14165550123", "TR": "905321234567", "EG": "201001234567",
    "VN": "84912345678", "NG": "2348031234567", "IR": "989121234567", "KP": "850191234567",
    "SY": "963944123456", "CU": "5352123456", "BR": "5511912345678",
}  # fmt: skip
# Customer numbers by what phonenumbers knows of the line.
LINES = {
    "gb_landline": "442079460123", "gb_toll_free": "448001234567", "gb_premium_rate": "449012345678",
    "gb_voip": "445612345678", "gb_personal_number": "447012345678", "de_landline": "493012345678",
}  # fmt: skip
Status = CallPermission.Status


def granted(hours_ago: float, *, status: str = Status.TEMPORARY, **fields) -> dict:
    granted_at = NOW - timedelta(hours=hours_ago)
    meta_expires_at = granted_at + timedelta(days=7) if status == Status.TEMPORARY else None
    return {"status": status, "granted_at": granted_at, "meta_expires_at": meta_expires_at, **fields}


def arrange(
    *, business: str = GB_BUSINESS, customer: str = GB_CUSTOMER, permission: dict | None = None,
    number: dict | None = None, requests_h: tuple = (), connected_h: tuple = (), live_outbound: int = 0,
    live_call: bool = False, declined_h: float | None = None, wrote_h: float | None = None,
):  # fmt: skip
    """`declined_h`: the customer declined a permission request so many hours ago; `wrote_h`: they
    last wrote or called so many hours ago (their customer-service window runs 24 h from then)."""
    number_row = BusinessNumberFactory(display_phone_number=business, **(number or {}))
    contact = ContactFactory(wa_id=customer)
    if wrote_h is not None:
        ConversationWindow.objects.create(
            business_number=number_row, contact=contact,
            customer_service_until=NOW - timedelta(hours=wrote_h) + timedelta(hours=24),
        )  # fmt: skip
    if permission is not None:
        row = CallPermission(business_number=number_row, contact=contact, **permission)
        row.deadline_at = permission_deadline(
            status=row.status,
            granted_at=row.granted_at,
            meta_expires_at=row.meta_expires_at,
            last_connected_at=row.last_connected_at,
        )
        row.save()
        for kind, hours in (
            [(AuditEvent.Kind.REQUEST_SENT, h) for h in requests_h]
            + [(AuditEvent.Kind.CALL_CONNECTED, h) for h in connected_h]
            + [(AuditEvent.Kind.REJECTED, declined_h)] * (declined_h is not None)
        ):
            AuditEvent.objects.create(permission=row, kind=kind, at=NOW - timedelta(hours=hours))
    if live_outbound:
        LiveCallCount.objects.create(
            business_number=number_row, direction=Call.Direction.OUTBOUND, live=live_outbound
        )
    if live_call:
        CallFactory(business_number=number_row, contact=contact, status=Call.Status.CONNECTED)
    return number_row, contact


RESTRICTED = "RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING"
DISABLED = {"status": "DISABLED"}
CASES = [
    # (id, arrangement, refusal codes, fallback kind (None: allowed))
    ("allowed", {"permission": granted(1)}, [], None),
    ("permanent_never_expires", {"permission": granted(24 * 60, status=Status.PERMANENT)}, [], None),
    ("first_call_window_71h59", {"permission": granted(71 + 59 / 60)}, [], None),
    ("first_call_window_72h01", {"permission": granted(72 + 1 / 60)},
     ["permission_expired"], "permission_request"),
    ("connected_call_extends_within_meta_expiry",
     {"permission": granted(6 * 24 + 1, last_connected_at=NOW - timedelta(days=6))}, [], None),
    ("meta_expiry_caps_the_extension",
     {"permission": granted(7 * 24 + 1 / 60, last_connected_at=NOW - timedelta(days=1))},
     ["permission_expired"], "permission_request"),
    ("no_permission", {}, ["no_permission"], "permission_request"),
    ("permission_requested_quota_used",
     {"permission": {"status": Status.REQUESTED}, "requests_h": (2,)},
     ["permission_requested"], "call_button"),
    ("permission_requested_25h_ago", {"permission": {"status": Status.REQUESTED}, "requests_h": (25,)},
     ["permission_requested"], "permission_request"),
    ("two_requests_in_7_days", {"permission": {"status": Status.REJECTED}, "requests_h": (6 * 24, 2 * 24)},
     ["permission_rejected"], "call_button"),
    ("requests_reset_by_connected_call",
     {"permission": {"status": Status.REJECTED, "requests_reset_at": NOW - timedelta(hours=1)},
      "requests_h": (6 * 24, 2 * 24), "declined_h": 47, "wrote_h": 2},
     ["permission_rejected"], "permission_request"),
    # A decline: no new request until the customer writes or calls after it, whatever the quotas.
    ("declined_and_silent_since", {"permission": {"status": Status.REJECTED}, "declined_h": 72},
     ["permission_rejected"], "call_button"),
    ("declined_and_wrote_only_before", {"permission": {"status": Status.REJECTED}, "declined_h": 72,
     "wrote_h": 73}, ["permission_rejected"], "call_button"),
    ("declined_as_their_last_message", {"permission": {"status": Status.REJECTED}, "declined_h": 5,
     "wrote_h": 5}, ["permission_rejected"], "call_button"),
    ("declined_and_wrote_since", {"permission": {"status": Status.REJECTED}, "declined_h": 72,
     "wrote_h": 71}, ["permission_rejected"], "permission_request"),
    ("declined_decline_time_from_status_change",
     {"permission": {"status": Status.REJECTED, "status_changed_at": NOW - timedelta(hours=72)},
      "wrote_h": 71}, ["permission_rejected"], "permission_request"),
    ("declined_wrote_since_but_quota_used",
     {"permission": {"status": Status.REJECTED}, "declined_h": 72, "wrote_h": 1, "requests_h": (2,)},
     ["permission_rejected"], "call_button"),
    ("revoked", {"permission": {"status": Status.REVOKED}}, ["permission_revoked"], "permission_request"),
    ("expired", {"permission": {"status": Status.EXPIRED}}, ["permission_expired"], "permission_request"),
    ("third_strike_still_allowed", {"permission": granted(1, consecutive_unanswered=3)}, [], None),
    ("fourth_strike_refused", {"permission": granted(1, consecutive_unanswered=4)},
     ["unanswered_strikes"], "call_button"),
    ("calling_disabled", {"permission": granted(1), "number": {"calling_settings": DISABLED}},
     ["calling_disabled"], ""),
    ("restricted", {"permission": granted(1), "number": {"restrictions": [
        {"type": RESTRICTED, "expires_at": (NOW + timedelta(days=2)).isoformat()}]}},
     ["number_restricted"], "call_button"),
    ("restriction_over", {"permission": granted(1), "number": {"restrictions": [
        {"type": RESTRICTED, "expires_at": (NOW - timedelta(minutes=1)).isoformat()}]}}, [], None),
    ("coexistence", {"permission": granted(1), "number": {"is_coexistence": True}},
     ["coexistence"], "call_button"),
    ("tier_1k", {"permission": granted(1), "number": {"messaging_limit_tier": "TIER_1K"}},
     ["messaging_limit"], "call_button"),
    ("tier_250", {"permission": granted(1), "number": {"messaging_limit_tier": "TIER_250"}},
     ["messaging_limit"], "call_button"),
    ("tier_2k", {"permission": granted(1), "number": {"messaging_limit_tier": "TIER_2K"}}, [], None),
    ("connected_cap_reached", {"permission": granted(30), "connected_h": (20, 3)},
     ["connected_call_cap"], "call_button"),
    ("connected_cap_one_left", {"permission": granted(30), "connected_h": (25, 3)}, [], None),
    ("capacity_full", {"permission": granted(1), "live_outbound": 2}, ["capacity"], "call_button"),
    ("capacity_one_left", {"permission": granted(1), "live_outbound": 1}, [], None),
    ("call_in_progress", {"permission": granted(1), "live_call": True}, ["call_in_progress"], "call_button"),
    *[
        (f"business_in_{country}", {"business": number, "permission": granted(1)},
         ["business_country_blocked"], "call_button")
        for country, number in BUSINESS_NUMBERS.items()
    ],
    *[
        (f"customer_in_{country}", {"customer": CUSTOMERS[country], "permission": granted(1)},
         ["customer_country_blocked"], "call_button")
        for country in BUSINESS_NUMBERS
    ],
    *[
        (f"sanctioned_{country}", {"customer": CUSTOMERS[country], "permission": granted(1)},
         ["sanctioned_region"], "")
        for country in ("IR", "KP", "SY", "CU")
    ],
    ("customer_abroad_allowed", {"customer": CUSTOMERS["BR"], "permission": granted(1)}, [], None),
    # The line: WhatsApp calls reach mobiles; where phonenumbers cannot tell (US, CA) or does not
    # know the number, it stays callable.
    *[
        (f"customer_on_{line}", {"customer": wa_id, "permission": granted(1)}, ["not_mobile"], "call_button")
        for line, wa_id in LINES.items()
    ],
    ("customer_on_gb_mobile", {"customer": "447911123456", "permission": granted(1)}, [], None),
    ("customer_fixed_line_or_mobile_mx", {"customer": "522221234567", "permission": granted(1)}, [], None),
    ("customer_unknown_to_phonenumbers", {"customer": "447700900999", "permission": granted(1)}, [], None),
    ("landline_no_permission", {"customer": LINES["gb_landline"]}, ["not_mobile", "no_permission"],
     "call_button"),
    # Combinations: every failing rule is named; the fallback follows the hardest one.
    ("coexistence_tier_no_permission",
     {"number": {"is_coexistence": True, "messaging_limit_tier": "TIER_1K"}},
     ["coexistence", "messaging_limit", "no_permission"], "call_button"),
    ("both_countries_blocked_no_permission",
     {"business": BUSINESS_NUMBERS["US"], "customer": CUSTOMERS["NG"]},
     ["business_country_blocked", "customer_country_blocked", "no_permission"], "call_button"),
    ("sanctioned_and_no_permission", {"customer": CUSTOMERS["IR"]},
     ["sanctioned_region", "no_permission"], ""),
    ("disabled_and_expired_and_full",
     {"number": {"calling_settings": DISABLED}, "permission": granted(80), "live_outbound": 2},
     ["calling_disabled", "permission_expired", "capacity"], ""),
    ("strikes_and_cap_and_live_call",
     {"permission": granted(30, consecutive_unanswered=5), "connected_h": (1, 2), "live_call": True},
     ["unanswered_strikes", "connected_call_cap", "call_in_progress"], "call_button"),
]  # fmt: skip


@pytest.mark.parametrize(("arrangement", "codes", "fallback"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_call_decide_rules(settings, arrangement, codes, fallback):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 2
    settings.MAX_CONNECTED_CALLS_PER_24H = 2
    number, contact = arrange(**arrangement)

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.codes == codes
    assert decision.is_allowed == (not codes)
    assert (decision.fallback.kind if decision.fallback else None) == fallback
    assert all(refusal.reason.endswith((".", ")")) for refusal in decision.refusals)


def test_call_decide_says_when_a_refusal_clears(settings):
    settings.MAX_CONNECTED_CALLS_PER_24H = 2
    number, contact = arrange(
        permission=granted(30, status=Status.PERMANENT),
        connected_h=(20, 3),
        number={"restrictions": [{"type": RESTRICTED, "expires_at": (NOW + timedelta(days=2)).isoformat()}]},
    )

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert [(refusal.code, refusal.clears_at) for refusal in decision.refusals] == [
        ("number_restricted", NOW + timedelta(days=2)),
        ("connected_call_cap", NOW + timedelta(hours=4)),
    ]


def test_call_decide_first_call_window_names_the_brief_rule():
    number, contact = arrange(permission=granted(73))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.refusals[0].reason == (
        "The permission expired on 2026-11-26 11:00 UTC: no call connected within 72 h of the grant."
    )


LAST_STRIKE = DecisionWarning(
    "last_unanswered_before_revocation",
    "One more unanswered call revokes the customer's permission (Meta: 4 unanswered in a row).",
)


@pytest.mark.parametrize(
    ("unanswered", "warnings"), [(0, ()), (2, ()), (3, (LAST_STRIKE,)), (4, ())], ids=["0", "2", "3", "4"]
)
def test_call_decide_warns_of_the_last_unanswered_call_before_revocation(unanswered, warnings):
    number, contact = arrange(permission=granted(1, consecutive_unanswered=unanswered))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert (decision.is_allowed, decision.warnings) == (unanswered < 4, warnings)


def test_call_decide_warns_by_the_configured_limit(settings):
    settings.MAX_CONSECUTIVE_UNANSWERED = 10  # the sandbox's (WHATSAPP_API.md §3.6)
    number, contact = arrange(permission=granted(1, consecutive_unanswered=9))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.warnings == (
        DecisionWarning(
            "last_unanswered_before_revocation",
            "One more unanswered call revokes the customer's permission (Meta: 10 unanswered in a row).",
        ),
    )


def test_call_decide_says_a_permanent_permission_allows_the_call_and_asks_for_review():
    number, contact = arrange(permission=granted(24 * 60, status=Status.PERMANENT))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert (decision.is_allowed, decision.allowed_because) == (
        True,
        "The customer granted permanent permission on 2026-09-27; the brief treats permissions as not "
        "permanent: review it.",
    )


def test_call_decide_says_which_temporary_permission_allows_the_call():
    number, contact = arrange(permission=granted(1))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.allowed_because == (
        "The customer granted temporary permission on 2026-11-26, until 2026-11-29 11:00 UTC."
    )


def test_call_decide_says_nothing_allows_a_refused_call():
    number, contact = arrange(permission=granted(1, status=Status.PERMANENT), live_call=True)

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert (decision.codes, decision.allowed_because) == (["call_in_progress"], "")


def test_call_decide_after_a_decline_offers_the_call_button_and_says_why():
    number, contact = arrange(permission={"status": Status.REJECTED}, declined_h=72)

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.fallback.reason == (
        'Send a "Call us" button: the customer calls in, which is allowed everywhere and free. '
        "No permission request: the customer declined on 2026-11-23 12:00 UTC and has not written or "
        "called since."
    )


def test_call_decide_after_a_decline_and_a_message_since_says_why_it_asks_again():
    number, contact = arrange(permission={"status": Status.REJECTED}, declined_h=72, wrote_h=3)

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.fallback.reason == (
        "The customer declined on 2026-11-23 12:00 UTC but has written or called since "
        "(2026-11-26 09:00 UTC). Ask the customer for permission to call. The request limits allow one more."
    )


def test_call_decide_refuses_a_landline_and_names_the_line():
    number, contact = arrange(customer=LINES["gb_landline"], permission=granted(1))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert [(refusal.code, refusal.reason) for refusal in decision.refusals] == [
        (
            "not_mobile",
            "+442079460123 is a landline, not a mobile: business calls reach WhatsApp on mobiles only.",
        )
    ]


def test_call_decide_quota_fallback_says_when_requests_are_possible_again():
    number, contact = arrange(permission={"status": Status.REQUESTED}, requests_h=(2,))

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert decision.fallback.reason.endswith("(possible again 2026-11-27 10:00 UTC)")


def test_call_decide_prices_a_minute_by_the_customers_country_in_the_accounts_currency():
    number, contact = arrange(permission=granted(1))
    for market, currency, price, starts, ends in [
        ("GB", "USD", "0.0310", date(2026, 1, 1), date(2026, 12, 31)),
        ("GB", "USD", "0.0400", date(2027, 1, 1), None),
        ("GB", "GBP", "0.0250", date(2026, 1, 1), None),
        ("BR", "USD", "0.0100", date(2026, 1, 1), None),
    ]:
        RateCard.objects.create(
            category=RateCard.Category.CALL,
            market=market,
            price=Money(price, currency),
            effective_from=starts,
            effective_to=ends,
        )

    in_dollars = call_decide(business_number=number, contact=contact, at=NOW)
    BillingCurrency.objects.create(waba_id=number.waba_id, currency="GBP", effective_from=NOW.date())
    in_pounds = call_decide(business_number=number, contact=contact, at=NOW)

    assert in_dollars.cost == CostEstimate(per_minute=Decimal("0.0310"), currency="USD", country="GB")
    assert in_pounds.cost == CostEstimate(per_minute=Decimal("0.0250"), currency="GBP", country="GB")


def test_call_decide_for_a_customer_never_seen_refuses_without_writing():
    number = BusinessNumberFactory(display_phone_number=GB_BUSINESS)
    from messaging.models import Contact

    decision = call_decide(business_number=number, contact=Contact(wa_id=GB_CUSTOMER), at=NOW)

    assert (decision.codes, decision.fallback.kind) == (["no_permission"], "permission_request")
    assert (Contact.objects.count(), CallPermission.objects.count()) == (0, 0)


def test_business_country_comes_from_the_number_not_the_stored_field():
    number = BusinessNumberFactory(display_phone_number=BUSINESS_NUMBERS["US"], country="GB")
    contact = ContactFactory(wa_id=GB_CUSTOMER, country="GB")
    BusinessNumber.objects.filter(pk=number.pk).update(country="GB")

    decision = call_decide(business_number=number, contact=contact, at=NOW)

    assert "business_country_blocked" in decision.codes
