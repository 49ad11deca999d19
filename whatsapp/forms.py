"""The calling settings an administrator sets at Meta (WHATSAPP_API.md §4.1).

The form checks only what a person can get wrong in a box (times as HHMM, a time zone when call
hours are sent, rows filled whole); the rest of the rules are Meta's, and Meta's answer is shown.
"""

import re

from django import forms
from django.core.validators import RegexValidator

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
SLOTS_PER_DAY = 2  # Meta: at most two entries a day
MAX_HOLIDAYS = 20  # Meta: at most 20 holiday_schedule entries
HHMM = RegexValidator(
    re.compile(r"^([01]\d|2[0-3])[0-5]\d$"), "A time as HHMM on a 24-hour clock, e.g. 0900."
)
ENABLED_OR_DISABLED = [("ENABLED", "Enabled"), ("DISABLED", "Disabled")]
NOT_SENT = ""


def _time_field() -> forms.CharField:
    return forms.CharField(
        required=False, max_length=4, validators=[HHMM],
        widget=forms.TextInput(attrs={"size": 4, "placeholder": "HHMM", "inputmode": "numeric"}),
    )  # fmt: skip


class CallingSettingsForm(forms.Form):
    status = forms.ChoiceField(label="Calling", choices=ENABLED_OR_DISABLED)
    call_icon_visibility = forms.ChoiceField(
        label="Call icon",
        choices=[("DEFAULT", "Shown (DEFAULT)"), ("DISABLE_ALL", "Hidden (DISABLE_ALL)")],
    )
    callback_permission_status = forms.ChoiceField(
        label="Ask callers for callback permission", choices=ENABLED_OR_DISABLED
    )
    call_hours_status = forms.ChoiceField(
        label="Call hours",
        choices=[(NOT_SENT, "Leave as they are (not sent)"), *ENABLED_OR_DISABLED],
        required=False,
    )
    timezone_id = forms.CharField(
        label="Time zone", max_length=64, required=False, help_text="e.g. Europe/London"
    )
    holiday_rows = forms.IntegerField(
        widget=forms.HiddenInput, min_value=1, max_value=MAX_HOLIDAYS, required=False
    )

    def __init__(self, *args, holiday_rows: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound:
            posted = str(self.data.get("holiday_rows", ""))
            holiday_rows = int(posted) if posted.isdigit() else holiday_rows
        self.holiday_count = max(1, min(holiday_rows, MAX_HOLIDAYS))
        self.fields["holiday_rows"].initial = self.holiday_count
        for day in DAYS:
            for slot in range(1, SLOTS_PER_DAY + 1):
                self.fields[f"{day.lower()}_open_{slot}"] = _time_field()
                self.fields[f"{day.lower()}_close_{slot}"] = _time_field()
        for row in range(self.holiday_count):
            self.fields[f"holiday_date_{row}"] = forms.DateField(
                required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            self.fields[f"holiday_start_{row}"] = _time_field()
            self.fields[f"holiday_end_{row}"] = _time_field()

    @classmethod
    def for_settings(cls, calling: dict) -> "CallingSettingsForm":
        """The form showing a number's calling settings as Meta has them."""
        initial = {
            "status": calling.get("status", "DISABLED"),
            "call_icon_visibility": calling.get("call_icon_visibility", "DEFAULT"),
            "callback_permission_status": calling.get("callback_permission_status", "DISABLED"),
        }
        hours = calling.get("call_hours") if isinstance(calling.get("call_hours"), dict) else None
        holidays = []
        if hours:
            initial["call_hours_status"] = hours.get("status", NOT_SENT)
            initial["timezone_id"] = hours.get("timezone_id", "")
            used: dict[str, int] = {}
            for slot in hours.get("weekly_operating_hours") or []:
                day = str(slot.get("day_of_week", "")).lower()
                used[day] = used.get(day, 0) + 1
                if used[day] <= SLOTS_PER_DAY:
                    initial[f"{day}_open_{used[day]}"] = slot.get("open_time", "")
                    initial[f"{day}_close_{used[day]}"] = slot.get("close_time", "")
            holidays = [item for item in hours.get("holiday_schedule") or [] if isinstance(item, dict)]
            for row, holiday in enumerate(holidays[:MAX_HOLIDAYS]):
                initial[f"holiday_date_{row}"] = holiday.get("date", "")
                initial[f"holiday_start_{row}"] = holiday.get("start_time", "")
                initial[f"holiday_end_{row}"] = holiday.get("end_time", "")
        return cls(initial=initial, holiday_rows=len(holidays) + 2)

    # For the template: the week's rows and the holidays' rows, as bound fields.

    def day_rows(self) -> list[tuple[str, list[tuple[forms.BoundField, forms.BoundField]]]]:
        return [
            (day.title(), [(self[f"{day.lower()}_open_{slot}"], self[f"{day.lower()}_close_{slot}"])
                           for slot in range(1, SLOTS_PER_DAY + 1)])
            for day in DAYS
        ]  # fmt: skip

    def holiday_fields(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"holiday_date_{row}"], self[f"holiday_start_{row}"], self[f"holiday_end_{row}"])
            for row in range(self.holiday_count)
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        for day in DAYS:
            for slot in range(1, SLOTS_PER_DAY + 1):
                opens, closes = f"{day.lower()}_open_{slot}", f"{day.lower()}_close_{slot}"
                if bool(cleaned.get(opens)) != bool(cleaned.get(closes)) and not self.has_error(opens):
                    self.add_error(opens, f"{day.title()}: give both the opening and the closing time.")
        for row in range(self.holiday_count):
            names = (f"holiday_date_{row}", f"holiday_start_{row}", f"holiday_end_{row}")
            given = [bool(cleaned.get(name)) for name in names]
            if any(given) and not all(given) and not any(self.has_error(name) for name in names):
                self.add_error(names[0], "A holiday needs its date, start and end time.")
        if cleaned.get("call_hours_status") and not (cleaned.get("timezone_id") or "").strip():
            self.add_error("timezone_id", "Call hours need a time zone.")
        return cleaned

    def calling(self) -> dict:
        """The `calling` object to send (WHATSAPP_API.md §4.1); `call_hours` only when chosen, whole."""
        data = self.cleaned_data
        calling = {
            "status": data["status"],
            "call_icon_visibility": data["call_icon_visibility"],
            "callback_permission_status": data["callback_permission_status"],
        }
        if data.get("call_hours_status"):
            weekly = [
                {"day_of_week": day, "open_time": data[f"{day.lower()}_open_{slot}"],
                 "close_time": data[f"{day.lower()}_close_{slot}"]}
                for day in DAYS
                for slot in range(1, SLOTS_PER_DAY + 1)
                if data.get(f"{day.lower()}_open_{slot}")
            ]  # fmt: skip
            holidays = [
                {"date": data[f"holiday_date_{row}"].isoformat(), "start_time": data[f"holiday_start_{row}"],
                 "end_time": data[f"holiday_end_{row}"]}
                for row in range(self.holiday_count)
                if data.get(f"holiday_date_{row}")
            ]  # fmt: skip
            calling["call_hours"] = {
                "status": data["call_hours_status"],
                "timezone_id": data["timezone_id"].strip(),
                "weekly_operating_hours": weekly,
                "holiday_schedule": holidays,
            }
        return calling
