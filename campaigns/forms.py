from decimal import Decimal

from django import forms

from messaging.models import Template
from whatsapp.models import BusinessNumber

MAX_CSV_BYTES = 5 * 1024 * 1024  # 100,000 numbers with a name each fit in well under this


class CampaignForm(forms.Form):
    """A new campaign: what to send from which number, to whom (a CSV, pasted numbers, a filter of
    contacts, any together), and the operator's guesses the capacity plan starts from."""

    name = forms.CharField(max_length=200)
    business_number = forms.ModelChoiceField(queryset=BusinessNumber.objects.none(), empty_label=None)
    template = forms.ModelChoiceField(
        queryset=Template.objects.filter(status=Template.Status.APPROVED), empty_label=None
    )
    csv_file = forms.FileField(
        required=False, label="List (CSV)", help_text="A `phone` column, or the numbers in the first column."
    )
    numbers = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="Or paste numbers, one a line."
    )
    contacts_filter = forms.CharField(
        required=False, max_length=64, label="Or contacts matching",
        help_text="Your contacts whose name or number has this; '*' for all of them.",
    )  # fmt: skip
    opted_in = forms.BooleanField(
        required=False, label="Everyone on this list agreed to hear from the number",
        help_text="Recorded as each customer's opt-in; say where they agreed.",
    )  # fmt: skip
    opt_in_detail = forms.CharField(required=False, max_length=300, label="Where they agreed")
    tap_rate_percent = forms.DecimalField(
        min_value=Decimal(0), max_value=Decimal(100), decimal_places=2, initial=Decimal(2),
        label="Expected to tap Call (%)",
    )  # fmt: skip
    call_seconds = forms.IntegerField(
        min_value=1, max_value=7200, initial=180, label="Expected call length (s)"
    )
    tap_delay_seconds = forms.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, initial=600, label="Expected time to the tap (s)"
    )
    service_level_percent = forms.DecimalField(
        min_value=Decimal(0), max_value=Decimal(100), decimal_places=1, initial=Decimal(80),
        label="Answer (%) of calls…",
    )  # fmt: skip
    answer_seconds = forms.IntegerField(min_value=1, max_value=3600, initial=20, label="…within (s)")
    agents_on_duty = forms.IntegerField(
        required=False, min_value=0, max_value=10_000, help_text="Empty: the agents of its queue on duty now."
    )

    def __init__(self, *args, number_ids=frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["business_number"].queryset = BusinessNumber.objects.filter(pk__in=number_ids)

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload and upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(f"The file is over {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        return upload

    def clean(self) -> dict:
        cleaned = super().clean()
        if not (
            cleaned.get("csv_file")
            or (cleaned.get("numbers") or "").strip()
            or cleaned.get("contacts_filter")
        ):
            raise forms.ValidationError("Give the list: a CSV file, pasted numbers or a filter of contacts.")
        if cleaned.get("opted_in") and not (cleaned.get("opt_in_detail") or "").strip():
            self.add_error("opt_in_detail", "Say where the customers agreed (a form, a till, an event).")
        return cleaned

    def guesses(self) -> dict:
        data = self.cleaned_data
        return {
            "expected_tap_rate": data["tap_rate_percent"] / 100,
            "expected_call_seconds": data["call_seconds"],
            "expected_tap_delay_seconds": data["tap_delay_seconds"],
            "target_service_level": data["service_level_percent"] / 100,
            "target_answer_seconds": data["answer_seconds"],
            "agents_on_duty": data["agents_on_duty"],
        }


class StartForm(forms.Form):
    send_rate = forms.DecimalField(
        min_value=Decimal("0.001"), decimal_places=3, required=False, label="Send at (messages a second)"
    )
