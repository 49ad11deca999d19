"""The `user_preferences` field and its system-message twin parsed into events (WHATSAPP_API.md §10.2)."""

import copy
from datetime import UTC, datetime

from whatsapp.events import MessageReceived, Problem, UserPreferenceChange, event_from_context, parse_delivery
from whatsapp.tests import payloads

STOPPED_AT = 1731705721


def test_each_preference_item_is_one_event_keyed_by_number_customer_category_value_and_time():
    payload = payloads.user_preference("stop", STOPPED_AT)
    value = payload["entry"][0]["changes"][0]["value"]
    value["user_preferences"].append({**value["user_preferences"][0], "wa_id": "447700900123",
                                      "value": "resume"})  # fmt: skip

    parsed = parse_delivery(payload)

    assert parsed.problems == []
    stop, resume = parsed.events
    assert stop == UserPreferenceChange(
        waba_id=payloads.WABA_ID, phone_number_id=payloads.PHONE_NUMBER_ID,
        display_phone_number=payloads.BUSINESS, occurred_at=datetime.fromtimestamp(STOPPED_AT, tz=UTC),
        wa_id=payloads.CUSTOMER, category="marketing_messages", value="stop",
        detail="User requested to stop marketing messages", contact_name="Jane",
    )  # fmt: skip
    assert stop.is_stop and not resume.is_stop
    assert stop.idempotency_key == (
        f"preference:{payloads.PHONE_NUMBER_ID}:{payloads.CUSTOMER}:marketing_messages:stop:{STOPPED_AT}"
    )
    assert resume.wa_id == "447700900123"
    assert event_from_context(stop.raw) == stop  # a failed event can be replayed from what is stored


def test_a_bad_preference_item_is_a_problem_and_its_good_sibling_still_an_event():
    payload = payloads.user_preference("stop", STOPPED_AT)
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["user_preferences"][0]
    value["user_preferences"] = [
        {**good, "value": "pause"},
        {key: item for key, item in good.items() if key != "timestamp"},
        {**good, "category": "utility_messages"},
        "stop",
        good,
    ]

    parsed = parse_delivery(payload)

    where = "entry[0].changes[0].value.user_preferences"
    assert parsed.problems == [
        Problem(f"{where}[0]", "'value' must be one of resume, stop"),
        Problem(f"{where}[1]", "'timestamp' is missing: the change cannot be put in order"),
        Problem(f"{where}[2]", "'category' must be one of marketing_messages"),
        Problem(f"{where}[3]", "must be an object"),
    ]
    assert [event.value for event in parsed.events] == ["stop"]


def test_a_user_preferences_change_without_its_list_is_a_problem():
    payload = payloads.user_preference("stop", STOPPED_AT)
    del payload["entry"][0]["changes"][0]["value"]["user_preferences"]

    parsed = parse_delivery(payload)

    assert parsed.events == []
    assert parsed.problems == [
        Problem("entry[0].changes[0].value.user_preferences", "must be a list"),
    ]


def test_a_system_message_of_a_changed_preference_is_a_message_carrying_the_news():
    parsed = parse_delivery(payloads.preference_system_message("stop", STOPPED_AT))

    [event] = parsed.events
    assert isinstance(event, MessageReceived)
    assert (event.message_type, event.text, event.marketing_preference, event.notes) == (
        "system", "User requested to stop marketing messages", "stop", (),
    )  # fmt: skip


def test_a_system_message_with_an_unknown_preference_value_is_kept_with_a_note():
    payload = copy.deepcopy(payloads.preference_system_message("stop", STOPPED_AT))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["system"]["marketing"] = "maybe"

    [event] = parse_delivery(payload).events

    assert event.marketing_preference == ""
    assert event.notes == ("'system.marketing' is not 'stop' or 'resume': the preference is not applied",)
