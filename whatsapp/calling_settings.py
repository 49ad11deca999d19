"""The rules of a number's calling settings (WHATSAPP_API.md §4.1, §4.2, §1.9), in one place.

`calling_settings_problems` reads a `calling` object and lists what is wrong with it, each problem
with its JSON path and a reason a person can act on; an empty list means the object is valid. It
checks the two shapes the object has:

- `for_update=True`: what a business may POST to /<PHONE_NUMBER_ID>/settings. Every key is
  optional, unknown keys are refused, `restrictions` is Meta's to set (read-only), `call_hours`
  replaces the hours in force wholesale, and a holiday may not lie before `today`.
- `for_update=False`: what Meta reports (GET /settings, the `account_settings_update` webhook).
  Keys Meta may add later are let through, `restrictions` and a SIP server's credentials are
  allowed; the values of the keys we know must still be valid.

Pure Python (no Django): the Graph client's callers, the webhook handler and the sandbox's Meta all
use it.
"""

import contextlib
import functools
import itertools
import re
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers

STATUSES = ("ENABLED", "DISABLED")
ICON_VISIBILITIES = ("DEFAULT", "DISABLE_ALL")
SRTP_KEY_EXCHANGE_PROTOCOLS = ("DTLS", "SDES")
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
MAX_SLOTS_PER_DAY = 2
MAX_HOLIDAYS = 20

UPDATE_KEYS = frozenset(
    {
        "status",
        "call_icon_visibility",
        "call_icons",
        "callback_permission_status",
        "call_hours",
        "srtp_key_exchange_protocol",
        "sip",
    }
)
CALL_HOURS_KEYS = frozenset({"status", "timezone_id", "weekly_operating_hours", "holiday_schedule"})
SIP_KEYS = frozenset({"status", "servers"})
SIP_SERVER_KEYS = frozenset({"hostname", "port", "request_uri_user_params"})
SIP_SERVER_REPORTED_KEYS = SIP_SERVER_KEYS | {"sip_user_password"}  # GET ?include_sip_credentials=true

HHMM = re.compile(r"([01][0-9]|2[0-3])[0-5][0-9]")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
URI_PARAM_NAME = re.compile(r"[A-Za-z0-9\-_.!~*'()%]+")  # RFC 3261 §25.1 `pname` (paramchar)
URI_PARAM_VALUE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]*")  # `pvalue`: no ';', '?', '@', spaces

# Names that can never be a SIP server Meta reaches: the documentation and test names of RFC 2606,
# and the special-use names of RFC 6761 (localhost, invalid), RFC 6762 (.local, multicast DNS),
# RFC 7686 (.onion) and RFC 8375 (home.arpa).
RESERVED_TOP_LEVEL_DOMAINS = {
    "test": "is reserved for testing (RFC 2606)",
    "example": "is reserved for documentation (RFC 2606)",
    "invalid": "is reserved as a name that is never valid (RFC 2606, RFC 6761)",
    "localhost": "names this machine, not a server Meta can reach (RFC 6761)",
    "local": "is a multicast-DNS name of a local network, not reachable by Meta (RFC 6762)",
    "onion": "is a Tor onion service name, not reachable by Meta (RFC 7686)",
}
RESERVED_DOMAINS = {
    "example.com": "is reserved for documentation and examples (RFC 2606)",
    "example.net": "is reserved for documentation and examples (RFC 2606)",
    "example.org": "is reserved for documentation and examples (RFC 2606)",
    "home.arpa": "names a home network, not a server Meta can reach (RFC 8375)",
}


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong in a `calling` object: where (a JSON path such as
    `calling.sip.servers[0].hostname`) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def calling_settings_problems(
    calling: Any, *, for_update: bool, today: date | None = None, current: dict | None = None
) -> list[SettingsProblem]:
    """Every rule `calling` breaks, in the order of its keys; empty when it is valid.

    `today`: holidays before it are refused (give it for an update; None skips the check, as Meta's
    own reports may still list a holiday that has passed). `current`: the settings in force, for
    the rules an update may meet through keys it leaves out (SDES needs SIP on; SIP on needs a
    server); both rules bind updates only.
    """
    problems = _Problems()
    if not isinstance(calling, dict):
        problems.add("calling", "must be an object")
        return problems.found
    current = current if isinstance(current, dict) else {}
    for key in calling:
        if key == "restrictions":
            if for_update:
                problems.add("calling.restrictions", "is set by Meta and cannot be changed")
            else:
                _check_restrictions(problems, calling[key])
        elif key not in UPDATE_KEYS and for_update:
            problems.add(f"calling.{_key_text(key)}", _unknown(UPDATE_KEYS))
    for key, allowed in (
        ("status", STATUSES),
        ("call_icon_visibility", ICON_VISIBILITIES),
        ("callback_permission_status", STATUSES),
        ("srtp_key_exchange_protocol", SRTP_KEY_EXCHANGE_PROTOCOLS),
    ):
        if key in calling:
            _check_choice(problems, f"calling.{key}", calling[key], allowed)
    if "call_icons" in calling:
        _check_call_icons(problems, calling["call_icons"], for_update=for_update)
    if "call_hours" in calling:
        _check_call_hours(problems, calling["call_hours"], for_update=for_update, today=today)
    if "sip" in calling:
        _check_sip(problems, calling["sip"], for_update=for_update, current_sip=current.get("sip"))
    # What a business may set; Meta's report may still say SDES after SIP was turned off (inert then).
    is_sdes = calling.get("srtp_key_exchange_protocol") == "SDES"
    if for_update and is_sdes and _sip_status(calling, current) != "ENABLED":
        problems.add(
            "calling.srtp_key_exchange_protocol", "SDES is only for SIP: turn SIP on with it, or use DTLS"
        )
    return problems.found


def problems_text(problems: list[SettingsProblem]) -> str:
    """The problems as one line, for a log, an error answer or the back office."""
    return "; ".join(str(problem) for problem in problems)


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA time zones this machine knows (zoneinfo: the system's database or `tzdata`)."""
    return frozenset(zoneinfo.available_timezones())


def hostname_problem(hostname: Any) -> str | None:
    """Why `hostname` cannot be a SIP server Meta reaches, or None: a fully qualified DNS name
    (RFC 1123 labels), not an IP address and not a reserved or special-use name."""
    if not isinstance(hostname, str) or not hostname:
        return "must be a host name such as sip.yourcompany.com"
    name = hostname[:-1] if hostname.endswith(".") else hostname
    if len(name) > 253:
        return "is longer than the 253 characters a host name may have"
    labels = name.lower().split(".")
    if len(labels) == 1 and labels[0] in RESERVED_TOP_LEVEL_DOMAINS:
        return f"{hostname!r} {RESERVED_TOP_LEVEL_DOMAINS[labels[0]]}"
    for label in labels:
        if not DNS_LABEL.fullmatch(label):
            return (
                f"{hostname!r} is not a host name: each dot-separated part has 1-63 letters, digits "
                "or inner hyphens"
            )
    if all(label.isdigit() for label in labels):
        return f"{hostname!r} is an IP address: give the SIP server's host name"
    if len(labels) < 2:
        return f"{hostname!r} is not a fully qualified host name (such as sip.yourcompany.com)"
    if labels[-1].isdigit():
        return f"{hostname!r} is not a host name: the last part may not be all digits"
    if labels[-1] in RESERVED_TOP_LEVEL_DOMAINS:
        return f"{hostname!r} {RESERVED_TOP_LEVEL_DOMAINS[labels[-1]]}"
    domain = ".".join(labels[-2:])
    if domain in RESERVED_DOMAINS:
        return f"{hostname!r} {RESERVED_DOMAINS[domain]}"
    return None


# --- The parts ------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.found: list[SettingsProblem] = []

    def add(self, path: str, reason: str) -> None:
        self.found.append(SettingsProblem(path, reason))


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) and key.isidentifier() else repr(key)


def _unknown(allowed: frozenset[str]) -> str:
    return f"is not a setting (known: {', '.join(sorted(allowed))})"


def _check_unknown_keys(problems: _Problems, path: str, data: dict, allowed: frozenset[str]) -> None:
    for key in data:
        if key not in allowed:
            problems.add(f"{path}.{_key_text(key)}", _unknown(allowed))


def _check_choice(problems: _Problems, path: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        problems.add(path, f"must be one of {', '.join(allowed)} (not {value!r})")


def _check_call_icons(problems: _Problems, icons: Any, *, for_update: bool) -> None:
    path = "calling.call_icons"
    if not isinstance(icons, dict):
        problems.add(path, "must be an object")
        return
    if for_update:
        _check_unknown_keys(problems, path, icons, frozenset({"restrict_to_user_countries"}))
    if "restrict_to_user_countries" not in icons:
        return
    countries = icons["restrict_to_user_countries"]
    path = f"{path}.restrict_to_user_countries"
    if not isinstance(countries, list):
        problems.add(path, "must be a list of ISO 3166 alpha-2 country codes, such as ['US', 'BR']")
        return
    seen: set[str] = set()
    for index, code in enumerate(countries):
        if not isinstance(code, str) or code not in phonenumbers.SUPPORTED_REGIONS:
            problems.add(
                f"{path}[{index}]", f"{code!r} is not an ISO 3166 alpha-2 code of a country (upper case)"
            )
        elif code in seen:
            problems.add(f"{path}[{index}]", f"{code!r} is listed twice")
        else:
            seen.add(code)


def _check_call_hours(problems: _Problems, hours: Any, *, for_update: bool, today: date | None) -> None:
    path = "calling.call_hours"
    if not isinstance(hours, dict):
        problems.add(path, "must be an object")
        return
    if for_update:
        _check_unknown_keys(problems, path, hours, CALL_HOURS_KEYS)
    if "status" not in hours:
        problems.add(f"{path}.status", f"is required (one of {', '.join(STATUSES)})")
    else:
        _check_choice(problems, f"{path}.status", hours["status"], STATUSES)
    is_enabled = hours.get("status") == "ENABLED"
    if "timezone_id" in hours:
        zone = hours["timezone_id"]
        if not isinstance(zone, str) or zone not in time_zone_names():
            problems.add(f"{path}.timezone_id", f"{zone!r} is not an IANA time zone such as 'America/Manaus'")
    elif is_enabled:
        problems.add(f"{path}.timezone_id", "is required when call hours are ENABLED")
    if "weekly_operating_hours" in hours:
        _check_weekly_hours(
            problems, f"{path}.weekly_operating_hours", hours["weekly_operating_hours"], for_update=for_update
        )
    elif is_enabled:
        problems.add(f"{path}.weekly_operating_hours", "is required when call hours are ENABLED")
    if "holiday_schedule" in hours:
        _check_holidays(
            problems,
            f"{path}.holiday_schedule",
            hours["holiday_schedule"],
            for_update=for_update,
            today=today,
        )


def _check_weekly_hours(problems: _Problems, path: str, weekly: Any, *, for_update: bool) -> None:
    if not isinstance(weekly, list) or not weekly:
        problems.add(path, "must be a non-empty list of opening hours")
        return
    slots_by_day: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for index, slot in enumerate(weekly):
        where = f"{path}[{index}]"
        if not isinstance(slot, dict):
            problems.add(where, "must be an object with day_of_week, open_time and close_time")
            continue
        if for_update:
            _check_unknown_keys(problems, where, slot, frozenset({"day_of_week", "open_time", "close_time"}))
        day = slot.get("day_of_week")
        is_day = isinstance(day, str) and day in DAYS
        if not is_day:
            problems.add(f"{where}.day_of_week", f"must be one of {', '.join(DAYS)} (not {day!r})")
        times = _times(problems, where, slot, "open_time", "close_time")
        if is_day and times is not None:
            slots_by_day[day].append((*times, index))
    for day, slots in slots_by_day.items():
        if len(slots) > MAX_SLOTS_PER_DAY:
            extra = slots[MAX_SLOTS_PER_DAY][2]
            problems.add(
                f"{path}[{extra}]", f"{day} has {len(slots)} entries; at most {MAX_SLOTS_PER_DAY} a day"
            )
            continue
        slots.sort()
        for (open_time, close_time, _), (next_open, next_close, index) in itertools.pairwise(slots):
            if next_open < close_time:
                problems.add(
                    f"{path}[{index}]",
                    f"{next_open}-{next_close} overlaps {open_time}-{close_time} on {day}",
                )


def _check_holidays(
    problems: _Problems, path: str, holidays: Any, *, for_update: bool, today: date | None
) -> None:
    if not isinstance(holidays, list):
        problems.add(path, "must be a list of holidays")
        return
    if len(holidays) > MAX_HOLIDAYS:
        problems.add(path, f"holds {len(holidays)} holidays; at most {MAX_HOLIDAYS}")
    for index, holiday in enumerate(holidays):
        where = f"{path}[{index}]"
        if not isinstance(holiday, dict):
            problems.add(where, "must be an object with date, start_time and end_time")
            continue
        if for_update:
            _check_unknown_keys(problems, where, holiday, frozenset({"date", "start_time", "end_time"}))
        day = holiday.get("date")
        holiday_date = None
        if isinstance(day, str) and ISO_DATE.fullmatch(day):
            with contextlib.suppress(ValueError):
                holiday_date = date.fromisoformat(day)
        if holiday_date is None:
            problems.add(f"{where}.date", f"{day!r} is not a date written YYYY-MM-DD")
        elif today is not None and holiday_date < today:
            problems.add(f"{where}.date", f"{day} is in the past (today is {today.isoformat()})")
        _times(problems, where, holiday, "start_time", "end_time")


def _times(
    problems: _Problems, where: str, data: dict, start_key: str, end_key: str
) -> tuple[str, str] | None:
    """The two HHMM times of an entry if both are valid and the first is earlier."""
    valid = True
    for key in (start_key, end_key):
        value = data.get(key)
        if not isinstance(value, str) or not HHMM.fullmatch(value):
            problems.add(
                f"{where}.{key}", f"{value!r} is not a time written HHMM on a 24-hour clock (0000-2359)"
            )
            valid = False
    if not valid:
        return None
    start, end = data[start_key], data[end_key]
    if start >= end:
        problems.add(f"{where}.{end_key}", f"{end} is not after {start_key} {start}")
        return None
    return start, end


def _check_sip(problems: _Problems, sip: Any, *, for_update: bool, current_sip: Any) -> None:
    path = "calling.sip"
    if not isinstance(sip, dict):
        problems.add(path, "must be an object")
        return
    if for_update:
        _check_unknown_keys(problems, path, sip, SIP_KEYS)
    if "status" not in sip:
        problems.add(f"{path}.status", f"is required (one of {', '.join(STATUSES)})")
    else:
        _check_choice(problems, f"{path}.status", sip["status"], STATUSES)
    servers = sip.get("servers")
    if servers is None:
        known_servers = current_sip.get("servers") if isinstance(current_sip, dict) else None
        if for_update and sip.get("status") == "ENABLED" and not known_servers:
            problems.add(f"{path}.servers", "at least one SIP server is needed to turn SIP on")
        return
    if not isinstance(servers, list):
        problems.add(f"{path}.servers", "must be a list of SIP servers")
        return
    if for_update and sip.get("status") == "ENABLED" and not servers:
        problems.add(f"{path}.servers", "at least one SIP server is needed to turn SIP on")
    for index, server in enumerate(servers):
        _check_sip_server(problems, f"{path}.servers[{index}]", server, for_update=for_update)


def _check_sip_server(problems: _Problems, path: str, server: Any, *, for_update: bool) -> None:
    if not isinstance(server, dict):
        problems.add(path, "must be an object with hostname, port and request_uri_user_params")
        return
    if for_update:
        _check_unknown_keys(problems, path, server, SIP_SERVER_KEYS)
    reason = hostname_problem(server.get("hostname"))
    if reason is not None:
        problems.add(f"{path}.hostname", reason)
    if "port" in server:
        port = server["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.add(f"{path}.port", f"{port!r} is not a port number (1-65535)")
    if "request_uri_user_params" in server:
        params = server["request_uri_user_params"]
        where = f"{path}.request_uri_user_params"
        if not isinstance(params, dict):
            problems.add(where, "must be an object of parameter names and values, such as {'tgrp': 'wa'}")
        else:
            for name, value in params.items():
                if not URI_PARAM_NAME.fullmatch(name):
                    problems.add(f"{where}.{_key_text(name)}", f"{name!r} is not a SIP URI parameter name")
                elif not isinstance(value, str) or not URI_PARAM_VALUE.fullmatch(value):
                    problems.add(
                        f"{where}.{_key_text(name)}",
                        f"{value!r} is not a SIP URI parameter value (text without spaces, ';', '?' or '@')",
                    )
    if not for_update and "sip_user_password" in server and not isinstance(server["sip_user_password"], str):
        problems.add(f"{path}.sip_user_password", "must be a string")


def _sip_status(calling: dict, current: dict) -> Any:
    for settings in (calling, current):
        sip = settings.get("sip")
        if isinstance(sip, dict) and "status" in sip:
            return sip["status"]
    return "DISABLED"


def _check_restrictions(problems: _Problems, restrictions: Any) -> None:
    path = "calling.restrictions"
    if not isinstance(restrictions, dict):
        problems.add(path, "must be an object")
        return
    listed = restrictions.get("restrictions_list", [])
    if not isinstance(listed, list):
        problems.add(f"{path}.restrictions_list", "must be a list")
        return
    for index, restriction in enumerate(listed):
        where = f"{path}.restrictions_list[{index}]"
        if not isinstance(restriction, dict):
            problems.add(where, "must be an object")
            continue
        kind = restriction.get("type")
        if not isinstance(kind, str) or not kind:
            problems.add(f"{where}.type", "must name the restriction")
        if "reason" in restriction and not isinstance(restriction["reason"], str):
            problems.add(f"{where}.reason", "must be a string")
        if "expiration" in restriction:
            expiration = restriction["expiration"]
            if isinstance(expiration, bool) or not isinstance(expiration, int) or expiration < 0:
                problems.add(f"{where}.expiration", f"{expiration!r} is not a UNIX time")
