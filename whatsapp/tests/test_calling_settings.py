"""The calling-settings rules of WHATSAPP_API.md §4.1/§4.2 (whatsapp.calling_settings)."""

from datetime import date

import pytest

from whatsapp.calling_settings import (
    SettingsProblem,
    calling_settings_problems,
    hostname_problem,
    problems_text,
)

TODAY = date(2026, 12, 6)


def meta_sample() -> dict:
    """The body of WHATSAPP_API.md §4.1, with a real SIP host and a holiday still to come."""
    return {
        "status": "ENABLED",
        "call_icon_visibility": "DEFAULT",
        "call_icons": {"restrict_to_user_countries": ["US", "BR"]},
        "callback_permission_status": "ENABLED",
        "call_hours": {
            "status": "ENABLED",
            "timezone_id": "America/Manaus",
            "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0400", "close_time": "1020"}],
            "holiday_schedule": [{"date": "2027-01-01", "start_time": "0000", "end_time": "2359"}],
        },
        "srtp_key_exchange_protocol": "DTLS",
        "sip": {
            "status": "DISABLED",
            "servers": [
                {"hostname": "sip.switchboard.io", "port": 5061, "request_uri_user_params": {"tgrp": "wa"}}
            ],
        },
    }


def update_problems(calling, *, current: dict | None = None) -> list[tuple[str, str]]:
    return [
        (problem.path, problem.reason)
        for problem in calling_settings_problems(calling, for_update=True, today=TODAY, current=current)
    ]


def paths(calling, *, for_update: bool = True, current: dict | None = None) -> list[str]:
    problems = calling_settings_problems(calling, for_update=for_update, today=TODAY, current=current)
    return [problem.path for problem in problems]


def hours(**changes) -> dict:
    base = {
        "status": "ENABLED",
        "timezone_id": "Europe/London",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700"}],
    }
    return base | changes


def slot(day: str, open_time: str, close_time: str) -> dict:
    return {"day_of_week": day, "open_time": open_time, "close_time": close_time}


# --- What is valid ------------------------------------------------------------------------------


def test_calling_settings_meta_sample_is_valid_in_both_modes():
    assert calling_settings_problems(meta_sample(), for_update=True, today=TODAY) == []
    assert calling_settings_problems(meta_sample(), for_update=False) == []


def test_calling_settings_every_key_is_optional_in_an_update():
    assert update_problems({}) == []
    assert update_problems({"status": "DISABLED"}) == []


def test_calling_settings_disabled_call_hours_need_no_hours():
    assert update_problems({"call_hours": {"status": "DISABLED"}}) == []


def test_calling_settings_two_slots_a_day_that_touch_are_valid():
    weekly = [slot("MONDAY", "0900", "1200"), slot("MONDAY", "1200", "1700"), slot("TUESDAY", "0000", "2359")]

    assert update_problems({"call_hours": hours(weekly_operating_hours=weekly)}) == []


def test_calling_settings_holiday_today_is_not_past():
    holiday = {"date": TODAY.isoformat(), "start_time": "0000", "end_time": "2359"}

    assert update_problems({"call_hours": hours(holiday_schedule=[holiday])}) == []


def test_calling_settings_sdes_with_sip_enabled_is_valid():
    calling = {
        "srtp_key_exchange_protocol": "SDES",
        "sip": {"status": "ENABLED", "servers": [{"hostname": "sip.switchboard.io", "port": 5061}]},
    }

    assert update_problems(calling) == []


def test_calling_settings_sdes_alone_is_valid_when_sip_is_already_on():
    current = {"sip": {"status": "ENABLED", "servers": [{"hostname": "sip.switchboard.io"}]}}

    assert update_problems({"srtp_key_exchange_protocol": "SDES"}, current=current) == []
    assert update_problems({"sip": {"status": "ENABLED"}}, current=current) == []


def test_calling_settings_meta_report_may_carry_restrictions_credentials_and_new_keys():
    calling = meta_sample() | {
        "restrictions": {
            "restrictions_list": [
                {
                    "type": "RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING",
                    "reason": "low pickup rate",
                    "expiration": 1754072386,
                }
            ]
        },
        "a_key_meta_adds_later": {"status": "ENABLED"},
    }
    calling["sip"]["servers"][0]["sip_user_password"] = "s3cret"

    assert calling_settings_problems(calling, for_update=False) == []


def test_calling_settings_meta_report_keeps_a_holiday_that_has_passed():
    calling = {
        "call_hours": hours(
            holiday_schedule=[{"date": "2020-01-01", "start_time": "0000", "end_time": "2359"}]
        )
    }

    assert calling_settings_problems(calling, for_update=False) == []


# --- What is refused, and where ------------------------------------------------------------------


def test_calling_settings_replayed_body_names_the_host_and_the_time_zone():
    calling = {
        "status": "ENABLED",
        "call_hours": hours(timezone_id="[REDACTED]"),
        "sip": {"status": "ENABLED", "servers": [{"hostname": "example.com", "port": 5061}]},
    }

    problems = calling_settings_problems(calling, for_update=False)

    assert problems == [
        SettingsProblem(
            "calling.call_hours.timezone_id", "'[REDACTED]' is not an IANA time zone such as 'America/Manaus'"
        ),
        SettingsProblem(
            "calling.sip.servers[0].hostname",
            "'example.com' is reserved for documentation and examples (RFC 2606)",
        ),
    ]
    assert problems_text(problems) == (
        "calling.call_hours.timezone_id: '[REDACTED]' is not an IANA time zone such as 'America/Manaus'; "
        "calling.sip.servers[0].hostname: 'example.com' is reserved for documentation and examples (RFC 2606)"
    )


def test_calling_settings_not_an_object():
    assert update_problems(["status", "ENABLED"]) == [("calling", "must be an object")]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "ON"),
        ("status", True),
        ("call_icon_visibility", "HIDDEN"),
        ("callback_permission_status", "enabled"),
        ("srtp_key_exchange_protocol", "ZRTP"),
    ],
)
def test_calling_settings_enumerations_refuse_other_values(key, value):
    assert paths({key: value}) == [f"calling.{key}"]


def test_calling_settings_enumeration_reason_lists_the_values():
    assert update_problems({"call_icon_visibility": "HIDDEN"}) == [
        ("calling.call_icon_visibility", "must be one of DEFAULT, DISABLE_ALL (not 'HIDDEN')")
    ]


def test_calling_settings_update_refuses_unknown_keys_and_restrictions():
    calling = {"stauts": "ENABLED", "restrictions": {"restrictions_list": []}}

    assert paths(calling) == ["calling.stauts", "calling.restrictions"]
    assert update_problems({"stauts": "ENABLED"}) == [
        (
            "calling.stauts",
            "is not a setting (known: call_hours, call_icon_visibility, call_icons, "
            "callback_permission_status, sip, srtp_key_exchange_protocol, status)",
        )
    ]
    assert update_problems({"restrictions": {}})[0] == (
        "calling.restrictions",
        "is set by Meta and cannot be changed",
    )


def test_calling_settings_update_refuses_unknown_nested_keys():
    calling = {
        "call_icons": {"countries": ["US"]},
        "call_hours": hours(
            weekly_operating_hours=[slot("MONDAY", "0900", "1700") | {"note": "x"}], zone="x"
        ),
        "sip": {
            "status": "DISABLED",
            "servers": [{"hostname": "sip.switchboard.io", "password": "x"}],
            "x": 1,
        },
    }

    assert paths(calling) == [
        "calling.call_icons.countries",
        "calling.call_hours.zone",
        "calling.call_hours.weekly_operating_hours[0].note",
        "calling.sip.x",
        "calling.sip.servers[0].password",
    ]


@pytest.mark.parametrize("countries", ["US", [["US"]], ["us"], ["USA"], ["XX"], ["ZZ"], [1]])
def test_calling_settings_icon_countries_are_iso_codes(countries):
    assert paths({"call_icons": {"restrict_to_user_countries": countries}}) != []


def test_calling_settings_icon_country_listed_twice():
    assert update_problems({"call_icons": {"restrict_to_user_countries": ["US", "BR", "US"]}}) == [
        ("calling.call_icons.restrict_to_user_countries[2]", "'US' is listed twice")
    ]


def test_calling_settings_call_hours_need_a_status():
    assert paths({"call_hours": {"timezone_id": "Europe/London"}}) == ["calling.call_hours.status"]


def test_calling_settings_enabled_call_hours_need_a_zone_and_weekly_hours():
    assert paths({"call_hours": {"status": "ENABLED"}}) == [
        "calling.call_hours.timezone_id",
        "calling.call_hours.weekly_operating_hours",
    ]


@pytest.mark.parametrize("zone", ["[REDACTED]", "Mars/Olympus", "", "america/manaus", 3, None])
def test_calling_settings_time_zone_must_be_iana(zone):
    assert paths({"call_hours": hours(timezone_id=zone)}) == ["calling.call_hours.timezone_id"]


@pytest.mark.parametrize("weekly", [[], None, {"MONDAY": "0900"}])
def test_calling_settings_weekly_hours_must_be_a_non_empty_list(weekly):
    assert update_problems({"call_hours": hours(weekly_operating_hours=weekly)}) == [
        ("calling.call_hours.weekly_operating_hours", "must be a non-empty list of opening hours")
    ]


def test_calling_settings_weekly_hours_days_and_times():
    weekly = [
        slot("MONDAY", "0900", "1700"),
        slot("monday", "0900", "1700"),
        slot("FUNDAY", "0900", "1700"),
        slot("TUESDAY", "900", "1700"),
        slot("WEDNESDAY", "0900", "2400"),
        slot("THURSDAY", "0960", "1700"),
        slot("FRIDAY", "٠٩٠٠", "1700"),  # Arabic-Indic digits are not HHMM
        "SATURDAY 0900-1700",
    ]

    assert paths({"call_hours": hours(weekly_operating_hours=weekly)}) == [
        "calling.call_hours.weekly_operating_hours[1].day_of_week",
        "calling.call_hours.weekly_operating_hours[2].day_of_week",
        "calling.call_hours.weekly_operating_hours[3].open_time",
        "calling.call_hours.weekly_operating_hours[4].close_time",
        "calling.call_hours.weekly_operating_hours[5].open_time",
        "calling.call_hours.weekly_operating_hours[6].open_time",
        "calling.call_hours.weekly_operating_hours[7]",
    ]


@pytest.mark.parametrize(("open_time", "close_time"), [("1700", "0900"), ("0900", "0900")])
def test_calling_settings_open_before_close(open_time, close_time):
    weekly = [slot("MONDAY", open_time, close_time)]

    assert update_problems({"call_hours": hours(weekly_operating_hours=weekly)}) == [
        (
            "calling.call_hours.weekly_operating_hours[0].close_time",
            f"{close_time} is not after open_time {open_time}",
        )
    ]


def test_calling_settings_at_most_two_slots_a_day():
    weekly = [slot("MONDAY", "0800", "0900"), slot("MONDAY", "1000", "1100"), slot("MONDAY", "1200", "1300")]

    assert update_problems({"call_hours": hours(weekly_operating_hours=weekly)}) == [
        ("calling.call_hours.weekly_operating_hours[2]", "MONDAY has 3 entries; at most 2 a day")
    ]


def test_calling_settings_slots_may_not_overlap():
    weekly = [slot("FRIDAY", "1300", "1800"), slot("FRIDAY", "0900", "1400")]

    assert update_problems({"call_hours": hours(weekly_operating_hours=weekly)}) == [
        ("calling.call_hours.weekly_operating_hours[0]", "1300-1800 overlaps 0900-1400 on FRIDAY")
    ]


def test_calling_settings_at_most_twenty_holidays():
    holidays = [
        {"date": f"2027-01-{day:02d}", "start_time": "0000", "end_time": "2359"} for day in range(1, 22)
    ]

    assert update_problems({"call_hours": hours(holiday_schedule=holidays)}) == [
        ("calling.call_hours.holiday_schedule", "holds 21 holidays; at most 20")
    ]
    assert update_problems({"call_hours": hours(holiday_schedule=holidays[:20])}) == []


def test_calling_settings_holiday_dates_and_times():
    holidays = [
        {"date": "2026-12-05", "start_time": "0000", "end_time": "2359"},
        {"date": "2027-02-30", "start_time": "0000", "end_time": "2359"},
        {"date": "20270101", "start_time": "0000", "end_time": "2359"},
        {"date": "2027-01-01", "start_time": "1200", "end_time": "1100"},
        {"date": "2027-01-02", "start_time": "noon", "end_time": "2359"},
        {"day": "2027-01-03"},
    ]

    assert update_problems({"call_hours": hours(holiday_schedule=holidays)}) == [
        ("calling.call_hours.holiday_schedule[0].date", "2026-12-05 is in the past (today is 2026-12-06)"),
        ("calling.call_hours.holiday_schedule[1].date", "'2027-02-30' is not a date written YYYY-MM-DD"),
        ("calling.call_hours.holiday_schedule[2].date", "'20270101' is not a date written YYYY-MM-DD"),
        ("calling.call_hours.holiday_schedule[3].end_time", "1100 is not after start_time 1200"),
        (
            "calling.call_hours.holiday_schedule[4].start_time",
            "'noon' is not a time written HHMM on a 24-hour clock (0000-2359)",
        ),
        (
            "calling.call_hours.holiday_schedule[5].day",
            "is not a setting (known: date, end_time, start_time)",
        ),
        ("calling.call_hours.holiday_schedule[5].date", "None is not a date written YYYY-MM-DD"),
        (
            "calling.call_hours.holiday_schedule[5].start_time",
            "None is not a time written HHMM on a 24-hour clock (0000-2359)",
        ),
        (
            "calling.call_hours.holiday_schedule[5].end_time",
            "None is not a time written HHMM on a 24-hour clock (0000-2359)",
        ),
    ]


def test_calling_settings_sdes_needs_sip():
    assert update_problems({"srtp_key_exchange_protocol": "SDES"}) == [
        ("calling.srtp_key_exchange_protocol", "SDES is only for SIP: turn SIP on with it, or use DTLS")
    ]
    assert paths({"srtp_key_exchange_protocol": "SDES", "sip": {"status": "DISABLED"}}) == [
        "calling.srtp_key_exchange_protocol"
    ]
    current = {"sip": {"status": "ENABLED", "servers": [{"hostname": "sip.switchboard.io"}]}}
    assert paths({"srtp_key_exchange_protocol": "SDES", "sip": {"status": "DISABLED"}}, current=current) == [
        "calling.srtp_key_exchange_protocol"
    ]


def test_calling_settings_meta_report_may_keep_sdes_after_sip_is_off():
    calling = {"srtp_key_exchange_protocol": "SDES", "sip": {"status": "DISABLED"}}

    assert paths(calling, for_update=False) == []


def test_calling_settings_sip_needs_a_status_and_a_server_to_turn_on():
    assert update_problems({"sip": {"servers": []}}) == [
        ("calling.sip.status", "is required (one of ENABLED, DISABLED)")
    ]
    assert paths({"sip": {"status": "ENABLED"}}) == ["calling.sip.servers"]
    assert paths({"sip": {"status": "ENABLED", "servers": []}}) == ["calling.sip.servers"]


@pytest.mark.parametrize("port", [0, 65536, -1, "5061", True, 5061.5])
def test_calling_settings_sip_port_is_a_port_number(port):
    servers = [{"hostname": "sip.switchboard.io", "port": port}]

    assert paths({"sip": {"status": "ENABLED", "servers": servers}}) == ["calling.sip.servers[0].port"]


@pytest.mark.parametrize("port", [1, 5060, 65535])
def test_calling_settings_sip_port_range(port):
    servers = [{"hostname": "sip.switchboard.io", "port": port}]

    assert paths({"sip": {"status": "ENABLED", "servers": servers}}) == []


def test_calling_settings_sip_uri_params():
    servers = [
        {"hostname": "sip.switchboard.io", "request_uri_user_params": {"tgrp": "wa", "trunk-context": "a b"}},
        {"hostname": "sip.switchboard.io", "request_uri_user_params": {"x;y": "1", "n": 3}},
        {"hostname": "sip.switchboard.io", "request_uri_user_params": "tgrp=wa"},
    ]

    assert paths({"sip": {"status": "ENABLED", "servers": servers}}) == [
        "calling.sip.servers[0].request_uri_user_params.'trunk-context'",
        "calling.sip.servers[1].request_uri_user_params.'x;y'",
        "calling.sip.servers[1].request_uri_user_params.n",
        "calling.sip.servers[2].request_uri_user_params",
    ]


def test_calling_settings_update_refuses_a_sip_password():
    servers = [{"hostname": "sip.switchboard.io", "sip_user_password": "x"}]

    assert paths({"sip": {"status": "ENABLED", "servers": servers}}) == [
        "calling.sip.servers[0].sip_user_password"
    ]


def test_calling_settings_meta_report_restrictions_shape():
    calling = {"restrictions": {"restrictions_list": [{"reason": "x", "expiration": "soon"}, "x"]}}

    assert paths(calling, for_update=False) == [
        "calling.restrictions.restrictions_list[0].type",
        "calling.restrictions.restrictions_list[0].expiration",
        "calling.restrictions.restrictions_list[1]",
    ]


def test_calling_settings_meta_report_still_checks_the_values_it_knows():
    calling = meta_sample() | {"status": "MAYBE"}
    calling["call_hours"]["weekly_operating_hours"] = []

    assert paths(calling, for_update=False) == ["calling.status", "calling.call_hours.weekly_operating_hours"]


# --- Host names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostname",
    [
        "sip.switchboard.io",
        "SIP.Switchboard.IO",
        "a-b.c1.co.uk",
        "sip.switchboard.io.",
        "xn--bcher-kva.example-shop.de",
    ],
)
def test_hostname_real_names_pass(hostname):
    assert hostname_problem(hostname) is None


@pytest.mark.parametrize(
    ("hostname", "reason"),
    [
        ("example.com", "'example.com' is reserved for documentation and examples (RFC 2606)"),
        ("sip.example.org", "'sip.example.org' is reserved for documentation and examples (RFC 2606)"),
        ("SIP.EXAMPLE.NET", "'SIP.EXAMPLE.NET' is reserved for documentation and examples (RFC 2606)"),
        ("pbx.test", "'pbx.test' is reserved for testing (RFC 2606)"),
        ("sip.example", "'sip.example' is reserved for documentation (RFC 2606)"),
        ("host.invalid", "'host.invalid' is reserved as a name that is never valid (RFC 2606, RFC 6761)"),
        ("localhost", "'localhost' names this machine, not a server Meta can reach (RFC 6761)"),
        ("sip.localhost", "'sip.localhost' names this machine, not a server Meta can reach (RFC 6761)"),
        (
            "pbx.local",
            "'pbx.local' is a multicast-DNS name of a local network, not reachable by Meta (RFC 6762)",
        ),
        ("pbx.home.arpa", "'pbx.home.arpa' names a home network, not a server Meta can reach (RFC 8375)"),
        ("10.0.0.1", "'10.0.0.1' is an IP address: give the SIP server's host name"),
        ("sip", "'sip' is not a fully qualified host name (such as sip.yourcompany.com)"),
        ("sip.123", "'sip.123' is not a host name: the last part may not be all digits"),
        ("", "must be a host name such as sip.yourcompany.com"),
        (None, "must be a host name such as sip.yourcompany.com"),
    ],
)
def test_hostname_reserved_and_malformed_names_refused(hostname, reason):
    assert hostname_problem(hostname) == reason


@pytest.mark.parametrize(
    "hostname",
    [
        "-sip.switchboard.io",
        "sip-.switchboard.io",
        "sip..switchboard.io",
        "sip_1.switchboard.io",
        "sip.switchböard.io",
        "https://sip.switchboard.io",
        "sip.switchboard.io:5061",
        "[::1]",
        f"{'a' * 64}.io",
        ("a" * 60 + ".") * 5 + "io",
    ],
)
def test_hostname_bad_syntax_refused(hostname):
    assert hostname_problem(hostname) is not None
