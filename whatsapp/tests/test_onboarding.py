"""Number onboarding against the sandbox: what Meta says of a number, the checklist built from it, the
page that shows it, and the calling settings an administrator sends from it (with Meta's answer,
audited)."""

import pytest

from agents.tests.factories import supervisor
from whatsapp.client import GraphClient, PhoneNumberStatus
from whatsapp.errors import GraphAPIError
from whatsapp.models import BusinessNumber, CallingSettingsChange
from whatsapp.onboarding import number_onboarding_check
from whatsapp.sandbox.meta import SANDBOX_APP_ID
from whatsapp.tests.conftest import sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

WEEKDAYS_NINE_TO_FIVE = {
    f"{day}_{edge}_1": time
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    for edge, time in (("open", "0900"), ("close", "1700"))
}
SETTINGS_FORM = {
    "status": "ENABLED",
    "call_icon_visibility": "DEFAULT",
    "callback_permission_status": "ENABLED",
    "call_hours_status": "ENABLED",
    "timezone_id": "Europe/London",
    "holiday_rows": "3",
}


@pytest.fixture
def number():
    return BusinessNumberFactory(messaging_limit_tier=BusinessNumber.MessagingLimitTier.TIER_2K)


@pytest.fixture
def meta(settings, number):
    """The sandbox as Meta for `number`, knowing this deployment's app (its id and secret)."""
    settings.WHATSAPP_APP_ID = SANDBOX_APP_ID
    with sandbox_serving(settings, number, app_secret=settings.WHATSAPP_APP_SECRET) as sandbox:
        yield sandbox


def states(onboarding) -> dict[str, str]:
    return {check.key: check.state for check in onboarding.checks}


def problems(onboarding) -> list[str]:
    return [check.key for check in onboarding.problems]


def page_states(response) -> dict[str, str]:
    import re

    return dict(re.findall(r'data-check="([a-z_]+)" data-state="([a-z]+)"', response.content.decode()))


# --- The client's reads -----------------------------------------------------------------------


def test_the_client_reads_the_number_its_account_and_the_apps_webhook_fields(settings, meta, number):
    with GraphClient() as graph:
        status = graph.phone_number_get(phone_number_id=number.phone_number_id)
        apps = graph.subscribed_apps_get(waba_id=number.waba_id)
        fields = graph.app_subscriptions_get(app_id=SANDBOX_APP_ID, app_secret=settings.WHATSAPP_APP_SECRET)

    assert status == PhoneNumberStatus(
        display_phone_number="+" + number.digits, verified_name="Sandbox Business", name_status="APPROVED",
        quality_rating="GREEN", messaging_limit_tier="TIER_2K", is_official_business_account=False,
        platform_type="CLOUD_API", is_on_biz_app=False, code_verification_status="VERIFIED",
    )  # fmt: skip
    assert apps == [SANDBOX_APP_ID]
    assert "calls" in fields["whatsapp_business_account"]


def test_the_apps_subscriptions_are_read_with_the_app_token_only(meta):
    with GraphClient() as graph, pytest.raises(GraphAPIError) as refused:
        graph.app_subscriptions_get(app_id=SANDBOX_APP_ID, app_secret="not the secret")

    assert refused.value.code == 190


# --- The checklist ----------------------------------------------------------------------------


def test_a_number_with_a_low_messaging_limit_and_no_call_hours_has_those_two_problems(meta, number):
    meta.thread.call(meta.meta.number_profile_set, number.phone_number_id, messaging_limit_tier="TIER_1K")

    onboarding = number_onboarding_check(business_number=number)

    assert onboarding.error == ""
    assert problems(onboarding) == ["messaging_limit", "call_hours"]
    assert states(onboarding) | {"messaging_limit": "x", "call_hours": "x"} == {
        "display_name": "ok", "official": "note", "quality": "ok", "messaging_limit": "x", "platform": "ok",
        "coexistence": "ok", "calls_webhook": "ok", "calling_status": "ok", "call_hours": "x",
        "callback_permission": "note", "call_icon": "ok", "restrictions": "ok",
    }  # fmt: skip
    number.refresh_from_db()
    assert number.messaging_limit_tier == "TIER_1K"  # kept as Meta said it


def test_coexistence_a_pending_name_and_no_calls_webhook_are_problems_and_kept(meta, number):
    meta.thread.call(
        meta.meta.number_profile_set, number.phone_number_id, is_on_biz_app=True,
        name_status="PENDING_REVIEW", is_official_business_account=True,
    )  # fmt: skip
    meta.thread.call(meta.meta.app_webhook_fields_set, ["messages", "account_update"])

    onboarding = number_onboarding_check(business_number=number)

    assert problems(onboarding) == ["display_name", "coexistence", "calls_webhook", "call_hours"]
    webhook = next(check for check in onboarding.checks if check.key == "calls_webhook")
    assert webhook.found == "Subscribed to: account_update, messages"
    number.refresh_from_db()
    assert (number.is_coexistence, number.verification_status) == (True, "verified")


def test_an_account_the_app_is_not_subscribed_to_is_a_problem_unless_calls_go_to_sip(meta, number):
    meta.thread.call(meta.meta.unsubscribed_wabas.add, number.waba_id)

    before = states(number_onboarding_check(business_number=number))["calls_webhook"]
    meta.thread.call(meta.meta.numbers[number.phone_number_id].calling.update, {"sip": {"status": "ENABLED"}})
    after = states(number_onboarding_check(business_number=number))["calls_webhook"]

    assert (before, after) == ("problem", "ok")


def test_meta_unreachable_gives_an_error_and_changes_nothing(meta, number):
    meta.inject_faults(1, status=503)

    onboarding = number_onboarding_check(business_number=number)

    assert onboarding.checks == []
    assert onboarding.error.startswith("Meta could not be read:")
    number.refresh_from_db()
    assert number.calling_settings_updated_at is None


# --- The page -----------------------------------------------------------------------------------


def test_an_administrator_sees_two_problems_sets_call_hours_and_sees_metas_answer(admin_client, meta, number):
    meta.thread.call(meta.meta.number_profile_set, number.phone_number_id, messaging_limit_tier="TIER_1K")
    url = f"/numbers/{number.pk}/onboarding/"
    before = admin_client.get(url)

    answered = admin_client.post(url, SETTINGS_FORM | WEEKDAYS_NINE_TO_FIVE, follow=True)

    assert before.status_code == 200
    assert page_states(before)["call_hours"] == page_states(before)["messaging_limit"] == "problem"
    assert "2 problems stand in the way" in before.content.decode()
    assert answered.redirect_chain[0][0].startswith(url + "?change=")
    assert 'id="meta-answer" data-accepted="true"' in answered.content.decode()
    assert page_states(answered)["call_hours"] == "ok"
    assert page_states(answered)["callback_permission"] == "ok"
    assert "&quot;timezone_id&quot;: &quot;Europe/London&quot;" in answered.content.decode()  # what was sent
    change = CallingSettingsChange.objects.get()
    assert (change.is_accepted, change.answer) == (True, {"success": True})
    assert change.changed_by.is_superuser
    assert change.sent["call_hours"]["weekly_operating_hours"][0] == {
        "day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700",
    }  # fmt: skip
    assert change.sent["call_hours"]["holiday_schedule"] == []
    number.refresh_from_db()
    assert number.calling_settings["call_hours"]["timezone_id"] == "Europe/London"


def test_settings_meta_refuses_show_metas_error_and_are_audited(admin_client, meta, number):
    url = f"/numbers/{number.pk}/onboarding/"

    response = admin_client.post(url, SETTINGS_FORM)  # call hours without a single weekly span

    assert response.status_code == 200
    assert 'data-accepted="false"' in response.content.decode()
    change = CallingSettingsChange.objects.get()
    assert (change.is_accepted, change.answer["code"]) == (False, 100)
    assert change.answer["details"] in response.content.decode()
    assert page_states(response)["call_hours"] == "problem"  # Meta kept what it had


def test_a_time_that_is_not_hhmm_is_refused_before_meta_is_asked(admin_client, meta, number):
    url = f"/numbers/{number.pk}/onboarding/"

    response = admin_client.post(url, SETTINGS_FORM | WEEKDAYS_NINE_TO_FIVE | {"monday_close_1": "17:00"})
    missing_zone = admin_client.post(url, SETTINGS_FORM | WEEKDAYS_NINE_TO_FIVE | {"timezone_id": ""})

    assert (response.status_code, missing_zone.status_code) == (400, 400)
    assert "A time as HHMM" in response.content.decode()
    assert "Call hours need a time zone." in missing_zone.content.decode()
    assert CallingSettingsChange.objects.count() == 0
    assert ("POST", f"/v23.0/{number.phone_number_id}/settings") not in meta.traffic.requests


def test_holidays_are_sent_with_the_hours(admin_client, meta, number):
    holiday = {"holiday_date_0": "2099-12-25", "holiday_start_0": "0000", "holiday_end_0": "2359"}

    admin_client.post(f"/numbers/{number.pk}/onboarding/", SETTINGS_FORM | WEEKDAYS_NINE_TO_FIVE | holiday)

    change = CallingSettingsChange.objects.get()
    assert change.is_accepted
    assert change.sent["call_hours"]["holiday_schedule"] == [
        {"date": "2099-12-25", "start_time": "0000", "end_time": "2359"}
    ]
    page = admin_client.get(f"/numbers/{number.pk}/onboarding/").content.decode()
    assert 'value="2099-12-25"' in page  # the form shows what Meta has


def test_a_supervisor_sees_the_checklist_but_may_not_change_settings(client, meta, number):
    client.force_login(supervisor())
    url = f"/numbers/{number.pk}/onboarding/"

    page = client.get(url)
    posted = client.post(url, SETTINGS_FORM | WEEKDAYS_NINE_TO_FIVE)

    assert (page.status_code, posted.status_code) == (200, 403)
    assert 'id="calling-settings"' not in page.content.decode()
    assert "Only administrators" in page.content.decode()
    assert CallingSettingsChange.objects.count() == 0


def test_the_page_shows_an_error_box_when_meta_fails(admin_client, meta, number):
    meta.inject_faults(1, status=500)

    response = admin_client.get(f"/numbers/{number.pk}/onboarding/")

    assert response.status_code == 200
    assert 'id="graph-error"' in response.content.decode()
    assert "Meta could not be read" in response.content.decode()


def test_the_number_admin_links_to_its_onboarding_page(admin_client, number):
    listing = admin_client.get("/admin/whatsapp/businessnumber/")
    change_page = admin_client.get(f"/admin/whatsapp/businessnumber/{number.pk}/change/")

    assert f'href="/numbers/{number.pk}/onboarding/"' in listing.content.decode()
    assert f'href="/numbers/{number.pk}/onboarding/"' in change_page.content.decode()


def test_the_audit_is_read_only_in_the_admin(admin_client, number):
    change = CallingSettingsChange.objects.create(
        business_number=number, changed_by=None, sent={"status": "ENABLED"}, is_accepted=True,
        answer={"success": True},
    )  # fmt: skip

    listing = admin_client.get("/admin/whatsapp/callingsettingschange/")
    page = admin_client.get(f"/admin/whatsapp/callingsettingschange/{change.pk}/change/")
    add = admin_client.get("/admin/whatsapp/callingsettingschange/add/")

    assert (listing.status_code, page.status_code, add.status_code) == (200, 200, 403)
    assert 'name="sent"' not in page.content.decode()


@pytest.mark.parametrize(
    ("app_id", "app_secret", "says"),
    [
        ("", None, "Set WHATSAPP_APP_ID"),
        (
            SANDBOX_APP_ID,
            "a secret Meta does not know",
            "Meta refused to list the app's webhook fields: [190]",
        ),
    ],
)
def test_the_calls_webhook_is_not_checked_without_the_apps_id_or_token(
    settings, meta, number, app_id, app_secret, says
):
    settings.WHATSAPP_APP_ID = app_id
    if app_secret is not None:
        settings.WHATSAPP_APP_SECRET = app_secret

    onboarding = number_onboarding_check(business_number=number)

    webhook = next(check for check in onboarding.checks if check.key == "calls_webhook")
    assert (webhook.state, webhook.found) == ("note", "Not checked")
    assert webhook.advice.startswith(says)
